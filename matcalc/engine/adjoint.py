"""The Frobenius walk: dL = G : ℓ(dX, dY, ...)  ->  G_X : dX + G_Y : dY + ...

Layer L3: imports expr, steps and rules.  Walks the linear expression from
the outside in, moving each operation onto G as its adjoint (reverse mode).
The leftmost unfinished term is always the one rewritten, so with steps on,
each Step holds the whole of dL before and after one named identity.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Callable

from .. import expr as E
from ..rules.adjoints import adjoint_rule
from ..steps import Rule, Step

IDENTIFY = Rule("identification", "dL = G : dX  ⇒  ∂L/∂X = G")

Term = tuple[E.Expr, E.Expr]          # (G, ℓ): the term G : ℓ


def _varies(e: E.Expr, memo: dict) -> bool:
    hit = memo.get(e)
    if hit is None:
        hit = memo[e] = isinstance(e, E.Differential) or any(_varies(k, memo) for k in e.children())
    return hit


def state_expr(terms: list[Term]) -> E.Expr:
    """Σ G : ℓ as one expression (what a step line shows); 1 : ℓ is just ℓ."""
    if not terms:
        return E.zero((1, 1))
    return E.add(*(e if g == E.ONE and e.is_scalar else E.frobenius(g, e) for g, e in terms))


def transpose_linear(G: E.Expr, linear: E.Expr, steps: list[Step] | None = None,
                     simplify: Callable[[E.Expr], E.Expr] = lambda e: e) -> dict[str, list[E.Expr]]:
    """Contributions to ∂/∂X for every X whose dX appears in `linear`.

    Each new G is simplified as it is made, so that steps read as a person
    would write them and G stays small as it travels inward."""
    memo: dict = {}
    finished: list[Term] = []
    stack: list[Term] = [(G, linear)]          # leftmost term on top
    while stack:
        g, e = stack.pop()
        if isinstance(e, E.Differential):
            finished.append((g, e))
            continue
        entry = adjoint_rule(e)
        moved: list[Term] = []
        rule = entry.rule
        for i, child in enumerate(e.children()):
            if _varies(child, memo):
                rule, g2 = entry.apply(g, e, i)
                moved.append((simplify(g2), child))
        if steps is not None:
            rest = stack[::-1]
            steps.append(Step(rule, state_expr(finished + [(g, e)] + rest),
                              state_expr(finished + moved + rest)))
        stack.extend(reversed(moved))
    out: dict[str, list[E.Expr]] = defaultdict(list)
    for g, e in finished:
        out[e.target.name].append(g)
    return out
