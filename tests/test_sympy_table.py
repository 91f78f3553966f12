"""docs/sympy-comparison.md stays true: some rows are re-derived and their class asserted.

The table is SymPy 1.14's; with another SymPy these tests are skipped (the
table still describes 1.14) and the table should be regenerated with
`python bench/sympy_cookbook.py`.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import sympy

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("sympy_cookbook", ROOT / "bench" / "sympy_cookbook.py")
table = importlib.util.module_from_spec(_spec)
sys.modules["sympy_cookbook"] = table          # dataclasses look their module up there
_spec.loader.exec_module(table)

pytestmark = pytest.mark.skipif(not sympy.__version__.startswith("1.14."),
                                reason=f"the table is SymPy 1.14's, this is {sympy.__version__}")

# id -> the class SymPy 1.14 earns on it
EXPECTED = {
    "eq57": "wrong",                  # ∂ log det X/∂X: SymPy says 0
    "eq49": "unevaluated",            # ∂ det X/∂X: a Derivative comes back
    "eq101": "agrees",                # ∂ tr(AXB)/∂X = AᵀBᵀ
    "classic-had-trace": "agrees",    # ∂ tr(A (X∘X))/∂X = 2 X∘Aᵀ
    "had-square": "error",            # ∂ sum((X∘A)^2)/∂X: IndexError inside SymPy
    "eq-rayleigh": "wrong",           # the derivative of the denominator is dropped
    "eq70": "agrees",                 # right, as a 4-index array expression
    "ew-exp": "no SymPy form",        # elementwise exp of a vector
    "classic-tr-plus-det": "wrong",   # 0: the det term takes tr(X)'s I down with it
}
ROWS = {r[0]: r for r in table.all_rows()}


@pytest.mark.parametrize("rid", sorted(EXPECTED))
def test_row_is_classified_as_the_table_says(rid):
    row = table.classify(*ROWS[rid])
    assert row.sympy_class == EXPECTED[rid], (rid, row)
    assert row.matcalc == "ok", (rid, row.matcalc)
    published = table.parse_table((ROOT / "docs" / "sympy-comparison.md").read_text("utf-8"))
    assert published[rid] == row.sympy_class, f"docs/sympy-comparison.md is stale on {rid}: regenerate it"


def test_table_covers_every_row():
    published = table.parse_table((ROOT / "docs" / "sympy-comparison.md").read_text("utf-8"))
    assert set(published) == set(ROWS), "regenerate docs/sympy-comparison.md: python bench/sympy_cookbook.py"


def test_a_transposed_answer_is_its_own_class():
    """The classifier tells a transpose from a wrong answer (no Cookbook row needs it today)."""
    import numpy as np
    n = sympy.Symbol("n")
    A = sympy.MatrixSymbol("A", n, n)
    env, dims = {"A": np.arange(9.0).reshape(3, 3)}, {"n": 3}
    expected = env["A"]
    assert table._sympy_class(A, expected, env, dims)[0] == "agrees"
    assert table._sympy_class(A.T, expected, env, dims)[0] == "transposed"
    assert table._sympy_class(2 * A, expected, env, dims)[0] == "wrong"
    assert table._sympy_class(sympy.Derivative(sympy.Determinant(A), A), expected, env, dims)[0] == "unevaluated"
