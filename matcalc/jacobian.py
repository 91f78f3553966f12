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
from fractions import Fraction

from . import expr as E
from .derive import (Derivation, _active, _differential_step, _fresh, _inline_single_use,
                     _refer_to_definitions, _within_size, _wrt_symbols, grad)
from .engine.adjoint import IDENTIFY
from .engine.differential import differential
from .engine.jacobian import forward_linear
from .differentiate import tangents
from .engine.simplify import Simplifier
from .errors import UsageError
from .rules.jacobians import identity, vec
from .shapes import dim_product, show_shape
from .steps import Rule, Step

JACOBIAN = Rule("Jacobian", "d vec(f) = J d vec(x)  ⇒  ∂f/∂x = J")
JACOBIAN_SYMMETRIC = Rule("Jacobian", "only symmetric dS exist: d vec(S) = P d vec(S), P = ½(I + K)  ⇒  "
                                       "∂f/∂S = J P (a Hessian P H P: symmetric, zero on antisymmetric directions)")
JACOBIAN_SCALAR = Rule("Jacobian", "df = D dα  ⇒  ∂f/∂α = D, shaped like f")


def _size(shape):
    return dim_product(shape[0], shape[1])


def _seed(x: E.Symbol) -> E.Expr:
    """∂vec(x)/∂vec(x): I, or for a symmetric(n) x the symmetriser P = ½(I + K), since
    only symmetric dx exist.  So a Jacobian by a symmetric x is J P, which vanishes on
    antisymmetric directions, and a Hessian (P on the left from sym(G)) is P H P: a
    symmetric matrix, the one that is the second derivative along symmetric directions."""
    size = _size(x.shape)
    if not x.symmetric or x.is_scalar:
        return identity(size)
    n = x.shape[0]
    return E.mul(E.Const(Fraction(1, 2)), E.add(E.Identity((size, size)), E.commutation(n, n)))


def _along_scalar(d: E.Expr, x: E.Symbol, J: dict[str, E.Expr]) -> E.Expr:
    """∂f/∂α for a scalar α, shaped like f (interface.md §1): df with dα = 1 and each
    intermediate's differential replaced by its own ∂a/∂α (forward mode, no vec)."""
    tangents = {E.differential(s): J[name] for name, s in
                ((n, s) for n, s in _differentiated(d).items()) if name in J}
    return E.map_bottom_up(d, lambda n: tangents.get(n, n))


def _differentiated(d: E.Expr) -> dict[str, E.Symbol]:
    return {n.target.name: n.target for n in E.walk(d) if isinstance(n, E.Differential)}


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
        J: dict[str, E.Expr] = {x.name: E.ONE if x.is_scalar else _seed(x)}

        def total(body: E.Expr, sym: E.Symbol | None) -> E.Expr:
            used: list[Rule] = []
            d = differential(body, active, used)
            none = E.zero(body.shape if x.is_scalar else (_size(body.shape), _size(x.shape)))
            if d is None:
                return none
            d = simplify(d)
            if E.is_zero(d):                 # e.g. d sign(x) = 0
                return none
            differentials[sym.name if sym is not None else ""] = d
            # a forward step: d(definition) in the differentials it depends on
            steps.append(replace(_differential_step(E.ONE, body, sym, d, used), kind="forward"))
            if x.is_scalar:
                return simplify(_along_scalar(d, x, J))
            parts = [E.mul(p, J[s]) for s, ps in forward_linear(d, simplify).items() for p in ps]
            return simplify(E.add(*parts)) if parts else none

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
        dx = E.differential(x)
        steps.append(Step(JACOBIAN_SCALAR, E.mul(J, dx), J, x.name, "identify") if x.is_scalar else
                     Step(JACOBIAN_SYMMETRIC if x.symmetric else JACOBIAN, E.mul(J, vec(dx)), J, x.name, "identify"))
    return Derivation(program, list(wrt), results, named, steps, differentials, command)


def hessian(program: E.Program, wrt: list[str]) -> Derivation:
    """∂²L/∂x²: the Jacobian of ∂L/∂x, with x's entries in vec order."""
    if not program.output.is_scalar:
        raise UsageError(f"hessian needs a scalar expression; this one is {show_shape(program.output.shape)}",
                         program.spans.get("<output>"),
                         hint="use `matcalc jacobian` for a vector or matrix expression")
    results, named, steps, blocks = {}, [], [], {}
    taken: set[str] = set()                     # names stay distinct across the variables
    for i, name in enumerate(wrt):
        # the blocks ∂²L/∂X∂Y, X before Y, between inputs (a named intermediate is varied
        # with its definition held, which leaves no cross term to speak of)
        later = [y for y in wrt[i + 1:] if y != name and {name, y} <= set(program.inputs)]
        g = grad(program, [name], share_products=False)
        steps += g.steps                        # first the gradient, then its Jacobian
        flat = vec(g.result)                 # the output: the gradient's vec, so the name has its shape
        out = E.Symbol("_gradient", flat.shape, "defined")
        gradient_program = E.Program(program.inputs, tuple(program.definitions) + tuple(g.adjoints) +
                                     ((out, flat),), out, program.functions, program.source,
                                     declared=program.declared)
        h = jacobian(gradient_program, [name] + later, command="hessian", taken=taken)
        back = {out: flat}                   # the gradient by its value, not its temporary name
        memo: dict = {}
        unname = lambda e: E.map_bottom_up(e, lambda n: back.get(n, n), memo)
        results[name] = unname(h.results[name])
        for y in later:                      # d vec(∂L/∂X) = H_XY d vec(Y)
            key = _fresh(f"{name}_{y}", taken | set(wrt) | set(results))
            results[key], blocks[key] = unname(h.results[y]), (name, y)
        named += [(s, unname(b)) for s, b in h.adjoints if s.name != "_gradient"]
        named = [(s, b) for s, b in named] + [(s, b) for s, b in g.adjoints if s.name not in {n.name for n, _ in named}]
        keys = {y: k for k, (x, y) in blocks.items() if x == name}     # a block's identification is by its key
        steps += [Step(s.rule, unname(s.before), unname(s.after),
                       keys.get(s.note, s.note) if s.kind == "identify" else s.note, s.kind) for s in h.steps]
    used = set()
    for e in list(results.values()) + [b for _, b in named]:
        used |= set(E.symbols(e))
    ordered = _evaluation_order(named, used)
    out = Derivation(program, list(wrt), results, ordered, steps, {}, "hessian", blocks=blocks)
    if all(name in program.inputs for name in wrt):
        taken |= {s.name for s, _ in ordered}
        out.hvp, out.hvp_named = hessian_vector_product(program, wrt, taken)
    return out


def hessian_vector_product(program: E.Program, wrt: list[str], taken: set[str]):
    """hvp: the differential of the gradient along every direction dX, by forward tangents
    through the gradient program (its definitions and adjoints); the Hessian never
    appears, so it costs about a gradient.  Returns ({X: d(∂L/∂X)}, the definitions it
    needs, named apart from `taken`)."""
    simplify = Simplifier()
    g = grad(program, wrt, keep_steps=False, share_products=False)
    taken |= set(program.inputs) | {s.name for s, _ in program.definitions} | set(program.functions)
    taken |= {f"d{w}" for w in wrt}
    rename: dict[E.Expr, E.Expr] = {}
    memo: dict = {}
    renamed = lambda e: E.map_bottom_up(e, lambda n: rename.get(n, n), memo) if rename else e
    adjoints = []
    for sym, body in g.adjoints:             # the gradient's own adjoints, apart from the Hessian's names
        fresh = E.Symbol(_fresh(sym.name, taken), sym.shape, "defined")
        if fresh != sym:
            rename[sym] = fresh
            memo.clear()
        adjoints.append((fresh, renamed(body)))
    gradients = [renamed(g.results[w]) for w in wrt]
    definitions = list(program.definitions) + adjoints
    active = set(wrt)
    for sym, body in definitions:
        if any(n in active for n in E.symbols(body)):
            active.add(sym.name)
    outs, tangent_defs = tangents(definitions, gradients, active, simplify, taken)
    hvp, needed = _inline_single_use(dict(zip(wrt, outs)), adjoints + tangent_defs, simplify)
    return hvp, _evaluation_order(needed, {n for e in hvp.values() for n in E.symbols(e)})


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
