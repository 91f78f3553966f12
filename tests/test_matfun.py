"""Matrix functions (issue 16): expm logm sqrtm solve eigvals eigmax eigmin norm_nuc
norm_spec chol pinv adj, through the whole pipeline.

Every derivative is checked against central differences at random points of its
domain (and at near-degenerate but valid points: close, distinct eigenvalues),
through the symbolic result and through the generated module of every target.
The kernels of matfun_kernels.py (which numeric.py and the generated code share)
are checked against eigendecompositions, power series and defining equations,
so that the oracle is not checked only against itself.
"""
from __future__ import annotations

import numpy as np
import pytest

import matcalc
from matcalc import expr as E
from matcalc.errors import UnsupportedError
from matcalc.matfun_kernels import _expm, _frechet_adj, _frechet_jac, _logm, _polar, _sqrtm
from matcalc.numeric import Evaluator, to_user
from matcalc.printing.latex import to_latex
from matcalc.printing.pretty import to_pretty
from tests.test_targets import TO_LIBRARY, call_all, convert, module, need, numpy_inputs

SYM = {"S": "symmetric(n)"}
RNG = np.random.default_rng(16)


def spd(n, rng, eigenvalues=None):
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    w = rng.uniform(0.5, 3.0, n) if eigenvalues is None else np.asarray(eigenvalues, dtype=float)
    return (q * w) @ q.T


def spectral(a, f):
    w, v = np.linalg.eigh(a)
    return (v * f(w)) @ v.T


# ------------------------------------------------------------------ kernels

def test_expm_matches_the_eigendecomposition_and_the_series():
    a = RNG.standard_normal((6, 6))
    s = a + a.T
    np.testing.assert_allclose(_expm(np, s), spectral(s, np.exp), rtol=1e-12)
    np.testing.assert_allclose(_expm(np, 20 * s), spectral(20 * s, np.exp), rtol=1e-11)
    small = 0.01 * a                                # Σ Aᵏ/k!, 12 terms: error below 1e-26
    series, term = np.eye(6), np.eye(6)
    for k in range(1, 12):
        term = term @ small / k
        series = series + term
    np.testing.assert_allclose(_expm(np, small), series, rtol=1e-14, atol=1e-16)
    nilpotent = np.triu(a, 1)                       # exp of a nilpotent matrix: a finite sum
    exact, term = np.eye(6), np.eye(6)
    for k in range(1, 6):
        term = term @ nilpotent / k
        exact = exact + term
    np.testing.assert_allclose(_expm(np, nilpotent), exact, rtol=1e-12, atol=1e-12)


def test_sqrtm_and_logm_solve_their_equations():
    s = spd(5, RNG)
    np.testing.assert_allclose(_sqrtm(np, s), spectral(s, np.sqrt), rtol=1e-12)
    np.testing.assert_allclose(_logm(np, s), spectral(s, np.log), atol=1e-12)
    general = RNG.standard_normal((5, 5)) + 5 * np.eye(5)     # not symmetric, spectrum in Re > 0
    root = _sqrtm(np, general)
    np.testing.assert_allclose(root @ root, general, atol=1e-12)
    np.testing.assert_allclose(_expm(np, _logm(np, general)), general, atol=1e-11)


def test_kernels_turn_invalid_input_into_nan():
    assert np.isnan(_expm(np, np.full((2, 2), np.inf))).all()
    assert np.isnan(_sqrtm(np, np.zeros((2, 2)))).all()


def test_frechet_adjoint_against_differences_and_its_definition():
    """f_adj(Y, G) = L_f(Yᵀ, G): central differences of f at Yᵀ along G, and
    ⟨f_adj(Y, G), E⟩ = ⟨G, L_f(Y, E)⟩ (it is the adjoint)."""
    eps = 1e-6
    for f, y in [(_expm, RNG.standard_normal((4, 4))), (_sqrtm, spd(4, RNG) + 0.3 * RNG.standard_normal((4, 4))),
                 (_logm, spd(4, RNG) + 0.3 * RNG.standard_normal((4, 4)))]:
        g, e = RNG.standard_normal((2, 4, 4))
        fd = (f(np, y.T + eps * g) - f(np, y.T - eps * g)) / (2 * eps)
        np.testing.assert_allclose(_frechet_adj(np, f, y, g), fd, atol=1e-7)
        forward = (f(np, y + eps * e) - f(np, y - eps * e)) / (2 * eps)        # L_f(Y, E)
        assert abs(np.sum(_frechet_adj(np, f, y, g) * e) - np.sum(g * forward)) < 1e-7
        jac = _frechet_jac(np, f, y)
        np.testing.assert_allclose(jac @ g.reshape(-1, order="F"),
                                   _frechet_adj(np, f, y, g).reshape(-1, order="F"), atol=1e-12)


def test_polar_factor():
    w = RNG.standard_normal((5, 3))
    u, s, vt = np.linalg.svd(w, full_matrices=False)
    np.testing.assert_allclose(_polar(np, w), u @ vt, atol=1e-12)
    np.testing.assert_allclose(_polar(np, w.T), vt.T @ u.T, atol=1e-12)


# ------------------------------------------------------------------ closed forms

@pytest.mark.parametrize("text, wrt, let, closed", [
    ("tr(expm(X))", "X", None, "expm(X)'"),
    ("tr(logm(X))", "X", None, "inv(X)'"),
    ("tr(sqrtm(X))", "X", None, "inv(sqrtm(X))'/2"),
    ("eigmax(S)", "S", SYM, "eigvec_max(S)*eigvec_max(S)'"),
    ("eigmin(S)", "S", SYM, "eigvec_min(S)*eigvec_min(S)'"),
    ("norm_nuc(W)", "W", None, "polar(W)"),
    ("b'*solve(A, c)", "c", None, "solve(A', b)"),
    ("sum(expm(X))", "X", None, "expm_adj(X, ones(n, n))"),
])
def test_closed_forms(text, wrt, let, closed):
    d = matcalc.grad(text, wrt=wrt, let=let)
    assert str(d.result) == closed
    assert d.check().ok


# ------------------------------------------------------------------ gradients, every target

GRADIENTS = [
    ("tr(expm(X))", ["X"], None),
    ("sum(expm(A)*B)", ["A", "B"], None),
    ("y'*solve(A, B*x)", ["A", "B", "x"], None),
    ("eigmax(S) - 2*eigmin(S)", ["S"], SYM),
    ("eigmax(A + A')", ["A"], None),
    ("x'*eigvals(S)", ["S", "x"], SYM),
    ("sum(logm(S)*B)", ["S"], SYM),
    ("sum(logm(X)*B)", ["X"], None),
    ("sum(sqrtm(X)*B)", ["X"], None),
    ("tr(sqrtm(W'*W + epsilon*I))", ["W", "epsilon"], None),
    ("norm_nuc(W) + norm_spec(W)", ["W"], {"W": "matrix(m, n)"}),
    ("sum(chol(S)*B)", ["S"], SYM),
    ("2*sum(log(diag(chol(S))))", ["S"], SYM),
    ("sum(pinv(W)*B)", ["W"], {"W": "matrix(m, n)"}),
    ("sum(adj(X)*B)", ["X"], None),
    ("u'*expm_adj(A, X)*v", ["X"], None),
]
IDS = [t for t, *_ in GRADIENTS]


@pytest.mark.parametrize("text, wrt, let", GRADIENTS, ids=IDS)
def test_gradient_against_differences(text, wrt, let):
    d = matcalc.grad(text, wrt=wrt, let=let)
    report = d.check()
    assert report.points > 0 and report.ok, report.message


@pytest.mark.parametrize("target", ["numpy", "jax", "torch", "array-api"])
@pytest.mark.parametrize("text, wrt, let", GRADIENTS, ids=IDS)
def test_generated_gradient_matches_the_symbolic_one(text, wrt, let, target):
    """Each target's value_and_grad against the derivation evaluated by the oracle
    (which test_gradient_against_differences checks against central differences)."""
    d = matcalc.grad(text, wrt=wrt, let=let)
    kwargs = numpy_inputs(d, seed=3)
    if target == "array-api":
        need("array_api_compat")
        to_array, to_numpy = np.asarray, np.asarray
    else:
        to_array, to_numpy = TO_LIBRARY[target]()
    got = call_all(d, module(d, target), convert(kwargs, to_array), target)["value_and_grad"]
    env = {n: np.asarray(kwargs[n], dtype=float).reshape(
        [int(s) for s in np.shape(kwargs[n])] + ([1] if np.ndim(kwargs[n]) == 1 else []) or [1, 1])
        for n in d.program.inputs}
    dims = {}
    for name, sym in d.program.inputs.items():
        for dim, size in zip(sym.shape, env[name].shape):
            if isinstance(dim, str):
                dims[dim] = size
    ev = Evaluator(env, dims=dims)
    want = [d.program.value] + list(d.results.values())
    for g, w in zip(got, want):
        expected = to_user(ev(w), w.shape)
        np.testing.assert_allclose(np.asarray(to_numpy(g), dtype=float), expected, rtol=1e-7, atol=1e-9,
                                   err_msg=f"{target}: {text}")


# ------------------------------------------------------------------ near-degenerate spectra

def _fd_gradient(f, x, eps=1e-6, symmetric=False):
    g = np.zeros_like(x)
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            e = np.zeros_like(x)
            e[i, j] = 1.0
            if symmetric:
                e = (e + e.T) / 2
            g[i, j] = (f(x + eps * e) - f(x - eps * e)) / (2 * eps)
    return g


@pytest.mark.parametrize("text, fn", [
    ("eigmax(S)", lambda s: np.linalg.eigvalsh(s)[-1]),
    ("eigmin(S)", lambda s: np.linalg.eigvalsh(s)[0]),
    ("sum(sqrtm(S) .* B)", None),
    ("sum(logm(S) .* B)", None),
    ("sum(expm(S) .* B)", None),
])
@pytest.mark.parametrize("gap", [1e-2, 1e-4])
def test_close_but_distinct_eigenvalues(text, fn, gap):
    """S with eigenvalues 1, 2, 2 + gap, 3 + gap (the extreme ones simple but their
    neighbours close): the symbolic gradient and the generated NumPy agree with
    central differences (symmetric directions, as S is symmetric)."""
    rng = np.random.default_rng(5)
    top = [1.0, 2.0, 3.0, 3.0 + gap] if "eigmax" in text else [1.0, 1.0 + gap, 2.0, 2.0 + gap]
    s = spd(4, rng, top)
    b = rng.standard_normal((4, 4))
    d = matcalc.grad(text, wrt="S", let={**SYM, "B": "matrix(n, n)"})
    if fn is None:
        f = {"sqrtm": lambda m: np.sum(spectral(m, np.sqrt) * b), "logm": lambda m: np.sum(spectral(m, np.log) * b),
             "expm": lambda m: np.sum(spectral(m, np.exp) * b)}[text.split("(")[1]]
    else:
        f = fn
    want = _fd_gradient(f, s, eps=gap * 1e-4, symmetric=True)   # differences resolve the gap
    env = {"S": s, "B": b}
    got = Evaluator(env, dims={"n": 4})(d.result)
    np.testing.assert_allclose(got, want, atol=1e-6)
    args = {"S": s, "B": b} if "B" in d.program.inputs else {"S": s}
    generated = module(d, "numpy")["grad_S"](**args)
    np.testing.assert_allclose(generated, want, atol=1e-6)


# ------------------------------------------------------------------ Hessians

@pytest.mark.parametrize("text, wrt, let", [
    ("tr(expm(X))", "X", None),
    ("eigmax(S)", "S", SYM),
    ("2*sum(log(diag(chol(X))))", "X", None),      # chol reads ½(X + Xᵀ): logdet of an SPD matrix
    ("y'*solve(A, x)", "x", None),
])
def test_hessians(text, wrt, let):
    d = matcalc.hessian(text, wrt=wrt, let=let)
    report = d.check()
    assert report.points > 0 and report.ok, report.message
    kwargs = numpy_inputs(d, seed=2)
    h = module(d, "numpy")[f"hessian_{wrt}"](**kwargs)
    assert np.all(np.isfinite(h))


# The Hessian by a symmetric S is P H P (P = ½(I + K)): a symmetric matrix, as the check requires.
def test_hessian_by_a_symmetric_variable_through_chol():
    d = matcalc.hessian("2*sum(log(diag(chol(S))))", wrt="S", let=SYM)
    assert d.check().ok


def test_logdet_through_cholesky_is_logdet():
    """2 Σ log diag(chol(S)) = logdet(S): the two gradients agree at random SPD points."""
    d1 = matcalc.grad("2*sum(log(diag(chol(S))))", wrt="S", let=SYM)
    d2 = matcalc.grad("logdet(S)", wrt="S", let=SYM)
    s = spd(5, RNG)
    g1 = Evaluator({"S": s}, dims={"n": 5})(d1.result)
    g2 = Evaluator({"S": s}, dims={"n": 5})(d2.result)
    np.testing.assert_allclose(g1, g2, atol=1e-10)


# ------------------------------------------------------------------ steps, printing, parsing

@pytest.mark.parametrize("text, let, rule", [
    ("tr(expm(X))", None, "Fréchet derivative of expm"),
    ("tr(expm(X))", None, "Fréchet derivative along I"),
    ("sum(expm(X))", None, "adjoint of the Fréchet derivative"),
    ("tr(alpha*sqrtm(X))", None, "Fréchet derivative along I"),
    ("b'*solve(A, c)", None, "derivative of a solve"),
    ("b'*solve(A, c)", None, "adjoint of a solve"),
    ("eigmax(S)", SYM, "eigenvalue perturbation"),
    ("x'*eigvals(S)", SYM, "eigenvalue perturbation"),
    ("norm_nuc(X)", None, "derivative of the nuclear norm"),
    ("norm_spec(X)", None, "derivative of the spectral norm"),
    ("sum(chol(S))", SYM, "Murray's formula"),
    ("sum(chol(S))", SYM, "Φ is self-adjoint"),
    ("sum(pinv(X))", None, "derivative of the pseudo-inverse"),
    ("sum(adj(X))", None, "derivative of the adjugate"),
])
def test_steps_name_the_identity(text, let, rule):
    wrt = "S" if let else ("A" if "solve" in text else "X")
    d = matcalc.grad(text, wrt=wrt, let=let)
    shown = d.pretty(steps=True)
    used = next((s.rule for s in d.steps if s.rule is not None and s.rule.name.startswith(rule)), None)
    if used is None:                # a differential step names its first rule, and "also" the others
        assert rule in shown, shown
    else:
        assert used.name in shown or used.display in shown


@pytest.mark.parametrize("text", [
    "expm(X) + logm(X) + sqrtm(X) + chol(X) + adj(X) + tril_half(X) + polar(X)",
    "eigvals(S) + eigvec_max(S) + eigvec_min(S) + eigvecs(S)*x",
    "eigmax(S) + eigmin(S) + norm_nuc(W) + norm_spec(W)",
    "pinv(W)*solve(A, B)",
    "expm_adj(X, Y) + logm_adj(X', Y) + sqrtm_adj(X, 2*Y)",
    "expm_adj_jac(X)*vec(Y) + logm_adj_jac(X)*vec(Y) + sqrtm_adj_jac(X)*vec(Y)",
])
def test_text_parses_back_and_every_format_prints(text):
    let = {"X": "matrix(n, n)", "Y": "matrix(n, n)"} if "_jac" in text else None   # n*n needs the sizes
    e = matcalc.parse(text, let).value
    assert matcalc.parse(str(e), let).value == e
    assert to_latex(e) and to_pretty(e)


@pytest.mark.parametrize("text, needle", [
    ("solve(A, x, y)", "takes 2 arguments"),
    ("expm(x)", "square"),
    ("eigmax(W*V)", None),
    ("expm_adj(X, x)", "G of Y's shape"),
])
def test_bad_input_is_reported_at_the_text(text, needle):
    if needle is None:              # W*V is square when V is W's shape transposed: fine
        assert matcalc.parse(text).value.shape == (1, 1)
        return
    from matcalc.errors import MatcalcError
    with pytest.raises(MatcalcError) as info:
        matcalc.parse(text)
    assert needle in str(info.value)


def test_second_derivatives_without_a_closed_form_say_so():
    with pytest.raises(UnsupportedError, match="expm_adj"):
        matcalc.hessian("sum(expm(X))", wrt="X")
    with pytest.raises(UnsupportedError, match="polar"):
        matcalc.hessian("norm_nuc(X)", wrt="X")


def test_generated_code_uses_a_solve_and_cholesky_and_states_assumptions():
    d = matcalc.grad("y'*solve(A, x) + 2*sum(log(diag(chol(S))))", wrt=["x", "S"], let=SYM)
    src = d.numpy()
    assert "np.linalg.solve(" in src and "np.linalg.inv(A" not in src
    assert "np.linalg.cholesky(S)" in src            # S is symmetric: no symmetrisation
    d = matcalc.grad("eigmax(A)", wrt="A")
    assert "np.linalg.eigh(0.5 * (A + A.T))" in d.numpy()
    d = matcalc.grad("logdet(Sigma) + logdet(X)", wrt="X", let={"Sigma": "spd(n)"})     # declared SPD: Cholesky
    assert "np.linalg.cholesky(Sigma)" in d.numpy() and "slogdet(X)" in d.numpy()
    assert d.check().ok
    assert "import scipy" not in d.numpy()


# ------------------------------------------------------------------ examples/

EXAMPLES = [("examples/smoothed_nuclear.mc", ["W"]), ("examples/expm_fit.mc", ["A", "tau"]),
            ("examples/lambda_max.mc", ["x1", "x2"]), ("examples/gp_likelihood.mc", ["K", "sigma2"])]


@pytest.mark.parametrize("path, wrt", EXAMPLES, ids=[p for p, _ in EXAMPLES])
def test_examples_check_in_every_target(path, wrt):
    text = open(path, encoding="utf-8").read()
    assert all(f"--wrt {w}" in text for w in wrt), "the example's comment says how to run it"
    d = matcalc.grad(text, wrt=wrt)
    report = d.check()
    assert report.points > 0 and report.ok, report.message
    kwargs = numpy_inputs(d, seed=11)
    want = call_all(d, module(d, "numpy"), kwargs, "numpy")["value_and_grad"]
    for target in ("jax", "torch"):
        to_array, to_numpy = TO_LIBRARY[target]()
        got = call_all(d, module(d, target), convert(kwargs, to_array), target)["value_and_grad"]
        for g, w in zip(got, want):
            np.testing.assert_allclose(np.asarray(to_numpy(g), dtype=float), w, rtol=1e-8, atol=1e-10)


def test_smoothed_nuclear_norm_tends_to_the_nuclear_norm():
    """tr(sqrtm(WᵀW + εI)) → ‖W‖∗ and its gradient W (WᵀW + εI)^(-1/2) → U Vᵀ as ε → 0."""
    d = matcalc.grad(open("examples/smoothed_nuclear.mc", encoding="utf-8").read(), wrt="W")
    w = RNG.standard_normal((6, 4))
    u, s, vt = np.linalg.svd(w, full_matrices=False)
    ns = module(d, "numpy")
    value, grad = ns["value_and_grad"](W=w, epsilon=1e-12)
    assert abs(value - s.sum()) < 1e-5
    np.testing.assert_allclose(grad, u @ vt, atol=1e-5)


def test_gp_likelihood_through_chol_and_solve_is_the_textbook_one():
    """½ yᵀC⁻¹y + Σ log diag(chol C) = ½ yᵀC⁻¹y + ½ logdet C: same gradients."""
    d = matcalc.grad(open("examples/gp_likelihood.mc", encoding="utf-8").read(), wrt=["K", "sigma2"])
    textbook = matcalc.grad("K: symmetric(n)\nsigma2: scalar\nC = K + sigma2*I\nL = y'*inv(C)*y/2 + logdet(C)/2",
                            wrt=["K", "sigma2"])
    k, y = spd(5, RNG), RNG.standard_normal(5)
    got = module(d, "numpy")["value_and_grad"](K=k, y=y, sigma2=0.3)
    want = module(textbook, "numpy")["value_and_grad"](K=k, y=y, sigma2=0.3)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12)
    assert "np.linalg.cholesky(" in d.numpy() and "np.linalg.solve(" in d.numpy()


@pytest.mark.parametrize("text, wrt, let", [
    ("tr(expm(X))", "X", None), ("sum(expm(X) .* B)", "X", None), ("sum(logm(X) .* B)", "X", None),
    ("sum(sqrtm(S) .* B)", "S", SYM), ("b'*solve(A, c)", "A", None), ("eigmax(S) + x'*eigvals(S)", "S", SYM),
    ("norm_nuc(W) + norm_spec(W)", "W", None), ("sum(chol(S) .* B)", "S", SYM), ("sum(pinv(W) .* B')", "W", None),
    ("sum(adj(X) .* B)", "X", None), ("tr(sqrtm(W'*W + epsilon*I))", "W", None),
])
def test_every_step_is_an_equality(text, wrt, let):
    """As tests/test_steps.py does for the Cookbook: every rewrite line equal to the line
    before it, every differential line against central differences, the last line the result."""
    from tests.test_steps import _close, _differential_by_differences, _environment
    d = matcalc.grad(text, wrt=wrt, let=let)
    identify = [s for s in d.steps if s.kind == "identify"]
    assert identify and identify[-1].after == d.result
    env, functions, dims = _environment(d, np.random.default_rng(7))
    for name, sym in d.program.inputs.items():     # dS of a symmetric S is symmetric (the steps use it)
        if sym.symmetric and "d" + name in env:
            env["d" + name] = (env["d" + name] + env["d" + name].T) / 2
    ev = Evaluator(env, functions, dims)
    checked = 0
    for s in d.steps:
        if s.kind in ("rewrite", "collect"):
            _close(ev(s.after), ev(s.before), f"{s.rule.name}: {s.before} =/= {s.after}")
            checked += 1
        elif s.kind == "differential":
            _close(ev(s.after), _differential_by_differences(s, env, functions, dims), f"{s.before} = {s.after}")
            checked += 1
    assert checked >= 2
