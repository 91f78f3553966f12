"""What a numerical analyst writes: solves instead of inverses that are only multiplied.

Layer L2: imports expr.  A rewrite of the expressions the code printer is about
to print (never of the derivation's results, which stay in the textbook form):

    inv(A)*B       -> solve(A, B)
    B*inv(A)       -> solve(A', B')'         (x'*inv(S) is solve(S', x)')
    inv(A)'*B      -> solve(A', B)
    (inv(A) + C)*x -> inv(A)*x + C*x -> solve(A, x) + C*x   (a column: distributing costs nothing)

A solve factors A once, as the inverse does, and is more accurate and cheaper
than forming inv(A) and multiplying (LAPACK gesv against getrf + getri + gemm).
An inverse that is needed on its own (the gradient of logdet) is still formed.
Dense Kronecker products and diag(v) next to a product are the code printer's
business (reshapes and broadcasts, code.py).
"""
from __future__ import annotations

from .. import expr as E
from ..expr import Fn
from ..shapes import is_column


def _inverted(e: E.Expr) -> E.Expr | None:
    """A for inv(A) and A' for inv(A)' (a matrix inverse, not a scalar's)."""
    if isinstance(e, E.Apply) and e.fn is Fn.INV and not e.is_scalar:
        return e.arg
    if isinstance(e, E.Transpose) and isinstance(e.arg, E.Apply) and e.arg.fn is Fn.INV and not e.is_scalar:
        return _t(e.arg.arg)
    return None


def _t(e: E.Expr) -> E.Expr:
    return e.arg if isinstance(e, E.Transpose) else E.transpose(e)


def _starts_with_inverse(e: E.Expr) -> bool:
    return _inverted(e) is not None or (isinstance(e, E.Mul) and any(
        _inverted(f) is not None for f in e.factors if not f.is_scalar))


def _solved(e: E.Expr) -> E.Expr:
    if not isinstance(e, E.Mul):
        return e
    factors = list(e.factors)
    scalars = [f for f in factors if f.is_scalar]
    chain = [f for f in factors if not f.is_scalar]
    # (inv(A) + C)*x: distribute over the column, so each term can solve
    if len(chain) >= 2 and is_column(chain[-1].shape) and isinstance(chain[-2], E.Add) and \
            any(_starts_with_inverse(t) for t in chain[-2].terms):
        x = chain[-1]
        summed = E.add(*(_solved(E.mul(t, x)) for t in chain[-2].terms))
        return _solved(E.mul(*scalars, *chain[:-2], summed))
    for i, f in enumerate(chain):
        a = _inverted(f)
        if a is None:
            continue
        if i + 1 < len(chain):                        # inv(A)*rest
            rest = _solved(E.mul(*chain[i + 1:]))
            return E.mul(*scalars, *chain[:i], E.solve(a, rest))
        if i > 0:                                     # left*inv(A) = (inv(A)'*left')'
            left = _solved(E.mul(*chain[:i]))
            return E.mul(*scalars, _t(E.solve(_t(a), _t(left))))
    return e


def with_solves(e: E.Expr, memo: dict) -> E.Expr:
    """e with every inverse that is only multiplied replaced by a solve (memo: shared
    across the expressions of one function, so equal parts stay equal)."""
    return E.map_bottom_up(e, _solved, memo)


__all__ = ["with_solves"]
