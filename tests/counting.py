"""A counting array namespace: the work a generated module does, not its time.

Wraps NumPy behind the array API (array_api_compat.numpy) and counts, for one run:

* `macs`: multiply-adds of matrix products (`@`, matmul, tensordot, einsum, vecdot,
  outer), m·k·n for an m×k by k×n product;
* `calls`: every elementwise transcendental function call (exp, log, tanh, ...), and
  `repeats`: those called a second time on an argument equal to an earlier one or to
  its transpose (the same values computed twice is work the code could have shared).

`run_generated(source, kwargs)` executes a generated array-API module with the
namespace in place of the one array_api_compat would pick and calls its
value_and_grad.  `evaluator_work(exprs, env, dims)` counts the products matcalc's
numerical evaluator does for expressions written in the input language: the
hand-written form, read straight from its formula (shared nodes once).
"""
from __future__ import annotations

import contextlib
import math
import types

import array_api_compat
import array_api_compat.numpy  # noqa: F401 (the namespace wrapped)
import numpy as np

from matcalc import numeric
from matcalc.printing.targets import MATFUN_HELPERS

TRANSCENDENTAL = {"exp", "expm1", "log", "log1p", "log2", "log10", "tanh", "sinh", "cosh",
                  "sin", "cos", "tan", "arcsin", "arccos", "arctan", "asin", "acos", "atan",
                  "sqrt", "pow"}


# The matrix-function kernels copied into modules (expm, logm, Fréchet adjoints): their
# products are the kernel's, which the numerical evaluator runs uncounted too.
KERNEL_HELPERS = set(MATFUN_HELPERS)


def _uncounted(helper, work):
    def run(*args, **kwargs):
        work.paused += 1
        try:
            return helper(*args, **kwargs)
        finally:
            work.paused -= 1
    return run


class Work:
    def __init__(self):
        self.paused = 0
        self.macs = 0
        self.calls: list[str] = []
        self.repeats: list[str] = []
        self._seen: set = set()

    def product(self, a: np.ndarray, b: np.ndarray) -> None:
        if a.ndim == 0 or b.ndim == 0 or self.paused:
            return
        self.macs += a.size * (b.shape[-1] if b.ndim >= 2 else 1)

    def transcendental(self, name: str, x) -> None:
        x = np.asarray(x)
        self.calls.append(name)
        fingerprint = (name, x.shape, np.ascontiguousarray(x).tobytes())
        if fingerprint in self._seen:
            self.repeats.append(f"{name} of an argument of shape {x.shape} (again)")
        self._seen.add(fingerprint)
        if x.ndim == 2:
            self._seen.add((name, x.T.shape, np.ascontiguousarray(x.T).tobytes()))


def _raw(x):
    if isinstance(x, Array):
        return x.a
    if isinstance(x, (list, tuple)):
        return type(x)(_raw(y) for y in x)
    return x


class Array:
    """A NumPy array whose products and transcendental calls are counted."""
    __array_priority__ = 1000

    def __init__(self, a, work: Work):
        self.a = np.asarray(a)
        self.work = work

    def _wrap(self, x):
        return Array(x, self.work) if isinstance(x, (np.ndarray, np.generic)) else x

    # attributes the generated code reads
    shape = property(lambda self: self.a.shape)
    ndim = property(lambda self: self.a.ndim)
    dtype = property(lambda self: self.a.dtype)
    size = property(lambda self: self.a.size)
    device = property(lambda self: "cpu")
    T = property(lambda self: Array(self.a.T, self.work))
    mT = property(lambda self: Array(np.swapaxes(self.a, -1, -2), self.work))

    def __getitem__(self, k):
        return self._wrap(self.a[_raw(k)])

    def __float__(self):
        return float(self.a)

    def __array__(self, dtype=None, copy=None):
        return self.a if dtype is None else self.a.astype(dtype)

    def __matmul__(self, other):
        self.work.product(self.a, _raw(other))
        return self._wrap(self.a @ _raw(other))

    def __rmatmul__(self, other):
        self.work.product(_raw(other), self.a)
        return self._wrap(_raw(other) @ self.a)

    def __pow__(self, p):
        return self._wrap(self.a ** _raw(p))

    def __rpow__(self, b):
        return self._wrap(_raw(b) ** self.a)


def _binary(op):
    def f(self, other):
        return self._wrap(op(self.a, _raw(other)))
    return f


for _name, _op in {"add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
                   "truediv": lambda a, b: a / b, "gt": lambda a, b: a > b, "lt": lambda a, b: a < b,
                   "ge": lambda a, b: a >= b, "le": lambda a, b: a <= b}.items():
    setattr(Array, f"__{_name}__", _binary(_op))
    if _name in ("add", "sub", "mul", "truediv"):
        setattr(Array, f"__r{_name}__", _binary(lambda a, b, _op=_op: _op(b, a)))
Array.__neg__ = lambda self: self._wrap(-self.a)
Array.__abs__ = lambda self: self._wrap(abs(self.a))


class Namespace:
    """array_api_compat.numpy with every call's arrays unwrapped, counted and wrapped again."""

    def __init__(self, work: Work, module=None, prefix: str = ""):
        self._work = work
        self._module = module or array_api_compat.numpy
        self._prefix = prefix

    def __getattr__(self, name):
        target = getattr(self._module, name)
        if isinstance(target, types.ModuleType):
            return Namespace(self._work, target, name + ".")
        if not callable(target) or isinstance(target, type):
            return target
        work = self._work

        def call(*args, **kwargs):
            raw = [_raw(a) for a in args]
            if name in ("matmul", "vecdot"):
                work.product(raw[0], raw[1])
            elif name == "outer":
                work.macs += np.asarray(raw[0]).size * np.asarray(raw[1]).size
            elif name == "tensordot":
                a, b = np.asarray(raw[0]), np.asarray(raw[1])
                axes = kwargs.get("axes", raw[2] if len(raw) > 2 else 2)
                if not isinstance(axes, int):
                    raise NotImplementedError("count tensordot over listed axes before using it")
                work.macs += a.size * b.size // max(1, math.prod(a.shape[a.ndim - axes:]))
            elif name == "einsum":
                raise NotImplementedError("count einsum by its subscripts before using it")
            if name in TRANSCENDENTAL:
                work.transcendental(self._prefix + name, raw[0])
            out = target(*raw, **{k: _raw(v) for k, v in kwargs.items()})
            if isinstance(out, tuple):
                return tuple(Array(o, work) if isinstance(o, np.ndarray) else o for o in out)
            return Array(out, work) if isinstance(out, (np.ndarray, np.generic)) else out
        return call


def counting_compat(work: Work):
    """A stand-in for the array_api_compat module inside a generated module."""
    return types.SimpleNamespace(array_namespace=lambda *arrays: Namespace(work),
                                 device=lambda x: "cpu")


def run_generated(source: str, kwargs: dict, function: str = "value_and_grad") -> tuple[Work, tuple]:
    """Run one function of a generated array-API module on counting arrays."""
    work = Work()
    module: dict = {}
    exec(compile(source, "<generated>", "exec"), module)
    module["array_api_compat"] = counting_compat(work)
    for name, helper in list(module.items()):      # a kernel's own products are not the code's choice
        if name.startswith("_") and callable(helper) and name in KERNEL_HELPERS:
            module[name] = _uncounted(helper, work)
    args = {k: Array(v, work) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
    out = module[function](**args)
    out = out if isinstance(out, tuple) else (out,)
    return work, tuple(np.asarray(_raw(o)) for o in out)


def run_hand(fn, kwargs: dict) -> tuple[Work, tuple]:
    """Run hand-written code `fn(xp, **kwargs)` on counting arrays."""
    work = Work()
    args = {k: Array(v, work) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
    out = fn(Namespace(work), **args)
    return work, tuple(np.asarray(_raw(o)) for o in out)


@contextlib.contextmanager
def _counted_evaluator(work: Work):
    plain = numeric._matmul

    def matmul(a, b):
        if not (a.shape == (1, 1) or b.shape == (1, 1)):
            work.product(a, b)
        return plain(a, b)
    numeric._matmul = matmul
    try:
        yield
    finally:
        numeric._matmul = plain


def evaluator_work(exprs, env: dict, dims: dict, extra=()) -> Work:
    """The products of evaluating exprs from their formulas (shared nodes once)."""
    work = Work()
    with _counted_evaluator(work):
        ev = numeric.Evaluator(dict(env), dims=dims)
        for sym, body in extra:
            ev.env[sym.name] = ev(body)
        for e in exprs:
            ev(e)
    return work
