"""Elementwise expressions as Laurent polynomials: expand, collect, and keep the shorter form.

Layer L2: imports expr.  Under ⊙ (and scalar products) arrays of one shape form a
commutative ring, so a sum of elementwise products has a normal form: a sum of
monomials c·∏ bᵢ^kᵢ over atoms bᵢ (anything that is not a sum, a Hadamard product or a
power).  Expanding into it and collecting like monomials is what makes
(1 − t) ⊙ y − t ⊙ (1 − y) = y − t, or ((WH)⁻¹ ⊙ X)⁻¹ ⊙ (WH)⁻² ⊙ X² = X ⊘ WH.  The rule
using it (`shorter_expansion`) keeps the expanded form only when it is smaller, so
(1 − h²) ⊙ g stays factored: this is the cost-based choice between two equal forms.

Domain: exponents of one base add up (bᵃ ⊙ bᶜ = bᵃ⁺ᶜ) and b⁰ = 1.  Both only widen
the domain: b⁻¹ ⊙ b = 1 holds wherever b⁻¹ is defined (b ≠ 0), and X⁻¹ ⊙ X² = X holds
wherever X⁻¹ is; nothing is cancelled at a point where the original was defined and the
factor zero.  Fractional exponents are combined only as the power rule already does
(x^½ ⊙ x^½ = x, defined where x ≥ 0).  A sum raised to a negative power, (1 − y)⁻¹,
stays an atom; the same sum with a positive power is kept whole while a negative
power of it is around, so that (1 − y)⁻¹ ⊙ (1 − y) meets and cancels first.
"""
from __future__ import annotations

from fractions import Fraction
from typing import Callable

from .. import expr as E
from ..expr import Fn

MAX_MONOMIALS = 48          # a larger expansion is abandoned: the factored form stays
MAX_EXPANDED_POWER = 3      # (a + b)^k is multiplied out for k <= 3 only

Monomial = frozenset        # of (base, exponent) pairs; the empty one is the constant 1
Poly = dict                 # Monomial -> coefficient


class TooBig(Exception):
    pass


def _mul_mono(a: Monomial, b: Monomial) -> Monomial:
    powers = dict(a)
    for base, k in b:
        powers[base] = powers.get(base, 0) + k
    return frozenset((base, k) for base, k in powers.items() if k != 0)


def _mul(p: Poly, q: Poly) -> Poly:
    out: Poly = {}
    for ma, ca in p.items():
        for mb, cb in q.items():
            m = _mul_mono(ma, mb)
            out[m] = out.get(m, 0) + ca * cb
            if len(out) > MAX_MONOMIALS:
                raise TooBig
    return {m: c for m, c in out.items() if c != 0}


def _add(p: Poly, q: Poly) -> Poly:
    out = dict(p)
    for m, c in q.items():
        out[m] = out.get(m, 0) + c
    if len(out) > MAX_MONOMIALS:
        raise TooBig
    return {m: c for m, c in out.items() if c != 0}


def _atom(e: E.Expr, k=Fraction(1)) -> Poly:
    return {frozenset({(e, k)}): Fraction(1)}


def _int_exponent(e: E.Expr):
    if isinstance(e, E.Power) and isinstance(e.exponent, E.Const) and isinstance(e.exponent.value, Fraction) \
            and e.exponent.value.denominator == 1:
        return e.exponent.value
    return None


def _is_sum(e: E.Expr) -> bool:
    return isinstance(e, E.Add) or (isinstance(e, E.Broadcast) and isinstance(e.value, E.Add))


def inverted_sums(e: E.Expr) -> frozenset:
    """The sums under a negative power anywhere in e: (1 - y) in (1 - y).^-1."""
    return frozenset(n.base for n in _region(e)
                     if isinstance(n, E.Power) and _is_sum(n.base) and (_int_exponent(n) or 0) < 0)


def _region(e: E.Expr):
    """The nodes an expansion looks into: sums, products and powers down to the atoms
    (a matrix product or a function is an atom: the walk stops there, so that a deep
    derivation pays only for the elementwise part around each node)."""
    seen, stack = set(), [e]
    while stack:
        n = stack.pop()
        if id(n) in seen:
            continue
        seen.add(id(n))
        yield n
        if isinstance(n, (E.Add, E.Hadamard, E.Broadcast)) or (isinstance(n, E.Mul) and _elementwise_product(n)):
            stack.extend(n.children())
        elif isinstance(n, E.Power):
            stack.append(n.base)


class Expander:
    """expand(e) -> the polynomial of e, memoised (shared subtrees expand once)."""

    def __init__(self, keep_whole: frozenset):
        self.keep_whole = keep_whole
        self.memo: dict[E.Expr, Poly] = {}

    def __call__(self, e: E.Expr) -> Poly:
        p = self.memo.get(e)
        if p is None:
            p = self.memo[e] = self._expand(e)
        return p

    def _expand(self, e: E.Expr) -> Poly:
        if isinstance(e, E.Const):
            return {frozenset(): e.value} if e.value != 0 else {}
        if isinstance(e, E.Zero):
            return {}
        if isinstance(e, E.Broadcast):
            return self(e.value)
        if isinstance(e, E.Add):
            if e in self.keep_whole:
                return _atom(e)
            out: Poly = {}
            for t in e.terms:
                out = _add(out, self(t))
            return out
        if isinstance(e, E.Hadamard) or (isinstance(e, E.Mul) and _elementwise_product(e)):
            out = {frozenset(): Fraction(1)}
            for f in e.factors:
                out = _mul(out, self(f))
            return out
        k = _int_exponent(e)
        if k is not None:
            return self._power(e.base, k)
        if isinstance(e, E.Power) and isinstance(e.exponent, E.Const):   # x^0.5: exponents still add
            return _atom(e.base, e.exponent.value)
        flipped = _sigmoid_of_negative(e)
        if flipped is not None:                  # σ(−z) = 1 − σ(z) (everywhere), so that σ(z) terms meet
            return _add({frozenset(): Fraction(1)}, {m: -c for m, c in _atom(flipped).items()})
        return _atom(e)

    def _power(self, base: E.Expr, k: Fraction) -> Poly:
        if _is_sum(base) and (k < 0 or k > MAX_EXPANDED_POWER or base in self.keep_whole):
            return _atom(base, k)
        p = self(base)
        if len(p) == 1:                       # (c ∏ bᵢ^kᵢ)^k = c^k ∏ bᵢ^(k kᵢ)
            (m, c), = p.items()
            if c == 0 or (k < 0 and not isinstance(c, Fraction)) or abs(k) > 64:
                return _atom(base, k)
            return {frozenset((b, kb * k) for b, kb in m): c ** int(k)}
        if k < 0:
            return _atom(base, k)
        out = {frozenset(): Fraction(1)}
        for _ in range(int(k)):
            out = _mul(out, p)
        return out


def _sigmoid_of_negative(e: E.Expr) -> E.Expr | None:
    """σ(z) for σ(−z), else None."""
    if isinstance(e, E.Apply) and e.fn is Fn.SIGMOID and isinstance(e.arg, E.Mul) and len(e.arg.factors) == 2 \
            and e.arg.factors[0] == E.MINUS_ONE:
        return E.apply(Fn.SIGMOID, e.arg.factors[1])
    return None


def _elementwise_product(e: E.Mul) -> bool:
    """A product that is elementwise: scalars times at most one array (s·A ⊙ ...)."""
    return sum(not f.is_scalar for f in e.factors) <= 1 and (e.is_scalar or not all(f.is_scalar for f in e.factors))


def expanded(e: E.Expr) -> Poly:
    """The polynomial of e: sums kept whole while a negative power of them is around,
    then multiplied out where they are left with a positive power."""
    keep = inverted_sums(e)
    p = Expander(keep)(e)
    if not keep or not any(b in keep and k > 0 for m in p for b, k in m):
        return p
    free = Expander(frozenset())
    out: Poly = {}
    for m, c in p.items():
        term: Poly = {frozenset(): c}
        for b, k in m:
            if b in keep and k > 0 and isinstance(k, Fraction) and k.denominator == 1 and k <= MAX_EXPANDED_POWER:
                factor = free._power(b, k)
            else:
                factor = _atom(b, k)
            term = _mul(term, factor)
        out = _add(out, term)
    return out


def _power_expr(base: E.Expr, k, shape) -> E.Expr:
    if base.shape != shape and not base.is_scalar:
        raise TooBig                      # a base of another shape: leave the form alone
    return base if k == 1 else E.power(base, E.const(k) if isinstance(k, (int, Fraction)) else E.Const(k))


def rebuild(p: Poly, shape, key: Callable[[E.Expr], str]) -> E.Expr:
    """The sum of monomials as an expression of `shape`: scalars multiply, arrays ⊙."""
    if not p:
        return E.zero(shape)
    terms = []
    for m, c in sorted(p.items(), key=lambda mc: sorted(key(b) for b, _ in mc[0])):
        parts = sorted(((b, k) for b, k in m), key=lambda bk: key(bk[0]))
        scalars = [_power_expr(b, k, shape) for b, k in parts if b.is_scalar]
        arrays = [_power_expr(b, k, shape) for b, k in parts if not b.is_scalar]
        if E.is_scalar(shape) or not arrays:
            body = E.mul(E.Const(c) if isinstance(c, Fraction) else E.const(c), *scalars, *arrays)
            terms.append(E.broadcast(body, shape) if not E.is_scalar(shape) else body)
        else:
            coeff = [E.Const(c)] if c != 1 else []
            terms.append(E.mul(*coeff, *scalars, E.hadamard(*arrays)))
    return E.add(*terms)


def cost(e: E.Expr, memo: dict) -> tuple[int, int]:
    """(occurrences of names, nodes) of the tree, a shared subtree counted at each use."""
    c = memo.get(e)
    if c is None:
        kids = [cost(k, memo) for k in e.children()]
        named = int(not e.children() and not isinstance(e, (E.Const, E.Zero, E.Identity)))
        c = memo[e] = (named + sum(k[0] for k in kids), 1 + sum(k[1] for k in kids))
    return c


def better(new: E.Expr, old: E.Expr, memo: dict) -> bool:
    """What the expansion must lower: the occurrences of names (y − t against
    ((1 − y)⁻¹ ⊙ (1 − t) − t ⊘ y) ⊙ (1 − y) ⊙ y), or with as many names two nodes or
    more, so that a near tie keeps the factored form (y ⊙ (1 − y), not y − y²)."""
    (names_new, nodes_new), (names_old, nodes_old) = cost(new, memo), cost(old, memo)
    return names_new < names_old or (names_new == names_old and nodes_new <= nodes_old - 2)


def shorter_expansion(e: E.Expr, key: Callable[[E.Expr], str], sizes: dict) -> E.Expr | None:
    """The expanded-and-collected form of an elementwise e when it is smaller."""
    if not _has_product_of_sum_or_inverse(e):
        return None
    try:
        new = rebuild(expanded(e), e.shape, key)
    except TooBig:
        return None
    return new if better(new, e, sizes) else None


def _has_product_of_sum_or_inverse(e: E.Expr) -> bool:
    """Only worth expanding where something can cancel: a negative power, or a product
    of a sum with a name that occurs more than once.  (1 − h²) ⊙ g, each name once,
    cannot get shorter; the test is a walk of the elementwise region only, cut at
    REGION_LIMIT nodes (then no expansion is tried)."""
    seen_atoms: set = set()
    repeated = negative = product_of_sum = False
    stack, visited = [e], 0
    while stack:
        n = stack.pop()
        visited += 1
        if visited > REGION_LIMIT:
            return False
        if isinstance(n, (E.Add, E.Hadamard, E.Broadcast)) or (isinstance(n, E.Mul) and _elementwise_product(n)):
            if isinstance(n, (E.Hadamard, E.Mul)) and any(_is_sum(f) or isinstance(f, E.Power) and _is_sum(f.base)
                                                          for f in n.factors):
                product_of_sum = True
            stack.extend(n.children())
        elif isinstance(n, E.Power):
            negative = negative or (isinstance(n.exponent, E.Const) and n.exponent.value < 0)
            stack.append(n.base)
        elif not isinstance(n, E.Const):
            n = _sigmoid_of_negative(n) or n
            repeated = repeated or n in seen_atoms
            seen_atoms.add(n)
    return negative or (product_of_sum and repeated)


REGION_LIMIT = 400
