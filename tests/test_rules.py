"""Tests that mirror the rule tables, one numeric case per key.

Every key of rules.differentials.DIFFERENTIALS, rules.elementwise.ELEMENTWISE,
rules.adjoints.ADJOINTS and every rule of rules.algebra.RULES has a case here;
the meta-tests fail when a table grows an entry without one.  Every case is
checked numerically (finite differences, or evaluation at random points) with
matcalc.numeric.Evaluator as the oracle.
"""
from __future__ import annotations

import contextlib

import numpy as np
import pytest

import matcalc
from matcalc.printing.numpy_code import HELPERS
from matcalc import expr as E
from matcalc.check import dimension_sizes, opaque_functions, sample_inputs
from matcalc.engine.differential import differential
from matcalc.engine.simplify import simplify
from matcalc.errors import UnsupportedError
from matcalc.expr import Fn
from matcalc.numeric import Evaluator
from matcalc.rules import adjoints as ADJ
from matcalc.rules.adjoints import ADJOINTS
from matcalc.rules.algebra import RULES, AlgebraRule
from matcalc.rules.differentials import DIFFERENTIALS
from matcalc.rules.elementwise import ELEMENTWISE


def table_key(e: E.Expr):
    """The key a node is looked up by in every table."""
    return e.fn if isinstance(e, E.Apply) else type(e)


def key_id(key) -> str:
    return f"Fn.{key.name}" if isinstance(key, Fn) else key.__name__


def keys_in(e: E.Expr) -> set:
    return {table_key(n) for n in E.walk(e)}


def point(program, seed):
    """Random dims, inputs (2-D arrays) and opaque functions for a program."""
    rng = np.random.default_rng(seed)
    dims = dimension_sizes(program, rng)
    env = sample_inputs(program, rng, dims)
    return rng, dims, env, opaque_functions(program)


def evaluate(e, env, functions, dims):
    return Evaluator(env, functions, dims)(e)


# ====================================================================
# DIFFERENTIALS: d f(X)[V] against (f(X + eps V) - f(X - eps V)) / 2 eps
# ====================================================================

KRON_ADJ_LET = {"A": "matrix(2, 3)", "B": "matrix(2, 3)", "G": "matrix(6, 6)"}
DIFF_CASES: dict[object, list[tuple[str, dict | None]]] = {
    E.Add: [("A + B - C", None), ("x + 2", None)],
    E.Transpose: [("A'", None), ("(A*B).T", None)],
    E.Broadcast: [("X + alpha", None), ("log(1 + exp(x))", None)],
    E.Mul: [("A*B*x", None), ("alpha*A*x", None), ("x'*A*y", None), ("x*y'", None)],
    E.Hadamard: [("x .* y .* z", None), ("A ⊙ B", None)],
    E.Kron: [("kron(A, B)", None), ("kron(x, y)", None)],
    E.Frobenius: [("A : B", None), ("(A*B) : C", None)],
    E.Power: [("x .^ 3", None), ("alpha^beta", None), ("X .^ alpha", None), ("x ./ y", None),
              ("A / alpha", None), ("alpha^2", None)],
    E.MatPow: [("X^3", None), ("X^2", None)],
    Fn.TRACE: [("tr(A*B)", None)],
    Fn.DIAG: [("diag(x .* y)", None), ("diag(x)*A", None)],
    Fn.DIAGV: [("diag(A*B)", {"A": "matrix(n, m)", "B": "matrix(m, n)"})],
    Fn.VEC: [("vec(A*B)", None)],
    E.Unvec: [("unvec(v, 2, 3)", {"v": "vector(6)"}), ("unvec(kron(x, y), n, n)*A", None)],
    E.KronAdjLeft: [("kron_adj_left(A, G)", KRON_ADJ_LET), ("kron_adj_left(x, kron(x, A)*B)", None)],
    E.KronAdjRight: [("kron_adj_right(G, B)", KRON_ADJ_LET), ("kron_adj_right(kron(A, x)*B, x)", None)],
    Fn.SUM: [("sum(A .* B)", None), ("sum(x)", None)],
    Fn.INV: [("inv(X)", None), ("X^-1", None), ("X^-2", None)],
    Fn.DET: [("det(X)", None)],
    Fn.LOGDET: [("logdet(X)", None), ("logdet(S)", {"S": "symmetric(n)"})],
    Fn.NORM2: [("norm2(A)", None), ("norm2(x)", None)],
    Fn.NORM1: [("norm1(A)", None)],
    Fn.SOFTMAX: [("softmax(A*x)", None)],
    Fn.LOGSUMEXP: [("logsumexp(x)", None)],
    Fn.SUM_COLS: [("sum(A*B, 1)", None)],
    Fn.SUM_ROWS: [("sum(A .* B, 2)", None)],
    Fn.SOFTMAX_COLS: [("softmax(A*B, 1)", None)],
    Fn.SOFTMAX_ROWS: [("softmax(X, 2)", None)],
    Fn.LOGSUMEXP_COLS: [("logsumexp(A*B, 1)", None)],
    Fn.LOGSUMEXP_ROWS: [("logsumexp(X, 2)", None)],
    E.Call: [("f(A*x)", {"f": "function"}), ("f(alpha)", {"f": "function"})],
    # matrix functions (issue 16); near-degenerate spectra are in tests/test_matfun.py
    Fn.EXPM: [("expm(X)", None), ("expm(alpha*A)", None)],
    Fn.LOGM: [("logm(S)", {"S": "symmetric(n)"}), ("logm(X)", None)],
    Fn.SQRTM: [("sqrtm(S)", {"S": "symmetric(n)"}), ("sqrtm(X)", None)],
    E.Solve: [("solve(A, B)", None), ("solve(A, x)", None)],
    Fn.EIGVALS: [("eigvals(S)", {"S": "symmetric(n)"}), ("eigvals(A)", None)],
    Fn.EIGMAX: [("eigmax(S)", {"S": "symmetric(n)"}), ("eigmax(A)", None)],
    Fn.EIGMIN: [("eigmin(S)", {"S": "symmetric(n)"})],
    Fn.EIGVEC_MAX: [("eigvec_max(S)", {"S": "symmetric(n)"})],
    Fn.EIGVEC_MIN: [("eigvec_min(A)", None)],
    Fn.NORM_NUC: [("norm_nuc(A)", {"A": "matrix(m, n)"})],
    Fn.NORM_SPEC: [("norm_spec(A)", {"A": "matrix(m, n)"})],
    Fn.CHOL: [("chol(S)", {"S": "symmetric(n)"}), ("chol(X)", None)],
    Fn.PINV: [("pinv(A)", {"A": "matrix(m, n)"}), ("pinv(X)", None)],
    Fn.ADJ: [("adj(X)", None)],
    Fn.TRIL_HALF: [("tril_half(A*X)", {"X": "matrix(n, n)", "A": "matrix(n, n)"})],
}
# Every elementwise function, on a matrix and on a scalar.
for _fn in ELEMENTWISE:
    DIFF_CASES[_fn] = [(f"{_fn.text}(X)", None), (f"{_fn.text}(alpha)", None)]

# Entries that intentionally raise UnsupportedError: key -> (text, let, words in the message).
DIFF_UNSUPPORTED = {
    E.GradCall: ("sum(grad_f(x))", {"f": "function"}, ["grad_f", "not available"]),
    E.FrechetAdj: ("expm_adj(X, Y)", None, ["expm_adj", "not available"]),   # in G it is linear: test_matfun.py
    E.FrechetJac: ("expm_adj_jac(X)", None, ["expm_adj_jac", "not available"]),
    Fn.EIGVECS: ("eigvecs(S)", {"S": "symmetric(n)"}, ["eigvecs", "not available"]),
    Fn.POLAR: ("polar(X)", None, ["polar", "not available"]),
}

DIFF_PARAMS = [pytest.param(key, text, let, id=f"{key_id(key)}:{text}")
               for key, cases in DIFF_CASES.items() for text, let in cases]


def test_every_differential_has_a_case():
    missing = set(DIFFERENTIALS) - set(DIFF_CASES) - set(DIFF_UNSUPPORTED)
    assert not missing, f"DIFFERENTIALS entries without a test case: {sorted(map(key_id, missing))}"


def test_no_stale_differential_cases():
    assert set(DIFF_CASES) | set(DIFF_UNSUPPORTED) <= set(DIFFERENTIALS)


@pytest.mark.parametrize("key, text, let", DIFF_PARAMS)
def test_differential_numerically(key, text, let):
    program = matcalc.parse(text, let)
    e = program.value
    assert key in keys_in(e), f"{text} does not exercise {key_id(key)}"
    active = set(program.inputs)
    d = differential(e, active)
    assert d is not None
    assert d.shape == e.shape
    for seed in range(2):
        rng, dims, env, functions = point(program, seed)
        directions = {}
        for name, sym in program.inputs.items():
            v = rng.standard_normal(env[name].shape)
            if sym.symmetric:
                v = (v + v.T) / 2
            directions[name] = v
        eps = 1e-6
        plus = {n: env[n] + eps * directions[n] for n in env}
        minus = {n: env[n] - eps * directions[n] for n in env}
        numeric = (evaluate(e, plus, functions, dims) - evaluate(e, minus, functions, dims)) / (2 * eps)
        denv = dict(env)
        denv.update({"d" + n: v for n, v in directions.items()})
        analytic = evaluate(d, denv, functions, dims)
        assert analytic.shape == numeric.shape
        scale = max(1.0, float(np.max(np.abs(numeric))))
        assert np.all(np.isfinite(analytic)), (text, analytic)
        assert np.max(np.abs(analytic - numeric)) / scale < 1e-6, (text, str(d), analytic, numeric)


def test_differential_only_of_active_symbols():
    program = matcalc.parse("x'*A*y")
    d = differential(program.value, {"x"})
    assert {n.target.name for n in E.walk(d) if isinstance(n, E.Differential)} == {"x"}
    assert differential(program.value, {"z"}) is None


@pytest.mark.parametrize("key", list(DIFF_UNSUPPORTED), ids=key_id)
def test_unsupported_differential_raises(key):
    text, let, words = DIFF_UNSUPPORTED[key]
    program = matcalc.parse(text, let)
    assert key in keys_in(program.value)
    with pytest.raises(UnsupportedError) as info:
        differential(program.value, set(program.inputs))
    for w in words:
        assert w in str(info.value)
    if key is not E.GradCall:
        return
    # the same through the public API
    with pytest.raises(UnsupportedError, match="grad_f"):
        matcalc.grad("f: function\nL = " + text, wrt="x")


# ====================================================================
# ELEMENTWISE: the table's derivative, and full gradients through grad()
# ====================================================================

EW = [pytest.param(fn, id=fn.text) for fn in ELEMENTWISE]
DOMAIN_POINTS = {"real": (-2.0, 2.0), "positive": (0.5, 2.0), "bounded": (-0.8, 0.8)}


def test_elementwise_table_covers_every_elementwise_fn():
    assert set(ELEMENTWISE) == {fn for fn in Fn if fn.elementwise}
    for fn, entry in ELEMENTWISE.items():
        assert entry.fn is fn
        assert entry.domain in DOMAIN_POINTS
        assert "{x}" in entry.code and "{x}" in entry.latex


@pytest.mark.parametrize("fn", EW)
def test_elementwise_derivative_formula(fn):
    """f'(x) from the table against central differences of the table's evaluate."""
    entry = ELEMENTWISE[fn]
    rng = np.random.default_rng(1)
    lo, hi = DOMAIN_POINTS[entry.domain]
    x = rng.uniform(lo, hi, (5, 1))
    x = np.where(np.abs(x) < 0.05, 0.3, x)          # keep away from kinks at 0
    sym = E.Symbol("x", ("n", 1), "vector")
    fx = E.apply(fn, sym)
    fprime = entry.derivative(sym, fx)
    analytic = Evaluator({"x": x}, dims={"n": 5})(fprime)
    h = 1e-6
    numeric = (entry.evaluate(x + h) - entry.evaluate(x - h)) / (2 * h)
    np.testing.assert_allclose(np.broadcast_to(analytic, x.shape), numeric, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("fn", EW)
def test_elementwise_numpy_code_matches_evaluate(fn):
    entry = ELEMENTWISE[fn]
    x = np.random.default_rng(2).uniform(*DOMAIN_POINTS[entry.domain], (4, 3))
    namespace = {"np": np, "x": x}
    for _, helper in HELPERS.values():      # generated modules define _sigmoid & co. themselves
        exec(helper, namespace)
    got = eval(entry.code.format(x="x"), namespace)
    np.testing.assert_allclose(got, entry.evaluate(x), rtol=1e-12)


@pytest.mark.parametrize("fn, template, wrt", [
    pytest.param(fn, template, wrt, id=f"{template.format(f=fn.text)}")
    for fn in ELEMENTWISE
    for template, wrt in [("sum({f}(X))", "X"), ("{f}(alpha)", "alpha"), ("sum({f}(A*x))", "x")]])
def test_elementwise_gradient_checks(fn, template, wrt):
    d = matcalc.grad(template.format(f=fn.text), wrt=wrt)
    report = d.check()
    assert report.points > 0, report.message
    assert report.ok, report.message
    assert d.result.shape == d.program.inputs[wrt].shape


KRON_LET = {"A": "matrix(n, n)", "B": "matrix(m, m)"}

# ====================================================================
# ADJOINTS: a scalar expression through each linear operation, d.check()
# ====================================================================

MUL_RULES = {ADJ.LEFT, ADJ.RIGHT, ADJ.BOTH, ADJ.SCALE, ADJ.SCALAR_FACTOR}

ADJ_CASES: dict[object, list[tuple[str, dict | None, list[str]]]] = {
    E.Mul: [("x'*A*B*y", None, ["x", "A", "B", "y"]), ("sum(alpha*A)", None, ["alpha", "A"]),
            ("alpha*beta", None, ["alpha"]), ("u'*(alpha*A)*v", None, ["alpha"])],
    E.Add: [("sum(A*x + B*x)", None, ["x", "A"])],
    E.Transpose: [("tr(A'*B)", None, ["A", "B"]), ("x'*A'*y", None, ["A", "x"])],
    E.Hadamard: [("sum(A .* B .* C)", None, ["B"]), ("x'*(y .* z)", None, ["x", "y"])],
    E.Frobenius: [("A : (B*C)", None, ["A", "B", "C"])],
    E.Broadcast: [("sum(exp(alpha + X))", None, ["alpha", "X"])],
    Fn.TRACE: [("tr(A*X*B)", {"X": "matrix(m, m)"}, ["X"])],
    Fn.DIAG: [("y'*diag(x)*z", None, ["x"]), ("sum(diag(x)*A)", None, ["x"]), ("tr(diag(x)*A)", None, ["x"])],
    Fn.DIAGV: [("x'*diag(A*B)", {"A": "matrix(n, m)", "B": "matrix(m, n)"}, ["A", "B"])],
    Fn.SUM: [("sum(A*B)", None, ["A"]), ("sum(x .* y)", None, ["x"])],
    Fn.SUM_COLS: [("sum(A*B, 1)*x", None, ["A", "B"])],
    Fn.SUM_ROWS: [("y'*sum(A .* B, 2)", None, ["A"])],
    Fn.VEC: [("sum(vec(A))", None, ["A"]), ("y'*vec(A*B)", None, ["A", "B"]),
             ("norm2(kron(A, B)*vec(X) - y)^2", KRON_LET, ["X", "A"]), ("vec(x)'*y", None, ["x"])],
    E.Unvec: [("sum(unvec(v, 2, 3)*A)", {"v": "vector(6)"}, ["v"]),
              ("tr(unvec(vec(X), n, n)*A)", None, ["X"])],
    E.Kron: [("sum(kron(A, B))", KRON_LET, ["A", "B"]), ("x'*kron(A, B)*y", KRON_LET, ["A", "B", "x"]),
             ("logdet(kron(A, B))", KRON_LET, ["A", "B"]), ("sum(kron(c, w).^2)", None, ["w", "c"]),
             ("sum(exp(kron(A, B)) .* C)", KRON_LET, ["A", "B"]), ("tr(kron(X, X))", None, ["X"])],
    E.KronAdjLeft: [("sum(exp(kron_adj_left(A, G)))", KRON_ADJ_LET, ["A", "G"])],
    E.KronAdjRight: [("sum(exp(kron_adj_right(G, B)))", KRON_ADJ_LET, ["B", "G"])],
    E.Solve: [("b'*solve(A, C*x)", None, ["A", "C", "x", "b"])],
    Fn.TRIL_HALF: [("sum(tril_half(X)*A)", None, ["X", "A"])],
    E.FrechetAdj: [("sum(expm(X))", None, ["X"]), ("sum(logm(X)*A)", None, ["X"]),
                   ("y'*sqrtm(S)*z", {"S": "symmetric(n)"}, ["S"]), ("sum(expm_adj(A, X))", None, ["X"])],
}


def test_every_adjoint_has_a_case():
    missing = set(ADJOINTS) - set(ADJ_CASES)
    assert not missing, f"ADJOINTS entries without a test case: {sorted(map(key_id, missing))}"
    assert set(ADJ_CASES) <= set(ADJOINTS)


@pytest.mark.parametrize("key, text, let, wrt", [
    pytest.param(k, t, l, w, id=f"{key_id(k)}:{t}") for k, cases in ADJ_CASES.items() for t, l, w in cases])
def test_adjoint_gradient_checks(key, text, let, wrt):
    d = matcalc.grad(text, wrt=wrt, let=let)
    report = d.check()
    assert report.points > 0 and report.ok, report.message
    for name in wrt:
        assert d.results[name].shape == d.program.inputs[name].shape


def _adjoint_rules_used(text, let, wrt) -> set:
    return {s.rule for s in matcalc.grad(text, wrt=wrt, let=let).steps}


@pytest.mark.parametrize("key", list(ADJ_CASES), ids=key_id)
def test_adjoint_cases_reach_their_entry(key):
    """At least one case of each key goes through that adjoint in the Frobenius walk."""
    expected = MUL_RULES if key is E.Mul else {ADJOINTS[key].rule}
    used = set().union(*(_adjoint_rules_used(t, l, w) for t, l, w in ADJ_CASES[key]))
    assert used & expected, f"no case of {key_id(key)} reaches its adjoint; rules used: {used}"


def test_vec_and_kron_not_of_the_variable_are_fine():
    """vec/kron of constants differentiate without their adjoints."""
    d = matcalc.grad("x'*kron(A, B)*x", wrt="x", let=KRON_LET)
    assert d.check().ok
    d = matcalc.grad("vec(A)'*vec(A)*alpha^2", wrt="alpha")
    assert d.check().ok


def test_kron_times_undeclared_vector_infers_the_product_dimension():
    program = matcalc.parse("sum(kron(A, B)*y)")
    A, B, y = (program.inputs[n] for n in "ABy")
    assert y.shape[0] == E.kron(A, B).shape[1]


def test_check_detects_a_wrong_gradient():
    """The oracle used by every test above can fail."""
    d = matcalc.grad("x'*A*x", wrt="x")
    d.results["x"] = matcalc.parse("A*x", {"A": "matrix(n, n)"}).value     # forgot A'*x
    report = d.check()
    assert not report.ok and report.worst_error > 1e-3


# ====================================================================
# algebra.RULES: simplify(e) equals e numerically, and each rule fires
# ====================================================================

# key -> list of (text, let, name of the rule that must fire somewhere)
ALG_CASES: dict[object, list[tuple[str, dict | None, str]]] = {
    E.Transpose: [("(x'*y)'*A", None, "transpose of a scalar"),
                  ("(A*B)'", None, "transpose pushed to the leaves"),
                  ("A''", None, "transpose pushed to the leaves"),
                  ("(A + B*C)'", None, "transpose pushed to the leaves"),
                  ("(A .* B)'", None, "transpose pushed to the leaves"),
                  ("exp(A)'", None, "transpose pushed to the leaves"),
                  ("(A .^ 2)'", None, "transpose pushed to the leaves"),
                  ("kron(A, B)'", None, "transpose pushed to the leaves"),
                  ("S' + A", {"S": "symmetric(n)"}, "transpose pushed to the leaves"),
                  ("inv(S)' + A", {"S": "symmetric(n)"}, "transpose pushed to the leaves"),
                  ("inv(A')'", None, "transpose pushed to the leaves"),
                  ("inv(A*A')' - B", None, "transpose pushed to the leaves")],
    E.Mul: [("A*(0*B) + C", None, "zero factor"),
            ("A*I*B", None, "identity factor"),
            ("A*(alpha*B)", None, "scalars commute"),
            ("x'*A*(beta*y)*alpha", None, "scalars commute"),
            ("X*inv(X)*A", None, "products"),
            ("A*X*X*B", None, "products"),
            ("diag(v)*x", None, "products"),
            ("x'*diag(v)*A", None, "products"),
            ("x*(beta/beta)", None, "scalars commute"),
            ("exp(alpha)/(1 + exp(alpha))*sigmoid(alpha)^3*x", None, "scalars commute"),
            ("(y'*x)*A + (x'*y)*A", None, "inner products commute"),
            ("X*inv(X)^3*X*A", None, "products"),
            ("X'*inv(X^3)'*X' + A", None, "products"),
            ("diag(x)*diag(y)*A", None, "products"),
            ("vec(B)'*kron(C, A)", None, "Kronecker and vec products"),
            ("kron(A, B)*vec(C)", None, "Kronecker and vec products"),
            ("kron(A, B)*kron(C, D)", None, "Kronecker and vec products"),
            ("sin((alpha*(1 - beta)^-1 - beta)*(1 - beta))", None, "cancel and collect"),
            ("A'*inv(A*X*B)'*B'", {"A": "matrix(n, n)", "X": "matrix(n, n)", "B": "matrix(n, n)"},
             "inverse of a product"),
            ("X*inv(X'*A*X)*C", {"X": "matrix(n, n)", "A": "matrix(n, n)"}, "inverse of a product"),
            ("abs(alpha)^-1*sign(alpha)*alpha*x", None, "scalars commute"),
            ("x'*x.^-1*A", None, "inner product with the reciprocal"),
            ("(x.^-1)'*x + alpha", None, "inner product with the reciprocal"),
            ("A*softmax(x)*softmax(x)'*ones(n)", None, "a softmax sums to one"),
            ("ones(n)'*softmax(x) + alpha", None, "a softmax sums to one"),
            ("softmax(X, 2)*ones(m)", {"X": "matrix(n, m)"}, "a softmax sums to one"),
            ("ones(n)'*softmax(X, 1)*y", {"X": "matrix(n, m)"}, "a softmax sums to one")],
    E.Add: [("A + 0*B", None, "zero term"),
            ("A + 2*A - 0.5*A", None, "like terms"),
            ("A*x + B*x", None, "common factor"),
            ("x'*A + x'*B", None, "common factor"),
            ("x/alpha - A*y/alpha", None, "common scalar factor"),
            ("sigmoid(x)/n - y/n", {"n": "scalar"}, "common scalar factor"),
            ("B + A", None, "terms in order"),
            ("x - y + 3*x", None, "like terms"),
            ("diag(x) + 2*diag(y) - alpha*diag(z) + A", None, "sum of diagonals"),
            ("x .* (1 - y) + x .* y", None, "cancel and collect"),
            ("G .* P - (G .* P)*ones(m, m) .* P", {"P": "matrix(n, m)"}, "common elementwise factor"),
            ("2*(A .* B .* C) - 3*(C .* A) + A", None, "common elementwise factor"),
            ("((1 - y).^-1 .* (1 - t) - t ./ y) .* (1 - y) .* y", None, "cancel and collect")],
    E.Hadamard: [("x .* x", None, "Hadamard normal form"),
                 ("(2*x) .* y", None, "Hadamard normal form"),
                 ("y .* x .* x.^2", None, "Hadamard normal form"),
                 ("x .* ones", None, "Hadamard normal form"),
                 ("x ./ x .* y", None, "Hadamard normal form"),
                 # exp(z)/(1 + exp(z)) = sigmoid(z) joins sigmoid(z)^k as sigmoid(z)^(k+1) (it was ^2 for any k)
                 ("exp(x) ./ (1 + exp(x)) .* sigmoid(x).^3", None, "Hadamard normal form"),
                 ("exp(x) ./ (1 + exp(x)) ./ sigmoid(x) + y", None, "Hadamard normal form"),
                 ("log(1 + exp(x)) ./ sigmoid(x) .* exp(x) ./ (1 + exp(x))", None, "Hadamard normal form"),
                 ("(x.^-1 .* t + y) .* x", None, "cancel and collect")],
    E.Power: [("x .^ 1", None, "powers"),
              ("(x .^ 2) .^ 3", None, "powers"),
              ("x .^ 0 + y", None, "powers"),
              ("(alpha^2)^-1", None, "powers"),
              ("((W*H).^-1 .* X).^-1 .* (W*H).^-2 .* X.^2", None, "cancel and collect")],
    E.Frobenius: [("x : y", None, "Frobenius of vectors"),
                  ("(A*x) : y + alpha", None, "Frobenius of vectors"),
                  ("alpha + (inv(X)' : X)", None, "Frobenius of an inverse"),
                  ("alpha + (X : inv(X'))", {"X": "matrix(3, 3)"}, "Frobenius of an inverse")],
    E.Broadcast: [("x + 0", None, "zero broadcast")],
    Fn.SOFTMAX: [("softmax(x) + alpha", {"x": "vector(1)"}, "softmax of one entry")],
    Fn.LOGSUMEXP: [("logsumexp(x) * alpha", {"x": "vector(1)"}, "logsumexp of one entry")],
    Fn.TRACE: [("tr(A')", None, "trace"),
               ("tr(A + B)", None, "trace"),
               ("tr(2*A)", None, "trace"),
               ("tr(alpha*A*B)", None, "trace"),
               ("tr(x*y')", None, "trace"),
               ("tr(x*y'*B)", None, "trace")],
    Fn.INV: [("inv(inv(X))", None, "inverse"),
             ("inv(I)*A", None, "inverse"),
             ("inv(x'*x)*y", None, "inverse of a scalar"),
             ("inv(X^3)*A", None, "inverse of a power"),
             ("inv(kron(A, B))", None, "inverse of a Kronecker product")],
    Fn.DET: [("det(x'*A*x)", None, "determinant of a scalar"),
             ("det(X^3)", None, "determinant of a power"), ("det(inv(X))*det(X')", None, "determinant of a power")],
    Fn.LOG: [("sum(log(1 + exp(x)))", None, "softplus"), ("log(exp(alpha) + 1)", None, "softplus"),
             ("log(sigmoid(x)) + log(1 - sigmoid(y))", None, "log of a sigmoid"),
             ("log(softmax(x))", None, "log-softmax"),
             ("x + log(0*x + 2)", None, "function of a constant")],
    **{fn: [(f"x + {fn.text}(0*x)", None, "function of a constant")]
       for fn in ELEMENTWISE if fn is not Fn.LOG},
    Fn.ABS: [("x + abs(0*x)", None, "function of a constant"),
             ("abs(x) + y", {"x": "positive vector(n)"}, "nonnegative argument"),
             ("abs(exp(x) .* y) + x", {"y": "positive vector(n)"}, "nonnegative argument")],
    Fn.SQRT: [("x + sqrt(0*x)", None, "function of a constant"),
              ("sqrt(x.^2) + y", {"x": "positive vector(n)"}, "nonnegative argument"),
              ("sqrt(alpha^2)*A", {"alpha": "positive scalar"}, "nonnegative argument")],
    # I ⊗ I = I is exercised by the Hessian of norm2(X)^2 in test_jacobian.py (2*I)
    E.Kron: [("kron(alpha, A)", None, "Kronecker identities"), ("kron(A, beta)", None, "Kronecker identities"),
             ("kron(2*A, -B)", None, "scalars leave a Kronecker product")],
    Fn.LOGDET: [("logdet(x'*x + 1)", None, "log det of a scalar")],
    Fn.DIAGV: [("diag(diag(x))", None, "diag"), ("diag(x*y')", None, "diag"), ("diag(I) .* x", None, "diag"),
               ("diag(2*x*y'*alpha)", None, "diag")],
    Fn.DIAG: [("diag(ones + 0*x)*A", None, "diag of a constant"), ("diag(0*x + 2)*A", None, "diag of a constant")],
    E.Unvec: [("unvec(vec(A), n, n)", None, "unvec"), ("unvec(2*x + 0*x, n, m)", None, "unvec"),
              ("unvec(kron(A, B)*x, m, n)", {"A": "matrix(n, p)", "B": "matrix(m, q)"}, "unvec"),
              ("unvec(x + 1, n, m)", None, "unvec")],
    Fn.VEC: [("vec(unvec(v, 2, 3))", {"v": "vector(6)"}, "vec"), ("vec(x + 1)'*vec(y')", None, "vec")],
    E.KronAdjLeft: [("kron_adj_left(A, kron(B, C))", {"B": "matrix(n, m)", "A": "matrix(n, m)"}, "Kronecker adjoint"),
                    ("kron_adj_left(A, 2*G + 0*G)", KRON_ADJ_LET, "Kronecker adjoint"),
                    ("kron_adj_left(A, ones*ones' + 0*G)", KRON_ADJ_LET, "Kronecker adjoint"),
                    ("kron_adj_left(A, I(6))", {"A": "matrix(2, 2)"}, "Kronecker adjoint")],
    E.KronAdjRight: [("kron_adj_right(kron(C, B), A)", {"B": "matrix(n, m)", "A": "matrix(n, m)"}, "Kronecker adjoint"),
                     ("kron_adj_right(G - 3*G, B)", KRON_ADJ_LET, "Kronecker adjoint")],
    Fn.SUM: [("sum(alpha)", None, "sum of a scalar"), ("sum(x'*y)", None, "sum of a scalar"),
             ("sum(alpha*A*x)", None, "sum of a multiple"), ("sum(0*x + 2)", None, "sum of a multiple")],
    Fn.SUM_ROWS: [("sum(-2*(G .* P), 2)", None, "sum of a multiple"), ("sum(0*X + 3, 2)", None, "sum of a multiple")],
    Fn.SUM_COLS: [("sum(alpha*X*Y, 1)", None, "sum of a multiple")],
    Fn.NORM1: [("norm1(alpha - 3)", None, "norm of a scalar")],
    Fn.NORM2: [("norm2(x'*y)", None, "norm of a scalar"), ("norm2(0)^2 + alpha", None, "norm of a scalar")],
    E.FrechetAdj: [("expm_adj(X, I)", None, "Fréchet derivative along I"),
                   ("logm_adj(X, 2*I)", None, "Fréchet derivative along I"),
                   ("sqrtm_adj(X, I)", None, "Fréchet derivative along I")],
}


@contextlib.contextmanager
def recording_rules():
    """Wrap every algebra rule so that the names of those that rewrite are recorded."""
    fired: list[str] = []
    saved = {k: list(v) for k, v in RULES.items()}

    def wrap(entry):
        def apply(e, ctx):
            new = entry.apply(e, ctx)
            if new is not None and new != e:
                fired.append(entry.rule.name)
            return new
        return AlgebraRule(entry.rule, apply)

    try:
        for k, entries in RULES.items():
            entries[:] = [wrap(x) for x in entries]
        yield fired
    finally:
        for k, entries in saved.items():
            RULES[k][:] = entries


def test_every_algebra_rule_has_a_case():
    missing = set(RULES) - set(ALG_CASES)
    assert not missing, f"algebra.RULES keys without a case: {sorted(map(key_id, missing))}"
    assert set(ALG_CASES) <= set(RULES)
    for key, entries in RULES.items():
        covered = {name for _, _, name in ALG_CASES[key]}
        for entry in entries:
            assert entry.rule.name in covered, f"rule {entry.rule.name!r} of {key_id(key)} has no case"


def assert_valid_ir(e: E.Expr) -> None:
    """Every node well formed: n-ary nodes have two or more operands, and
    rebuilding a node through the smart constructors keeps its shape."""
    for n in E.walk(e):
        if isinstance(n, (E.Mul, E.Hadamard)):
            assert len(n.factors) >= 2, f"{type(n).__name__} with {len(n.factors)} factors"
        if isinstance(n, E.Add):
            assert len(n.terms) >= 2, f"Add with {len(n.terms)} terms"
        if n.children():
            assert n.with_children(n.children()).shape == n.shape, f"{n}: shape does not re-derive"


@pytest.mark.parametrize("key, text, let, rule", [
    pytest.param(k, t, l, r, id=f"{key_id(k)}:{t}") for k, cases in ALG_CASES.items() for t, l, r in cases])
def test_simplify_preserves_value(key, text, let, rule):
    program = matcalc.parse(text, let)
    e = program.value
    with recording_rules() as fired:
        s = simplify(e)
    assert rule in fired, f"{text}: rule {rule!r} never fired (fired: {fired})"
    assert s.shape == e.shape
    assert_valid_ir(s)
    assert simplify(s) == s, "simplify is not idempotent"
    for seed in range(3):
        _, dims, env, functions = point(program, seed)
        want = evaluate(e, env, functions, dims)
        got = evaluate(s, env, functions, dims)
        np.testing.assert_allclose(np.broadcast_to(got, want.shape), want, rtol=1e-9, atol=1e-9,
                                   err_msg=f"{text} simplified to {s}")


@pytest.mark.parametrize("text", ["beta/beta", "alpha + beta/beta", "tanh(beta/beta)"])
def test_simplify_cancelling_scalar_quotient(text):
    program = matcalc.parse(text)
    e = program.value
    s = simplify(e)
    assert_valid_ir(s)
    _, dims, env, functions = point(program, 0)
    np.testing.assert_allclose(evaluate(s, env, functions, dims), evaluate(e, env, functions, dims))
    str(s)


@pytest.mark.parametrize("text, wrt, printed", [
    ("x'*A*x", "x", "(A + A')*x"),
    ("tr(W*h*h'*W')", "W", "2*W*h*h'"),
    ("logdet(X)", "X", "inv(X)'"),
    ("x'*x", "x", "2*x"),
    ("sum(A*x)", "x", "A'*ones(n)"),
    ("tr(A*X*B)", "X", "A'*B'"),
    ("x'*S*x", "x", "2*S*x"),
])
def test_printed_simplified_gradient(text, wrt, printed):
    let = {"S": "symmetric(n)"} if "S" in text else ({"X": "matrix(n, n)"} if text == "logdet(X)" else None)
    d = matcalc.grad(text, wrt=wrt, let=let)
    assert str(d.result) == printed
    assert d.check().ok


def test_simplify_orders_commutative_terms_canonically():
    a = simplify(matcalc.parse("A + B + C", {"A": "matrix(n,n)", "B": "matrix(n,n)", "C": "matrix(n,n)"}).value)
    b = simplify(matcalc.parse("C + A + B", {"A": "matrix(n,n)", "B": "matrix(n,n)", "C": "matrix(n,n)"}).value)
    assert a == b
    h1 = simplify(matcalc.parse("x .* y .* z").value)
    h2 = simplify(matcalc.parse("z .* x .* y").value)
    assert h1 == h2


def test_trace_of_a_scalar():
    d = matcalc.grad("tr(x'*A*x)", wrt="x")
    assert str(d.result) == "(A + A')*x"
    assert d.check().ok


@pytest.mark.parametrize("text, expected", [
    ("exp(x) .* sigmoid(y)", True), ("1 - sigmoid(x)", True), ("1 - tanh(x).^2", True),
    ("x.^2 + softplus(y)", True), ("relu(x) .* abs(y)", True), ("(1 - sigmoid(x)) .* sigmoid(x) .* y.^2", True),
    ("x", False), ("1 - x", False), ("1 - tanh(x)", False), ("x.^3", False), ("sin(x)", False),
    ("2 - sigmoid(x) .* 3", False),
])
def test_nonnegative_predicate_is_sound(text, expected):
    """is_nonnegative (used for Xᵀ diag(v) X = ZᵀZ) claims v >= 0 only where it is,
    checked at many random points, including large ones."""
    from matcalc.rules.algebra import is_nonnegative
    from matcalc.numeric import Evaluator
    from matcalc.engine.simplify import Simplifier
    program = matcalc.parse(text, {"x": "vector(5)", "y": "vector(5)"})
    e = Simplifier()(program.output)
    assert is_nonnegative(e) == expected, str(e)
    rng = np.random.default_rng(0)
    for scale in (1.0, 30.0):
        env = {"x": scale * rng.standard_normal((5, 1)), "y": scale * rng.standard_normal((5, 1))}
        value = Evaluator(env, dims={})(e)
        if expected:
            assert np.all(value >= 0), (text, value)


def test_zero_to_a_positive_power_is_zero():
    from matcalc.engine.simplify import Simplifier
    from matcalc import expr as E
    z = E.zero((3, 1))
    assert Simplifier()(E.power(z, E.const(2))) == z
    assert Simplifier()(E.power(z, E.const(-1))) != z          # 0^-1 is not 0
    assert str(E.power(z, E.const(2))) == "(0*ones(3)).^2"


@pytest.mark.parametrize("text, folded", [
    ("exp(0) + x", "1 + x"), ("log(1)*x + x", "x"), ("abs(-1/2)*x", "x/2"), ("relu(-3) + x", "x"),
    ("sign(-2)*x", "-x"), ("step(0)*x + x", "x"), ("norm2(0)^2 + x", "x"), ("tanh(0) + cos(0)*x", "x"),
    ("exp(2)*x", "exp(2)*x"), ("log(2)*x", "log(2)*x"),
])
def test_functions_of_scalar_constants_fold_where_exact(text, folded):
    """f(c) folds where its value is exact (an integer, or abs/sign/step/relu of a
    rational); exp(2) stays as written.  Found by fuzzing the torch and array API
    targets: norm2(0)^2 reached the code as a reduction of a Python float."""
    from matcalc.engine.simplify import Simplifier
    let = {"x": "scalar"}
    e = Simplifier()(matcalc.parse(text, let).value)
    assert str(e) == folded
    from matcalc.numeric import Evaluator
    env = {"x": np.array([[0.7]])}
    assert np.allclose(Evaluator(env, dims={})(e), Evaluator(env, dims={})(matcalc.parse(text, let).value))
