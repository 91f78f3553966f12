"""Small helpers on forms that the rule modules share: transposes, coefficients,
signed matrix powers.

Layer L2: imports expr and rules.symmetry.
"""
from __future__ import annotations

from fractions import Fraction

from .. import expr as E
from ..expr import Fn
from .symmetry import is_symmetric


def transposed(e: E.Expr) -> E.Expr:
    """eᵀ without building Transpose(Transpose(.)) or transposing symmetric leaves."""
    if isinstance(e, E.Transpose):
        return e.arg
    if e.is_scalar or (isinstance(e, (E.Symbol, E.Identity)) and is_symmetric(e)):
        return e
    return E.transpose(e)


def split_coefficient(e: E.Expr) -> tuple[Fraction | float, E.Expr]:
    if isinstance(e, E.Const):
        return e.value, E.ONE
    if isinstance(e, E.Mul) and isinstance(e.factors[0], E.Const):
        return e.factors[0].value, E.mul(*e.factors[1:])
    return Fraction(1), e


def scaled(c, e: E.Expr) -> E.Expr:
    return E.mul(E.Const(c), e)


def is_vector_shape(x: E.Expr) -> bool:
    return x.shape[0] == 1 or x.shape[1] == 1


def signed_power(f: E.Expr) -> tuple[E.Expr, int]:
    """A chain factor as (base, k) with f = base^k, k any non-zero integer:
    X² = (X, 2), X⁻¹ = (X, −1), (X⁻¹)³ = (X, −3), X⁻ᵀ = (Xᵀ, −1)."""
    if isinstance(f, E.MatPow):
        base, k = signed_power(f.base)
        return base, k * f.k
    if isinstance(f, E.Apply) and f.fn is Fn.INV:
        base, k = signed_power(f.arg)
        return base, -k
    if isinstance(f, E.Transpose) and isinstance(f.arg, E.Apply) and f.arg.fn is Fn.INV:
        return transposed(f.arg.arg), -1
    return f, 1


def inverse(base: E.Expr) -> E.Expr:
    """base⁻¹ in the canonical spelling: inv(X)ᵀ for (Xᵀ)⁻¹."""
    if isinstance(base, E.Transpose):
        return E.transpose(E.apply(Fn.INV, base.arg))
    return E.apply(Fn.INV, base)


def from_signed_power(base: E.Expr, k: int) -> E.Expr | None:
    """base^k rebuilt (None for k = 0: the factor is I)."""
    if k == 0:
        return None
    if k == 1:
        return base
    if k == -1:
        return inverse(base)
    return E.matpow(base, k) if k > 0 else E.matpow(inverse(base), -k)
