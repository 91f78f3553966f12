"""Common subexpressions of generated code, recognised up to transposition and scale.

Layer L2: imports expr and rules.algebra (for symmetry).  The code printer
(code.py) asks two things of this module:

* `Keys.key(e)`: a key (rep, c, t) with e = c · rep (transposed when t), where rep is
  one representative of e's class: e, eᵀ, −e and 2e share it.  The canonical forms of
  the derivation move transposes inwards ((AB)ᵀ = BᵀAᵀ, f(A)ᵀ = f(Aᵀ) for elementwise
  f), so tanh(W₁X) and tanh(XᵀW₁ᵀ) both occur; with one key the code computes one of
  them and transposes the name (a view, no work).
* `place_scalars(exprs)`: each constant factor c of a product moved to where scaling
  costs least: into the operand that other products want scaled by the same c (so it
  is scaled once: 2·r for both gradients of ‖W₂ tanh(W₁X) − Y‖²), else into a vector
  operand of a matrix product, else left where it is.  `2.0 * (A @ B)` is a full pass
  over the result; `A @ (2.0 * v)` is a pass over a vector.
"""
from __future__ import annotations

from collections import Counter
from fractions import Fraction

from .. import expr as E
from ..rules.algebra import is_symmetric
from ..shapes import is_column, is_row

# Functions with f(Xᵀ) = f(X): the argument is taken in one orientation (diag(AB) = diag(BᵀAᵀ)).
ORIENTATION_FREE = {E.Fn.TRACE, E.Fn.DIAGV, E.Fn.SUM, E.Fn.NORM1, E.Fn.NORM2, E.Fn.DET, E.Fn.LOGDET,
                    E.Fn.NORM_NUC, E.Fn.NORM_SPEC, E.Fn.EIGVALS, E.Fn.EIGMAX, E.Fn.EIGMIN}

# Nodes through which a transpose moves inwards, and through which a scalar factor
# moves to one operand (c(AB) = (cA)B, c(A⊙B) = (cA)⊙B, (cA)ᵀ = cAᵀ).
_SCALE_THROUGH = (E.Mul, E.Hadamard, E.Transpose)


def _is_vector_or_scalar(e: E.Expr) -> bool:
    return e.is_scalar or is_column(e.shape) or is_row(e.shape)


def _transposes(e: E.Expr) -> int:
    return sum(isinstance(n, E.Transpose) for n in E.walk(e))


class Keys:
    """Keys of subexpressions modulo transposition and a constant factor (memoised)."""

    def __init__(self):
        self._pushed: dict[tuple[E.Expr, bool], E.Expr] = {}
        self._keys: dict[E.Expr, tuple[E.Expr, Fraction | float, bool]] = {}
        self._order: dict[E.Expr, tuple] = {}

    def pushed(self, e: E.Expr, t: bool = False) -> E.Expr:
        """e (or eᵀ when t) with every transpose moved as far in as it goes."""
        memo = self._pushed.get((e, t))
        if memo is not None:
            return memo
        out = self._push(e, t)
        self._pushed[(e, t)] = out
        return out

    def _push(self, e: E.Expr, t: bool) -> E.Expr:
        if isinstance(e, E.Transpose):
            return self.pushed(e.arg, not t)
        if isinstance(e, E.Apply) and e.fn in ORIENTATION_FREE and not e.arg.is_scalar:
            arg = min(self.pushed(e.arg), self.pushed(e.arg, True), key=self._rank)
            e = e if arg == e.arg else E.apply(e.fn, arg)
            return E.transpose(e) if t and not e.is_scalar else e
        if e.is_scalar:      # its own transpose: uᵀv and vᵀu are one scalar, in one orientation
            if isinstance(e, E.Mul) and not any(f.is_scalar for f in e.factors):
                ahead = E.mul(*(self.pushed(f) for f in e.factors))
                back = E.mul(*(self.pushed(f, True) for f in reversed(e.factors)))
                return min(ahead, back, key=self._rank)
            return e
        if isinstance(e, E.Mul):
            factors = [self.pushed(f, t) for f in e.factors]
            return E.mul(*(reversed(factors) if t else factors))
        if isinstance(e, E.Add):
            return E.add(*(self.pushed(x, t) for x in e.terms))
        if isinstance(e, E.Hadamard):
            return E.hadamard(*(self.pushed(x, t) for x in e.factors))
        if isinstance(e, E.Apply) and e.fn.elementwise:
            return E.apply(e.fn, self.pushed(e.arg, t))
        if isinstance(e, E.Power) and e.exponent.is_scalar and not e.base.is_scalar:
            return E.power(self.pushed(e.base, t), e.exponent)
        if not t or is_symmetric(e):
            return e
        return E.transpose(e)

    def _rank(self, e: E.Expr) -> tuple:
        """A total order on the two orientations: fewer transposes first, then the text."""
        memo = self._order.get(e)
        if memo is None:
            memo = self._order[e] = (_transposes(e), str(e))
        return memo

    def key(self, e: E.Expr) -> tuple[E.Expr, Fraction | float, bool]:
        """(rep, c, t) with e = c · (repᵀ if t else rep); rep has no constant factor."""
        memo = self._keys.get(e)
        if memo is not None:
            return memo
        c, rest = Fraction(1), self.pushed(e)
        if isinstance(rest, E.Mul) and isinstance(rest.factors[0], E.Const) and not rest.is_scalar:
            c, rest = rest.factors[0].value, E.mul(*rest.factors[1:])
        flipped = self.pushed(rest, True)
        if flipped != rest and self._rank(flipped) < self._rank(rest):
            out = (flipped, c, True)
        else:
            out = (rest, c, False)
        self._keys[e] = out
        return out


def scaled(c, e: E.Expr) -> E.Expr:
    return E.mul(E.Const(c), e)


# ------------------------------------------------------------ where constants go

def _split(e: E.Expr):
    """(c, rest) for a non-scalar product with a constant factor c ≠ ±1, else None."""
    if (isinstance(e, E.Mul) and isinstance(e.factors[0], E.Const) and not e.is_scalar
            and abs(e.factors[0].value) != 1 and not any(f.is_scalar for f in e.factors[1:])):
        return e.factors[0].value, E.mul(*e.factors[1:])
    return None


def _reachable(e: E.Expr, keys: Keys) -> dict[E.Expr, E.Expr]:
    """rep -> an occurrence, for every operand a scalar factor of e can move into."""
    out: dict[E.Expr, E.Expr] = {}
    todo = [e]
    while todo:
        x = todo.pop()
        rep = keys.key(x)[0]
        if rep in out:
            continue
        out[rep] = x
        if isinstance(x, _SCALE_THROUGH) and not x.is_scalar:
            todo += [k for k in x.children() if not k.is_scalar]
    return out


def _size(e: E.Expr) -> int:
    """Entries, counting every named dimension as one large size n: a vector 1, a matrix 2."""
    return sum(d != 1 for d in e.shape)


def _replace_once(e: E.Expr, target: E.Expr, c, keys: Keys) -> tuple[E.Expr, bool]:
    """e with its first occurrence (through _SCALE_THROUGH nodes) of target's class scaled by c."""
    if keys.key(e)[0] == keys.key(target)[0] and keys.key(e)[1] == keys.key(target)[1]:
        return scaled(c, e), True
    if not isinstance(e, _SCALE_THROUGH) or e.is_scalar:
        return e, False
    kids = list(e.children())
    for i, k in enumerate(kids):
        if k.is_scalar:
            continue
        new, done = _replace_once(k, target, c, keys)
        if done:      # rebuilt as is: the smart constructors would pull c back to the front
            kids[i] = new
            return type(e)(*((kids[0],) if isinstance(e, E.Transpose) else (tuple(kids),)), e.shape), True
    return e, False


def place_scalars(exprs: list[E.Expr], keys: Keys) -> list[E.Expr]:
    """exprs with each constant factor of a product moved where it costs least (see the module doc)."""
    wanted: Counter = Counter()       # (c, rep) -> products that could scale rep by c
    for root in exprs:
        for n in set(E.walk(root)):
            split = _split(n)
            if split:
                c, rest = split
                for rep in _reachable(rest, keys):
                    wanted[(c, rep)] += 1

    def score(c, rep, occurrence):
        shared = wanted[(c, rep)] if wanted[(c, rep)] > 1 else 0
        return (shared, -_size(occurrence))

    def place(n: E.Expr) -> E.Expr:
        split = _split(n)
        if not split:
            return n
        c, rest = split
        here = score(c, keys.key(rest)[0], rest)
        best, where = here, None
        for rep, occurrence in _reachable(rest, keys).items():
            s = score(c, rep, occurrence)
            if s > best:
                best, where = s, occurrence
        if where is None:
            return n
        moved, done = _replace_once(rest, where, c, keys)
        return moved if done else n

    memo: dict = {}
    return [E.map_bottom_up(root, place, memo) for root in exprs]
