"""The code targets as data: how NumPy, JAX, PyTorch and the array API spell things.

Layer L2: imports expr and the elementwise registry.  The printer in code.py
is shared; a Target says only what differs: the import, the names the module
binds, a spelling per function and structural operation, and the helper
functions.  A template fills {x} (or {a}, {b}, ...) with operand source; an
operand that occurs twice in a template is first bound to a name, so it is
computed once.  A module defines the helpers (`_name`) its code calls.
Every generated module imports only its own library: jax/torch/array_api_compat
appear here as text, never as imports of matcalc.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Callable

from ..expr import Fn
from ..matfun_kernels import KERNELS
from ..rules.elementwise import ELEMENTWISE
from .plans import _chain_multiply_adds, _cheapest

ADD, MUL, UNARY, POW, ATOM = range(1, 6)     # the generated code's precedence levels


@dataclass(frozen=True)
class Form:
    """A template, the precedence of what it produces, and the precedence below
    which its operands are parenthesised (0: never, they sit inside a call)."""
    text: str
    prec: int = ATOM
    operand: int = 0


def form(t: str | Form) -> Form:
    return t if isinstance(t, Form) else Form(t)


@dataclass(frozen=True)
class Target:
    name: str
    imports: tuple[str, ...]
    bound: frozenset[str]          # names the module or every function binds: inputs get renamed around them
    functions: dict[Fn, str | Form]
    ops: dict[str, str | Form]     # eye zeros full outer frobenius kron flatten unflatten vec unvec kron_adj_left kron_adj_right
                                   # matrix_power commutation
                                   # (multi_dot where the library has it)
    helpers: dict[str, str | Callable]   # helper name -> its source, or a kernel whose source it is
    inputs_doc: str
    # Every function's first lines: the namespace, then each scalar input made an array.
    namespace_line: str = ""       # {arrays}: the array parameters
    scalar_line: str = ""          # {s}: a scalar parameter, {like}: dtype/device of an array input
    like: str = ""                 # {r}: an array input whose dtype and device constants follow
    like_without_arrays: str = ""  # the same where every input is a scalar
    constant: str = ""             # {v}: a constant as an array, where functions take no floats

    def helpers_used(self, text: str) -> set[str]:
        """The helpers the text names, and those they name in turn."""
        used: set[str] = set()
        todo = [text]
        while todo:
            for h in re.findall(r"\b(_[a-z][a-z_]*)\b", todo.pop()):
                if h in self.helpers and h not in used:
                    used.add(h)
                    todo.append(self.helper_source(h))
        return used

    def helper_source(self, name: str) -> str:
        helper = self.helpers[name]
        return helper if isinstance(helper, str) else _source(helper)


@functools.cache
def _source(kernel: Callable) -> str:
    """A kernel's source, read when a module first needs it (not at import: start-up time)."""
    import inspect
    return inspect.getsource(kernel)


# Elementwise and reduction helpers: one text, spelled per namespace.  With
# `param`, the helper takes the namespace as its first argument (array API).
def _numeric_helpers(ns: str, param: str = "", positive_part: str = "{ns}.maximum(x, 0.0)",
                     axis_max: str = "max") -> dict[str, str]:
    """axis_max: the namespace's maximum along an axis that returns only the values
    (torch.max with a dim returns values and indices: torch.amax)."""
    return {
        "_softplus": f'''def _softplus({param}x):
    return {positive_part.format(ns=ns)} + {ns}.log1p({ns}.exp(-{ns}.abs(x)))   # = log(1 + exp(x)), without overflow
''',
        "_sigmoid": f'''def _sigmoid({param}x):
    return 0.5 * (1.0 + {ns}.tanh(0.5 * x))       # = 1/(1 + exp(-x)), without overflow
''',
        "_softmax": f'''def _softmax({param}x):
    z = {ns}.exp(x - {ns}.max(x))
    return z / {ns}.sum(z)
''',
        "_logsumexp": f'''def _logsumexp({param}x):
    m = {ns}.max(x)
    return m + {ns}.log({ns}.sum({ns}.exp(x - m)))
''',
        # along an axis of a matrix (0: down each column, 1: across each row), shifted by the max
        "_softmax_axis": f'''def _softmax_axis({param}x, axis):
    z = {ns}.exp(x - {ns}.max(x, axis=axis, keepdims=True))
    return z / {ns}.sum(z, axis=axis, keepdims=True)
''',
        "_logsumexp_axis": f'''def _logsumexp_axis({param}x, axis):
    m = {ns}.max(x, axis=axis, keepdims=True)
    return {ns}.reshape(m + {ns}.log({ns}.sum({ns}.exp(x - m), axis=axis, keepdims=True)), (-1,))
''',
        # both along an axis (a batch's cross-entropy and its gradient): one exp
        "_logsumexp_softmax_axis": f'''def _logsumexp_softmax_axis({param}x, axis):
    m = {ns}.{axis_max}(x, axis=axis, keepdims=True)
    z = {ns}.exp(x - m)
    s = {ns}.sum(z, axis=axis, keepdims=True)
    return {ns}.reshape(m + {ns}.log(s), (-1,)), z / s
''',
        # both, where a function needs both (a cross-entropy and its gradient): one exp
        "_logsumexp_softmax": f'''def _logsumexp_softmax({param}x):
    m = {ns}.max(x)
    z = {ns}.exp(x - m)
    s = {ns}.sum(z)
    return m + {ns}.log(s), z / s
''',
    }


# Spelled `ns.name(x)` in every target.
_SAME_NAME = [Fn.EXP, Fn.LOG, Fn.SIN, Fn.COS, Fn.TAN, Fn.TANH, Fn.SQRT, Fn.ABS, Fn.SIGN,
              Fn.SINH, Fn.COSH, Fn.LOG1P, Fn.EXPM1]
# NumPy's, JAX's and PyTorch's names; the array API standard spells them asin, acos, atan.
_INVERSE_TRIG = {Fn.ARCSIN: "arcsin", Fn.ARCCOS: "arccos", Fn.ARCTAN: "arctan"}


def _common(ns: str, param: str = "") -> dict[Fn, str]:
    """The functions every target spells alike, but for its namespace (and the
    helpers' namespace parameter, as in _numeric_helpers)."""
    return {**{fn: f"{ns}.{fn.text}({{x}})" for fn in _SAME_NAME},
            **{fn: f"_{fn.text}({param}{{x}})" for fn in (Fn.SIGMOID, Fn.SOFTPLUS, Fn.SOFTMAX, Fn.LOGSUMEXP)},
            Fn.DET: f"{ns}.linalg.det({{x}})",
            Fn.LOGDET: f"{ns}.linalg.slogdet({{x}})[1]",
            Fn.INV: f"{ns}.linalg.inv({{x}})",
            Fn.SUM: f"{ns}.sum({{x}})",
            Fn.NORM1: f"{ns}.sum({ns}.abs({{x}}))",
            **_axis_functions(ns, param)}


def _axis_functions(ns: str, param: str = "", axis: str = "axis") -> dict[Fn, str]:
    """Along an axis of a matrix: the result is 1-D, as every vector in generated code."""
    return {Fn.SUM_COLS: f"{ns}.sum({{x}}, {axis}=0)", Fn.SUM_ROWS: f"{ns}.sum({{x}}, {axis}=1)",
            Fn.SOFTMAX_COLS: f"_softmax_axis({param}{{x}}, 0)", Fn.SOFTMAX_ROWS: f"_softmax_axis({param}{{x}}, 1)",
            Fn.LOGSUMEXP_COLS: f"_logsumexp_axis({param}{{x}}, 0)",
            Fn.LOGSUMEXP_ROWS: f"_logsumexp_axis({param}{{x}}, 1)"}


# Matrix functions (docs/matrix-functions.md): the kernels of matfun_kernels.py,
# copied into the module, take the namespace as their first argument.
MATFUN_HELPERS: dict[str, Callable] = dict(KERNELS)
# Which products to form once, where that depends on the sizes (plans.py): pure Python.
PLAN_HELPERS: dict[str, Callable] = {"_cheapest": _cheapest, "_chain_multiply_adds": _chain_multiply_adds}


def _matfun(ns: str, linalg: str = "") -> dict[Fn, str]:
    """The matrix functions, spelled for a namespace (`linalg`: its linear-algebra module)."""
    la = linalg or f"{ns}.linalg"
    return {Fn.EXPM: f"_expm({ns}, {{x}})", Fn.LOGM: f"_logm({ns}, {{x}})", Fn.SQRTM: f"_sqrtm({ns}, {{x}})",
            Fn.EIGVALS: f"{la}.eigvalsh({{x}})", Fn.EIGMAX: f"{la}.eigvalsh({{x}})[-1]",
            Fn.EIGMIN: f"{la}.eigvalsh({{x}})[0]", Fn.EIGVECS: f"{la}.eigh({{x}})[1]",
            Fn.EIGVEC_MAX: f"{la}.eigh({{x}})[1][:, -1]", Fn.EIGVEC_MIN: f"{la}.eigh({{x}})[1][:, 0]",
            Fn.NORM_NUC: f"{la}.matrix_norm({{x}}, ord='nuc')", Fn.NORM_SPEC: f"{la}.matrix_norm({{x}}, ord=2)",
            Fn.CHOL: f"{la}.cholesky({{x}})", Fn.PINV: f"{la}.pinv({{x}})",
            Fn.ADJ: Form(f"{la}.det({{x}}) * {la}.inv({{x}})", MUL),
            Fn.TRIL_HALF: Form(f"{ns}.tril({{x}}) - 0.5 * {ns}.tril({ns}.triu({{x}}))", ADD),
            Fn.POLAR: f"_polar({ns}, {{x}})"}


def _matfun_ops(ns: str, diagonal: str) -> dict[str, str | Form]:
    return {"solve": f"{ns}.linalg.solve({{a}}, {{b}})",
            # logdet of a declared SPD matrix: 2 Σ log diag(chol S), n³/3 flops against an LU's 2n³/3
            "logdet_spd": Form(f"2.0 * {ns}.sum({ns}.log({diagonal}({ns}.linalg.cholesky({{x}}))))", MUL),
            "frechet_adj": f"_frechet_adj({ns}, {{f}}, {{x}}, {{g}})",
            "frechet_jac": f"_frechet_jac({ns}, {{f}}, {{x}})",
            # a symmetric argument: its eigendecomposition (Daleckii–Krein for the derivative)
            "spectral": f"_spectral({ns}, {{f}}, {{x}})",
            "loewner_adj": f"_loewner_adj({ns}, {{f}}, {{x}}, {{g}})"}


# A chain of three or more matrices in the cheapest order for the arrays' sizes, with @ on
# the arrays as they are (transposed views included): numpy.linalg.multi_dot checks and
# converts its operands, 30-60 µs a call on attention's 128×256 chains (bench/dl_losses.py).
MULTI_DOT = '''def _multi_dot(arrays):
    """A chain of matrices in the cheapest order for their sizes (as numpy.linalg.multi_dot)."""
    if len(arrays) == 3:
        a, b, c = arrays
        (p, q), r, s = a.shape, b.shape[1], c.shape[1]
        return (a @ b) @ c if p * r * (q + s) <= q * s * (p + r) else a @ (b @ c)
    n = len(arrays)
    dims = [a.shape[0] for a in arrays] + [arrays[-1].shape[1]]
    cost = {(i, i): 0 for i in range(n)}
    split = {}
    for length in range(1, n):
        for i in range(n - length):
            j = i + length
            cost[i, j], split[i, j] = min((cost[i, k] + cost[k + 1, j] + dims[i] * dims[k + 1] * dims[j + 1], k)
                                          for k in range(i, j))

    def product(i, j):
        return arrays[i] if i == j else product(i, split[i, j]) @ product(split[i, j] + 1, j)
    return product(0, n - 1)
'''


# ------------------------------------------------------------------ NumPy
NUMPY_COMMUTATION = '''def _commutation(m, n):
    """K with K @ A.reshape(-1, order="F") == A.T.reshape(-1, order="F") for an m x n A."""
    r, c = np.meshgrid(np.arange(m), np.arange(n), indexing="ij")
    k = np.zeros((m * n, m * n))
    k[(c + r * n).ravel(), (r + c * m).ravel()] = 1.0
    return k
'''

NUMPY = Target(
    name="numpy",
    imports=("import numpy as np",),
    bound=frozenset({"np"}),
    functions={
        **_common("np"),
        Fn.TRACE: "np.trace({x})",
        Fn.DIAG: "np.diag({x})",
        Fn.DIAGV: "np.diag({x})",
        Fn.NORM2: "np.linalg.norm({x})",
        **{fn: entry.code for fn, entry in ELEMENTWISE.items()},     # the registry's NumPy spelling
        **_matfun("np"),
    },
    ops={
        "eye": "np.eye({n})",
        "zeros": "np.zeros({shape})",
        "full": "np.full({shape}, {v})",
        "outer": "np.outer({a}, {b})",
        "sum_axis": "np.sum({x}, axis={axis})",     # A @ ones, ones' @ A: a sum, no multiplications
        "logsumexp_softmax": "_logsumexp_softmax({x})",
        "logsumexp_softmax_cols": "_logsumexp_softmax_axis({x}, 0)",
        "logsumexp_softmax_rows": "_logsumexp_softmax_axis({x}, 1)",
        "multi_dot": "_multi_dot([{xs}])",     # three or more matrices: cheapest order
        "step_mask": "np.greater({x}, 0.0)",      # step(x) beside a float factor: the product casts
        "frobenius": "np.vdot({a}, {b})",
        "kron": "np.kron({a}, {b})",
        "flatten": Form("{x}.reshape(-1)", operand=ATOM),
        "unflatten": Form("{x}.reshape({r}, {c})", operand=ATOM),       # row-major, as flatten
        "vec": Form("{x}.reshape(-1, order='F')", operand=ATOM),
        "unvec": Form("{x}.reshape({c}, {r}).T", operand=ATOM),      # vec stacks columns
        # the Kronecker adjoints contract G's blocks, never forming A ⊗ M (docs/kron-vec.md)
        "kron_adj_left": Form("np.tensordot({a}.reshape({p}, {q}), {g}.reshape({p}, {m}, {q}, {n}), "
                              "axes=([0, 1], [0, 2]))", operand=ATOM),
        "kron_adj_right": Form("np.tensordot({g}.reshape({m}, {p}, {n}, {q}), {b}.reshape({p}, {q}), "
                               "axes=([1, 3], [0, 1]))", operand=ATOM),
        "matrix_power": "np.linalg.matrix_power({x}, {k})",
        "commutation": "_commutation({m}, {n})",
        **_matfun_ops("np", "np.diag"),
    },
    helpers={**_numeric_helpers("np"), "_commutation": NUMPY_COMMUTATION, "_multi_dot": MULTI_DOT,
             **MATFUN_HELPERS, **PLAN_HELPERS},
    inputs_doc="vectors are 1-D arrays, scalars floats",
)


# ------------------------------------------------------------------ JAX
# jax.numpy mirrors NumPy's names, so its table is NumPy's respelled; only the
# commutation matrix differs (JAX arrays are immutable: no item assignment).
def _respell(t: str | Form, ns: str) -> str | Form:
    sub = lambda s: re.sub(r"\bnp\b", ns, s)       # np.f(x) and the namespace argument _f(np, x)
    return Form(sub(t.text), t.prec, t.operand) if isinstance(t, Form) else sub(t)


JAX = Target(
    name="jax",
    imports=("import jax.numpy as jnp",),
    bound=frozenset({"jnp"}),
    # step keeps x's dtype (JAX may run in float32); under jit it fuses anyway
    functions={**{fn: _respell(t, "jnp") for fn, t in NUMPY.functions.items()},
               Fn.STEP: "jnp.heaviside({x}, 0.0)"},
    ops={k: _respell(t, "jnp") for k, t in NUMPY.ops.items()},
    helpers={**_numeric_helpers("jnp"), **MATFUN_HELPERS, **PLAN_HELPERS, "_multi_dot": MULTI_DOT,
             "_commutation": '''def _commutation(m, n):
    """K with K @ vec(A) == vec(A.T) for an m x n A (vec stacks columns): rows of I, permuted."""
    j = jnp.arange(m * n)
    return jnp.eye(m * n)[j // n + j % n * m]
'''},
    inputs_doc="vectors are 1-D arrays, matrices 2-D, scalars floats or 0-d arrays",
)


# ------------------------------------------------------------------ PyTorch
# Torch functions take tensors, not floats: scalar inputs become 0-d tensors
# first, and constants get the dtype and device of an array variable.
TORCH = Target(
    name="torch",
    imports=("import torch",),
    bound=frozenset({"torch"}),
    functions={
        **_common("torch"),
        Fn.STEP: "torch.relu(torch.sign({x}))",      # x's dtype; torch.heaviside is ~3× slower
        Fn.RELU: "torch.relu({x})",
        **{fn: f"torch.{name}({{x}})" for fn, name in _INVERSE_TRIG.items()},
        **_axis_functions("torch", axis="dim"),
        Fn.SOFTMAX_COLS: "torch.softmax({x}, dim=0)", Fn.SOFTMAX_ROWS: "torch.softmax({x}, dim=1)",
        Fn.LOGSUMEXP_COLS: "torch.logsumexp({x}, dim=0)", Fn.LOGSUMEXP_ROWS: "torch.logsumexp({x}, dim=1)",
        Fn.TRACE: "torch.trace({x})",
        Fn.DIAG: "torch.diag({x})",
        Fn.DIAGV: "torch.diagonal({x})",
        Fn.NORM2: "torch.linalg.vector_norm({x})",
        **_matfun("torch"),
    },
    ops={
        **_matfun_ops("torch", "torch.diagonal"),
        "eye": "torch.eye({n}{like})",
        "zeros": "torch.zeros({shape}{like})",
        "full": "torch.full({dims}, {v}{like})",
        "outer": "torch.outer({a}, {b})",
        "sum_axis": "torch.sum({x}, dim={axis})",
        "logsumexp_softmax": "_logsumexp_softmax({x})",
        "logsumexp_softmax_cols": "_logsumexp_softmax_axis({x}, 0)",
        "logsumexp_softmax_rows": "_logsumexp_softmax_axis({x}, 1)",
        "multi_dot": "torch.linalg.multi_dot([{xs}])",
        "frobenius": Form("torch.sum({a} * {b})", operand=MUL + 1),
        "kron": "_kron({a}, {b})",
        "flatten": Form("{x}.reshape(-1)", operand=ATOM),
        "unflatten": Form("{x}.reshape({r}, {c})", operand=ATOM),
        "vec": Form("{x}.T.reshape(-1)", operand=ATOM),
        "unvec": Form("{x}.reshape({c}, {r}).T", operand=ATOM),
        "kron_adj_left": Form("torch.tensordot({a}.reshape({p}, {q}), {g}.reshape({p}, {m}, {q}, {n}), "
                              "dims=([0, 1], [0, 2]))", operand=ATOM),
        "kron_adj_right": Form("torch.tensordot({g}.reshape({m}, {p}, {n}, {q}), {b}.reshape({p}, {q}), "
                               "dims=([1, 3], [0, 1]))", operand=ATOM),
        "matrix_power": "torch.linalg.matrix_power({x}, {k})",
        "commutation": "_commutation({m}, {n}{like})",
    },
    helpers={**_numeric_helpers("torch", positive_part="torch.relu(x)", axis_max="amax"), **MATFUN_HELPERS, **PLAN_HELPERS,
             "_expm": '''def _expm(xp, a):
    return torch.linalg.matrix_exp(a)
''',
             # torch.kron (2.13) raises on a transposed, non-contiguous operand: kron(B.T, A)
             "_kron": '''def _kron(a, b):
    p, q = a.shape
    r, s = b.shape
    return (a[:, None, :, None] * b[None, :, None, :]).reshape(p * r, q * s)
''',
             "_commutation": '''def _commutation(m, n, dtype=None, device=None):
    """K with K @ vec(A) == vec(A.T) for an m x n A (vec stacks columns): rows of I, permuted."""
    j = torch.arange(m * n, device=device)
    return torch.eye(m * n, dtype=dtype, device=device)[j // n + j % n * m]
'''},
    inputs_doc="vectors are 1-D tensors, matrices 2-D, scalars 0-d tensors or floats",
    scalar_line="{s} = torch.as_tensor({s}{like})",
    constant="torch.as_tensor({v}{like})",
    like="dtype={r}.dtype, device={r}.device",
    like_without_arrays="dtype=torch.float64",     # Python floats are doubles; torch's default is float32
)


# ------------------------------------------------------------------ the array API standard
# Only functions of the standard (and its linalg extension), looked up at call
# time in the namespace of the arguments; helpers take that namespace.  The
# standard has no kron, no vector->matrix diag and no 2-D `order='F'` reshape:
# each is a helper or a transpose.
ARRAY_API = Target(
    name="array-api",
    imports=("import array_api_compat",),
    bound=frozenset({"array_api_compat", "xp"}),
    functions={
        **_common("xp", "xp, "),
        Fn.STEP: "xp.astype({x} > 0, {x}.dtype)",
        Fn.RELU: "xp.maximum({x}, 0.0)",
        **{fn: f"xp.a{name[3:]}({{x}})" for fn, name in _INVERSE_TRIG.items()},
        Fn.TRACE: "xp.linalg.trace({x})",
        Fn.DIAG: "_diag(xp, {x})",
        Fn.DIAGV: "xp.linalg.diagonal({x})",
        Fn.NORM2: "xp.linalg.vector_norm({x})",
        **_matfun("xp"),
    },
    ops={
        **_matfun_ops("xp", "xp.linalg.diagonal"),
        "eye": "xp.eye({n}{like})",
        "zeros": "xp.zeros({shape}{like})",
        "full": Form("{v} * xp.ones({shape}{like})", MUL, MUL),   # xp.full wants a Python scalar
        "outer": "xp.linalg.outer({a}, {b})",
        "sum_axis": "xp.sum({x}, axis={axis})",
        "logsumexp_softmax": "_logsumexp_softmax(xp, {x})",
        "logsumexp_softmax_cols": "_logsumexp_softmax_axis(xp, {x}, 0)",
        "logsumexp_softmax_rows": "_logsumexp_softmax_axis(xp, {x}, 1)",
        "multi_dot": "_multi_dot([{xs}])",         # the standard has none: the helper's order
        "frobenius": Form("xp.sum({a} * {b})", operand=MUL + 1),
        "kron": "_kron(xp, {a}, {b})",
        "flatten": "xp.reshape({x}, (-1,))",
        "unflatten": "xp.reshape({x}, ({r}, {c}))",
        "vec": Form("xp.reshape({x}.T, (-1,))", operand=ATOM),
        "unvec": "xp.reshape({x}, ({c}, {r})).T",
        "kron_adj_left": "xp.tensordot(xp.reshape({a}, ({p}, {q})), xp.reshape({g}, ({p}, {m}, {q}, {n})), "
                         "axes=((0, 1), (0, 2)))",
        "kron_adj_right": "xp.tensordot(xp.reshape({g}, ({m}, {p}, {n}, {q})), xp.reshape({b}, ({p}, {q})), "
                          "axes=((1, 3), (0, 1)))",
        "matrix_power": "xp.linalg.matrix_power({x}, {k})",
        "commutation": "_commutation(xp, {m}, {n}{like})",
    },
    helpers={**_numeric_helpers("xp", "xp, "), **MATFUN_HELPERS, **PLAN_HELPERS,
             "_multi_dot": MULTI_DOT,
             "_diag": '''def _diag(xp, v):
    return v[:, None] * xp.eye(v.shape[0], dtype=v.dtype, device=array_api_compat.device(v))
''',
             "_kron": '''def _kron(xp, a, b):
    p, q = a.shape
    r, s = b.shape
    return xp.reshape(a[:, None, :, None] * b[None, :, None, :], (p * r, q * s))
''',
             "_commutation": '''def _commutation(xp, m, n, dtype=None, device=None):
    """K with K @ vec(A) == vec(A.T) for an m x n A (vec stacks columns): rows of I, permuted."""
    j = xp.arange(m * n, device=device)
    return xp.take(xp.eye(m * n, dtype=dtype, device=device), j // n + j % n * m, axis=0)
'''},
    inputs_doc="arrays of one array API library, e.g. NumPy, CuPy, PyTorch, JAX or Dask: "
               "vectors 1-D, matrices 2-D, scalars 0-d arrays or floats",
    namespace_line="xp = array_api_compat.array_namespace({arrays})",
    scalar_line="{s} = xp.asarray({s}{like})",
    constant="xp.asarray({v}{like})",
    like="dtype={r}.dtype, device=array_api_compat.device({r})",
)

TARGETS: dict[str, Target] = {t.name: t for t in [NUMPY, JAX, TORCH, ARRAY_API]}
