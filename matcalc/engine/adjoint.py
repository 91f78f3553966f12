"""The Frobenius walk: dL = G : ℓ(dX, dY, ...)  ->  G_X : dX + G_Y : dY + ...

Layer L3: imports expr, steps and rules.  Walks the linear expression from
the outside in, moving each operation onto G as its adjoint (reverse mode);
every move is recorded as a Step naming its identity.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Callable

from .. import expr as E
from ..rules.adjoints import adjoint_rule
from ..steps import Rule, Step

IDENTIFY = Rule("identification", "dL = G : dX  ⇒  ∂L/∂X = G")


def _varies(e: E.Expr, memo: dict) -> bool:
    hit = memo.get(e)
    if hit is None:
        hit = memo[e] = isinstance(e, E.Differential) or any(_varies(k, memo) for k in e.children())
    return hit


def transpose_linear(G: E.Expr, linear: E.Expr, steps: list[Step] | None = None,
                     simplify: Callable[[E.Expr], E.Expr] = lambda e: e) -> dict[str, list[E.Expr]]:
    """Contributions to ∂/∂X for every X whose dX appears in `linear`.

    Each new G is simplified as it is made, so that steps read as a person
    would write them and G stays small as it travels inward."""
    out: dict[str, list[E.Expr]] = defaultdict(list)
    memo: dict = {}
    work = [(G, linear)]
    while work:
        g, e = work.pop()
        if isinstance(e, E.Differential):
            out[e.target.name].append(g)
            if steps is not None:
                steps.append(Step(IDENTIFY, E.frobenius(g, e), g, e.target.name))
            continue
        entry = adjoint_rule(e)
        for i, child in enumerate(e.children()):
            if not _varies(child, memo):
                continue
            rule, g2 = entry.apply(g, e, i)
            g2 = simplify(g2)
            if steps is not None:
                steps.append(Step(rule, E.frobenius(g, e), E.frobenius(g2, child)))
            work.append((g2, child))
    return out
