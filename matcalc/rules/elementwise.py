"""The registry of elementwise functions: derivative, NumPy, LaTeX, domain.

Layer L2: imports expr.  One entry per expr.Fn that is elementwise; the
derivative is written in the language itself, so that it can be printed,
evaluated and differentiated again.
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from typing import Callable

from .. import expr as E
from ..expr import Fn


def _one_minus(e: E.Expr) -> E.Expr:
    return E.add(E.broadcast(E.ONE, e.shape), E.neg(e))


def _sq(e: E.Expr) -> E.Expr:
    return E.power(e, E.const(2))


def _sigmoid(x):
    import numpy as np
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _softplus(x):
    import numpy as np
    return np.maximum(x, 0.0) + np.log1p(np.exp(-np.abs(x)))   # = log(1 + exp(x)), without overflow


@lru_cache(maxsize=None)
def _evaluator(code: str) -> Callable:
    """The NumPy template as a function: one source of truth for code and checks.
    NumPy is imported here, on first evaluation, not with the package."""
    import numpy as np
    return eval(f"lambda x: {code.format(x='x')}", {"np": np, "_sigmoid": _sigmoid, "_softplus": _softplus})


@dataclass(frozen=True)
class Elementwise:
    fn: Fn
    derivative: Callable[[E.Expr, E.Expr], E.Expr]   # (x, f(x)) -> f'(x)
    code: str            # NumPy source with {x}
    latex: str           # LaTeX with {x}
    domain: str = "real"  # where --check samples: real | positive | bounded

    def evaluate(self, x):
        return _evaluator(self.code)(x)


ELEMENTWISE: dict[Fn, Elementwise] = {e.fn: e for e in [
    Elementwise(Fn.EXP, lambda x, fx: fx, "np.exp({x})", r"\exp\left({x}\right)"),
    Elementwise(Fn.LOG, lambda x, fx: E.power(x, E.MINUS_ONE), "np.log({x})",
                r"\log\left({x}\right)", "positive"),
    Elementwise(Fn.SIN, lambda x, fx: E.apply(Fn.COS, x), "np.sin({x})", r"\sin\left({x}\right)"),
    Elementwise(Fn.COS, lambda x, fx: E.neg(E.apply(Fn.SIN, x)), "np.cos({x})",
                r"\cos\left({x}\right)"),
    Elementwise(Fn.TAN, lambda x, fx: E.add(E.broadcast(E.ONE, x.shape), _sq(fx)),
                "np.tan({x})", r"\tan\left({x}\right)", "bounded"),
    Elementwise(Fn.TANH, lambda x, fx: _one_minus(_sq(fx)), "np.tanh({x})",
                r"\tanh\left({x}\right)"),
    Elementwise(Fn.SQRT, lambda x, fx: E.mul(E.const(Fraction(1, 2)), E.power(fx, E.MINUS_ONE)),
                "np.sqrt({x})", r"\sqrt{{{x}}}", "positive"),
    Elementwise(Fn.ABS, lambda x, fx: E.apply(Fn.SIGN, x), "np.abs({x})",
                r"\left|{x}\right|"),
    Elementwise(Fn.SIGN, lambda x, fx: E.zero(x.shape), "np.sign({x})",
                r"\operatorname{{sign}}\left({x}\right)"),
    # a comparison cast to float64 (the NumPy target's dtype): np.heaviside is ~6× slower
    Elementwise(Fn.STEP, lambda x, fx: E.zero(x.shape),
                "np.greater({x}, 0.0).astype(np.float64)", r"\operatorname{{step}}\left({x}\right)"),
    Elementwise(Fn.SIGMOID, lambda x, fx: (E.hadamard(fx, _one_minus(fx)) if not x.is_scalar
                                           else E.mul(fx, _one_minus(fx))),
                "_sigmoid({x})", r"\sigma\left({x}\right)"),
    Elementwise(Fn.RELU, lambda x, fx: E.apply(Fn.STEP, x),
                "np.maximum({x}, 0.0)", r"\operatorname{{relu}}\left({x}\right)"),
    Elementwise(Fn.SOFTPLUS, lambda x, fx: E.apply(Fn.SIGMOID, x),
                "_softplus({x})", r"\operatorname{{softplus}}\left({x}\right)"),
    Elementwise(Fn.ARCSIN, lambda x, fx: E.power(_one_minus(_sq(x)), E.const(Fraction(-1, 2))),
                "np.arcsin({x})", r"\arcsin\left({x}\right)", "bounded"),
    Elementwise(Fn.ARCCOS, lambda x, fx: E.neg(E.power(_one_minus(_sq(x)), E.const(Fraction(-1, 2)))),
                "np.arccos({x})", r"\arccos\left({x}\right)", "bounded"),
    Elementwise(Fn.ARCTAN, lambda x, fx: E.power(E.add(E.broadcast(E.ONE, x.shape), _sq(x)), E.MINUS_ONE),
                "np.arctan({x})", r"\arctan\left({x}\right)"),
    Elementwise(Fn.SINH, lambda x, fx: E.apply(Fn.COSH, x), "np.sinh({x})", r"\sinh\left({x}\right)"),
    Elementwise(Fn.COSH, lambda x, fx: E.apply(Fn.SINH, x), "np.cosh({x})", r"\cosh\left({x}\right)"),
    Elementwise(Fn.LOG1P, lambda x, fx: E.power(E.add(E.broadcast(E.ONE, x.shape), x), E.MINUS_ONE),
                "np.log1p({x})", r"\operatorname{{log1p}}\left({x}\right)", "positive"),
    Elementwise(Fn.EXPM1, lambda x, fx: E.apply(Fn.EXP, x), "np.expm1({x})",
                r"\operatorname{{expm1}}\left({x}\right)"),
]}

assert set(ELEMENTWISE) == {fn for fn in Fn if fn.elementwise}, "every elementwise Fn needs an entry"
