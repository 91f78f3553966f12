"""Name the suffix products of long chains, so that gradients stay linear in size.

Matrix products and Hadamard products alike: d(f₁ ⊙ ⋯ ⊙ f_k) has k terms too.

Layer L3: imports expr and steps.  The differential of a product with k factors
that depend on the variable has k terms, each a copy of the other k − 1
factors: d tr(A1 X A2 X ⋯ Ak X) written out is quadratic in k.  Backpropagation
avoids that by naming intermediate products; this pass does the same to the
program before it is differentiated:

    f0 ⋯ [X] ⋯ [X] ⋯ [X] ⋯   →   t2 = [X] ⋯ t3,  t3 = [X] ⋯,  …,  f0 ⋯ [X] ⋯ t2

(one definition per active factor after the first, right to left, the way a
matrix-vector chain is cheapest), and reverse accumulation then passes one
adjoint along the chain: result and work grow linearly with k.
"""
from __future__ import annotations

from dataclasses import replace

from .. import expr as E
from ..steps import Rule

# Products with fewer factors that depend on the variable print more readably
# written out, and their size is still small.
SPLIT_FROM = 5

# The products whose long chains are shared, and how each is built.
CHAINS = {E.Mul: E.mul, E.Hadamard: E.hadamard}

SHARE = Rule("sharing suffix products", "F₁ F₂ ⋯ F_k = F₁ t₂,  t_j = F_j t_{j+1}",
             "each suffix product is computed once, so the derivative stays linear in k")


def share_chain_products(program: E.Program, active: set[str], fresh) -> tuple[E.Program, list[E.Symbol]]:
    """The program with the suffix products of every long active chain named,
    and the names introduced (fresh(stem) gives an unused name)."""
    introduced: list[E.Symbol] = []
    definitions: list[tuple[E.Symbol, E.Expr]] = []
    depends: dict[E.Expr, bool] = {}

    def is_active(n: E.Expr) -> bool:
        if n not in depends:
            depends[n] = (isinstance(n, E.Symbol) and n.name in active) or any(is_active(k) for k in n.children())
        return depends[n]

    def split(n: E.Expr) -> E.Expr:
        build = CHAINS.get(type(n))
        if build is None:
            return n
        factors = n.factors
        if isinstance(n, E.Hadamard):         # commutative: the constant factors first, then the chain
            factors = tuple(sorted(factors, key=is_active))
        positions = [i for i, f in enumerate(factors) if is_active(f)]
        if len(positions) < SPLIT_FROM:
            return n
        segments = [factors[a:b] for a, b in zip(positions[1:], positions[2:] + [len(factors)])]
        tail = build(*segments[-1])
        if isinstance(tail, type(n)):
            tail = name(tail)
        for segment in reversed(segments[:-1]):
            tail = name(build(*segment, tail))
        return build(*factors[:positions[1]], tail)

    def name(body: E.Expr) -> E.Symbol:
        sym = E.Symbol(fresh(f"t{len(introduced) + 1}"), body.shape, "defined")
        definitions.append((sym, body))
        introduced.append(sym)
        active.add(sym.name)
        depends[sym] = True
        return sym

    def rewrite(e: E.Expr) -> E.Expr:
        return E.map_bottom_up(e, split, {})

    for sym, body in program.definitions:
        body = rewrite(body)
        definitions.append((sym, body))
    output = program.output
    if not (program.definitions and output is program.definitions[-1][0]):
        output = rewrite(output)
    if not introduced:
        return program, []
    return replace(program, definitions=tuple(definitions), output=output), introduced
