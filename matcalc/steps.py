"""Named rules and the step records a derivation keeps.

Layer L1: imports expr.  A Rule is data (its name, its general form, where
the Matrix Cookbook states it); a Step says which rule turned `before`
into `after`.  The engine records steps; rules never print.
"""
from __future__ import annotations

from dataclasses import dataclass

from .expr import Expr


@dataclass(frozen=True)
class Rule:
    name: str            # what people call it: "cyclic property of the trace"
    display: str         # its general form: "A:BC = BᵀA:C"
    cookbook: str = ""   # Matrix Cookbook equation, where there is one


# What a step does, for printers: a block starts with a "differential" step.
KINDS = ("differential", "rewrite", "collect", "adjoint", "symmetric", "identify")


@dataclass(frozen=True)
class Step:
    rule: Rule
    before: Expr
    after: Expr
    note: str = ""       # e.g. "where a = W*h + b" for a definition's differential
    kind: str = "rewrite"   # rewrite | differential | forward (a Jacobian's) | adjoint | define | collect | symmetric | identify
    definition: tuple[str, Expr] | None = None   # (a, W*h + b) for a definition's differential


# The identification in numerator layout (--layout numerator): the gradient is
# written as the transpose of the G that the Frobenius walk finds.
NUMERATOR_LAYOUT = Rule("numerator layout", "dL = G : dX  ⇒  ∂L/∂X = Gᵀ")
