"""Products that several matrix chains have in common, formed once when that saves work.

Layer L2: imports expr only.  The code printer's `_Function` (cse.py) asks `Plans` which
partial products of its chains to compute into a temporary.  Attention's gradient holds
X Wq Wkᵀ Xᵀ, Xᵀ G_S X Wk, Xᵀ G_Sᵀ X Wq, P X Wv and R Wvᵀ Xᵀ: each chain in its own
cheapest order recomputes X Wk, X Wq and X Wv; hand-written backprop forms them once
(Q, K, V).  A common product is not always worth forming: Xᵀ G X (d × d) shared by
Xᵀ G X w and Xᵀ G X v costs more than Xᵀ (G (X w)) twice.

So the choice is by a cost model: multiply-adds of each chain's cheapest order, with and
without the common product as one factor, under every assignment of a large or a small
size to each named dimension (a literal size is itself: a vector's 1).  The plan is the
set of products that lowers the total over the assignments (the expected work when each
dimension is independently large or small), searched greedily from each first choice in
turn (one product can block a better pair: P X against X Wv in attention).

Which plan is cheapest can depend on the sizes, as a chain's order does: attention with a
narrow head (h < d) wants Q = X Wq and K = X Wk formed, with a narrow input (d < h) it
wants Xᵀ G_S X.  When one assignment alone (one dimension small) has a plan that saves
SWITCH_OVER of its work, the code holds both and `_cheapest` picks one at run time from
the arrays' sizes, as multi_dot picks a chain's order.
"""
from __future__ import annotations

import itertools
from collections.abc import Callable, Hashable
from functools import lru_cache

from .. import expr as E

# The sizes a named dimension takes in the cost model (only ratios matter).
LARGE, SMALL = 64, 8
# Beyond this many named dimensions, the others are large in every assignment.
VARIED_UP_TO = 5
# Beyond this many common products no plan is searched (each chain keeps its own cheapest
# order, sharing what the derivation named): the search costs the cube of this count, and a
# 32-factor trace chain's 63 candidates took seconds of code generation where 12 take 0.1 s.
SEARCHED_UP_TO = 12
# A second plan, chosen at run time, when it saves this share of the work where it is best.
SWITCH_OVER = 0.1


def _is_diag(e) -> bool:
    return isinstance(e, E.Apply) and e.fn is E.Fn.DIAG


# A factor of the model: (rows, columns, diagonal?), a dimension a name or a literal size.
Factor = tuple[object, object, bool]


def _factor(e: E.Expr) -> Factor:
    return e.shape[0], e.shape[1], _is_diag(e)


def expected_entries(shape) -> float:
    """The mean entry count of an array of this shape when each named dimension is
    independently LARGE or SMALL: a repeated dimension counts as its square."""
    out = 1.0
    for d in set(shape):
        k = shape.count(d)
        out *= d ** k if isinstance(d, int) else (LARGE ** k + SMALL ** k) / 2
    return out


def _chain_multiply_adds(factors):
    """Multiply-adds of a matrix chain in its cheapest order; factors (rows, columns, diagonal),
    a diagonal factor times A a broadcast (one pass over A).  Copied into generated modules."""
    n = len(factors)
    best = {(i, i): (0, bool(factors[i][2])) for i in range(n)}
    for length in range(2, n + 1):
        for i in range(n - length + 1):
            j = i + length - 1
            options = []
            for k in range(i, j):
                (lc, ld), (rc, rd) = best[(i, k)], best[(k + 1, j)]
                rows, inner, cols = factors[i][0], factors[k][1], factors[j][1]
                pair = rows * cols if ld or rd else rows * inner * cols
                options.append((lc + rc + pair, ld and rd))
            best[(i, j)] = min(options)
    return best[(0, n - 1)][0]


def _cheapest(plans, sizes, _known={}):
    """The index of the plan with the fewest multiply-adds at these sizes.  plans: for each
    plan its matrix chains, each factor (rows, columns, diagonal) with its sizes as indices
    into `sizes` (a module constant, so that a call passes only the arrays' sizes); remembered
    per sizes (_known: the same sizes call after call cost one lookup)."""
    key = (id(plans), sizes)
    if key not in _known:
        costs = [sum(_chain_multiply_adds([(sizes[r], sizes[c], d) for r, c, d in chain]) for chain in plan)
                 for plan in plans]
        _known[key] = costs.index(min(costs))
    return _known[key]


@lru_cache(maxsize=1 << 16)
def chain_cost(chain: tuple[Factor, ...], sizes: tuple[tuple[str, int], ...]) -> int:
    """_chain_multiply_adds with every named dimension given its size in `sizes`."""
    size = dict(sizes)
    return _chain_multiply_adds([(size.get(r, r), size.get(c, c), d) for r, c, d in chain])


class Plans:
    """Which products common to chains to form once (up to transposition and scale, by `key`).
    subchains(chain) lists (start, length, product) of a chain's partial products, longest
    first; computed(k): is that product computed anyway (then it is one factor already)."""

    def __init__(self, chains: list[list[E.Expr]], subchains: Callable, key: Callable[[E.Expr], Hashable],
                 computed: Callable[[Hashable], bool]):
        self.model = [tuple(_factor(x) for x in chain) for chain in chains]
        self.named = sorted({d for chain in self.model for f in chain for d in f[:2] if not isinstance(d, int)},
                            key=str)
        varied = self.named[:VARIED_UP_TO]
        self.assignments = [tuple(sorted(zip(varied, pick))) + tuple((d, LARGE) for d in self.named[VARIED_UP_TO:])
                            for pick in itertools.product((LARGE, SMALL), repeat=len(varied))]
        self.spans: dict[Hashable, dict[int, tuple[int, int]]] = {}       # key -> chain -> (start, length)
        self.anyway: list[list[tuple[int, int]]] = [[] for _ in chains]   # spans computed anyway, per chain
        for c, chain in enumerate(chains):
            for i, n, part in subchains(chain):
                k = key(part)
                if computed(k):
                    if _free(self.anyway[c], (i, n)):
                        self.anyway[c].append((i, n))
                else:
                    self.spans.setdefault(k, {}).setdefault(c, (i, n))
        self.candidates = [k for k, where in self.spans.items() if len(where) >= 2]

    def layout(self, chosen: tuple) -> list[tuple[Factor, ...]] | None:
        """The chains with `chosen` formed (each one factor), then the products formed; None
        if a chosen product is no longer common to two chains."""
        taken = [list(spans) for spans in self.anyway]
        formed = []
        for k in chosen:
            where = [(c, s) for c, s in self.spans[k].items() if _free(taken[c], s)]
            if len(where) < 2:
                return None
            c0, (i0, n0) = where[0]
            formed.append(self.model[c0][i0:i0 + n0])
            for c, s in where:
                taken[c].append(s)
        return [_cut(m, t) for m, t in zip(self.model, taken)] + formed

    def cost(self, chosen: tuple, assignments) -> float:
        """The modelled work with `chosen` formed, summed over the assignments."""
        chains = self.layout(chosen)
        if chains is None:
            return float("inf")
        return sum(chain_cost(chain, a) for a in assignments for chain in chains)

    def best(self, assignments) -> tuple:
        """Greedily, from each first choice in turn (one product can block a better pair)."""
        best, best_cost = (), self.cost((), assignments)
        for first in self.candidates:
            chosen = (first,)
            here = self.cost(chosen, assignments)
            while True:
                step = min(((self.cost(chosen + (k,), assignments), k) for k in self.candidates if k not in chosen),
                           default=None, key=lambda x: x[0])
                if step is None or step[0] >= here:
                    break
                here, chosen = step[0], chosen + (step[1],)
            if here < best_cost:
                best, best_cost = chosen, here
        return best

    def choices(self) -> list[tuple]:
        """The plan for the expected work; then, of the plans best where every dimension is
        large or where one is small, the one saving most over those assignments (each a
        share of its work), if that is SWITCH_OVER or more: written too, chosen at run time."""
        if not self.candidates or len(self.candidates) > SEARCHED_UP_TO:
            return [()]
        expected = self.best(self.assignments)
        singles = [tuple((d, SMALL if d == small else LARGE) for d in self.named) for small in [None, *self.named]]
        base = [max(self.cost(expected, [a]), 1) for a in singles]
        other, gain = None, SWITCH_OVER
        for plan in {frozenset(self.best([a])): None for a in singles}:
            if plan == frozenset(expected):
                continue
            plan = tuple(plan)
            saved = sum(max(0.0, 1 - self.cost(plan, [a]) / b) for a, b in zip(singles, base))
            if saved > gain:
                other, gain = plan, saved
        return [expected] if other is None else [expected, other]


def _free(taken: list[tuple[int, int]], span: tuple[int, int]) -> bool:
    i, n = span
    return all(i + n <= s or s + m <= i for s, m in taken)


def _cut(chain: tuple[Factor, ...], taken: list[tuple[int, int]]) -> tuple[Factor, ...]:
    """The chain with each taken span (start, length) as one factor."""
    out, i = [], 0
    starts = dict(taken)
    while i < len(chain):
        n = starts.get(i, 1)
        part = chain[i:i + n]
        out.append((part[0][0], part[-1][1], all(f[2] for f in part)))
        i += n
    return tuple(out)
