"""SymPy interop (matcalc.from_sympy, matcalc.to_sympy, Derivation.to_sympy), numerically.

Every conversion rule has a case, evaluated both ways at random points:
matcalc's side with matcalc.numeric.Evaluator, SymPy's with
matcalc.interop.sympy_numeric (itself checked against SymPy's own explicit
evaluation below).  Meta-tests fail when a rule is added without a case.
"""
from __future__ import annotations

import ast
import subprocess
import sys

import numpy as np
import pytest
import sympy as sp
from hypothesis import event, given, reject, settings
from hypothesis import strategies as st
from sympy.matrices.expressions.diagonal import DiagMatrix, DiagonalOf

import matcalc
from matcalc import expr as E
from matcalc.errors import NameError_, UnsupportedError
from matcalc.interop import sympy_bridge as bridge
from matcalc.interop.sympy_numeric import EVALUATE, Unevaluable, evaluate
from matcalc.numeric import Evaluator, run_program

from .test_cookbook import ROWS, XFAIL

n, m = sp.symbols("n m")
X, Y, A, B = (sp.MatrixSymbol(s, n, n) for s in "XYAB")
C = sp.MatrixSymbol("C", n, m)
x, a = sp.MatrixSymbol("x", n, 1), sp.MatrixSymbol("a", n, 1)
r = sp.MatrixSymbol("r", 1, n)
s11 = sp.MatrixSymbol("s", 1, 1)
alpha, beta = sp.symbols("alpha beta")
SIZES = dict(zip("nmpqrklst", (3, 2, 4, 2, 3, 2, 3, 2, 3)))     # every name inference may give
RTOL = 1e-9


# ----------------------------------------------------------------- helpers

def _random_point(names_shapes: dict, rng) -> dict:
    """Square matrices near 3I (invertible, positive determinant), the rest
    standard normal, scalars in [0.5, 2] (log and powers stay real)."""
    env = {}
    for name, (r_, c_) in names_shapes.items():
        if (r_, c_) == (1, 1):
            env[name] = np.array([[rng.uniform(0.5, 2.0)]])
        elif r_ == c_:
            env[name] = 3 * np.eye(r_) + 0.4 * rng.standard_normal((r_, c_))
        else:
            env[name] = rng.standard_normal((r_, c_))
    return env


def _sympy_inputs(e) -> dict:
    """name -> concrete shape of every symbol of a SymPy expression."""
    out = {}
    for s in e.free_symbols:
        if isinstance(s, sp.MatrixSymbol):
            out[s.name] = tuple(int(sp.sympify(d).subs(SIZES)) for d in s.shape)
        elif s.name not in SIZES:
            out[s.name] = (1, 1)
    return out


def _matcalc_inputs(program) -> dict:
    ev = Evaluator({}, dims=SIZES)
    return {name: (ev.dim(s.shape[0]), ev.dim(s.shape[1])) for name, s in program.inputs.items()}


def _close(actual, expected, what):
    assert np.all(np.isfinite(expected)), f"{what}: not finite at the sample point"
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape}, expected {expected.shape}"
    scale = max(1.0, float(np.max(np.abs(expected))))
    np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=RTOL * scale, err_msg=what)


def _assert_same_value(e, program, points=2, seed=0):
    """The SymPy expression e and the matcalc program have the same value."""
    rng = np.random.default_rng(seed)
    shapes = {**_sympy_inputs(e), **_matcalc_inputs(program)}
    for _ in range(points):
        env = _random_point(shapes, rng)
        ours = Evaluator(env, dims=SIZES)(program.output)
        _close(ours, evaluate(e, env, SIZES), f"{e}  vs  {program.output}")


def _assert_sympy_equal(e1, e2, points=2, seed=0):
    rng = np.random.default_rng(seed)
    shapes = {**_sympy_inputs(e1), **_sympy_inputs(e2)}
    for _ in range(points):
        env = _random_point(shapes, rng)
        _close(evaluate(e1, env, SIZES), evaluate(e2, env, SIZES), f"{e1}  vs  {e2}")


# ----------------------------------------------- import stays light

def test_import_matcalc_does_not_import_sympy():
    code = ("import sys, matcalc; d = matcalc.grad('logdet(X)', wrt='X'); d.numpy(); d.check(); "
            "assert 'sympy' not in sys.modules, 'sympy imported'; "
            "import matcalc.interop; assert 'sympy' not in sys.modules")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr


# ------------------------------------------------- from SymPy, rule by rule

# (case id, SymPy expression).  Each FROM_SYMPY key needs a case whose tree
# holds a node that finds that rule (test_every_from_rule_has_a_case).
FROM_CASES = [
    ("MatrixSymbol", X),
    ("vector", x),
    ("row-vector", r * X),
    ("1x1-is-scalar", s11 * r * X),
    ("integer-dims", sp.MatrixSymbol("Z", 2, 3) * sp.MatrixSymbol("W", 3, 2)),
    ("Symbol", alpha * X),
    ("Rational", sp.Rational(3, 4) * X + 2 * Y),
    ("Float", 0.25 * X),
    ("NumberSymbol", sp.pi * X + sp.E * Y),
    ("MatMul", A * X * B),
    ("MatMul-1x1", a.T * X * x),
    ("MatAdd", X + A - B),
    ("Mul", alpha * beta * sp.Trace(X)),
    ("Add", alpha + beta + sp.Trace(X)),
    ("Pow", alpha ** 3 + sp.Trace(X) ** -1 + sp.sqrt(beta)),
    ("Transpose", A * X.T),
    ("Inverse", sp.Inverse(X) * A),
    ("MatPow", X ** 3 + X ** -2 + (A * X) ** 2),
    ("MatPow-0-1", X ** 0 + X ** 1),
    ("Trace", sp.Trace(A * X)),
    ("Trace-1x1", sp.Trace(x.T * A * x)),
    ("Determinant", sp.Determinant(A * X)),
    ("log-det-is-logdet", sp.log(sp.Determinant(X))),
    ("log", sp.log(alpha * sp.Trace(X))),
    ("exp", sp.exp(alpha) * X),
    ("sin-cos-tan", (sp.sin(alpha) + sp.cos(alpha) + sp.tan(beta / 4)) * X),
    ("tanh", sp.tanh(sp.Trace(X)) * X),
    ("Abs-sign", sp.Abs(sp.Trace(X)) * sp.sign(sp.Trace(A))),
    ("HadamardProduct", sp.HadamardProduct(A, X)),
    ("HadamardPower", sp.HadamardPower(X, 3) + sp.HadamardPower(A, -1)),
    ("KroneckerProduct", sp.KroneckerProduct(A, C)),
    ("Identity", X + sp.Identity(n)),
    ("ZeroMatrix", X * sp.ZeroMatrix(n, m)),
    ("OneMatrix", X * sp.OneMatrix(n, 1)),
    ("DiagMatrix", DiagMatrix(x) * X + DiagMatrix(r)),
    ("DiagonalOf", DiagonalOf(X * A)),
]


@pytest.mark.parametrize("e", [c[1] for c in FROM_CASES], ids=[c[0] for c in FROM_CASES])
def test_from_sympy_rule(e):
    program = matcalc.from_sympy(e)
    _assert_same_value(e, program)                         # the conversion keeps the value
    _assert_sympy_equal(matcalc.to_sympy(program), e)      # and so does the way back


def test_every_from_rule_has_a_case():
    seen = set()
    for _, e in FROM_CASES:
        convert = bridge._FromSympy({})
        convert(e)
        seen |= {bridge._from_rule(node) for node in convert.memo}      # every node it converted
    missing = [k for k, rule in bridge.FROM_SYMPY.items() if rule not in seen]
    assert not missing, f"FROM_SYMPY rules without a case in FROM_CASES: {missing}"


def test_kinds_and_shapes():
    p = matcalc.from_sympy(a.T * X * x + s11 + r * x * alpha)
    kinds = {name: (s.kind, s.shape) for name, s in p.inputs.items()}
    assert kinds == {"a": ("vector", ("n", 1)), "X": ("matrix", ("n", "n")), "x": ("vector", ("n", 1)),
                     "s": ("scalar", (1, 1)), "alpha": ("scalar", (1, 1)), "r": ("matrix", (1, "n"))}
    assert matcalc.from_sympy(sp.KroneckerProduct(A, C)).output.shape == ("n*n", "m*n")
    assert matcalc.from_sympy(sp.MatrixSymbol("V", 2 * n, 1)).output.shape == ("2*n", 1)


@pytest.mark.parametrize("e", [X.T * A * X, sp.log(sp.Determinant(X)), a.T * sp.Inverse(X) * x,
                               sp.Trace(X ** 3) * alpha, sp.HadamardProduct(A, X) + X ** -1])
def test_source_parses_back_to_the_same_ir(e):
    """The text from_sympy keeps as the Program's source elaborates to the IR it built."""
    p = matcalc.from_sympy(e)
    assert matcalc.parse(p.source).output == p.output


def test_from_sympy_feeds_grad():
    d = matcalc.grad(matcalc.from_sympy(sp.log(sp.Determinant(X)) + sp.Trace(A * X)), wrt="X")
    assert d.check().ok
    _assert_sympy_equal(d.to_sympy(), X.T.inverse() + A.T)


@pytest.mark.parametrize("e, cls", [
    (X[0, 0] * X, "MatrixElement"),
    (sp.Adjoint(X), "Adjoint"),
    (sp.ImmutableMatrix([[1, 2], [3, 4]]), "ImmutableDenseMatrix"),
    (sp.exp(X), "exp"),
    (sp.MatPow(X, n), "MatPow"),
    (sp.I * X, "ImaginaryUnit"),
    (sp.oo * X, "Infinity"),
    (sp.MatrixSymbol("V", n + 1, 1), "dimension"),
])
def test_unsupported_sympy_names_the_class(e, cls):
    with pytest.raises(UnsupportedError, match=cls):
        matcalc.from_sympy(e)


def test_strings_are_not_parsed():
    with pytest.raises(sp.SympifyError):
        matcalc.from_sympy("X*Y")


@pytest.mark.parametrize("name", ["X_{1}", "1X", "tr", "I", "ones", "x'", "α", "_x"])
def test_invalid_names_are_rejected_with_a_rename_hint(name):
    e = sp.MatrixSymbol(name, n, n) * X
    with pytest.raises(NameError_) as info:
        matcalc.from_sympy(e)
    hint = info.value.hint
    prefix = "from_sympy(..., rename="
    assert hint.startswith(prefix)
    suggested = ast.literal_eval(hint[len(prefix):hint.index("); names")])[name]   # a valid dict
    p = matcalc.from_sympy(e, rename={name: suggested})                  # and following it works
    assert suggested in p.inputs
    if name == "α":
        assert suggested == "alpha"


def test_a_name_with_two_shapes_is_rejected():
    with pytest.raises(NameError_, match="two things"):
        matcalc.from_sympy(sp.MatrixSymbol("X", n, n) + sp.MatrixSymbol("X", n, n).T * sp.Trace(
            sp.MatrixSymbol("X", m, m)))


# --------------------------------------------------- to SymPy, rule by rule

# (matcalc text, let).  Each TO_SYMPY node type and APPLY function needs a case.
TO_CASES = [
    ("X*A + 2*B", {}), ("x'*A*x", {}), ("alpha*X + X'", {}), ("I + X", {}), ("0*X + X", {}),
    ("ones*ones' + X", {}), ("alpha*ones + x", {}), ("A .* X", {}), ("X .^ 3 + A .^ -1", {}),
    ("kron(A, C)", {"C": "matrix(n, m)"}), ("kron(alpha, X) + kron(X, x'*x)", {}), ("A : X", {}),
    ("X^3 + X^-2", {}), ("(x'*x)^-1*X", {}), ("solve(A, X)", {}),
    ("tr(A*X) + det(X) + logdet(X)", {}), ("inv(X)*A", {}), ("diag(x)*X", {}), ("diag(X*A)", {}),
    ("sum(X) + sum(x)", {}), ("norm2(X) + norm2(x)", {}), ("exp(alpha) + log(beta) + sin(alpha)", {}),
    ("cos(alpha) + tan(beta) + tanh(alpha) + sqrt(beta) + abs(alpha) + sign(beta)", {}),
    ("x'*(A*x)*X + alpha", {}), ("(a'*x)*(x'*a) + alpha", {}),
]


@pytest.mark.parametrize("text, let", TO_CASES, ids=[c[0] for c in TO_CASES])
def test_to_sympy_rule(text, let):
    program = matcalc.parse(text, let)
    e = matcalc.to_sympy(program)
    _assert_same_value(e, program)
    _assert_same_value(e, matcalc.from_sympy(e))           # and back again


def test_zero_matrix():
    """Zero appears in results, never in parsed text: d sign(X) = 0."""
    zero = E.add(E.Symbol("X", ("n", "m")), E.Zero(("n", "m")))
    assert matcalc.to_sympy(zero) == sp.MatAdd(sp.MatrixSymbol("X", n, m), sp.ZeroMatrix(n, m))
    assert matcalc.from_sympy(matcalc.to_sympy(zero)).output == zero
    assert matcalc.grad("sum(sign(X))", wrt="X").to_sympy() == sp.ZeroMatrix(n, m)


def test_a_dimension_used_as_a_value_is_refused():
    with pytest.raises(UnsupportedError, match="value and as a dimension"):
        matcalc.from_sympy(n * X)


def test_every_to_rule_has_a_case():
    nodes, fns = {E.Zero}, set()        # Zero: test_zero_matrix
    for text, let in TO_CASES:
        for node in E.walk(matcalc.parse(text, let).output):
            nodes.add(type(node))
            if isinstance(node, E.Apply):
                fns.add(node.fn)
    assert not set(bridge.TO_SYMPY) - nodes, f"TO_SYMPY rules without a case: {set(bridge.TO_SYMPY) - nodes}"
    missing = (set(bridge.APPLY) | set(bridge.SCALAR_FUNCTIONS)) - fns
    assert not missing, f"function rules without a case: {missing}"


@pytest.mark.parametrize("text, what", [
    ("tanh(X)", "tanh"), ("softmax(x)", "softmax"), ("logsumexp(x)", "logsumexp"), ("vec(X)", "vec"),
    ("norm1(X)", "norm1"), ("sigmoid(alpha)", "sigmoid"), ("exp(X)", "exp"), ("commutation(n, n)", "Commutation"),
])
def test_unsupported_matcalc_says_what(text, what):
    with pytest.raises(UnsupportedError, match=what):
        matcalc.to_sympy(matcalc.parse(text))


def test_opaque_function_is_unsupported():
    with pytest.raises(UnsupportedError, match="Call"):
        matcalc.to_sympy(matcalc.parse("f(x)", {"f": "function"}))


def test_symbols_override_the_default_atoms():
    k = sp.Symbol("k", integer=True, positive=True)
    W = sp.MatrixSymbol("W", k, k)
    got = matcalc.to_sympy(matcalc.parse("tr(W)", {"W": "matrix(k, k)"}), symbols={"k": k})
    assert got == sp.Trace(W)
    d = matcalc.grad(matcalc.from_sympy(sp.Trace(W * W)), wrt="W")
    assert d.to_sympy(symbols={"k": k}).shape == W.shape


# ------------------------------------------------------ Derivation.to_sympy

def test_several_wrt_give_a_dict():
    d = matcalc.grad("norm2(W*h + b - y)^2", wrt=["W", "b"])
    out = d.to_sympy()
    assert set(out) == {"W", "b"} and all(v.is_Matrix for v in out.values())
    _check_results_roundtrip(d)


def test_definitions_and_adjoints_are_inlined():
    d = matcalc.grad("a = A*x + b; u = a .* a; L = sum(u) + u'*a", wrt=["x", "A"])
    assert d.adjoints, "this program should keep a shared adjoint"
    for name, e in d.to_sympy().items():
        assert {s.name for s in e.free_symbols} <= {"A", "x", "b", "n", "m"}, (name, e)
    _check_results_roundtrip(d)


def test_jacobian_and_hessian_results():
    """Kronecker-form Jacobians and Hessians convert too; the commutation matrix does not."""
    jac = matcalc.jacobian(matcalc.from_sympy(A * X * B), wrt="X")
    assert jac.check().ok
    _check_results_roundtrip(jac)
    hess = matcalc.hessian(matcalc.from_sympy(sp.Trace(x.T * A * x) + sp.Trace(a.T * x) ** 2), wrt="x")
    _check_results_roundtrip(hess)
    with pytest.raises(UnsupportedError, match="Commutation"):
        matcalc.hessian(matcalc.from_sympy(sp.log(sp.Determinant(X))), wrt="X").to_sympy()


def test_a_converted_program_has_every_output():
    """A Program from SymPy serves latex, steps, generated code and the check like a parsed one."""
    d = matcalc.grad(matcalc.from_sympy(sp.Trace(a.T * sp.Inverse(X) * x) + sp.Trace(A * X)), wrt="X")
    assert d.check().ok
    assert "align*" in d.latex(steps=True)
    rng = np.random.default_rng(3)
    env = _random_point({"a": (3, 1), "x": (3, 1), "X": (3, 3), "A": (3, 3)}, rng)
    got = d.function().grad_X(a=env["a"].ravel(), x=env["x"].ravel(), X=env["X"], A=env["A"])
    _close(np.asarray(got), run_program(d.program, env, dims={"n": 3}, extra=d.adjoints)(d.result), "grad_X")


def _check_results_roundtrip(d, points=2, seed=1):
    """from_sympy(to_sympy(result)) == result at random points of d's domain."""
    from matcalc.sampling import dimension_sizes, sample_inputs
    converted = d.to_sympy()
    converted = converted if isinstance(converted, dict) else {d.wrt[0]: converted}
    rng = np.random.default_rng(seed)
    for _ in range(points):
        dims = dimension_sizes(d.program, rng)
        env = sample_inputs(d.program, rng, dims)
        ours = run_program(d.program, env, dims=dims, extra=d.adjoints)
        for name, e in converted.items():
            back = matcalc.from_sympy(e)
            expected = ours(d.results[name])
            if not np.all(np.isfinite(expected)):
                continue
            _close(Evaluator(env, dims=dims)(back.output), expected, f"d/d{name}: {d.results[name]}")
            _close(evaluate(e, env, dims), expected, f"d/d{name} in SymPy: {e}")


COOKBOOK = [r[:4] for r in ROWS if r[0] not in XFAIL]       # rows matcalc derives


@pytest.mark.parametrize("rid, expr, wrt, let", COOKBOOK, ids=[r[0] for r in COOKBOOK])
def test_cookbook_results_roundtrip(rid, expr, wrt, let):
    try:
        d = matcalc.grad(expr, wrt=wrt, let=let)
        d.to_sympy()
    except UnsupportedError as exc:
        pytest.skip(f"no SymPy form: {exc.message}")
    _check_results_roundtrip(d)


def test_most_cookbook_results_convert():
    """Guards the skips above: the elementwise/softmax rows are the only ones without a SymPy form."""
    converted = 0
    for rid, expr, wrt, let in COOKBOOK:
        try:
            matcalc.grad(expr, wrt=wrt, let=let).to_sympy()
            converted += 1
        except UnsupportedError:
            pass
    assert converted >= 110, converted


# -------------------------------------------------- the SymPy-side oracle

@pytest.mark.parametrize("e", [c[1] for c in FROM_CASES if c[0] not in ("DiagonalOf",)],
                         ids=[c[0] for c in FROM_CASES if c[0] not in ("DiagonalOf",)])
def test_sympy_numeric_agrees_with_sympy(e):
    """sympy_numeric against SymPy's own evaluation (explicit matrices, doit);
    DiagonalOf is left out: SymPy 1.14 cannot evaluate it on an explicit matrix."""
    rng = np.random.default_rng(5)
    env = _random_point(_sympy_inputs(e), rng)
    concrete = e.subs(SIZES)
    values = {s: sp.ImmutableMatrix(env[s.name]) if isinstance(s, sp.MatrixSymbol) else sp.Float(env[s.name].item())
              for s in concrete.free_symbols}
    explicit = concrete.xreplace(values).doit()
    explicit = explicit.as_explicit() if explicit.is_Matrix else sp.Matrix([[explicit]])
    _close(evaluate(e, env, SIZES), np.array(explicit.evalf().tolist(), dtype=float), str(e))


def test_sympy_numeric_refuses_what_it_cannot_evaluate():
    with pytest.raises(Unevaluable, match="Derivative"):
        evaluate(sp.Derivative(sp.Determinant(X), X), {"X": np.eye(3)}, SIZES)
    assert set(EVALUATE) >= set(bridge.FROM_SYMPY)


# ------------------------------------------------ random expressions

MATRIX_LEAVES = [X, Y, A, sp.Identity(n)]
SCALAR_LEAVES = [alpha, beta, sp.Integer(2), sp.Rational(1, 3), sp.Float(0.5)]
pair = st.tuples
# One level of construction from (matrices M, scalars S) one level down, built with
# SymPy's operators as a user would.  Determinants are of M Mᵀ + I, so logs stay real.
MATRIX_RULES = [
    lambda M, S: pair(M, M).map(lambda t: t[0] * t[1]),
    lambda M, S: pair(M, M).map(lambda t: t[0] + t[1]),
    lambda M, S: M.map(lambda t: t.T),
    lambda M, S: M.map(sp.Inverse),
    lambda M, S: pair(M, st.integers(-2, 3)).map(lambda t: sp.MatPow(*t)),
    lambda M, S: pair(M, M).map(lambda t: sp.HadamardProduct(*t)),
    lambda M, S: pair(S, M).map(lambda t: t[0] * t[1]),
    lambda M, S: pair(M, st.sampled_from([x, a])).map(lambda t: DiagMatrix(t[0] * t[1])),
]
SCALAR_RULES = [
    lambda M, S: M.map(sp.Trace),
    lambda M, S: M.map(lambda t: sp.Determinant(t * t.T + sp.Identity(n))),
    lambda M, S: M.map(lambda t: sp.log(sp.Determinant(t * t.T + sp.Identity(n)))),
    lambda M, S: M.map(lambda t: sp.Trace(sp.KroneckerProduct(t, A))),
    lambda M, S: M.map(lambda t: sp.Trace(a.T * t * x)),     # to_sympy's scalar of a 1×1
    lambda M, S: pair(S, S).map(lambda t: t[0] * t[1]),
    lambda M, S: pair(S, S).map(lambda t: t[0] + t[1]),
    lambda M, S: pair(S, st.integers(-2, 3)).map(lambda t: t[0] ** t[1]),
]


def _expressions(depth: int):
    """(matrix strategy, scalar strategy) of expressions at most `depth` deep."""
    leaves = st.sampled_from(MATRIX_LEAVES), st.sampled_from(SCALAR_LEAVES)
    if depth == 0:
        return leaves
    M, S = _expressions(depth - 1)
    return (st.one_of(leaves[0], *(rule(M, S) for rule in MATRIX_RULES)),
            st.one_of(leaves[1], *(rule(M, S) for rule in SCALAR_RULES)))


@settings(max_examples=150)
@given(st.one_of(*_expressions(3), _expressions(2)[0].map(lambda t: a.T * t * x)))   # and a bare 1×1
def test_random_sympy_roundtrip(e):
    """to_sympy(from_sympy(e)) == e and the Program has e's value, at random points."""
    try:
        program = matcalc.from_sympy(e)
    except UnsupportedError as exc:    # SymPy evaluates tr(I) to n: a size as a value
        assert "value and as a dimension" in exc.message, exc.message
        reject()
    rng = np.random.default_rng(11)
    shapes = {**_sympy_inputs(e), **_matcalc_inputs(program)}
    env = _random_point(shapes, rng)
    expected = evaluate(e, env, SIZES)
    if not np.all(np.isfinite(expected)) or np.max(np.abs(expected)) > 1e8:
        event("singular or huge: skipped")
        return                        # a singular or huge value: no comparison to make here
    _close(Evaluator(env, dims=SIZES)(program.output), expected, f"from_sympy({e})")
    _close(evaluate(matcalc.to_sympy(program), env, SIZES), expected, f"to_sympy(from_sympy({e}))")
