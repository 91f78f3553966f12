"""Jacobians (d vec f = J d vec x) and Hessians (the Jacobian of the gradient).

Layer L4: imports expr, errors, engine and derive.  Forward accumulation over
a program's definitions: J_x = I, then J_a = Σ_s (∂a/∂s) J_s for each
definition a in order, each term from the forward walk of d(a); intermediate
Jacobians used more than once are named (J_a), the rest substituted.
A Hessian differentiates the gradient program: the definitions, the adjoints
g_a, and ∂L/∂x as the output.
"""
from __future__ import annotations

from dataclasses import replace

from . import expr as E
from .derive import (Derivation, _active, _differential_step, _fresh, _inline_single_use,
                     _refer_to_definitions, _within_size, _wrt_symbols, grad)
from .engine.adjoint import IDENTIFY
from .engine.differential import differential
from .engine.jacobian import forward_linear
from .engine.simplify import Simplifier
from .errors import UsageError
from .rules.jacobians import identity, vec
from .shapes import dim_product, show_shape
from .steps import Rule, Step

JACOBIAN = Rule("Jacobian", "d vec(f) = J d vec(x)  ⇒  ∂f/∂x = J")


def _size(shape):
    return dim_product(shape[0], shape[1])


def jacobian(program: E.Program, wrt: list[str], command: str = "jacobian",
             taken: set[str] | None = None) -> Derivation:
    syms = _wrt_symbols(program, wrt)
    simplify = Simplifier()
    taken = taken if taken is not None else set()
    taken |= set(program.inputs) | {s.name for s, _ in program.definitions} | set(program.functions)
    results: dict[str, E.Expr] = {}
    named: list[tuple[E.Symbol, E.Expr]] = []
    steps: list[Step] = []
    differentials: dict[str, E.Expr] = {}
    for x in syms:
        active = _active(program, {x.name})
        J: dict[str, E.Expr] = {x.name: identity(_size(x.shape))}

        def total(body: E.Expr, sym: E.Symbol | None) -> E.Expr:
            used: list[Rule] = []
            d = differential(body, active, used)
            out_size = _size(body.shape)
            if d is None:
                return E.zero((out_size, _size(x.shape)))
            d = simplify(d)
            if E.is_zero(d):                 # e.g. d sign(x) = 0
                return E.zero((out_size, _size(x.shape)))
            differentials[sym.name if sym is not None else ""] = d
            # a forward step: d(definition) in the differentials it depends on
            steps.append(replace(_differential_step(E.ONE, body, sym, d, used), kind="forward"))
            parts = [E.mul(p, J[s]) for s, ps in forward_linear(d, simplify).items() for p in ps]
            return simplify(E.add(*parts)) if parts else E.zero((out_size, _size(x.shape)))

        for sym, body in program.definitions:
            if sym.name not in active or sym.name == x.name:
                continue
            Ja = total(body, None if sym == program.output else sym)
            if not (isinstance(Ja, (E.Symbol, E.Const, E.Identity, E.Zero))):
                j = E.Symbol(_fresh(f"J_{sym.name}_{x.name}" if len(syms) > 1 else f"J_{sym.name}", taken),
                             Ja.shape, "defined")
                named.append((j, Ja))
                Ja = j
            J[sym.name] = Ja
        output = program.output
        if isinstance(output, E.Symbol) and output.name in J:
            result = J[output.name]
        else:
            result = total(output, None)
        results[x.name] = result
    results, named = _inline_single_use(results, named, simplify)
    results, named = _refer_to_definitions(program, results, named, simplify)
    _within_size(list(results.values()) + [b for _, b in named])
    for x in syms:
        J = results[x.name]
        steps.append(Step(JACOBIAN, E.mul(J, vec(E.differential(x))), J, x.name, "identify"))
    return Derivation(program, list(wrt), results, named, steps, differentials, command)


def hessian(program: E.Program, wrt: list[str]) -> Derivation:
    """∂²L/∂x²: the Jacobian of ∂L/∂x, with x's entries in vec order."""
    if not program.output.is_scalar:
        raise UsageError(f"hessian needs a scalar expression; this one is {show_shape(program.output.shape)}",
                         program.spans.get("<output>"),
                         hint="use `matcalc jacobian` for a vector or matrix expression")
    results, named, steps = {}, [], []
    taken: set[str] = set()                     # names stay distinct across the variables
    for name in wrt:
        g = grad(program, [name], share_products=False)
        steps += g.steps                        # first the gradient, then its Jacobian
        out = E.Symbol("_gradient", g.result.shape, "defined")
        gradient_program = E.Program(program.inputs, tuple(program.definitions) + tuple(g.adjoints) +
                                     ((out, vec(g.result)),), out, program.functions, program.source,
                                     declared=program.declared)
        h = jacobian(gradient_program, [name], command="hessian", taken=taken)
        back = {out: vec(g.result)}          # the gradient by its value, not its temporary name
        memo: dict = {}
        unname = lambda e: E.map_bottom_up(e, lambda n: back.get(n, n), memo)
        results[name] = unname(h.results[name])
        named += [(s, unname(b)) for s, b in h.adjoints if s.name != "_gradient"]
        named = [(s, b) for s, b in named] + [(s, b) for s, b in g.adjoints if s.name not in {n.name for n, _ in named}]
        steps += [Step(s.rule, unname(s.before), unname(s.after), s.note, s.kind) for s in h.steps]
    used = set()
    for e in list(results.values()) + [b for _, b in named]:
        used |= set(E.symbols(e))
    ordered = _evaluation_order(named, used)
    return Derivation(program, list(wrt), results, ordered, steps, {}, "hessian")


def _evaluation_order(named, used):
    """Named definitions that are used, each after the ones it refers to."""
    by_name = {s.name: (s, b) for s, b in named}
    out, seen = [], set()

    def visit(name):
        if name in seen or name not in by_name:
            return
        seen.add(name)
        for dep in E.symbols(by_name[name][1]):
            visit(dep)
        out.append(by_name[name])

    changed = True
    needed = set(used)
    while changed:
        changed = False
        for name in list(needed):
            if name in by_name:
                for dep in E.symbols(by_name[name][1]):
                    if dep not in needed:
                        needed.add(dep)
                        changed = True
    for s, _ in named:
        if s.name in needed:
            visit(s.name)
    return out


__all__ = ["jacobian", "hessian", "IDENTIFY"]
