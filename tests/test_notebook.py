"""examples/matcalc.ipynb runs on a real Jupyter kernel and shows what it says it shows.

The notebook is executed once (module fixture) by nbclient on an ipykernel kernel.
The kernel is ipykernel's built-in "python3" spec, which starts sys.executable: this
test's own interpreter, with matcalc installed, and no `ipykernel install` needed.
Cells are found by their tags; what they show comes from matcalc in the kernel and
is compared with the known answers and with the same call made here.
"""
from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path

import nbclient
import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager

import matcalc

NOTEBOOK = Path(__file__).resolve().parent.parent / "examples" / "matcalc.ipynb"
WHOAMI = "import sys, matcalc\nprint(sys.executable)\nprint(matcalc.__file__)"


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(WHOAMI, metadata={"tags": ["whoami"]}))
    # No kernel directories: only ipykernel's own spec, never a user's or the system's "python3".
    km = KernelManager(kernel_name="python3", kernel_spec_manager=KernelSpecManager(kernel_dirs=[]))
    client = nbclient.NotebookClient(nb, km=km, kernel_name="python3", timeout=300, startup_timeout=120,
                                     resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    # A fresh IPYTHONDIR: no one's startup scripts run in the kernel.
    env = {**os.environ, "IPYTHONDIR": str(tmp_path_factory.mktemp("ipython"))}
    start = time.perf_counter()
    try:
        client.execute(env=env)      # raises CellExecutionError if a cell raises
    finally:
        km.shutdown_kernel(now=True)     # the client shuts down only kernels it started itself
    print(f"\nexamples/matcalc.ipynb executed in {time.perf_counter() - start:.1f} s")
    return nb


def _cell(nb, tag: str):
    cells = [c for c in nb.cells if tag in c.metadata.get("tags", [])]
    assert len(cells) == 1, f"one cell tagged {tag!r}, found {len(cells)}"
    return cells[0]


def latex(nb, tag: str) -> str:
    """The text/latex of the cell's result."""
    results = [o for o in _cell(nb, tag).outputs if o.output_type == "execute_result"]
    assert len(results) == 1 and "text/latex" in results[0].data, _cell(nb, tag).outputs
    return results[0].data["text/latex"]


def stdout(nb, tag: str) -> str:
    return "".join(o.text for o in _cell(nb, tag).outputs
                   if o.output_type == "stream" and o.name == "stdout")


def errors(text: str) -> list[float]:
    """Every 'relative error ...: 1.2e-10' in a cell's output."""
    return [float(x) for x in re.findall(r"relative error[^\n]*?(\d\.\d+e[-+]\d+)", text)]


def test_every_cell_ran_without_error(executed):
    code = [c for c in executed.cells if c.cell_type == "code"]
    assert len(code) > 15 and all(c.execution_count is not None for c in code)
    assert not [o for c in code for o in c.outputs if o.output_type == "error"]
    assert not [o for c in code for o in c.outputs if o.output_type == "stream" and o.name == "stderr"]


def test_the_kernel_is_this_environment(executed):
    executable, module = stdout(executed, "whoami").split()
    assert executable == sys.executable
    assert module == matcalc.__file__


def test_the_program_shows_its_definitions_and_shapes(executed):
    shown = latex(executed, "backprop-program")
    assert shown.startswith(r"$$\begin{align*}")
    assert r"a &= W h + b" in shown and r"L &= f\left(a\right)" in shown
    assert re.search(r"W \\in \\mathbb\{R\}\^\{\w+ \\times \w+\}", shown)


def test_the_backprop_rule_renders(executed):
    shown = latex(executed, "backprop-result")
    assert shown == r"$$\frac{\partial L}{\partial W} = \nabla f\left(a\right) h^{T}$$"
    assert shown == matcalc.grad("a = W*h + b; L = f(a)", wrt="W", let={"f": "function"})._repr_latex_()
    assert stdout(executed, "backprop-rules").splitlines()[-1] == "grad_f(a)*h'"


def test_steps_render_as_align(executed):
    for tag in ("backprop-steps", "squared-steps", "logdet-steps", "logistic-steps"):
        shown = latex(executed, tag)
        assert shown.startswith(r"$$\begin{align*}") and shown.endswith(r"\end{align*}$$"), tag
        assert shown.count(r" \\") >= 3, tag
    backprop = latex(executed, "backprop-steps")
    assert r"g_{a} h^{T} : \mathrm{d}W && \text{move a right factor}" in backprop
    assert r"\text{adjoint, passed back}" in backprop
    here = matcalc.grad("a = W*h + b; L = f(a)", wrt="W", let={"f": "function"})
    assert backprop == "$$" + here.latex(steps=True) + "$$"
    assert r"\frac{\partial L}{\partial X} &= X^{-T}" in latex(executed, "logdet-steps")


def test_the_results_are_the_textbook_ones(executed):
    squared = stdout(executed, "squared-text").splitlines()
    assert squared == ["grad_W = 2*(W*h + b - y)*h'", "grad_b = 2*(W*h + b - y)"]
    assert r"\frac{\partial L}{\partial b} &= 2 \left(W h + b - y\right)" in latex(executed, "squared-result")
    assert latex(executed, "quadratic-result").endswith(r"= \left(A + A^{T}\right) x$$")
    assert latex(executed, "quadratic-hessian").endswith(r"= A + A^{T}$$")
    assert latex(executed, "logistic-gradient").endswith(
        r"= \lambda w - X^{T} \left(\sigma\left(z\right) \odot y\right)$$")
    assert "hessian_w = lambda*I(n) - X'*diag(" in stdout(executed, "logistic-hessian")


def test_checks_and_generated_code_agree_with_finite_differences(executed):
    checks = stdout(executed, "check").splitlines()
    assert len(checks) == 6 and all(" passed " in line for line in checks), checks
    for tag, count in (("check", 6), ("logistic-numeric", 1), ("newton", 1), ("backprop-numeric", 1)):
        found = errors(stdout(executed, tag))
        assert len(found) == count and max(found) < 1e-6, (tag, found)
    newton = re.findall(r"\|grad\| = (\S+)", stdout(executed, "newton"))
    assert len(newton) == 6 and float(newton[-1]) < 1e-4 < float(newton[0])
    assert "equals the outer product g h': True" in stdout(executed, "backprop-numeric")
    assert "def grad_w(y, X, w, lambda_):" in stdout(executed, "logistic-code")


def test_latex_export_prints_the_align_block(executed):
    out = stdout(executed, "latex-export")
    assert out.startswith(r"\frac{\partial L}{\partial w} = ")
    assert r"\begin{align*}" in out and r"\end{align*}" in out and "$$" not in out


def test_the_notebook_is_saved_without_outputs():
    """Outputs are produced by running it; stored, they would make every diff noisy."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code)
