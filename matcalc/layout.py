"""Gradient layouts: a transformation of a finished derivation.

Layer L4: imports expr, errors, steps, the simplifier, the symmetry test and
the text printer.  The engine always derives in denominator layout (∂L/∂X
has the shape of X).  Numerator layout writes every gradient transposed
(∂L/∂x a row, ∂L/∂W the n×m transpose of an m×n W).  Jacobians already are
len(f) × len(x) and Hessians of scalars symmetric, so only `grad` changes;
the named adjoints g_a are backpropagation's own quantities and keep the
shape of a.
"""
from __future__ import annotations

from dataclasses import replace

from . import expr as E
from .engine.simplify import Simplifier
from .errors import UsageError
from .printing.text import to_text
from .rules.algebra import is_symmetric
from .shapes import show_shape
from .shapes import transposed as transposed_shape
from .steps import NUMERATOR_LAYOUT, Step

DENOMINATOR, NUMERATOR = LAYOUTS = ("denominator", "numerator")


def check_layout(layout: str) -> str:
    if layout not in LAYOUTS:
        raise UsageError(f"layout={layout!r}: the layout is 'denominator' (the default: a gradient "
                         "has the variable's shape) or 'numerator' (every gradient transposed)")
    return layout


def in_layout(d, layout: str):
    """The derivation d (derived in denominator layout) written in `layout`."""
    if check_layout(layout) == DENOMINATOR or d.command != "grad":
        return d
    simplify = Simplifier()
    results = {name: transposed(g, simplify) for name, g in d.results.items()}
    steps = [Step(NUMERATOR_LAYOUT, s.before, results[s.note], s.note, s.kind)
             if s.kind == "identify" else s for s in d.steps]
    return replace(d, results=results, steps=steps)


def as_denominator(d, layout: str):
    """d's results in denominator layout, transposed back exactly (no rewriting):
    what the finite-difference check compares with the variable's own shape."""
    if check_layout(layout) == DENOMINATOR or d.command != "grad":
        return d
    return replace(d, results={name: E.transpose(g) for name, g in d.results.items()})


def misshapen(d, layout: str) -> str | None:
    """Why d's results cannot be in `layout` by their shapes alone, or None:
    a shape the check cannot compare is a failure, not a crash."""
    if d.command != "grad":
        return None
    for name, g in d.results.items():
        variable = d.program.inputs.get(name) or next(s for s, _ in d.program.definitions if s.name == name)
        want = variable.shape if check_layout(layout) == DENOMINATOR else transposed_shape(variable.shape)
        if g.shape != want:
            return (f"check: FAILED: ∂L/∂{name} is {show_shape(g.shape)}, and in {layout} layout "
                    f"it must be {show_shape(want)}")
    return None


def transposed(e: E.Expr, simplify) -> E.Expr:
    """eᵀ in the shorter of two equal forms: the simplifier's canonical one
    (x'*(A + A') for ((A + A')*x)'), or the transpose moved through products
    only (h*(W*h - y)', where the simplifier would distribute it over the sum)."""
    return min(simplify(E.transpose(e)), _through_products(e), key=lambda c: len(to_text(c)))


def _through_products(e: E.Expr) -> E.Expr:
    """(A B)ᵀ = Bᵀ Aᵀ, Aᵀᵀ = A, and symmetric factors (scalars among them) stay."""
    if isinstance(e, E.Transpose):
        return e.arg
    if is_symmetric(e):
        return e
    if isinstance(e, E.Mul):
        scalars = [f for f in e.factors if f.is_scalar]      # keep the coefficient in front
        chain = [_through_products(f) for f in reversed(e.factors) if not f.is_scalar]
        return E.mul(*scalars, *chain)
    return E.transpose(e)
