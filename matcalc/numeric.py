"""Direct numerical evaluation of expressions: the oracle for checks and tests.

Layer L2: imports expr and the elementwise registry (rules/ is a sibling
layer, but this module only reads its NumPy table).  Internally every value
is a 2-D array, exactly as the IR sees it: a vector is (n, 1), a scalar
(1, 1).  `to_user`/`from_user` convert to the interface's convention
(vectors 1-D, scalars floats).
"""
from __future__ import annotations

from typing import Callable, Mapping

import numpy as np

from . import expr as E
from .expr import Fn
from .matfun_kernels import _expm, _frechet_adj, _frechet_jac, _loewner_adj, _logm, _polar, _sqrtm
from .rules.elementwise import ELEMENTWISE


def _softmax(x):
    z = np.exp(x - x.max())
    return z / z.sum()


def _logsumexp(x):
    m = x.max()
    return np.array([[m + np.log(np.exp(x - m).sum())]])


def _softmax_axis(x, axis: int):
    z = np.exp(x - x.max(axis=axis, keepdims=True))      # shifted by the max: no overflow
    return z / z.sum(axis=axis, keepdims=True)


def _logsumexp_axis(x, axis: int):
    m = x.max(axis=axis, keepdims=True)
    return m + np.log(np.exp(x - m).sum(axis=axis, keepdims=True))


def _scalar(v) -> np.ndarray:
    return np.array([[float(v)]])


def _sym(x):
    """The symmetric part, which eig* and chol read (docs/matrix-functions.md)."""
    return 0.5 * (x + x.T)


def _eigvec(x, column: int) -> np.ndarray:
    """A unit eigenvector of the symmetric part, its sign fixed (entries summing to >= 0)
    so that nearby matrices give nearby vectors."""
    u = np.linalg.eigh(_sym(x))[1][:, [column]]
    return -u if u.sum() < 0 else u


def _is_symmetric(x) -> bool:
    return np.allclose(x, x.T, rtol=1e-13, atol=0)


def _symmetric_or(kernel, spectral):
    """A symmetric argument through its eigendecomposition (exact, and defined for a
    singular PSD matrix), any other through the general kernel."""
    def f(x):
        if _is_symmetric(x):
            w, v = np.linalg.eigh(_sym(x))
            return (v * spectral(w)) @ v.T
        return kernel(np, x)
    return f


MATRIX_FUNCTIONS: dict[Fn, Callable[[np.ndarray], np.ndarray]] = {
    Fn.EXPM: lambda x: _expm(np, x),
    Fn.LOGM: _symmetric_or(_logm, lambda w: np.log(np.where(w > 0, w, np.nan))),
    Fn.SQRTM: _symmetric_or(_sqrtm, lambda w: np.sqrt(np.maximum(w, 0.0))),
    Fn.EIGVALS: lambda x: np.linalg.eigvalsh(_sym(x)).reshape(-1, 1),
    Fn.EIGMAX: lambda x: _scalar(np.linalg.eigvalsh(_sym(x))[-1]),
    Fn.EIGMIN: lambda x: _scalar(np.linalg.eigvalsh(_sym(x))[0]),
    Fn.EIGVECS: lambda x: np.linalg.eigh(_sym(x))[1],
    Fn.EIGVEC_MAX: lambda x: _eigvec(x, -1),
    Fn.EIGVEC_MIN: lambda x: _eigvec(x, 0),
    Fn.NORM_NUC: lambda x: _scalar(np.linalg.norm(x, "nuc")),
    Fn.NORM_SPEC: lambda x: _scalar(np.linalg.norm(x, 2)),
    Fn.CHOL: lambda x: np.linalg.cholesky(_sym(x)),
    Fn.PINV: np.linalg.pinv,
    Fn.ADJ: lambda x: np.linalg.det(x) * np.linalg.inv(x),
    Fn.POLAR: lambda x: _polar(np, x),
    Fn.TRIL_HALF: lambda x: np.tril(x) - 0.5 * np.diag(np.diag(x)),
}
KERNELS = {Fn.EXPM: _expm, Fn.LOGM: _logm, Fn.SQRTM: _sqrtm}


FUNCTIONS: dict[Fn, Callable[[np.ndarray], np.ndarray]] = {
    **{fn: entry.evaluate for fn, entry in ELEMENTWISE.items()},
    Fn.TRACE: lambda x: _scalar(np.trace(x)),
    Fn.DET: lambda x: _scalar(np.linalg.det(x)),
    Fn.LOGDET: lambda x: _scalar(_logdet(x)),
    Fn.INV: np.linalg.inv,
    Fn.DIAG: lambda x: np.diag(x[:, 0]),
    Fn.DIAGV: lambda x: np.diag(x).reshape(-1, 1).copy(),
    Fn.VEC: lambda x: x.reshape(-1, 1, order="F"),
    Fn.SUM: lambda x: _scalar(x.sum()),
    Fn.NORM1: lambda x: _scalar(np.abs(x).sum()),
    Fn.NORM2: lambda x: _scalar(np.sqrt((x * x).sum())),
    Fn.SOFTMAX: _softmax,
    Fn.LOGSUMEXP: _logsumexp,
    Fn.SUM_COLS: lambda x: x.sum(axis=0, keepdims=True),
    Fn.SUM_ROWS: lambda x: x.sum(axis=1, keepdims=True),
    Fn.SOFTMAX_COLS: lambda x: _softmax_axis(x, 0),
    Fn.SOFTMAX_ROWS: lambda x: _softmax_axis(x, 1),
    Fn.LOGSUMEXP_COLS: lambda x: _logsumexp_axis(x, 0),
    Fn.LOGSUMEXP_ROWS: lambda x: _logsumexp_axis(x, 1),
    **MATRIX_FUNCTIONS,
}


def _logdet(x):
    sign, value = np.linalg.slogdet(x)
    return value if sign > 0 else np.nan


def commutation_matrix(m: int, n: int) -> np.ndarray:
    """K with K vec(A) = vec(Aᵀ), vec column-major, A m×n."""
    k = np.zeros((m * n, m * n))
    r, c = np.meshgrid(np.arange(m), np.arange(n), indexing="ij")
    k[(c + r * n).ravel(), (r + c * m).ravel()] = 1.0
    return k


def _matmul(a, b):
    if a.shape == (1, 1) or b.shape == (1, 1):
        return a * b
    return a @ b


def _power(base, p):
    with np.errstate(all="ignore"):
        return np.power(base, float(p.item()))


class Evaluator:
    """Evaluates expressions over one environment; shared nodes once."""

    def __init__(self, env: Mapping[str, np.ndarray], functions: Mapping[str, Callable] | None = None,
                 dims: Mapping[str, int] | None = None):
        self.env = env                       # name -> 2-D array (d<name> for differentials)
        self.functions = functions or {}     # 'f' -> f(X) scalar, 'grad_f' -> gradient
        self.dims = dims or {}
        self.memo: dict[E.Expr, np.ndarray] = {}

    def dim(self, d) -> int:
        if isinstance(d, int):
            return d
        size = 1
        for part in str(d).split("*"):
            size *= int(part) if part.isdigit() else self.dims[part]
        return size

    def __call__(self, e: E.Expr) -> np.ndarray:
        for n in E.walk(e):
            if n not in self.memo:
                kids = [self.memo[k] for k in n.children()]
                try:
                    with np.errstate(all="ignore"):
                        self.memo[n] = self._eval(n, kids)
                except np.linalg.LinAlgError:   # singular: not a point of the domain
                    self.memo[n] = np.full((self.dim(n.shape[0]), self.dim(n.shape[1])), np.nan)
        return self.memo[e]

    def _eval(self, n: E.Expr, v: list[np.ndarray]) -> np.ndarray:
        if isinstance(n, E.Symbol):
            return self.env[n.name]
        if isinstance(n, E.Differential):
            return self.env["d" + n.target.name]
        if isinstance(n, E.Const):
            return _scalar(n.value)
        if isinstance(n, E.Size):
            return _scalar(self.dim(n.dim))
        if isinstance(n, E.Identity):
            return np.eye(self.dim(n.shape[0]))
        if isinstance(n, E.Commutation):
            return commutation_matrix(self.dim(n.m), self.dim(n.n))
        if isinstance(n, E.Zero):
            return np.zeros((self.dim(n.shape[0]), self.dim(n.shape[1])))
        if isinstance(n, E.Broadcast):
            return np.full((self.dim(n.shape[0]), self.dim(n.shape[1])), v[0].item())
        if isinstance(n, E.Add):
            out = v[0]
            for x in v[1:]:
                out = out + x
            return out
        if isinstance(n, E.Mul):
            out = v[0]
            for x in v[1:]:
                out = _matmul(out, x)
            return out
        if isinstance(n, E.Hadamard):
            out = v[0]
            for x in v[1:]:
                out = out * x
            return out
        if isinstance(n, E.Kron):
            return np.kron(v[0], v[1])
        if isinstance(n, E.Frobenius):
            return _scalar((v[0] * v[1]).sum())
        if isinstance(n, E.Transpose):
            return v[0].T
        if isinstance(n, E.Power):
            return _power(v[0], v[1])
        if isinstance(n, E.MatPow):
            return np.linalg.matrix_power(v[0], n.k)
        if isinstance(n, E.Apply):
            return FUNCTIONS[n.fn](v[0])
        if isinstance(n, E.Solve):
            return np.linalg.solve(v[0], v[1])
        if isinstance(n, E.FrechetAdj) and _is_symmetric(v[0]):      # Daleckii–Krein
            return _loewner_adj(np, n.fn.text[:-1], _sym(v[0]), v[1])
        if isinstance(n, E.FrechetAdj):
            return _frechet_adj(np, KERNELS[n.fn], v[0], v[1])
        if isinstance(n, E.FrechetJac):
            return _frechet_jac(np, KERNELS[n.fn], v[0])
        if isinstance(n, E.KronAdjLeft):         # Σᵢⱼ Aᵢⱼ Gᵢⱼ over G's blocks
            (p, q), (m, k) = v[0].shape, (self.dim(d) for d in n.shape)
            return np.tensordot(v[0], v[1].reshape(p, m, q, k), axes=([0, 1], [0, 2]))
        if isinstance(n, E.KronAdjRight):        # [B : Gᵢⱼ]ᵢⱼ
            (p, q), (m, k) = v[1].shape, (self.dim(d) for d in n.shape)
            return np.tensordot(v[0].reshape(m, p, k, q), v[1], axes=([1, 3], [0, 1]))
        if isinstance(n, E.Unvec):
            return v[0].reshape((self.dim(n.shape[0]), self.dim(n.shape[1])), order="F")
        if isinstance(n, E.Call):
            return _scalar(self.functions[n.name](v[0]))
        if isinstance(n, E.GradCall):
            return np.asarray(self.functions["grad_" + n.name](v[0]), dtype=float).reshape(v[0].shape)
        raise TypeError(f"cannot evaluate {type(n).__name__}")


def run_program(program: E.Program, env: dict[str, np.ndarray], functions=None, dims=None,
                extra: list[tuple[E.Symbol, E.Expr]] = (), fixed: frozenset[str] = frozenset()
                ) -> Evaluator:
    """Evaluate every definition (and `extra` ones) into env; returns the evaluator.

    Definitions named in `fixed` keep the value env gives them (to perturb an
    intermediate)."""
    env = dict(env)
    ev = Evaluator(env, functions, dims)
    for sym, body in list(program.definitions) + list(extra):
        if sym.name not in fixed:
            env[sym.name] = ev(body)
    return ev


def to_user(x: np.ndarray, shape) -> np.ndarray | float:
    """2-D internal value -> interface convention (vector 1-D, scalar float)."""
    if shape == (1, 1):
        return float(x.item())
    if shape[1] == 1 or shape[0] == 1:
        return x.reshape(-1)
    return x


def from_user(x, shape) -> np.ndarray:
    a = np.asarray(x, dtype=float)
    if shape == (1, 1):
        return a.reshape(1, 1)
    if shape[1] == 1:
        return a.reshape(-1, 1)
    if shape[0] == 1:
        return a.reshape(1, -1)
    return a
