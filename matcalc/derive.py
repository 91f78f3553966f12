"""Gradients of programs: differentials, the Frobenius walk, reverse accumulation.

Layer L4: imports expr, errors, steps, engine.  For a program
`a = ...; L = f(a)` the definitions are processed last to first, each
intermediate getting its adjoint g_a = ∂L/∂a (backpropagation); nothing is
inlined, so the work is linear in the program.  Adjoints used once are
substituted into their single use at the end, for readable results.
"""
from __future__ import annotations

import difflib
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from fractions import Fraction

from . import expr as E
from .engine.chains import SHARE, share_chain_products
from .engine.adjoint import IDENTIFY, state_expr, transpose_linear
from .engine.differential import differential
from .engine.simplify import Simplifier
from .errors import LimitError, NameError_, Span, UsageError
from .rules.algebra import is_symmetric
from .shapes import show_shape
from .rules.differentials import LINEAR
from .steps import Rule, Step

SYMMETRIC = Rule("gradient along symmetric directions", "∂L/∂S = sym(G) = ½(G + Gᵀ)",
                 "(not G + Gᵀ − diag(G): Srinivasan & Panda, arXiv:1911.06491)")
COLLECT = Rule("collecting terms", "A : dX + B : dX = (A + B) : dX")
ADJOINT = Rule("adjoint", "g_a = ∂L/∂a, passed back to the definition of a (backpropagation)")


@dataclass
class Derivation:
    """The outcome of a derivation: results, named adjoints and the steps."""
    program: E.Program
    wrt: list[str]
    results: dict[str, E.Expr]                       # variable -> ∂L/∂variable
    adjoints: list[tuple[E.Symbol, E.Expr]]          # g_a = ..., in evaluation order
    steps: list[Step] = field(default_factory=list)
    differentials: dict[str, E.Expr] = field(default_factory=dict)   # name -> d(definition)
    command: str = "grad"                            # grad | jacobian | hessian | differential
    shared: list[tuple[E.Symbol, E.Expr]] = field(default_factory=list)  # t = ..., products named (chains.py)
    total: E.Expr | None = None                      # differential: df, the sum of the results
    hvp: dict[str, E.Expr] = field(default_factory=dict)   # hessian: X -> d(∂L/∂X) along every dY
    hvp_named: list[tuple[E.Symbol, E.Expr]] = field(default_factory=list)  # what hvp needs beyond `named`
    blocks: dict[str, tuple[str, str]] = field(default_factory=dict)  # hessian: "X_Y" -> (X, Y), a block's key in results

    @property
    def result(self) -> E.Expr:
        return self.results[self.wrt[0]]

    @property
    def named(self) -> list[tuple[E.Symbol, E.Expr]]:
        """Every name the results use that the input did not define, in evaluation order."""
        return self.shared + self.adjoints


def _wrt_symbols(program: E.Program, wrt: list[str]) -> list[E.Symbol]:
    defined = {s.name: s for s, _ in program.definitions}
    out = []
    for name in wrt:
        sym = program.inputs.get(name) or defined.get(name)
        if sym is None:
            known = list(program.inputs) + list(defined)
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"did you mean {close[0]}?" if close else (
                f"the expression's names are: {', '.join(known)}" if known else None)
            raise NameError_(f"--wrt {name}: there is no {name} in the expression",
                             Span.at(name, 0, len(name)), hint, source=name, origin="--wrt")
        out.append(sym)
    return out


def _active(program: E.Program, wrt: set[str]) -> set[str]:
    """Names that depend on a variable of differentiation."""
    active = set(wrt)
    for sym, body in program.definitions:
        if sym.name not in active and any(n in active for n in E.symbols(body)):
            active.add(sym.name)
    return active


def _trivial(e: E.Expr) -> bool:
    return isinstance(e, (E.Symbol, E.Const, E.Identity, E.Zero)) or (
        isinstance(e, E.Broadcast) and isinstance(e.value, E.Const))


def grad(program: E.Program, wrt: list[str], keep_steps: bool = True, share_products: bool = True) -> Derivation:
    if not program.output.is_scalar:
        raise UsageError(f"grad needs a scalar expression; this one is {show_shape(program.output.shape)}",
                         program.spans.get("<output>"),
                         hint="use `matcalc jacobian` for the derivative of a vector or matrix")
    wrt_syms = _wrt_symbols(program, wrt)
    active = _active(program, set(wrt))
    simplify = Simplifier()
    steps: list[Step] | None = [] if keep_steps else None
    contributions: dict[str, list[E.Expr]] = defaultdict(list)
    adjoints: list[tuple[E.Symbol, E.Expr]] = []
    differentials: dict[str, E.Expr] = {}
    taken = set(program.inputs) | {s.name for s, _ in program.definitions} | set(program.functions)
    shared: list[E.Symbol] = []
    if share_products:
        program, shared = share_chain_products(program, active, lambda stem: _fresh(stem, taken))
    bodies = dict(program.definitions)
    if steps is not None:
        steps += [Step(SHARE, t, bodies[t], t.name, "define") for t in shared]

    def propagate(G: E.Expr, body: E.Expr, sym: E.Symbol | None):
        used: list[Rule] = []
        d = differential(body, active, used if steps is not None else None)
        if d is None:
            return
        d = simplify(d)
        if E.is_zero(d):          # e.g. d sign(X) = 0
            return
        differentials[sym.name if sym else ""] = d
        if steps is not None:
            steps.append(_differential_step(G, body, sym, d, used))
        for target, parts in transpose_linear(G, d, steps, simplify).items():
            contributions[target].extend(parts)

    def gathered(sym: E.Symbol) -> E.Expr:
        """Σ of the contributions to ∂L/∂sym, recorded as one step when there are several."""
        parts = contributions.get(sym.name)
        if not parts:
            return E.zero(sym.shape)
        G = simplify(E.add(*parts))
        if steps is not None and len(parts) > 1:
            dX = E.differential(sym)
            steps.append(Step(COLLECT, state_expr([(p, dX) for p in parts]), state_expr([(G, dX)]),
                              sym.name, "collect"))
        return G

    output = program.output
    results: dict[str, E.Expr] = {}
    raw: dict[str, E.Expr] = {}
    definitions = list(program.definitions)
    if not (definitions and output is definitions[-1][0]):
        # a bare last expression: differentiate it first, then the definitions it uses
        propagate(E.ONE, output, None)
    else:
        contributions[output.name].append(E.ONE)
    if definitions:
        for sym, body in reversed(definitions):
            if sym.name not in active or not contributions.get(sym.name):
                continue
            G = gathered(sym)
            if sym.name in wrt:
                results[sym.name] = raw[sym.name] = G
            if E.is_zero(G):
                continue
            if not _trivial(G):
                g = E.Symbol(_fresh(f"g_{sym.name}", taken), sym.shape, "defined")
                adjoints.append((g, G))
                if steps is not None:
                    steps.append(Step(ADJOINT, g, G, sym.name, "adjoint"))
                G = g
            propagate(G, body, sym)

    for sym in wrt_syms:
        if sym.name in results:
            continue
        G = raw[sym.name] = gathered(sym)
        if sym.symmetric:
            # only symmetric dS exist, so ∂L/∂S is the symmetric part of G; G stands as it
            # is only where its symmetry is proved from the tree (never from sampled values)
            # and the step is shown all the same, saying so
            defs = {s.name: b for s, b in list(program.definitions) + adjoints}
            sym_G = G if is_symmetric(G, defs) else simplify(symmetric_part(G))
            if steps is not None:
                steps.append(Step(SYMMETRIC, G, sym_G, sym.name, "symmetric"))
            G = sym_G
        results[sym.name] = G
    simplify.fired = [] if steps is not None else None
    results, adjoints = _inline_single_use(results, adjoints, simplify)
    results, adjoints = _refer_to_definitions(program, results, adjoints, simplify)
    _within_size(list(results.values()) + [b for _, b in adjoints])
    if steps is not None:
        final = simplification_rule(simplify.fired)
        for sym in wrt_syms:
            before = state_expr([(raw[sym.name], E.differential(sym))])
            if final is not None and results[sym.name] != raw[sym.name]:
                # the simplifications after the adjoints are substituted, as one named step
                after = state_expr([(results[sym.name], E.differential(sym))])
                steps.append(Step(final, before, after, sym.name, "rewrite"))
                before = after
            steps.append(Step(IDENTIFY, before, results[sym.name], sym.name, "identify"))
    return Derivation(program, list(wrt), results, adjoints, steps or [], differentials,
                      shared=[(t, bodies[t]) for t in shared])


# The largest derivative returned, in distinct nodes: past it a result is no use to
# print or to run, and building more of it would only use up time and memory.
MAX_RESULT_NODES = 1_000_000


def _within_size(roots) -> None:
    seen: set = set()
    for root in roots:
        for n in E.walk(root):
            seen.add(n)
            if len(seen) > MAX_RESULT_NODES:
                raise LimitError(f"the derivative has more than {MAX_RESULT_NODES:,} distinct subexpressions; "
                                 "name intermediate results in a program (a = ...; L = ...) to share them")


def _differential_step(G, body, sym, d, used: list[Rule]) -> Step:
    """dL = G : da  ->  G : (the differential of a's definition)."""
    # `used` runs inside out: the last non-linear rule is the outermost, the one to name
    main = next((r for r in reversed(used) if r is not LINEAR), LINEAR)
    others = [r.name for r in used if r is not main]
    if sym is None or G == E.ONE:
        before = E.Differential(body, body.shape)
        note = f"where {sym.name} = {body}" if sym is not None else ""
    else:
        before = state_expr([(G, E.differential(sym))])
        note = f"where {sym.name} = {body}"
    if others:
        note = "; ".join(([note] if note else []) + [f"also {', '.join(others)}"])
    return Step(main, before, d if G == E.ONE else state_expr([(G, d)]), note, "differential",
                None if sym is None else (sym.name, body))


def symmetric_part(G: E.Expr) -> E.Expr:
    """sym(G) = ½(G + Gᵀ)."""
    return E.mul(E.Const(Fraction(1, 2)), E.add(G, E.transpose(G)))


def _fresh(name: str, taken: set[str]) -> str:
    candidate, i = name, 1
    while candidate in taken:
        candidate, i = f"{name}_{i}", i + 1
    taken.add(candidate)
    return candidate


def _inline_single_use(results, adjoints, simplify):
    """Substitute each adjoint used exactly once; drop unused ones."""
    names = {g.name for g, _ in adjoints}
    uses: Counter = Counter()       # references, not distinct nodes: g*(1 - h.^2) + g uses g twice
    for e in list(results.values()) + [body for _, body in adjoints]:
        if isinstance(e, E.Symbol) and e.name in names:
            uses[e.name] += 1
        for n in E.walk(e):
            for k in n.children():
                if isinstance(k, E.Symbol) and k.name in names:
                    uses[k.name] += 1
    subst: dict[E.Expr, E.Expr] = {}
    kept = []
    memo: dict = {}

    def replace(e):
        if not subst:
            return e
        return E.map_bottom_up(e, lambda n: subst.get(n, n), memo)

    for g, body in adjoints:                 # in evaluation order: uses come later
        body = replace(body)
        if uses[g.name] == 1:
            subst[g] = body
            memo.clear()
        elif uses[g.name] > 1:
            kept.append((g, body))
    results = {k: simplify(replace(v)) for k, v in results.items()}
    kept = [(g, simplify(replace(b))) for g, b in kept]
    return results, kept


# Rules that only reorder or tidy: a reader sees no new form in them.
TIDYING = {"terms in order", "inner products commute", "transpose pushed to the leaves", "transpose of a scalar",
           "zero term", "identity factor"}


def simplification_rule(fired: list[Rule] | None) -> Rule | None:
    """The rules that changed the form, in the order they first fired, as one step's rule."""
    names = list(dict.fromkeys(r.name for r in fired or () if r.name not in TIDYING))
    if not names:
        return None
    shown = {r.name: r for r in fired}
    return Rule("simplification: " + ", ".join(names),
                "; ".join(f"{n}: {shown[n].display}" for n in names))


def _has_reciprocal(e: E.Expr) -> bool:
    return any(isinstance(n, E.Power) and isinstance(n.exponent, E.Const) and n.exponent.value < 0
               for n in E.walk(e))


def _refer_to_definitions(program, results, adjoints, simplify=None):
    """Write tanh(a1) as h1 where the program defined h1 = tanh(a1) (as written,
    or in the simplifier's canonical form, which is what results are in)."""
    names = {body: sym for sym, body in program.definitions if not _trivial(body)}
    if simplify is not None:
        for sym, body in program.definitions:
            canonical = simplify(body)
            if not _trivial(canonical):
                names.setdefault(canonical, sym)
    if not names:
        return results, adjoints
    memo: dict = {}

    def fold(e):
        # written with y for sigmoid(Phi*w), factors that met only as (1 - y)⁻¹ and
        # (1 - sigmoid(Phi*w)) now cancel: simplify once more where the fold changed
        # something that has a reciprocal in it (the only case a cancellation needs)
        folded = E.map_bottom_up(e, lambda n: names.get(n, n), memo)
        if simplify is None or folded is e or not _has_reciprocal(folded):
            return folded
        return simplify(folded)
    return {k: fold(v) for k, v in results.items()}, [(g, fold(b)) for g, b in adjoints]
