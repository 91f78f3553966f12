"""Long products: suffix products are named (engine/chains.py), so a gradient
through k factors that depend on the variable grows linearly in k, and stays right.

Every gradient here is checked against central differences of the product computed
by NumPy in the test itself, through the generated code and through d.check().
"""
from __future__ import annotations

from functools import reduce

import numpy as np
import pytest

import matcalc
from matcalc.engine.chains import SPLIT_FROM


def _numeric_grad(f, X, h=1e-6):
    G = np.zeros_like(X)
    for idx in np.ndindex(X.shape):
        E = np.zeros_like(X)
        E[idx] = h
        G[idx] = (f(X + E) - f(X - E)) / (2 * h)
    return G


def _trace_chain(k: int) -> str:
    return "tr(" + "*".join(f"A{i}*X" for i in range(1, k + 1)) + ")"


@pytest.mark.parametrize("k", [SPLIT_FROM - 1, SPLIT_FROM, SPLIT_FROM + 1, 9, 16])
def test_trace_chain_gradient_is_right(k):
    d = matcalc.grad(_trace_chain(k), "X", let={"X": "matrix(3, 3)"})
    rng = np.random.default_rng(k)
    A = [rng.standard_normal((3, 3)) / 2 for _ in range(k)]
    X = rng.standard_normal((3, 3)) / 2
    value = lambda X: np.trace(reduce(np.matmul, [M for a in A for M in (a, X)]))
    args = {f"A{i + 1}": a for i, a in enumerate(A)}
    got = d.function().grad_X(X=X, **args)
    np.testing.assert_allclose(got, _numeric_grad(value, X), rtol=1e-5, atol=1e-8)
    assert d.check().ok


def test_products_are_named_only_from_the_threshold():
    assert "t1 =" not in matcalc.grad(_trace_chain(SPLIT_FROM - 1), "X").text()
    assert "t1 =" in matcalc.grad(_trace_chain(SPLIT_FROM), "X").text()


@pytest.mark.parametrize("text, wrt, let", [
    # rectangular factors, and inactive factors between the active ones
    ("x'*A*B*A*C*A*B*A*C*A*x", "A", {"A": "matrix(n, n)", "B": "matrix(n, n)", "C": "matrix(n, n)"}),
    # a chain of rectangular matrices around a vector variable (each factor a different shape)
    ("y'*P*x*x'*Q*x*x'*R*x*x'*S*x*x'*z", "x", {"P": "matrix(m, n)", "Q": "matrix(n, n)", "R": "matrix(n, n)",
                                          "S": "matrix(n, n)", "y": "vector(m)", "z": "vector(n)"}),
    # the chain inside a definition, used by a later one
    ("M = X*A*X*B*X*A*X*B*X\nL = sum(tanh(M)) + tr(M*M')", "X", {}),
])
def test_chains_with_other_factors_and_definitions(text, wrt, let):
    d = matcalc.grad(text, wrt, let=let)
    assert "t1 =" in d.text()
    report = d.check()
    assert report.ok, report


def test_result_size_and_time_grow_linearly():
    sizes = {}
    for k in (16, 32, 64):
        d = matcalc.grad(_trace_chain(k), "X")
        sizes[k] = len(d.text())
    assert sizes[32] / sizes[16] < 2.3 and sizes[64] / sizes[32] < 2.3, sizes


def test_steps_show_the_named_products():
    d = matcalc.grad(_trace_chain(SPLIT_FROM), "X")
    text = d.latex(steps=True)
    kinds = [s.kind for s in d.steps]
    assert kinds[:SPLIT_FROM - 2] == ["define"] * (SPLIT_FROM - 2)
    assert all(s.rule.name == "sharing suffix products" for s in d.steps[:SPLIT_FROM - 2])
    assert "sharing suffix products" in text


def test_hessian_of_a_long_chain_is_right():
    """The Hessian differentiates the gradient program, written out (no named products)."""
    d = matcalc.hessian("x'*A*x*x'*B*x*x'*C*x", "x", let={"x": "vector(3)"})
    assert d.check().ok


@pytest.mark.parametrize("k", [SPLIT_FROM - 1, SPLIT_FROM, 12])
def test_hadamard_chain_gradient_is_right(k):
    """d(f1 ⊙ ... ⊙ fk) has k terms of k - 1 factors: named suffix products keep it linear."""
    text = "sum(c .* " + " .* ".join(f"sin(x + a{i})" for i in range(k)) + ")"
    d = matcalc.grad(text, "x", let={"x": "vector(4)"})
    assert ("t1 =" in d.text()) == (k >= SPLIT_FROM)
    rng = np.random.default_rng(k)
    args = {f"a{i}": rng.standard_normal(4) for i in range(k)}
    args["c"] = rng.standard_normal(4)
    x = rng.standard_normal(4)
    value = lambda x: np.sum(args["c"] * np.prod([np.sin(x + args[f"a{i}"]) for i in range(k)], axis=0))
    got = d.function().grad_x(x=x, **args)
    np.testing.assert_allclose(got, _numeric_grad(value, x), rtol=1e-5, atol=1e-8)
    assert d.check().ok


def test_hadamard_chain_size_grows_linearly():
    sizes = {k: len(matcalc.grad("sum(" + " .* ".join(f"sin(x + a{i})" for i in range(k)) + ")", "x").text())
             for k in (50, 100, 200)}
    assert sizes[100] / sizes[50] < 2.3 and sizes[200] / sizes[100] < 2.3, sizes
