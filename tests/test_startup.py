"""What `import matcalc` and a plain derivation pull in: the start-up budget of
issue 6 (timed in bench/startup.py, not here) rests on NumPy and SymPy being
imported only by the code that needs them."""
from __future__ import annotations

import subprocess
import sys

HEAVY = ("numpy", "sympy", "scipy", "jax", "torch")


def _imported_after(code: str) -> set[str]:
    probe = f"import sys\n{code}\nprint(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_import_matcalc_imports_no_heavy_package():
    assert _imported_after("import matcalc") == set()


def test_a_derivation_with_text_latex_and_code_needs_no_numpy():
    code = ("import matcalc\n"
            "d = matcalc.grad(\"x'*A*x + sum(tanh(W*x))\", 'x')\n"
            "d.text(); d.latex(steps=True); d.numpy()")
    assert _imported_after(code) == set()


def test_the_check_imports_numpy_when_it_runs():
    code = "import matcalc\nassert matcalc.grad(\"x'*A*x\", 'x').check().ok"
    assert _imported_after(code) == {"numpy"}
