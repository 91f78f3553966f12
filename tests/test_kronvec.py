"""vec and kron of a variable (issue 14, item 4): docs/kron-vec.md.

Every derivative is checked by d.check() (central differences at random points,
and the generated NumPy module against the evaluator); tests/test_targets.py runs
the same programs in JAX, PyTorch and the array API.  The operations the adjoints
need (unvec) are checked here against NumPy written independently of matcalc:
numerically, through a round trip of every printer, and in the generated code,
which must never form a dense Kronecker product.
"""
from __future__ import annotations

import numpy as np
import pytest

import matcalc
from matcalc import expr as E
from matcalc.check import dimension_sizes, sample_inputs
from matcalc.errors import MatcalcError
from matcalc.numeric import Evaluator
from matcalc.printing.latex import to_latex
from matcalc.printing.pretty import to_pretty

KRON_LET = {"A": "matrix(n, n)", "B": "matrix(p, p)", "X": "matrix(p, n)"}


def vec(a) -> np.ndarray:
    return np.asarray(a).reshape(-1, 1, order="F")


def evaluate(text: str, let=None, seed: int = 0):
    """(the expression, its value, the inputs) at a random point."""
    program = matcalc.parse(text, let)
    rng = np.random.default_rng(seed)
    dims = dimension_sizes(program, rng)
    env = sample_inputs(program, rng, dims)
    return program.value, Evaluator(env, {}, dims)(program.value), env


def checked(command: str, text: str, wrt, let=None):
    d = getattr(matcalc, command)(text, wrt=wrt, let=let)
    report = d.check()
    assert report.points > 0 and report.ok, f"{text}: {d.result}\n{report}"
    return d


# ----------------------------------------------------------------- unvec

def test_unvec_inverts_vec_column_major():
    e, value, env = evaluate("unvec(v, 2, 3)", {"v": "vector(6)"})
    assert e.shape == (2, 3)
    np.testing.assert_array_equal(value, env["v"].reshape(3, 2).T)
    np.testing.assert_array_equal(vec(value), env["v"])


@pytest.mark.parametrize("text, let", [
    ("unvec(v, 2, 3)", {"v": "vector(6)"}),
    ("unvec(v, m, n)*A", {"A": "matrix(n, n)"}),
    ("unvec(kron(x, y), q, p) + B", {"x": "vector(p)", "y": "vector(q)", "B": "matrix(q, p)"}),
    ("unvec(kron(kron(x, y), z), p*q, r)'*kron(x, y)", {"x": "vector(p)", "y": "vector(q)", "z": "vector(r)"}),
])
def test_unvec_prints_and_parses_back(text, let):
    e = matcalc.parse(text, let).value
    assert matcalc.parse(str(e), let).value == e
    assert "vec⁻¹(" in to_pretty(e)
    assert r"\operatorname{vec}^{-1}_{" in to_latex(e)


@pytest.mark.parametrize("text, let, message", [
    ("sum(unvec(X, m, n))", None, "needs a vector of m*n entries, but X is a matrix"),
    ("sum(unvec(y, m))", None, "unvec takes a vector and two dimensions"),
    ("sum(unvec(y, m, n))", {"y": "vector(5)"}, "needs a vector of m*n entries, but y is a vector(5)"),
    ("sum(unvec(y, m, 2.5))", None, "takes dimensions"),
])
def test_unvec_bad_input_points_at_the_text(text, let, message):
    with pytest.raises(MatcalcError) as info:
        matcalc.parse(text, let)
    assert message in str(info.value)
    assert info.value.span is not None


def test_unvec_is_a_reserved_name():
    with pytest.raises(MatcalcError, match="built-in"):
        matcalc.parse("unvec = x + 1\nL = sum(unvec)")


# ----------------------------------------------------------------- vec of a variable

VEC_GRADIENTS = [
    ("sum(vec(X))", ["X"], None),
    ("y'*vec(A*X*B)", ["X", "A", "B"], None),
    ("norm2(kron(A, B)*vec(X) - y)^2", ["X", "y"], KRON_LET),
    ("vec(X)'*kron(A, B)*vec(X)", ["X"], KRON_LET),
    ("sum(vec(X') .* y) + vec(X)'*vec(X)", ["X"], None),
    ("sum(exp(vec(X*X')))", ["X"], None),
    ("z'*vec(x*y')", ["x", "y"], None),                 # vec of a product of vectors
    ("sum(unvec(y, n, m) .* X)", ["y"], {"X": "matrix(n, m)"}),
]


@pytest.mark.parametrize("text, wrt, let", VEC_GRADIENTS, ids=[c[0] for c in VEC_GRADIENTS])
def test_gradient_through_vec(text, wrt, let):
    d = checked("grad", text, wrt, let)
    for name in wrt:
        assert d.results[name].shape == d.program.inputs[name].shape


def test_least_squares_in_vec_form_reads_in_matrix_form():
    """The vec trick: ∂/∂X ‖(A ⊗ B) vec(X) − y‖² = 2 Bᵀ (B X Aᵀ − unvec(y)) A, no Kronecker product."""
    d = checked("grad", "norm2(kron(A, B)*vec(X) - y)^2", "X", KRON_LET)
    assert str(d.result) == "2*B'*(B*X*A' - unvec(y, p, n))*A"
    assert "kron" not in d.numpy()
    steps = {s.rule.name for s in d.steps}
    assert "adjoint of vec" in steps


@pytest.mark.parametrize("command, text, wrt, let", [
    ("jacobian", "vec(X*A)", "X", None),
    ("jacobian", "unvec(x, n, m)*A", "x", {"A": "matrix(m, m)"}),
    ("hessian", "vec(X*A)'*vec(X*A)", "X", None),
    ("hessian", "norm2(kron(A, B)*vec(X) - y)^2", "X", KRON_LET),
])
def test_jacobians_and_hessians_through_vec(command, text, wrt, let):
    checked(command, text, wrt, let)
