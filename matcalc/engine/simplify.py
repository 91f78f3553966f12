"""The simplifier: algebra rules applied bottom-up to a fixpoint.

Layer L3: imports expr, errors, rules, printing.  Memoised on structure, so
shared subexpressions are simplified once; a budget bounds the work.
"""
from __future__ import annotations

import sys

from .. import expr as E
from ..errors import LimitError
from ..printing.text import to_text
from ..rules.algebra import Context, rules_for

MAX_REWRITES = 200_000
sys.setrecursionlimit(max(sys.getrecursionlimit(), 20_000))  # trees up to parser.MAX_TREE_DEPTH


class Simplifier:
    def __init__(self):
        self._memo: dict[E.Expr, E.Expr] = {}
        self._keys: dict[E.Expr, str] = {}
        self.rewrites = 0
        self.ctx = Context(self.key)
        self.fired: list | None = None      # a list to record the rules that rewrite (for --steps)

    def key(self, e: E.Expr) -> str:
        k = self._keys.get(e)
        if k is None:
            k = self._keys[e] = to_text(e)
        return k

    def __call__(self, e: E.Expr) -> E.Expr:
        done = self._memo.get(e)
        if done is not None:
            return done
        kids = e.children()
        node = e
        if kids:
            new = tuple(self(k) for k in kids)
            if any(a is not b for a, b in zip(kids, new)):
                node = e.with_children(new)
        result = self._rewrite(node)
        self._memo[e] = result
        self._memo[result] = result
        return result

    def _rewrite(self, e: E.Expr) -> E.Expr:
        for entry in rules_for(e):
            new = entry.apply(e, self.ctx)
            if new is not None and new != e:
                if new.shape != e.shape:   # the IR check: a rewrite never changes a shape
                    raise AssertionError(f"rule {entry.rule.name!r} changed {e.shape} to {new.shape}")
                self.rewrites += 1
                if self.fired is not None:
                    self.fired.append(entry.rule)
                if self.rewrites > MAX_REWRITES:
                    raise LimitError(f"simplification took more than {MAX_REWRITES:,} rewrites")
                return self(new)
        return e


def simplify(e: E.Expr) -> E.Expr:
    return Simplifier()(e)
