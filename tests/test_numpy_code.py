"""The generated NumPy module (docs/reference.md §3), run against the oracle.

For every case the module is exec'd into a fresh namespace and called by
keyword with random inputs (vectors 1-D, matrices 2-D, scalars floats):
value() against numeric.Evaluator on the program, grad_X() against central
differences of value(), value_and_grad() against the separate functions.
"""
from __future__ import annotations

import ast
import inspect
import keyword

import numpy as np
import pytest

import matcalc
from matcalc.printing.code import SEPARATE_UP_TO
from matcalc.check import dimension_sizes, sample_inputs
from matcalc.numeric import run_program, to_user
from matcalc.printing.targets import TARGETS


def opaque_f(x):
    x = np.asarray(x, dtype=float)
    return float(np.sum(np.sin(x)) + 0.5 * np.sum(x * x))


def opaque_grad_f(x):
    x = np.asarray(x, dtype=float)
    return np.cos(x) + x


MLP = "a1 = W1*x + b1\nh1 = tanh(a1)\na2 = W2*h1 + b2\nL = norm2(a2 - y)^2"

# (program, wrt, let)
CASES = [
    ("x'*A*x", ["x", "A"], None),
    ("tr(W*h*h'*W')", ["W", "h"], None),
    ("norm2(W*h + b - y)^2", ["W", "b"], None),
    ("logdet(X)", ["X"], {"X": "matrix(n, n)"}),
    ("sum(log(1 + exp(-y .* (X*w))))", ["w", "X"], None),
    (MLP, ["W1", "b1", "W2", "b2"], None),
    ("# a comment with a secret\n" + MLP.replace("L =", "L = 0.5 *") + "  # secret",
     ["W2", "W1", "x"], None),
    ("y'*log(softmax(W*x))", ["W", "x"], None),
    ("logsumexp(W*x + b)", ["W", "b"], None),
    ("p = softmax(A*x)\nL = -y'*log(p) + logsumexp(x)", ["A", "x"], None),
    ("logdet(X) - tr(inv(X)*S)", ["X", "S"], {"S": "symmetric(n)"}),
    ("det(X) + x'*inv(X)*x", ["X", "x"], None),
    ("sum(diag(v)*A .* B)", ["v", "A", "B"], None),
    ("y'*diag(v)*A*x", ["v", "A"], None),
    ("f: function\nL = f(W*h + b)", ["W", "b", "h"], None),
    ("f: function\ng = W*h\nL = f(g) + f(b)", ["W", "b"], None),
    ("lambda: scalar\nL = norm2(A*x - y)^2 + lambda*norm2(x)^2", ["x", "lambda"], None),
    ("tr(S*A) + logdet(S)", ["S"], {"S": "symmetric(n)"}),
    ("sum(relu(W*x + b) .* c)", ["W", "b"], None),
    ("alpha*sum(exp(A*x)) + beta^2", ["alpha", "beta", "x"], None),
    ("sum(X^3) + tr(X^2)", ["X"], None),
    ("sigmoid(w'*x) + softplus(alpha)", ["w", "alpha"], None),
    ("sum(sqrt(x .* x + 1)) + norm1(A*x - y)", ["x", "A"], None),
    ("sum(sin(A*x) .* cos(x)) + tan(alpha)", ["A", "x", "alpha"], None),
    ("(A*x) : (B*y) + x'*kron(C, D)*x", ["A", "y", "x"], {"C": "matrix(p, p)", "D": "matrix(q, q)"}),
    ("a = A*x\nb = a .* a\nL = sum(b) + sum(a) + a'*b", ["x", "A"], None),
    ("sum(x ./ y) + sum(A / alpha)", ["y", "alpha"], None),
    ("sum(X .^ 3) + alpha^beta", ["X", "beta"], None),
    ("np'*value + id'*x + norm2(W*grad_x)^2", ["np", "value", "x", "grad_x", "W"], None),
    # chains of three or more matrices go through _multi_dot (cheapest order at call time)
    ("tr(A*B*C*D) + sum(A*B*C)", ["A", "C"], {"A": "matrix(m, n)", "B": "matrix(n, p)", "C": "matrix(p, q)"}),
    # a Kronecker product times a vector: two products, never the dense mp × nq matrix
    ("x'*kron(C, D)*x + y'*kron(A, B)*z", ["x", "z", "y"],
     {"C": "matrix(p, p)", "D": "matrix(q, q)", "A": "matrix(m, n)", "B": "matrix(r, s)"}),
    # more derivatives than SEPARATE_UP_TO: grad_X calls value_and_grad
    (MLP, ["W1", "b1", "W2", "b2", "x", "y"], None),
]


# Cases the generated code once got wrong (sigmoid's template lacked parentheses).
KNOWN_BAD = [
    pytest.param("norm2(sigmoid(y + x))", ["x", "y"], None, id="sigmoid-of-a-sum"),
    pytest.param("ones'*sigmoid(x)", ["x"], None, id="sigmoid-in-a-product"),
    pytest.param("sum(sigmoid(W*x - b))", ["W", "b"], None, id="sigmoid-logistic-layer"),
]


def py_name(name: str, params) -> str:
    """The parameter a name becomes: itself, or with trailing underscores."""
    candidate = name
    while candidate not in params:
        candidate += "_"
        assert len(candidate) < len(name) + 4, f"{name} is not a parameter of {params}"
    return candidate


def load(d) -> tuple[str, dict]:
    source = d.numpy()
    namespace: dict = {}
    exec(compile(source, "<matcalc generated>", "exec"), namespace)
    return source, namespace


def random_call(d, seed):
    """(kwargs for the generated functions, internal env, dims)."""
    program = d.program
    rng = np.random.default_rng(seed)
    dims = dimension_sizes(program, rng)
    env = sample_inputs(program, rng, dims)
    return env, dims


def user_args(d, params, env) -> dict:
    kwargs = {py_name(n, params): to_user(env[n], sym.shape) for n, sym in d.program.inputs.items()}
    for f in d.program.functions:
        kwargs[py_name(f, params)] = opaque_f
        kwargs[py_name("grad_" + f, params)] = opaque_grad_f
    return kwargs


def finite_difference(fn, kwargs, param, symmetric=False, h=1e-6):
    x0 = kwargs[param]
    if np.ndim(x0) == 0:
        plus, minus = dict(kwargs), dict(kwargs)
        plus[param], minus[param] = x0 + h, x0 - h
        return (fn(**plus) - fn(**minus)) / (2 * h)
    x0 = np.asarray(x0, dtype=float)
    grad = np.zeros_like(x0)
    for idx in np.ndindex(x0.shape):
        if symmetric and idx[0] > idx[1]:
            continue
        step = np.zeros_like(x0)
        step[idx] = h
        if symmetric:
            step[idx[::-1]] = h
        plus, minus = dict(kwargs), dict(kwargs)
        plus[param], minus[param] = x0 + step, x0 - step
        slope = (fn(**plus) - fn(**minus)) / (2 * h)
        if symmetric and idx[0] != idx[1]:
            grad[idx] = grad[idx[::-1]] = slope / 2
        else:
            grad[idx] = slope
    return grad


def close(a, b, tol=1e-5):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    scale = max(1.0, float(np.max(np.abs(b))) if b.size else 1.0)
    return a.shape == b.shape and float(np.max(np.abs(a - b))) / scale < tol


def _ids(cases):
    return [text.replace("\n", "; ")[:60] for text, _, _ in cases]


@pytest.mark.parametrize("text, wrt, let", CASES + KNOWN_BAD, ids=_ids(CASES) + [p.id for p in KNOWN_BAD])
def test_generated_module(text, wrt, let):
    d = matcalc.grad(text, wrt=wrt, let=let)
    source, ns = load(d)
    value, vag = ns["value"], ns["value_and_grad"]
    params = list(inspect.signature(value).parameters)
    inputs = list(d.program.inputs) + sorted(d.program.functions) + \
        ["grad_" + f for f in sorted(d.program.functions)]
    assert len(params) == len(inputs), (params, inputs)
    assert [py_name(n, params) for n in inputs] == params
    for w in wrt:     # past SEPARATE_UP_TO derivatives grad_X passes its inputs through to value_and_grad
        delegated = len(wrt) > SEPARATE_UP_TO and list(inspect.signature(ns[f"grad_{w}"]).parameters) == \
            ["inputs", "by_name"]
        assert delegated or list(inspect.signature(ns[f"grad_{w}"]).parameters) == params
    assert list(inspect.signature(vag).parameters) == params

    for seed in range(2):
        env, dims = random_call(d, seed)
        kwargs = user_args(d, params, env)
        functions = {f: opaque_f for f in d.program.functions}
        functions.update({"grad_" + f: opaque_grad_f for f in d.program.functions})
        oracle = float(run_program(d.program, env, functions, dims)(d.program.output).item())
        v = value(**kwargs)
        assert np.ndim(v) == 0 and isinstance(float(v), float)
        assert np.isfinite(v)
        assert abs(v - oracle) <= 1e-9 * max(1.0, abs(oracle)), (v, oracle)

        together = vag(**kwargs)
        assert isinstance(together, tuple) and len(together) == 1 + len(wrt)
        assert abs(together[0] - v) <= 1e-12 * max(1.0, abs(v))
        for w, g_joint in zip(wrt, together[1:]):
            sym = d.program.inputs[w]
            param = py_name(w, params)
            g = ns[f"grad_{w}"](**kwargs)
            assert np.shape(g) == np.shape(kwargs[param]), (w, np.shape(g), np.shape(kwargs[param]))
            assert np.shape(g_joint) == np.shape(g)
            assert np.allclose(g_joint, g, rtol=1e-12, atol=1e-12), w
            numeric = finite_difference(value, kwargs, param, symmetric=sym.symmetric)
            assert close(g, numeric), f"d/d{w}: generated {g}\nfinite differences {numeric}"


def test_mlp_with_several_wrt_in_order():
    d = matcalc.grad(MLP, wrt=["W2", "b1"])
    _, ns = load(d)
    env, _ = random_call(d, 3)
    kwargs = user_args(d, list(inspect.signature(ns["value"]).parameters), env)
    L, gW2, gb1 = ns["value_and_grad"](**kwargs)
    assert gW2.shape == kwargs["W2"].shape and gb1.shape == kwargs["b1"].shape
    assert np.allclose(gW2, ns["grad_W2"](**kwargs)) and np.allclose(gb1, ns["grad_b1"](**kwargs))


def test_matrix_chains_are_ordered_at_call_time():
    """(A*B)*x or A*(B*x), A*B*C as (AB)C or A(BC): the cheapest order depends on the sizes."""
    source = matcalc.grad("norm2(A*B*C)^2 + x'*A*B*y", "A").numpy()
    assert "_multi_dot([A, B, C])" in source
    assert "A @ (B @ y)" in source or "(x @ A) @ B" in source


class _Recorded:
    """A matrix that records the shapes of the products it takes part in."""
    log: list = []

    def __init__(self, a):
        self.a, self.shape = a, a.shape

    def __matmul__(self, other):
        _Recorded.log.append((self.shape, other.shape))
        return _Recorded(self.a @ other.a)


def _least_multiply_adds(dims: list[int]) -> int:
    """The cheapest chain's multiply-adds, by trying every split (dims: rows, then each width)."""
    if len(dims) <= 2:
        return 0
    return min(_least_multiply_adds(dims[:k + 1]) + _least_multiply_adds(dims[k:]) + dims[0] * dims[k] * dims[-1]
               for k in range(1, len(dims) - 1))


@pytest.mark.parametrize("dims", [[2, 50, 40, 30], [50, 40, 30, 2], [3, 4, 5, 6, 2], [7, 2, 9, 3, 8, 1]])
def test_the_chain_helper_takes_the_cheapest_order(dims):
    """The generated modules' _multi_dot (numpy.linalg.multi_dot's order, without its
    operand checks and copies) gets the product with the fewest multiply-adds."""
    ns = {}
    exec(TARGETS["numpy"].helper_source("_multi_dot"), ns)
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal((r, c)) for r, c in zip(dims, dims[1:])]
    _Recorded.log = []
    got = ns["_multi_dot"]([_Recorded(a) for a in arrays])
    np.testing.assert_allclose(got.a, np.linalg.multi_dot(arrays), rtol=1e-12)
    assert sum(l[0] * l[1] * r[1] for l, r in _Recorded.log) == _least_multiply_adds(dims)


def test_the_trace_of_a_product_is_a_frobenius_product():
    """tr(L R) = L' : R: n² multiply-adds, not the n³ of the product whose diagonal is summed."""
    d = matcalc.grad("tr(A1*X*A2*X)", "X")
    source = d.numpy()
    assert "np.trace" not in source and "np.vdot(" in source
    _, ns = load(d)
    env, _ = random_call(d, 4)
    kwargs = user_args(d, list(inspect.signature(ns["value"]).parameters), env)
    A1, X, A2 = kwargs["A1"], kwargs["X"], kwargs["A2"]
    assert np.isclose(ns["value"](**kwargs), np.trace(A1 @ X @ A2 @ X), rtol=1e-12)
    assert np.isclose(ns["value_and_grad"](**kwargs)[0], np.trace(A1 @ X @ A2 @ X), rtol=1e-12)


def test_kronecker_times_vector_is_two_products():
    """(A ⊗ B) v = vec_r(A V Bᵀ): the generated code never forms kron(C, D) here."""
    let = {"C": "matrix(p, p)", "D": "matrix(q, q)"}
    source = matcalc.grad("x'*kron(C, D)*x + 2*y'*kron(C', D)*x", ["x", "y"], let).numpy()
    assert "np.kron" not in source and ".reshape(C.shape[0], D.shape[0])" in source


def test_many_derivatives_share_one_backward_pass():
    """Past SEPARATE_UP_TO derivatives the module holds one copy of the backward pass,
    so its size grows with the program, not with the program times the derivatives."""
    from matcalc.printing.code import SEPARATE_UP_TO
    few = matcalc.grad(MLP, wrt=["W1", "b1", "W2", "b2"][:SEPARATE_UP_TO]).numpy()
    many = matcalc.grad(MLP, wrt=["W1", "b1", "W2", "b2", "x", "y"]).numpy()
    assert "return value_and_grad(" not in few
    assert many.count("np.tanh(") == 2           # in value and in value_and_grad only


def test_python_keyword_becomes_trailing_underscore():
    d = matcalc.grad("lambda*norm2(x)^2 + lambda^2", wrt=["lambda", "x"])
    _, ns = load(d)
    params = list(inspect.signature(ns["value"]).parameters)
    assert "lambda_" in params and "lambda" not in params
    x = np.array([1.0, 2.0, -1.0])
    assert ns["value"](lambda_=0.5, x=x) == pytest.approx(0.5 * 6 + 0.25)
    assert ns["grad_lambda"](lambda_=0.5, x=x) == pytest.approx(6 + 1.0)
    assert np.allclose(ns["grad_x"](lambda_=0.5, x=x), 2 * 0.5 * x)
    for name in params:
        assert not keyword.iskeyword(name)


def test_module_names_are_not_shadowed():
    d = matcalc.grad("np'*value + norm2(W*grad_x)^2 + x'*x", wrt=["x", "np"])
    _, ns = load(d)
    params = list(inspect.signature(ns["value"]).parameters)
    for name in ["np", "value", "grad_x", "grad_np", "value_and_grad"]:
        assert name not in params, params
    assert {"np_", "value_", "grad_x_"} <= set(params)


def test_opaque_function_parameters_are_called():
    d = matcalc.grad("f: function\nL = f(W*h + b)", wrt=["W"])
    _, ns = load(d)
    params = list(inspect.signature(ns["value"]).parameters)
    assert params[-2:] == ["f", "grad_f"]
    calls = []
    W, h, b = np.eye(2), np.array([1.0, 2.0]), np.array([0.5, -1.0])
    g = ns["grad_W"](W=W, h=h, b=b, f=lambda z: calls.append("f") or 0.0,
                     grad_f=lambda z: calls.append("grad_f") or 2 * z)
    assert "grad_f" in calls
    assert np.allclose(g, np.outer(2 * (W @ h + b), h))


def test_value_of_scalar_and_vector_conventions():
    d = matcalc.grad("alpha*x'*A*x", wrt=["alpha", "x", "A"])
    _, ns = load(d)
    x, A = np.array([1.0, -2.0, 0.5]), np.arange(9.0).reshape(3, 3)
    L, ga, gx, gA = ns["value_and_grad"](alpha=2.0, x=x, A=A)
    assert L == pytest.approx(2.0 * x @ A @ x)
    assert np.ndim(ga) == 0 and ga == pytest.approx(x @ A @ x)
    assert gx.shape == (3,) and np.allclose(gx, 2.0 * (A + A.T) @ x)
    assert gA.shape == (3, 3) and np.allclose(gA, 2.0 * np.outer(x, x))


# ------------------------------------------------------------ the source itself

@pytest.mark.parametrize("text, wrt, let", CASES, ids=_ids(CASES))
def test_source_imports_only_numpy(text, wrt, let):
    source = matcalc.grad(text, wrt=wrt, let=let).numpy()
    tree = ast.parse(source)
    imports = [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert len(imports) == 1
    (imp,) = imports
    assert isinstance(imp, ast.Import) and [(a.name, a.asname) for a in imp.names] == [("numpy", "np")]
    assert imp in tree.body, "the import is at module level"
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    assert not names & {"eval", "exec", "open", "__import__", "compile", "getattr", "globals"}
    attrs = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    assert not any(a.startswith("__") for a in attrs)
    defined = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert {"value", "value_and_grad"} | {f"grad_{w}" for w in wrt} <= defined


@pytest.mark.parametrize("program", [
    "# secret\nx'*A*x",
    "x'*A*x  # secret",
    "a = A*x  # secret\nL = sum(a .* a)",
    "# secret: the password is hunter2\nW: matrix(m, n)  # secret\nL = norm2(W*h)^2",
    'L = sum(exp(x)) # """; import os; os.system("secret")',
])
def test_input_text_besides_identifiers_never_reaches_the_code(program):
    wrt = "W" if "W" in program else "x"
    d = matcalc.grad(program, wrt=wrt)
    source = d.numpy()
    for word in ["secret", "hunter2", "password", "import os", "os.system"]:
        assert word not in source, f"{word!r} leaked into the generated code"
    _, ns = load(d)       # and it is still a valid module
    assert callable(ns["value"])


def test_bare_expression_after_definitions():
    d = matcalc.grad("a = A*x\nsum(a .* a)", wrt="x")
    _, ns = load(d)
    x, A = np.array([1.0, 2.0]), np.array([[1.0, 2.0], [3.0, 4.0]])
    g = ns["grad_x"](A=A, x=x)
    assert np.allclose(g, 2 * A.T @ (A @ x))


@pytest.mark.parametrize("text, gram", [
    ("sum(log(1 + exp(-y .* (X*w))))", True),        # v = (1 - σ) σ y² >= 0
    ("sum(softplus(X*w))", True),                      # v = σ (1 - σ)
    ("sum(exp(X*w))", True),                           # v = exp(X w)
    ("sum(sin(X*w))", False),                          # v = -sin(X w): any sign
    ("sum((X*w).^3)", False),                          # v = 6 X w: any sign
])
def test_gram_hessians_use_a_symmetric_product_only_where_v_is_nonnegative(text, gram):
    """Xᵀ diag(v) X is written Zᵀ Z with Z = sqrt(v) X (BLAS syrk) only where v >= 0
    is certain; otherwise sqrt would give NaN."""
    d = matcalc.hessian(text, "w", let={"X": "matrix(m, n)"})
    source, ns = load(d)
    assert ("np.sqrt(" in source) == gram, source
    rng = np.random.default_rng(1)
    X, w, y = rng.standard_normal((7, 3)), rng.standard_normal(3), rng.choice([-1.0, 1.0], 7)
    args = {k: v for k, v in {"X": X, "w": w, "y": y}.items() if k in inspect.signature(ns["value"]).parameters}
    H = ns["hessian_w"](**args)
    numeric = np.array([_grad_by_differences(ns["value"], args, i) for i in range(3)])
    assert close(H, numeric, tol=1e-4)


def _grad_by_differences(value, args, i, h=1e-4):
    """Column i of the Hessian: central differences of central differences."""
    def grad(w):
        return np.array([(value(**{**args, "w": w + h * e}) - value(**{**args, "w": w - h * e})) / (2 * h)
                         for e in np.eye(len(w))])
    e = np.eye(len(args["w"]))[i]
    return (grad(args["w"] + h * e) - grad(args["w"] - h * e)) / (2 * h)
