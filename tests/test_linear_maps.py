"""Derivatives as linear maps: differentials and jvp_X (issue 14 items 1-3).

Every differential is checked against first differences of the value along a random
direction (d.check(), which also runs the generated jvp_X), the printers on the
examples of docs/linear-maps.md, and the other targets' jvp against NumPy's.
"""
from __future__ import annotations

import numpy as np
import pytest

import matcalc
from matcalc.cli import run

# (expression, variables, declarations): every family of operation once
DIFFERENTIALS = [
    ("inv(X)", ["X"], {}),
    ("x'*A*x", ["x"], {}),
    ("logdet(X)", ["X"], {}),
    ("det(X)", ["X"], {}),
    ("tr(A*X*B)", ["X"], {}),
    ("X*X'", ["X"], {}),
    ("X^3", ["X"], {}),
    ("kron(A, X)", ["X"], {}),
    ("sum(log(1 + exp(-y .* (X*w))))", ["w"], {}),
    ("softmax(W*x)", ["W", "x"], {}),
    ("a = W*h + b; L = sum(tanh(a))", ["W", "b"], {}),
    ("h = relu(W1*x); L = norm2(W2*h - y)^2", ["W1", "W2"], {}),
    ("S*A*S", ["S"], {"S": "symmetric(n)"}),
    ("logdet(S) - tr(S*C)", ["S"], {"S": "spd(n)"}),
    ("alpha*norm2(x)^2", ["alpha", "x"], {}),
    ("expm(X)", ["X"], {}),
    ("solve(A, X*b)", ["A", "X"], {}),
]


@pytest.mark.parametrize("text, wrt, let", DIFFERENTIALS, ids=[t for t, _, _ in DIFFERENTIALS])
def test_differential_agrees_with_finite_differences(text, wrt, let):
    d = matcalc.differential(text, wrt=wrt, let=let)
    report = d.check()
    assert report.ok, report.message
    assert all(f"jvp_{w}" in report.generated for w in wrt)      # the generated code was run too


@pytest.mark.parametrize("text, want", [
    ("x'*A*x", "dx'*(A + A')*x"),                  # the textbook's form, not dx'*A*x + x'*A*dx
    ("x'*A*x + b'*x", "(b' + x'*(A + A'))*dx"),
    ("x'*S*x", "dx'*(S + S')*x"),
])
def test_scalar_terms_turn_so_like_terms_collect(text, want):
    d = matcalc.differential(text, "x")
    assert d.text() == want
    report = d.check()
    assert report.ok, report.message


def test_a_wrong_differential_fails_the_check():
    from dataclasses import replace
    import matcalc.expr as E
    d = matcalc.differential("inv(X)", "X")
    wrong = replace(d, results={"X": E.neg(d.result)})
    wrong.total = wrong.result
    assert not wrong.check().ok


@pytest.mark.parametrize("fmt, want", [
    ("text", "-inv(X)*dX*inv(X)"),
    ("pretty", "−X⁻¹ dX X⁻¹"),
    ("latex", r"\mathrm{d}f = -X^{-1} \mathrm{d}X X^{-1}"),
])
def test_the_differential_of_the_inverse_in_each_format(capsys, fmt, want):
    assert run(["differential", "inv(X)", "--wrt", "X", "--format", fmt]) == 0
    out = capsys.readouterr().out
    assert want in out


def test_several_variables_give_the_total_differential(capsys):
    assert run(["differential", "a = W*h + b; L = sum(tanh(a))", "--wrt", "W", "--wrt", "b"]) == 0
    out = capsys.readouterr().out.strip()
    assert "dW" in out and "db" in out
    d = matcalc.differential("a = W*h + b; L = sum(tanh(a))", wrt=["W", "b"])
    assert set(d.results) == {"W", "b"} and "db" not in str(d.results["W"])


def test_steps_show_each_definitions_tangent(capsys):
    assert run(["differential", "a = W*h + b; L = sum(tanh(a))", "--wrt", "W", "--steps"]) == 0
    out = capsys.readouterr().out
    assert "da = d(W*h + b)" in out and "dL = d(sum(tanh(a)))" in out and "product rule" in out


def test_latex_steps_compile_shape():
    tex = matcalc.differential("inv(X)", "X").latex(steps=True)
    assert tex.startswith(r"\begin{align*}") and r"\mathrm{d}X" in tex


def test_json_has_the_total_and_the_jvp_module(capsys):
    import json
    assert run(["differential", "x'*A*x", "--wrt", "x", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["command"] == "differential" and "dx" in out["total"]["text"]
    assert "def jvp_x(x, A, dx):" in out["code"]


def test_a_claim_on_a_differential_is_bad_input(capsys):
    assert run(["differential", "inv(X)", "--wrt", "X", "--claim", "X"]) == 2
    assert "--check" in capsys.readouterr().err


def test_direction_names_never_collide_with_inputs():
    d = matcalc.differential("dX'*X*dX", "X")          # an input already called dX
    src = d.numpy()
    assert "def jvp_X(dX, X, dX_):" in src
    f = d.function()
    rng = np.random.default_rng(1)
    dX, X, V = rng.standard_normal((3, 3)), rng.standard_normal((3, 3)), rng.standard_normal((3, 3))
    h = 1e-6
    numeric = (f.value(dX, X + h * V) - f.value(dX, X - h * V)) / (2 * h)
    assert np.allclose(f.jvp_X(dX, X, V), numeric, atol=1e-6)


def test_value_and_jvp_shares_the_forward_pass():
    d = matcalc.differential("a = W*h + b; L = sum(tanh(a))", wrt=["W", "b"])
    f = d.function()
    rng = np.random.default_rng(0)
    W, h, b, dW, db = (rng.standard_normal(s) for s in [(3, 4), 4, 3, (3, 4), 3])
    value, df = f.value_and_jvp(W, h, b, dW, db)
    assert np.isclose(value, f.value(W, h, b))
    assert np.isclose(df, f.jvp_W(W, h, b, dW) + f.jvp_b(W, h, b, db))
    assert np.isclose(df, f.jvp(W, h, b, dW, db))


@pytest.mark.parametrize("target, module", [("jax", "jax"), ("torch", "torch"), ("array-api", "array_api_compat")])
def test_jvp_in_every_target_matches_numpy(target, module):
    from tests.test_targets import need
    need(module)
    lib = need(module if module != "array_api_compat" else "numpy")
    d = matcalc.differential("a = W*h + b; L = sum(tanh(a)) + logdet(W*W')", wrt=["W", "b"])
    reference, other = d.function(), d.function(target)
    rng = np.random.default_rng(2)
    args = [rng.standard_normal(s) for s in [(3, 4), 4, 3, (3, 4), 3]]
    if target == "jax":
        lib.config.update("jax_enable_x64", True)
        conv = lib.numpy.asarray
    elif target == "torch":
        conv = lib.from_numpy
    else:
        conv = np.asarray
    got = other.jvp(*[conv(a) for a in args])
    assert np.allclose(np.asarray(got), reference.jvp(*args))


# ---------------------------------------------------------------- Hessian-vector products and blocks

# (expression, variables, declarations): hvp and every block, checked by d.check()
HESSIANS = [
    ("norm2(X*W - Y)^2", ["W"], {}),
    ("sum(log(1 + exp(-y .* (X*w)))) + lambda*norm2(w)^2", ["w", "lambda"], {}),
    ("h = tanh(W1*x); L = norm2(W2*h - y)^2", ["W1", "W2"], {}),
    ("logdet(S) - x'*S*x", ["S", "x"], {"S": "spd(n)"}),
    ("x'*inv(A)*x", ["x", "A"], {}),
    ("a = W*h + b; L = sum(softplus(a)) + norm2(W)^2", ["W", "b", "h"], {}),
]


@pytest.mark.parametrize("text, wrt, let", HESSIANS, ids=[t for t, _, _ in HESSIANS])
def test_every_block_and_the_hvp_agree_with_second_differences(text, wrt, let):
    d = matcalc.hessian(text, wrt=wrt, let=let)
    n = len(wrt)
    assert len(d.results) == n * (n + 1) // 2           # the blocks on and above the diagonal
    report = d.check()
    assert report.ok, report.message
    assert "hvp" in report.generated


def _random(shape, rng):
    return rng.standard_normal(shape)


def test_hvp_is_the_hessian_times_the_direction_and_the_gradients_difference():
    text = "h = tanh(W1*x); L = norm2(W2*h - y)^2"
    d = matcalc.hessian(text, wrt=["W1", "W2"])
    f = d.function()
    g = matcalc.grad(text, wrt=["W1", "W2"]).function()
    rng = np.random.default_rng(3)
    W1, x, W2, y = _random((4, 3), rng), _random(3, rng), _random((2, 4), rng), _random(2, rng)
    dW1, dW2 = _random((4, 3), rng), _random((2, 4), rng)
    got = f.hvp(W1, x, W2, y, dW1, dW2)
    assert isinstance(got, tuple) and [a.shape for a in got] == [(4, 3), (2, 4)]
    # against the blocks: H [vec dW1; vec dW2]
    H11, H12, H22 = f.hessian_W1(W1, x, W2, y), f.hessian_W1_W2(W1, x, W2, y), f.hessian_W2(W1, x, W2, y)
    v1, v2 = dW1.reshape(-1, order="F"), dW2.reshape(-1, order="F")
    assert np.allclose(got[0].reshape(-1, order="F"), H11 @ v1 + H12 @ v2)
    assert np.allclose(got[1].reshape(-1, order="F"), H12.T @ v1 + H22 @ v2)
    # against central differences of the gradient
    h = 1e-6
    plus = g.value_and_grad(W1 + h * dW1, x, W2 + h * dW2, y)[1:]
    minus = g.value_and_grad(W1 - h * dW1, x, W2 - h * dW2, y)[1:]
    for a, p, m in zip(got, plus, minus):
        assert np.allclose(a, (p - m) / (2 * h), atol=1e-6)


def test_hvp_of_least_squares_never_forms_the_kronecker_product():
    src = matcalc.hessian("norm2(X*W - Y)^2", wrt="W").numpy()
    hvp = src[src.index("def hvp("):]
    assert "kron" not in hvp and "eye" not in hvp
    assert "kron" in src[:src.index("def hvp(")]         # hessian_W may return the matrix when asked


def test_blocks_in_every_format(capsys):
    text = "x'*A*x + alpha*norm2(x)^2"
    assert run(["hessian", text, "--wrt", "x", "--wrt", "alpha"]) == 0
    assert "hessian_x_alpha = 2*x" in capsys.readouterr().out
    assert run(["hessian", text, "--wrt", "x", "--wrt", "alpha", "--format", "pretty"]) == 0
    assert "∂²L/∂x∂α = 2 x" in capsys.readouterr().out
    d = matcalc.hessian(text, wrt=["x", "alpha"])
    assert r"\partial \operatorname{vec} x\,\partial \operatorname{vec} \alpha" in d.latex()
    assert "def hessian_x_alpha(x, A, alpha):" in d.numpy()
    import json
    assert run(["hessian", text, "--wrt", "x", "--wrt", "alpha", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["results"]["x_alpha"]["text"] == "2*x"


@pytest.mark.parametrize("target, module", [("jax", "jax"), ("torch", "torch")])
def test_hvp_in_every_target_matches_numpy(target, module):
    from tests.test_targets import need
    lib = need(module)
    d = matcalc.hessian("h = tanh(W1*x); L = norm2(W2*h - y)^2", wrt=["W1", "W2"])
    rng = np.random.default_rng(4)
    args = [_random(s, rng) for s in [(4, 3), 3, (2, 4), 2, (4, 3), (2, 4)]]
    if target == "jax":
        lib.config.update("jax_enable_x64", True)
        conv = lib.numpy.asarray
    else:
        conv = lib.from_numpy
    want = d.function().hvp(*args)
    got = d.function(target).hvp(*[conv(a) for a in args])
    for a, b in zip(got, want):
        assert np.allclose(np.asarray(a), b)


def test_array_api_hvp_runs_on_numpy():
    from tests.test_targets import need
    need("array_api_compat")
    d = matcalc.hessian("sum(log(1 + exp(-y .* (X*w)))) + lambda*norm2(w)^2", wrt=["w"])
    rng = np.random.default_rng(5)
    X, w, y, dw = _random((6, 3), rng), _random(3, rng), np.sign(_random(6, rng)), _random(3, rng)
    want = d.function().hvp(X=X, w=w, y=y, lambda_=0.5, dw=dw)
    got = d.function("array-api").hvp(X=X, w=w, y=y, lambda_=np.asarray(0.5), dw=dw)
    assert np.allclose(got[0], want[0])


# ---------------------------------------------------------------- the optimizer's objective

def _logistic(samples=60, features=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((samples, features))
    return X, np.sign(X @ rng.standard_normal(features) + 0.3 * rng.standard_normal(samples))


def test_objective_fun_jac_hessp_agree_with_finite_differences():
    X, y = _logistic()
    o = matcalc.grad("sum(log(1 + exp(-y .* (X*w)))) + lambda*norm2(w)^2 + norm2(B*b)^2",
                     wrt=["w", "B"], let={"B": "matrix(k, m)", "b": "vector(m)"}) \
        .objective(X=X, y=y, lambda_=0.5, b=np.ones(3), B=np.zeros((2, 3)))
    assert o.x0.shape == (4 + 6,) and set(o.unflatten(o.x0)) == {"w", "B"}
    rng = np.random.default_rng(1)
    theta, p = rng.standard_normal(10), rng.standard_normal(10)
    h = 1e-6
    assert np.isclose(o.jac(theta) @ p, (o.fun(theta + h * p) - o.fun(theta - h * p)) / (2 * h), rtol=1e-6)
    assert np.allclose(o.hessp(theta, p), (o.jac(theta + h * p) - o.jac(theta - h * p)) / (2 * h), atol=1e-5)
    assert np.allclose(o.flatten(o.unflatten(theta)), theta)
    assert o._state_names           # hessp reuses the point's work, computed with the gradient


def test_objective_hessp_matches_the_hessian_module_hvp():
    X, y = _logistic()
    text = "sum(log(1 + exp(-y .* (X*w)))) + lambda*norm2(w)^2"
    o = matcalc.grad(text, wrt="w").objective(X=X, y=y, lambda_=0.5)
    hvp = matcalc.hessian(text, wrt="w").function().hvp
    rng = np.random.default_rng(7)
    for _ in range(3):                 # new points and the same point again: the state follows theta
        theta, p = rng.standard_normal(4), rng.standard_normal(4)
        assert np.allclose(o.hessp(theta, p), hvp(y=y, X=X, w=theta, lambda_=0.5, dw=p)[0])
        assert np.allclose(o.hessp(theta, 2 * p), 2 * hvp(y=y, X=X, w=theta, lambda_=0.5, dw=p)[0])


def test_objective_runs_in_scipy_minimize_with_every_method():
    optimize = pytest.importorskip("scipy.optimize")
    X, y = _logistic()
    o = matcalc.grad("sum(log(1 + exp(-y .* (X*w)))) + lambda*norm2(w)^2", wrt="w").objective(X=X, y=y, lambda_=0.5)
    results = {m: optimize.minimize(o.fun, o.x0, jac=o.jac, hessp=o.hessp if m != "L-BFGS-B" else None,
                                    method=m, tol=1e-10) for m in ("Newton-CG", "trust-ncg", "L-BFGS-B")}
    best = results["Newton-CG"].x
    assert np.linalg.norm(o.jac(best)) < 1e-6
    for r in results.values():
        assert np.allclose(r.x, best, atol=1e-4)
    assert np.allclose(o.minimize("trust-ncg", tol=1e-10).x, best, atol=1e-6)


def test_objective_says_which_data_is_missing():
    from matcalc.errors import UsageError
    d = matcalc.grad("norm2(X*w - y)^2", wrt="w")
    with pytest.raises(UsageError, match="give the data y"):
        d.objective(X=np.ones((3, 2)))
    with pytest.raises(UsageError, match="not an input"):
        d.objective(X=np.ones((3, 2)), y=np.ones(3), z=1.0)


def test_newton_logistic_example_converges():
    pytest.importorskip("scipy.optimize")
    import importlib.util
    spec = importlib.util.spec_from_file_location("newton_logistic", "examples/newton_logistic.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    X, y = example.data(samples=300, features=20)
    w, result, objective = example.fit(X, y)
    assert result.success and np.linalg.norm(objective.jac(result.x)) < 1e-6


def test_a_named_intermediate_as_a_variable():
    d = matcalc.differential("a = W*h; L = sum(tanh(a))", wrt=["a", "W"])
    assert d.check().ok                      # da with a's definition held, and dW through it
    h = matcalc.hessian("a = W*h; L = sum(tanh(a))", wrt=["a", "W"])
    assert set(h.results) == {"a", "W"} and not h.hvp       # blocks and hvp are between inputs
    assert h.check().ok
