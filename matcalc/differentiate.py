"""Differentials as results: df in terms of dX (forward mode over a program).

Layer L4: imports expr, errors, steps, engine and derive.  For a program
`a = ...; L = f(a)` each definition that depends on a variable gets its
tangent da = d(body), in which the differentials of earlier definitions are
their tangents (forward accumulation, nothing inlined, so the work is linear);
the output's tangent is df.  The same walk over a gradient program (its
definitions, adjoints and the gradients as outputs) is the Hessian-vector
product: the differential of the gradient, never the Hessian itself.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Callable

from . import expr as E
from .derive import (Derivation, _active, _differential_step, _fresh, _inline_single_use,
                     _refer_to_definitions, _trivial, _within_size, _wrt_symbols)
from .engine.differential import differential as differential_of
from .engine.simplify import Simplifier
from .rules.polynomial import better
from .steps import Rule, Step

TANGENT = Rule("tangent", "da = d(definition of a), in the differentials of what it uses (forward mode)")


def tangents(definitions, outputs: list[E.Expr], active: set[str], simplify: Callable,
             taken: set[str], steps: list[Step] | None = None, prefix: str = "d"
             ) -> tuple[list[E.Expr], list[tuple[E.Symbol, E.Expr]]]:
    """The differentials of `outputs` along the variables' directions dX (E.Differential
    nodes of the variables in `active` that no definition defines), and the named
    tangents of the definitions they go through, in evaluation order.  A definition's
    tangent is named `d<name>` (fresh) unless it is a symbol, constant or zero."""
    tangent: dict[str, E.Expr] = {}           # definition name -> its tangent (None: constant)
    named: list[tuple[E.Symbol, E.Expr]] = []

    def d(body: E.Expr, sym: E.Symbol | None) -> E.Expr:
        used: list[Rule] = []
        out = differential_of(body, active, used if steps is not None else None)
        if out is None:
            return E.zero(body.shape)
        out = simplify(out)
        if steps is not None and not E.is_zero(out):
            steps.append(replace(_differential_step(E.ONE, body, sym, out, used), kind="forward"))
        memo: dict = {}
        # d(a) of an earlier definition a stands for a's tangent
        swap = lambda n: tangent.get(n.target.name, n) if isinstance(n, E.Differential) and \
            isinstance(n.target, E.Symbol) else n
        return simplify(E.map_bottom_up(out, swap, memo))

    for sym, body in definitions:
        if sym.name not in active:
            continue
        t = d(body, sym)
        if not (_trivial(t) or E.is_zero(t) or isinstance(t, E.Differential)):
            s = E.Symbol(_fresh(f"{prefix}{sym.name}", taken), sym.shape, "defined")
            named.append((s, t))
            t = s
        tangent[sym.name] = t
    outs = []
    for out in outputs:
        if isinstance(out, E.Symbol) and out.name in tangent:
            outs.append(tangent[out.name])
        elif isinstance(out, E.Symbol) and out.name in active and out.name not in tangent:
            outs.append(E.differential(out))     # the output is a variable itself
        else:
            outs.append(d(out, None))
    return outs, named


def differential(program: E.Program, wrt: list[str], keep_steps: bool = True) -> Derivation:
    """df along each variable: results[X] is the part of df in dX (what jvp_X computes);
    their sum, `total`, is the total differential when there are several."""
    syms = _wrt_symbols(program, wrt)
    simplify = Simplifier()
    taken = set(program.inputs) | {s.name for s, _ in program.definitions} | set(program.functions)
    taken |= {f"d{s.name}" for s in syms}               # the directions' own names
    results: dict[str, E.Expr] = {}
    named: list[tuple[E.Symbol, E.Expr]] = []
    steps: list[Step] = []
    for x in syms:
        active = _active(program, {x.name})
        # a variable defined in the program is varied with its definition held
        definitions = [(s, b) for s, b in program.definitions if s.name != x.name]
        [df], more = tangents(definitions, [program.output], active, simplify, taken,
                              steps if keep_steps else None)
        results[x.name] = df
        named += more
    results = {name: _direction_first(df, simplify) for name, df in results.items()}
    results, named = _inline_single_use(results, named, simplify)
    results, named = _refer_to_definitions(program, results, named, simplify)
    _within_size(list(results.values()) + [b for _, b in named])
    out = Derivation(program, list(wrt), results, named, steps, {}, "differential")
    out.total = simplify(E.add(*results.values())) if len(results) > 1 else out.result
    return out


def _direction_first(df: E.Expr, simplify) -> E.Expr:
    """A scalar df as textbooks write it: a term x'*A*dx is a scalar, equal to its transpose
    dx'*A'*x, so with dx' leading (or dx trailing) in every term like terms collect:
    dx'*A*x + x'*A*dx = dx'*(A + A')*x.  The smallest of the three forms is kept."""
    if df.shape != (1, 1) or not isinstance(df, E.Add):
        return df
    direction = lambda f: isinstance(f, E.Differential) and f.shape[1] == 1 and f.shape[0] != 1
    trailing = lambda t: isinstance(t, E.Mul) and direction(t.factors[-1])
    leading = lambda t: (isinstance(t, E.Mul) and isinstance(t.factors[0], E.Transpose)
                         and direction(t.factors[0].arg))
    turn = lambda t: E.mul(*(E.transpose(f) for f in reversed(t.factors)))    # (abc)' = c'b'a'
    best = df
    for turned_if in (trailing, leading):
        turned = simplify(E.add(*(turn(t) if turned_if(t) else t for t in df.terms)))
        best = turned if better(turned, best, {}) else best
    return best


__all__ = ["differential", "tangents"]
