"""The JAX, PyTorch and array API modules, run against the NumPy module.

The NumPy module is checked against the oracle in test_numpy_code.py; here
every other target's module is exec'd and called with the same random inputs
(float64), and each function's output must match NumPy's: same shape, same
numbers.  The array API module runs under array_api_strict (which rejects
anything outside the standard), NumPy, torch, JAX and chunked Dask arrays.

jax is in the `test` extra, torch is not (see .ci/run): on a machine without
a target's library its tests skip, in CI (CI=true) they must import.
"""
from __future__ import annotations

import ast
import builtins
import importlib
import importlib.util
import inspect
import keyword
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import matcalc
from matcalc.check import dimension_sizes, sample_inputs
from matcalc.errors import UsageError
from matcalc.expr import Fn
from matcalc.numeric import run_program, to_user
from matcalc.sampling import opaque_functions
from matcalc.printing.targets import TARGETS, Form

OPS = ["eye", "zeros", "full", "outer", "frobenius", "kron", "flatten", "unflatten", "vec", "unvec",
       "kron_adj_left", "kron_adj_right", "matrix_power",
       "commutation", "solve", "logdet_spd", "frechet_adj", "frechet_jac", "spectral", "loewner_adj",
       "sum_axis", "logsumexp_softmax", "logsumexp_softmax_cols", "logsumexp_softmax_rows"]
OPTIONAL_OPS = {"multi_dot",      # where the library has it; otherwise the chain is written out
                "step_mask"}      # where a boolean array times a float one is a float array


def need(module: str):
    """A target's library: required in CI, skipped where it is not installed."""
    if os.environ.get("CI"):
        return importlib.import_module(module)
    return pytest.importorskip(module)


def available(module: str) -> bool:
    """Whether a library is installed; in CI it must be (need() then fails without it)."""
    if os.environ.get("CI"):
        return True
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:          # a dotted name whose parent is missing
        return False


def opaque_f(x):
    """An opaque scalar function, written once for every array library."""
    xp = need("array_api_compat").array_namespace(x)
    return xp.sum(xp.sin(x)) + 0.5 * xp.sum(x * x)


def opaque_grad_f(x):
    xp = need("array_api_compat").array_namespace(x)
    return xp.cos(x) + x


MLP = "a1 = W1*x + b1\nh1 = tanh(a1)\na2 = W2*h1 + b2\nL = norm2(a2 - y)^2"
LOGISTIC = "sum(log(1 + exp(-y .* (X*w))))"

MATFUN_LET = {"S": "symmetric(n)", "W": "matrix(m, n)", "P": "matrix(n, n)", "Q": "matrix(n, n)",
              "Sigma": "spd(n)"}
MATFUN_KERNELS = "tr(expm(X)) + sum(expm(X) .* B) + sum(logm(P) .* B) + sum(sqrtm(Q) .* B) + sum(sqrtm(S) .* logm(S))"
MATFUN_SPECTRAL = ("eigmax(S) + eigmin(A) + x'*eigvals(S) + norm_nuc(W) + norm_spec(W) + sum(chol(S)) "
                   "+ sum(pinv(W)) + sum(adj(X)) + y'*solve(X, x) + logdet(Sigma)")
# Matrix-function kernels choose their scaling with Python floats: they run eagerly, not under jit.
NOT_JITTED = {MATFUN_KERNELS, "tr(expm(X))"}

# (command, program, wrt, let, dask): dask is False where the code needs linalg Dask lacks (det, slogdet)
CASES = [
    ("grad", LOGISTIC, ["w", "X"], None, True),
    ("hessian", LOGISTIC, ["w"], None, True),
    ("grad", MLP, ["W1", "b1", "W2", "b2"], None, True),
    ("grad", "x'*A*x", ["x", "A"], None, True),
    ("grad", "x'*kron(C, D)*x + y'*kron(C', D)*x", ["x", "y"], {"C": "matrix(p, p)", "D": "matrix(q, q)"}, True),
    ("grad", "tr(A*X*B*X') + sum(A*X*B)", ["X"], {"A": "matrix(n, n)", "X": "matrix(n, p)", "B": "matrix(p, p)"}, True),
    ("hessian", "x'*A*x", ["x"], None, True),
    ("hessian", "x'*x + sum(sign(x))", ["x"], None, True),
    ("grad", "sum(sign(x)) + alpha*sum(x) + sum(y)", ["x", "y"], None, True),
    ("jacobian", "sign(x) + A*y + exp(y)", ["x", "y"], None, True),
    ("grad", "logdet(X)", ["X"], {"X": "matrix(n, n)"}, False),
    ("hessian", "logdet(X)", ["X"], {"X": "matrix(n, n)"}, False),
    ("jacobian", "softmax(x)", ["x"], None, True),
    ("jacobian", "tanh(W*x)", ["x", "W"], None, True),
    ("jacobian", "A*X*B", ["X"], None, True),
    ("jacobian", "X'", ["X"], None, True),
    ("hessian", "tr(X'*A*X)", ["X"], None, True),
    ("grad", "sum(diag(v)*A .* B)", ["v", "A", "B"], None, True),
    ("grad", "y'*diag(v)*A*x + sum(diag(C))", ["v", "A", "C"], None, True),
    ("grad", "(A*x) : (B*y) + x'*kron(C, D)*x", ["A", "y", "x"],
     {"C": "matrix(p, p)", "D": "matrix(q, q)"}, True),
    ("grad", "alpha*sum(vec(C*D) .* kron(a, b)) + sum(kron(a, b'))*alpha^2", ["alpha"],
     {"C": "matrix(p, q)", "D": "matrix(q, q)", "a": "vector(p)", "b": "vector(q)"}, True),
    # vec of a variable (issue 14): the adjoint unvec, and the vec trick (A ⊗ B) vec(X) = vec(B X Aᵀ)
    ("grad", "norm2(kron(A, B)*vec(X) - y)^2 + y'*vec(X*C) + sum(unvec(y, p, q) .* X)", ["X", "y"],
     {"A": "matrix(q, q)", "B": "matrix(p, p)", "C": "matrix(q, q)"}, True),
    # kron of a variable (issue 14): kron_adj_left / kron_adj_right as tensordot in every target
    ("grad", "logdet(kron(A, B)) + sum(kron(c, w).^2) + x'*kron(A, B)*x + sum(kron(A, X) .* C)",
     ["A", "B", "w", "x", "X"], {"A": "matrix(n, n)", "B": "matrix(p, p)", "X": "matrix(q, q)"}, False),
    ("grad", "sum(sin(kron(X, D)) .* C) + norm2(kron(x, y) - z)^2", ["X", "D", "x", "y"],
     {"D": "matrix(2, 3)"}, True),
    ("jacobian", "kron(X, A)", ["X", "A"], {"A": "matrix(2, 3)", "X": "matrix(3, 2)"}, True),
    ("hessian", "sum(kron(c, w).^2)", ["w"], None, True),
    ("grad", "f: function\nL = f(W*h + b)", ["W", "b", "h"], None, True),
    ("grad", "lambda: scalar\nL = norm2(A*x - y)^2 + lambda*norm2(x)^2", ["x", "lambda"], None, True),
    ("grad", "alpha*sum(exp(A*x)) + beta^2 + alpha*sum(x)", ["alpha", "beta", "x"], None, True),
    ("grad", "sigmoid(w'*x) + softplus(alpha) + sum(sigmoid(x))", ["w", "alpha"], None, True),
    ("grad", "sum(relu(W*x + b) .* c) + sum(step(x) .* x)", ["W", "b", "x"], None, True),
    ("grad", "sum(sqrt(x .* x + 1)) + norm1(A*x - y) + norm2(A)", ["x", "A"], None, True),
    ("grad", "sum(sin(A*x) .* cos(x)) + tan(alpha) + sum(abs(x))", ["A", "x", "alpha"], None, True),
    ("grad", "logsumexp(W*x + b) + y'*log(softmax(W*x))", ["W", "b"], None, True),
    # code that shares work (issue 17): one exp for logsumexp and softmax, sums for ones products
    ("grad", "logsumexp(W*x) - y'*W*x", ["W"], None, True),
    ("grad", "norm2(W2*tanh(W1*X + b1*ones(B)') + b2*ones(B)' - Y)^2 + sum(log(ones(k)'*exp(W2*tanh(W1*X))))",
     ["W1", "b1", "W2", "b2"], {"W1": "matrix(h, d)", "W2": "matrix(k, h)", "X": "matrix(d, B)"}, True),
    ("grad", "exp(2)*sum(x) + log(3) + softplus(1)*sqrt(2) + sum(x)*step(1) + logdet(x'*x)", ["x"], None, True),
    ("grad", "sum(arcsin(x) + arccos(x) + arctan(A*x) + sinh(x) + cosh(x) + expm1(x)) + sum(log1p(y))"
             " + max(alpha, beta) + sum(min(x, 0)) + sum(max(A*x, x)) + sum(x)/n + pi*alpha^2",
     ["x", "A", "alpha", "y"], {"x": "vector(n)"}, True),
    ("grad", "sum(logsumexp(X, 2)) + sum(logsumexp(X, 1)) + sum(softmax(X, 1) .* B) + sum(softmax(X, 2) .* B)"
             " + sum(sum(X, 1) .^ 2) + sum(mean(X, 2) .^ 2)", ["X"], {"X": "matrix(m, n)"}, True),
    # a batch's cross-entropy: value() has only the logsumexps, grad only the softmaxes,
    # value_and_grad both, computed together along each axis (one exp)
    ("grad", "sum(logsumexp(X, 1)) + sum(logsumexp(X, 2)) - sum(Y .* X)", ["X"], {"X": "matrix(m, n)"}, True),
    ("grad", "logdet(X) - tr(inv(X)*S) + det(X)", ["X", "S"], {"S": "symmetric(n)"}, False),
    ("grad", "sum(X^3) + tr(X^2) + sum(X .^ 3) + sum(x ./ y)", ["X", "y"], None, False),
    # matrix functions (issue 16): the kernels, the Fréchet adjoints, eigh, the norms, chol, solve
    ("grad", MATFUN_KERNELS, ["X", "P", "Q", "S"], MATFUN_LET, False),
    ("hessian", "tr(expm(X))", ["X"], None, False),
    ("grad", MATFUN_SPECTRAL, ["S", "A", "W", "X", "x", "Sigma"], MATFUN_LET, False),
]


def _ids(cases):
    return [f"{c}:{t.replace(chr(10), '; ')[:50]}" for c, t, *_ in cases]


def derivation(command, text, wrt, let):
    return getattr(matcalc, command)(text, wrt=wrt, let=let)


def module(d, target: str) -> dict:
    """The target's module, exec'd: its library is needed first (skipped without it, outside CI)."""
    need(TARGETS[target].imports[0].split()[1].split(".")[0])     # "import jax.numpy as jnp" -> jax
    namespace: dict = {}
    exec(compile(d.code(target), f"<matcalc {target}>", "exec"), namespace)
    return namespace


def numpy_inputs(d, seed=0) -> dict:
    """Keyword arguments (float64 NumPy arrays, float scalars) by parameter name."""
    program = d.program
    rng = np.random.default_rng(seed)
    dims = dimension_sizes(program, rng)
    for _ in range(20):      # a point of the domain: sqrt(v + epsilon) needs v + epsilon > 0
        env = sample_inputs(program, rng, dims)
        with np.errstate(all="ignore"):
            value = run_program(program, dict(env), opaque_functions(program), dims)(program.output)
        if np.all(np.isfinite(value)):
            break
    names = list(program.inputs) + sorted(program.functions) + ["grad_" + f for f in sorted(program.functions)]
    kwargs = {}
    for name in names:
        if name in program.inputs:
            kwargs[name] = to_user(env[name], program.inputs[name].shape)
        else:
            kwargs[name] = opaque_grad_f if name.startswith("grad_") and name[5:] in program.functions else opaque_f
    return kwargs


def call_all(d, namespace, kwargs_by_name, target: str) -> dict:
    """Every function of the module, called by keyword (the target's parameter names)."""
    params = list(inspect.signature(namespace["value"]).parameters)
    names = list(d.program.inputs) + sorted(d.program.functions) + ["grad_" + f for f in sorted(d.program.functions)]
    kwargs = {p: kwargs_by_name[n] for n, p in zip(names, params)}
    out = {"value": namespace["value"](**kwargs)}
    for w in d.results:
        out[w] = namespace[f"{d.command}_{w}"](**kwargs)
    together = namespace["value_and_grad"](**kwargs)
    assert isinstance(together, tuple) and len(together) == 1 + len(d.results), target
    out["value_and_grad"] = together
    return out


def assert_matches(got: dict, want: dict, to_numpy, target: str):
    for key, ref in want.items():
        if key == "value_and_grad":
            for g, r in zip(got[key], ref):
                _close(to_numpy(g), r, f"{target} value_and_grad")
        else:
            _close(to_numpy(got[key]), ref, f"{target} {key}")


def _close(a, b, what):
    a, b = np.asarray(a), np.asarray(b, dtype=float)
    assert a.shape == b.shape, f"{what}: shape {a.shape}, NumPy's {b.shape}"
    assert a.dtype == np.float64, f"{what}: dtype {a.dtype}"
    assert np.all(np.isfinite(b)), f"{what}: the reference is not finite at the sampled point"
    np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-11, err_msg=what)


def reference(d, kwargs):
    return call_all(d, module(d, "numpy"), kwargs, "numpy")


def convert(kwargs, to_array, scalar=float):
    """The inputs for another library: arrays converted, scalars through `scalar`, functions kept."""
    return {k: v if callable(v) else (scalar(v) if np.ndim(v) == 0 else to_array(v)) for k, v in kwargs.items()}


# ------------------------------------------------------------ JAX and PyTorch

def _jax():
    jax = need("jax")
    jax.config.update("jax_enable_x64", True)
    return importlib.import_module("jax.numpy").asarray, np.asarray


def _torch():
    torch = need("torch")
    return torch.from_numpy, lambda t: t.detach().numpy()


# library -> () -> (NumPy float64 array -> library array, library array -> NumPy array)
TO_LIBRARY = {"jax": _jax, "torch": _torch, "numpy": lambda: (np.asarray, np.asarray)}


@pytest.fixture(scope="module")
def torch():
    return need("torch")


@pytest.mark.parametrize("command, text, wrt, let, dask", CASES, ids=_ids(CASES))
def test_jax_module_matches_numpy(command, text, wrt, let, dask):
    to_array, to_numpy = TO_LIBRARY["jax"]()
    d = derivation(command, text, wrt, let)
    kwargs = numpy_inputs(d)
    got = call_all(d, module(d, "jax"), convert(kwargs, to_array), "jax")
    assert_matches(got, reference(d, kwargs), to_numpy, "jax")


@pytest.mark.parametrize("command, text, wrt, let, dask", [c for c in CASES if "f: function" not in c[1]
                                                           and c[1] not in NOT_JITTED],
                         ids=_ids([c for c in CASES if "f: function" not in c[1] and c[1] not in NOT_JITTED]))
def test_jax_module_runs_under_jit(command, text, wrt, let, dask):
    """Sizes come from .shape, which jit keeps static: the module traces as it is."""
    to_array, to_numpy = TO_LIBRARY["jax"]()
    jax = need("jax")
    d = derivation(command, text, wrt, let)
    kwargs = numpy_inputs(d)
    got = jax.jit(module(d, "jax")["value_and_grad"])(*convert(kwargs, to_array).values())   # in input order
    for g, w in zip(got, reference(d, kwargs)["value_and_grad"]):
        _close(to_numpy(g), w, "jax.jit value_and_grad")


@pytest.mark.parametrize("command, text, wrt, let, dask", CASES, ids=_ids(CASES))
def test_torch_module_matches_numpy(command, text, wrt, let, dask, torch):
    d = derivation(command, text, wrt, let)
    kwargs = numpy_inputs(d)
    want = reference(d, kwargs)
    to_numpy = lambda t: t.detach().numpy() if isinstance(t, torch.Tensor) else t
    for scalar in (float, lambda v: torch.tensor(v, dtype=torch.float64)):   # Python floats, 0-d tensors
        got = call_all(d, module(d, "torch"), convert(kwargs, torch.from_numpy, scalar), "torch")
        for v in [got["value"], *got["value_and_grad"]]:
            assert isinstance(v, torch.Tensor)
        assert_matches(got, want, to_numpy, "torch")


def test_torch_integer_labels_leave_scalars_floating(torch):
    """Integer labels y beside float64 data: scalars and constants follow the variable w."""
    d = matcalc.grad("lambda: scalar\nL = sum(log(1 + exp(-y .* (X*w)))) + lambda*norm2(w)^2 + sum(w)",
                     wrt=["w"])
    rng = np.random.default_rng(4)
    X, w, y = rng.standard_normal((6, 3)), rng.standard_normal(3), rng.choice([-1, 1], 6)
    want = module(d, "numpy")["value_and_grad"](y, X, w, 0.1)
    got = module(d, "torch")["value_and_grad"](*map(torch.from_numpy, (y, X, w)), 0.1)
    for g, ref in zip(got, want):
        _close(g.numpy(), ref, "torch, integer y")


def test_torch_module_differentiates_under_autograd(torch):
    """The generated gradient agrees with torch's own autograd through the generated value."""
    d = matcalc.grad(MLP, wrt=["W1", "b2"])
    ns = module(d, "torch")
    kwargs = convert(numpy_inputs(d), torch.from_numpy)
    kwargs["W1"].requires_grad_(True)
    kwargs["b2"].requires_grad_(True)
    ns["value"](**kwargs).backward()
    np.testing.assert_allclose(ns["grad_W1"](**kwargs).detach(), kwargs["W1"].grad, rtol=1e-10)
    np.testing.assert_allclose(ns["grad_b2"](**kwargs).detach(), kwargs["b2"].grad, rtol=1e-10)


# ------------------------------------------------------------ the array API module

@pytest.mark.parametrize("command, text, wrt, let, dask", CASES, ids=_ids(CASES))
def test_array_api_module_under_strict_and_numpy(command, text, wrt, let, dask):
    """array_api_strict rejects every function and behaviour outside the standard."""
    strict = need("array_api_strict")
    d = derivation(command, text, wrt, let)
    kwargs = numpy_inputs(d)
    want = reference(d, kwargs)
    ns = module(d, "array-api")
    got = call_all(d, ns, convert(kwargs, strict.asarray), "array-api strict")
    for v in [got["value"], *got["value_and_grad"]]:
        assert type(v).__module__.startswith("array_api_strict"), type(v)
    assert_matches(got, want, np.from_dlpack, "array-api strict")
    got = call_all(d, ns, convert(kwargs, strict.asarray, strict.asarray), "array-api strict, 0-d scalars")
    assert_matches(got, want, np.from_dlpack, "array-api strict, 0-d scalars")
    assert_matches(call_all(d, ns, kwargs, "array-api numpy"), want, np.asarray, "array-api numpy")


@pytest.mark.parametrize("library", ["torch", "jax"])
@pytest.mark.parametrize("command, text, wrt, let, dask", CASES, ids=_ids(CASES))
def test_array_api_module_under_torch_and_jax(command, text, wrt, let, dask, library):
    """The same module on torch tensors and JAX arrays (array_api_compat picks the namespace)."""
    to_array, to_numpy = TO_LIBRARY[library]()
    d = derivation(command, text, wrt, let)
    kwargs = numpy_inputs(d)
    got = call_all(d, module(d, "array-api"), convert(kwargs, to_array), f"array-api {library}")
    assert_matches(got, reference(d, kwargs), to_numpy, f"array-api {library}")


@pytest.mark.parametrize("command, text, wrt, let, dask", [c for c in CASES if c[-1]],
                         ids=_ids([c for c in CASES if c[-1]]))
def test_array_api_module_under_dask(command, text, wrt, let, dask):
    da = need("dask.array")
    d = derivation(command, text, wrt, let)
    kwargs = numpy_inputs(d)
    got = call_all(d, module(d, "array-api"), convert(kwargs, lambda a: da.from_array(a, chunks=2)), "dask")
    assert isinstance(got["value"], da.Array)
    assert_matches(got, reference(d, kwargs), lambda a: a.compute(), "array-api dask")


def test_array_api_least_squares_on_chunked_dask():
    """∂/∂w ‖X w − y‖² for a 200,000 × 50 X in 20,000-row chunks, computed by Dask's scheduler."""
    da = need("dask.array")
    d = matcalc.grad("norm2(X*w - y)^2", wrt="w")
    rng = np.random.default_rng(5)
    X, w, y = rng.standard_normal((200_000, 50)), rng.standard_normal(50), rng.standard_normal(200_000)
    ns = module(d, "array-api")
    Xd, yd = da.from_array(X, chunks=(20_000, 50)), da.from_array(y, chunks=20_000)
    g = ns["grad_w"](X=Xd, w=da.from_array(w), y=yd)
    assert isinstance(g, da.Array) and g.shape == (50,)
    assert Xd.numblocks == (10, 1)
    np.testing.assert_allclose(g.compute(scheduler="threads"), 2 * X.T @ (X @ w - y), rtol=1e-9)
    np.testing.assert_allclose(g.compute(), module(d, "numpy")["grad_w"](X=X, w=w, y=y), rtol=1e-9)


# ------------------------------------------------------------ the tables and the API

@pytest.mark.parametrize("target", TARGETS)
def test_every_target_spells_every_function_and_operation(target):
    t = TARGETS[target]
    assert set(t.functions) == set(Fn) - {Fn.VEC}, (set(Fn) - {Fn.VEC}) ^ set(t.functions)   # vec is an op
    assert set(t.ops) - OPTIONAL_OPS == set(OPS)
    for name in t.helpers:
        tree = ast.parse(t.helper_source(name))
        assert [n.name for n in tree.body] == [name]


@pytest.mark.parametrize("target", TARGETS)
def test_every_spelling_is_run_by_some_case(target):
    """Each template's text (its longest literal part) occurs in some case's module."""
    t = TARGETS[target]
    sources = "\n".join(derivation(*case[:4]).code(target) for case in CASES)
    for key, template in [*t.functions.items(), *t.ops.items()]:
        text = template.text if isinstance(template, Form) else template
        literal = max(re.split(r"\{\w+\}", text), key=len)
        assert literal in sources, f"no case runs {key}: {text}"


def test_api_methods_and_unknown_target():
    d = matcalc.grad("x'*A*x", wrt="x")
    assert d.jax() == d.code("jax") and d.torch() == d.code("torch")
    assert d.array_api() == d.code("array-api") and d.numpy() == d.code()
    with pytest.raises(UsageError):
        d.code("tensorflow")
    f = d.function("array-api")
    x, A = np.array([1.0, 2.0]), np.array([[1.0, 2.0], [3.0, 4.0]])
    assert np.allclose(f.grad_x(x=x, A=A), (A + A.T) @ x)
    assert not hasattr(f, "array_api_compat")


@pytest.mark.parametrize("target", TARGETS)
def test_cli_format_prints_the_module(target, tmp_path):
    """--format TARGET is d.code(TARGET); with --check the report follows as comments."""
    args = ["grad", "x'*A*x", "--wrt", "x", "--let", "A: matrix(n, n)", "--format", target]
    p = subprocess.run([sys.executable, "-m", "matcalc", *args, "--check", "-o", str(tmp_path / "m.py")],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    source = (tmp_path / "m.py").read_text("utf-8")
    code = matcalc.grad("x'*A*x", wrt="x", let={"A": "matrix(n, n)"}).code(target)
    assert source.startswith(code + "\n# check: passed"), source
    ast.parse(source)


def test_import_matcalc_loads_no_target_library():
    code = ("import sys, matcalc; d = matcalc.grad('x\\'*A*x', wrt='x'); "
            "[d.code(t) for t in ('jax', 'torch', 'array-api')]; "
            "print(sorted(m for m in ('jax', 'torch', 'array_api_compat', 'dask') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# ------------------------------------------------------------ the generated code is safe

RISKY = ["torch", "jnp", "jax", "xp", "array_api_compat", "np", "value", "lambda", "print", "float"]


@pytest.mark.parametrize("target", TARGETS)
def test_source_imports_only_its_library_and_uses_only_its_names(target):
    """Each module imports its library alone; every name a function uses is its parameter,
    its local, a module-level name or one its import binds: no builtins, nothing else."""
    t = TARGETS[target]
    d = matcalc.grad("lambda: scalar\n" + MLP.replace("L =", "L = lambda*sum(softmax(a2)) + logsumexp(x) +"),
                     wrt=["W1", "lambda"])
    source = d.code(target)
    tree = ast.parse(source)
    imports = [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert [ast.unparse(n) for n in imports] == list(t.imports) and all(n in tree.body for n in imports)
    bound = {(a.asname or a.name) for n in imports for a in n.names}
    module_level = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)} | bound
    for fn in (n for n in tree.body if isinstance(n, ast.FunctionDef)):
        params = {a.arg for a in fn.args.args} | {a.arg for a in (fn.args.vararg, fn.args.kwarg) if a}
        assigned = {n.id for n in ast.walk(fn) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
        for n in ast.walk(fn):
            if isinstance(n, ast.Name):
                assert n.id in params | assigned | module_level, f"{fn.name} uses {n.id!r}:\n{source}"
            if isinstance(n, ast.Attribute):
                assert not n.attr.startswith("__")
    assert {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}.isdisjoint(dir(builtins))


@pytest.mark.parametrize("target", TARGETS)
def test_risky_names_are_renamed(target):
    """Names that are keywords, builtins or the module's own (torch, jnp, xp, ...) get
    underscores, and the module still computes what the NumPy one does."""
    lets = {name: "vector(n)" for name in RISKY if name != "lambda"} | {"lambda": "scalar"}
    text = " + ".join(f"sum(exp({n}) .* x)" for n in RISKY if n != "lambda") + " + lambda*x'*x"
    d = matcalc.grad(text, wrt=["x", "torch", "xp", "lambda"], let=lets)
    ns = module(d, target)
    params = list(inspect.signature(ns["value"]).parameters)
    own = set(TARGETS[target].bound) | {"value", "value_and_grad", "grad_x", "grad_torch", "grad_xp", "grad_lambda"}
    assert len(params) == len(RISKY) + 1         # and x
    for p in params:
        assert not keyword.iskeyword(p) and p not in dir(builtins) and p not in own, p
    assert {name + "_" for name in TARGETS[target].bound & set(RISKY)} <= set(params)
    to_array, to_numpy = TO_LIBRARY.get(target, TO_LIBRARY["numpy"])()
    rng = np.random.default_rng(1)
    args = [0.3 if p.startswith("lambda") else rng.uniform(-1, 1, 3) for p in params]
    want = module(d, "numpy")["value_and_grad"](*args)
    got = ns["value_and_grad"](*[a if np.ndim(a) == 0 else to_array(a) for a in args])
    for g, w in zip(got, want):
        np.testing.assert_allclose(to_numpy(g), w, rtol=1e-12)


@pytest.mark.parametrize("target", TARGETS)
def test_input_text_besides_identifiers_never_reaches_the_code(target):
    program = ('# secret: the password is hunter2\nW: matrix(m, n)  # secret\n'
               'L = norm2(W*h)^2 # """; import os; os.system("secret")')
    source = matcalc.grad(program, wrt="W").code(target)
    for word in ["secret", "hunter2", "password", "import os", "os.system"]:
        assert word not in source, f"{word!r} leaked into the {target} code"
    code = re.sub(r'""".*?"""', "", source, flags=re.S)      # the docstrings, with the derivation
    assert set(re.findall(r"[A-Za-z_]\w*", code)).isdisjoint({"os", "system"})


# ------------------------------------------------------------ random expressions

from hypothesis import assume, given, settings, strategies as st  # noqa: E402

from tests.test_fuzz import LET as FUZZ_LET, scalar_exprs  # noqa: E402


@settings(max_examples=150, deadline=None)
@given(scalar_exprs(), st.integers(0, 1000))
def test_random_expressions_match_numpy_in_every_target(text, choice):
    """The fuzzer's random expressions: every target's module computes what the NumPy
    one does (which test_fuzz checks against finite differences).  Found this way:
    norm2(0)^2 reached torch and array API code as a reduction of a Python float, and
    a torch program of Python-float scalars alone ran in torch's default float32."""
    program = matcalc.parse(text, FUZZ_LET)
    assume(program.inputs and not program.functions)
    wrt = list(program.inputs)[choice % len(program.inputs)]
    d = matcalc.grad(text, wrt, let=FUZZ_LET)
    kwargs = numpy_inputs(d, seed=choice)
    with np.errstate(all="ignore"):
        want = reference(d, kwargs)
    assume(all(np.all(np.isfinite(v)) for v in want["value_and_grad"]))
    for library in [lib for lib in ("jax", "torch") if available(lib)]:  # Python-float scalars, as a user would pass them
        to_array, to_numpy = TO_LIBRARY[library]()
        got = call_all(d, module(d, library), convert(kwargs, to_array), library)
        assert_matches(got, want, to_numpy, library)
    strict = need("array_api_strict")
    got = call_all(d, module(d, "array-api"), convert(kwargs, strict.asarray, strict.asarray), "array-api")
    assert_matches(got, want, np.from_dlpack, "array-api strict")
