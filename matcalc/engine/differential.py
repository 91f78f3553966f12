"""Differentials: d(expr) by the table in rules/differentials.py.

Layer L3: imports expr and rules.  Only symbols in `active` vary; every
node's differential is computed once (children first), so the cost is
linear in the size of the expression DAG.
"""
from __future__ import annotations

from .. import expr as E
from ..rules.differentials import rule_for


def differential(e: E.Expr, active: set[str], used: list | None = None) -> E.Expr | None:
    """dE with dX for every active symbol X; None when E does not vary.

    `used`, if given, collects the rules applied (each once, in order)."""
    memo: dict[E.Expr, E.Expr | None] = {}
    for n in E.walk(e):
        if n in memo:
            continue
        if isinstance(n, E.Symbol):
            memo[n] = E.differential(n) if n.name in active else None
        elif not n.children():
            memo[n] = None
        else:
            dk = tuple(memo[k] for k in n.children())
            if all(d is None for d in dk):
                memo[n] = None
                continue
            entry = rule_for(n)
            memo[n] = entry.apply(n, dk)
            if used is not None and entry.rule not in used:
                used.append(entry.rule)
    return memo[e]
