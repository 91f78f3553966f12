"""Issue 13: results in the form a textbook writes them, each still checked numerically.

Every row derives, prints the short form (text), and passes the finite-difference
check; the NMF-KL gradient's generated code stays finite at zeros of X in every target
whose library is installed (required under CI=true).
"""
from __future__ import annotations

import numpy as np
import pytest

import matcalc
from matcalc import expr as E
from matcalc.engine.simplify import simplify
from matcalc.numeric import Evaluator

LOGISTIC = "y = sigmoid(Phi*w); L = -sum(t .* log(y) + (1 - t) .* log(1 - y))"
NMF_KL = "sum(X .* log(X ./ (W*H)) - X + W*H)"

# (command, program, wrt, let, printed): the form the derivation must print
ROWS = [
    ("grad", LOGISTIC, "w", None, "Phi'*(y - t)"),                              # Bishop (4.91)
    ("grad", "det(X^3)", "X", {"X": "matrix(n, n)"}, "3*det(X)^3*inv(X)'"),      # Cookbook (58)
    ("grad", "det(inv(X)^2)", "X", {"X": "matrix(n, n)"}, "-2*inv(X)'/det(X)^2"),
    ("grad", NMF_KL, "H", None, "W'*(1 - X ./ (W*H))"),                          # Lee & Seung
    ("jacobian", "log(softmax(z))", "z", None, "I(n) - ones(n)*softmax(z)'"),
    ("jacobian", "tr(A*X)", "X", {"A": "matrix(n, n)", "X": "matrix(n, n)"}, "vec(A')'"),
    ("jacobian", "mu = sum(x)/D; xc = x - mu", "x", {"D": "scalar"}, "I(n) - ones(n, n)/D"),
    ("grad", "-sum(1 + lv - mu.^2 - exp(lv))/2", "mu", {"mu": "scalar"}, "mu*sum(ones(n))"),
    ("grad", "sum(diag(a)*diag(b)*x)", "a", None, "b .* x"),
    ("grad", "det(A*X*B)", "X", {"A": "matrix(n, n)", "X": "matrix(n, n)", "B": "matrix(n, n)"},
     "det(A*X*B)*inv(X)'"),                                                   # Cookbook (51)
    ("grad", "det(X'*A*X)", "X", {"X": "matrix(n, n)"}, "2*det(X'*A*X)*inv(X)'"),  # Cookbook (52)
    ("grad", "log(abs(det(X)))", "X", {"X": "matrix(n, n)"}, "inv(X)'"),     # Cookbook (57)
    ("grad", "sum(t .* log(sigmoid(Phi*w)) + (1 - t) .* log(1 - sigmoid(Phi*w)))", "w", None,
     "Phi'*(t - sigmoid(Phi*w))"),
    ("grad", "sum(log(softmax(x)))", "x", None, "1 - sum(ones(n))*softmax(x)"),
]


@pytest.mark.parametrize("command, text, wrt, let, printed", ROWS, ids=[r[1] for r in ROWS])
def test_textbook_form(command, text, wrt, let, printed):
    d = getattr(matcalc, command)(text, wrt=wrt, let=let)
    assert str(d.results[wrt]) == printed
    assert d.check().ok, d.check()


def test_bishop_hessian_is_phi_t_diag_phi():
    """Bishop (4.97): Φᵀ diag(y ⊙ (1 − y)) Φ; t has cancelled out of it."""
    d = matcalc.hessian(LOGISTIC, wrt="w")
    assert "t" not in {n for n in d.text().replace("(", " ").replace(")", " ").replace("*", " ").split()}
    assert d.check().ok
    assert len(d.text()) < 60, d.text()


def test_cancellation_is_where_the_original_is_defined():
    """x⁻¹ ⊙ x² = x: the simplified form equals the original wherever that is defined,
    and it is defined (finite) at x = 0 where the original is not."""
    program = matcalc.parse("x.^-1 .* x.^2 .* y")
    s = simplify(program.value)
    assert str(s) == "x .* y"
    env = {"x": np.array([[0.0], [2.0]]), "y": np.array([[3.0], [5.0]])}
    with np.errstate(all="ignore"):
        original = Evaluator(env)(program.value)
    assert np.isfinite(Evaluator(env)(s)).all() and np.isnan(original[0, 0]) and original[1, 0] == 10.0


def test_factored_form_is_kept_when_expanding_does_not_shorten():
    """(1 − h²) ⊙ g, y ⊙ (1 − y), (a + b) ⊙ c: each name once (or a near tie), so no expansion."""
    for text in ["(1 - h.^2) .* g", "y .* (1 - y)", "(a + b) .* c"]:
        assert isinstance(simplify(matcalc.parse(text).value), E.Hadamard), text


@pytest.mark.parametrize("target, module", [("numpy", "numpy"), ("jax", "jax"), ("torch", "torch"),
                                            ("array-api", "array_api_compat")])
def test_nmf_gradient_code_is_finite_at_zeros_of_x(target, module):
    from tests.test_targets import need
    need(module)
    d = matcalc.grad(NMF_KL, wrt="H", let={"X": "matrix(m, n)", "W": "matrix(m, k)", "H": "matrix(k, n)"})
    rng = np.random.default_rng(0)
    X = rng.uniform(0.5, 2, (4, 3))
    X[0, 0] = X[2, 1] = 0.0
    W, H = rng.uniform(0.5, 2, (4, 2)), rng.uniform(0.5, 2, (2, 3))
    args = {"X": X, "W": W, "H": H}
    if target == "torch":
        import torch
        args = {k: torch.tensor(v) for k, v in args.items()}
    elif target == "jax":
        import jax.numpy as jnp
        args = {k: jnp.asarray(v) for k, v in args.items()}
    g = np.asarray(d.function(target).grad_H(**args), dtype=float)
    assert np.isfinite(g).all()
    rtol = 1e-5 if target == "jax" else 1e-10        # JAX computes in float32 unless x64 is enabled
    np.testing.assert_allclose(g, W.T @ (1 - X / (W @ H)), rtol=rtol)


TARGET_MODULES = [("numpy", "numpy"), ("jax", "jax"), ("torch", "torch"), ("array-api", "array_api_compat")]
LARGE = [-1000.0, -50.0, 0.0, 50.0, 1000.0]


def _array(target: str, values):
    if target == "torch":
        import torch
        return torch.tensor(values, dtype=torch.float64)
    if target == "jax":
        import jax
        jax.config.update("jax_enable_x64", True)
        import jax.numpy as jnp
        return jnp.asarray(values, dtype=jnp.float64)
    return np.asarray(values, dtype=float)


# (program, the value at LARGE, the gradient at LARGE): every one finite though exp(1000) is not
_X = np.array(LARGE)
_SIGMOID = np.exp(-np.logaddexp(0, -_X))       # 1/(1 + e^-x) without overflow
AT_LARGE = [
    ("sum(softplus(x))", np.logaddexp(0, _X).sum(), _SIGMOID),
    ("logsumexp(x)", 1000.0, [0.0, 0.0, 0.0, 0.0, 1.0]),
    ("sum(log(sigmoid(x)))", -np.logaddexp(0, -_X).sum(), 1 - _SIGMOID),
    ("sum(log(1 - sigmoid(x)))", -np.logaddexp(0, _X).sum(), -_SIGMOID),
    ("sum(log(softmax(x)))", (_X - 1000.0).sum(), [1.0, 1.0, 1.0, 1.0, -4.0]),
]


@pytest.mark.parametrize("target, module", TARGET_MODULES)
@pytest.mark.parametrize("text, value, gradient", AT_LARGE, ids=[r[0] for r in AT_LARGE])
def test_code_is_finite_at_large_arguments(text, value, gradient, target, module):
    from tests.test_targets import need
    need(module)
    fns = matcalc.grad(text, wrt="x", let={"x": "vector(n)"}).function(target)
    x = _array(target, LARGE)
    v, g = float(fns.value(x=x)), np.asarray(fns.grad_x(x=x), dtype=float)
    assert np.isfinite(v) and np.isfinite(g).all(), (v, g)
    np.testing.assert_allclose(v, value, rtol=1e-12)
    np.testing.assert_allclose(g, gradient, rtol=1e-9, atol=1e-12)


def test_steps_name_the_simplification():
    """--steps shows the cancellation as a named step before the result."""
    d = matcalc.grad(LOGISTIC, wrt="w")
    lines = d.text().splitlines()
    from matcalc.printing.steps import steps_text
    shown = steps_text(d).splitlines()
    assert shown[-1].endswith(lines[-1])
    assert "Phi'*(y - t) : dw" in shown[-2] and "cancel and collect" in shown[-2]
