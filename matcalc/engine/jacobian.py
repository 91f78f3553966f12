"""The forward walk: d vec(f) = Σ_s J_s d vec(s) for a differential linear in the ds.

Layer L3: imports expr and rules.  The mirror image of the Frobenius walk:
instead of moving G inward as an adjoint, a left multiplier J travels inward,
each linear operation multiplying it by its own Jacobian (rules/jacobians.py).
"""
from __future__ import annotations

from collections import defaultdict
from typing import Callable

from .. import expr as E
from ..rules.jacobians import identity, jacobian_rule
from ..shapes import dim_product
from .adjoint import _varies


def forward_linear(linear: E.Expr, simplify: Callable[[E.Expr], E.Expr] = lambda e: e
                   ) -> dict[str, list[E.Expr]]:
    """Per symbol s whose ds appears, the parts of ∂vec(f)/∂vec(s)."""
    memo: dict = {}
    out: dict[str, list[E.Expr]] = defaultdict(list)
    size = dim_product(linear.shape[0], linear.shape[1])
    work = [(identity(size), linear)]
    while work:
        J, e = work.pop()
        if isinstance(e, E.Differential):
            out[e.target.name].append(J)
            continue
        entry = jacobian_rule(e)
        for i, child in enumerate(e.children()):
            if _varies(child, memo):
                work.append((simplify(E.mul(J, entry.apply(e, i))), child))
    return out
