"""The common slips of a derivative derived by hand, as data, and how one explains a difference.

Layer L1 (NumPy only).  A slip says what of the claim equals what of the
derivative (times a constant, where one is allowed); `explains` tests it on
the values at every sampled point.  claim.py tries SLIPS in order: the first
that explains every point is the diagnosis.  A new slip is one entry.
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Callable

import numpy as np

__all__ = ["SLIPS", "Slip", "Context", "TOLERANCE", "difference", "explains", "show_factor", "sym"]

TOLERANCE = 1e-7      # claim and derivative are both exact: only rounding separates them


@dataclass(frozen=True)
class Context:
    """What a slip needs to know besides the numbers."""
    command: str
    layout: str
    label: str             # ∂L/∂x, ∂f/∂x, ...
    variable: str
    symmetric: bool        # the variable is declared symmetric
    same_shape: bool       # the claim has the derivative's shape (symbolically)
    transposed_shape: bool
    same_size: bool
    shapes: str            # "your claim is ..., and ∂L/∂x is ..."


@dataclass(frozen=True)
class Slip:
    """A common way to get a derivative wrong: the claim (through `of_claim`)
    equals `of_derivative` of the derivative, times a constant where `scaled`."""
    code: str
    applies: Callable[[Context], bool]
    of_claim: Callable[[np.ndarray, np.ndarray], np.ndarray]          # (claim, derivative) -> array
    of_derivative: Callable[[np.ndarray, np.ndarray], np.ndarray]
    scaled: bool
    explain: Callable[[Context, str], str]     # (context, the factor as text, "" when 1)


def sym(a):
    return (a + a.T) / 2


def _as_derivative(claim, derivative):
    return claim.reshape(derivative.shape, order="F")


def _times(factor: str) -> str:
    return f"{factor} × " if factor else ""


def _layout_note(c: Context, f: str) -> str:
    if c.command == "grad":
        other = "numerator" if c.layout == "denominator" else "denominator"
        return (f"the other layout: your claim is {_times(f)}the transpose of {c.label}, which is the gradient "
                f"in {other} layout; in {c.layout} layout {c.label} is shaped "
                + ("like " + c.variable if c.layout == "denominator" else f"like {c.variable}ᵀ")
                + (f" (--layout {other} gives the other one)"))
    return (f"the other layout: your claim is {_times(f)}the transpose of {c.label}, which is "
            + ("len(x) × len(f) (the gradient convention); matcalc's Jacobian is len(f) × len(x), df = J dx"
               if c.command == "jacobian" else "laid out the other way"))


TRANSPOSE_MEANS = {"grad": " (for a square variable, the gradient in the other layout)",
                   "jacobian": " (the len(x) × len(f) layout of the gradient convention; matcalc's Jacobian "
                               "is len(f) × len(x), df = J dx)"}

SLIPS: list[Slip] = [
    Slip("agrees", lambda c: c.same_shape, lambda C, R: C, lambda C, R: R, False,
         lambda c, f: "agrees"),
    Slip("sign", lambda c: c.same_shape, lambda C, R: C, lambda C, R: -R, False,
         lambda c, f: f"the sign: your claim is −({c.label})"),
    Slip("factor", lambda c: c.same_shape, lambda C, R: C, lambda C, R: R, True,
         lambda c, f: f"a constant factor: your claim is {f} × {c.label}"),
    Slip("layout", lambda c: c.transposed_shape and not c.same_shape,
         lambda C, R: C, lambda C, R: R.T, True, _layout_note),
    Slip("transposed", lambda c: c.transposed_shape and c.same_shape,
         lambda C, R: C, lambda C, R: R.T, True,
         lambda c, f: f"transposed: your claim is {_times(f)}({c.label})ᵀ" + TRANSPOSE_MEANS.get(c.command, "")),
    Slip("unsymmetrised", lambda c: c.command == "grad" and c.symmetric and c.same_shape,
         lambda C, R: sym(C), lambda C, R: R, True,
         lambda c, f: f"the symmetric part is missing: {c.variable} is symmetric, so {c.label} is the "
         f"symmetric part ½(G + Gᵀ) of a G that only symmetric directions see; your claim G is not "
         f"symmetric, and {_times(f)}its symmetric part is {c.label}"),
    Slip("cookbook", lambda c: c.command == "grad" and c.symmetric and c.same_shape,
         lambda C, R: C, lambda C, R: 2 * R - np.diag(np.diag(R)), True,
         lambda c, f: f"the Matrix Cookbook's convention: your claim is {_times(f)}G + Gᵀ − diag(G), and "
         f"{c.label} is the derivative along symmetric directions, sym(G) = ½(G + Gᵀ) (the Cookbook's "
         "form counts each off-diagonal entry twice: Srinivasan & Panda, arXiv:1911.06491)"),
    Slip("arrangement", lambda c: c.same_size and not c.same_shape and not c.transposed_shape,
         _as_derivative, lambda C, R: R, True,
         lambda c, f: f"the entries are {_times(f)}those of {c.label}, arranged in another shape: "
                      f"{c.shapes} (vec stacks columns)"),
]


def difference(a: np.ndarray, b: np.ndarray) -> float:
    """max |a − b| relative to the larger of the two (0 when both vanish)."""
    if a.shape != b.shape:
        return float("inf")
    scale = max(float(np.max(np.abs(a))), float(np.max(np.abs(b))))
    return 0.0 if scale == 0 else float(np.max(np.abs(a - b))) / scale


def explains(slip: Slip, pairs) -> float | None:
    """The factor (1 where none is allowed) with which `slip` explains every point, or None."""
    factor = None
    for C, R in pairs:
        left, right = slip.of_claim(C, R), slip.of_derivative(C, R)
        if left.shape != right.shape:
            return None
        norm = float(np.sum(right * right))
        if norm == 0:
            if np.any(left != 0):
                return None
            continue         # the derivative vanishes here: any factor fits
        c = float(np.sum(left * right)) / norm if slip.scaled else 1.0
        if abs(c) < TOLERANCE or difference(left, c * right) > TOLERANCE:     # zero times is no factor
            return None
        if factor is not None and abs(c - factor) > TOLERANCE * max(1.0, abs(factor)):
            return None      # the ratio changes from point to point: not a constant
        factor = c if factor is None else factor
    return 1.0 if factor is None else factor


def show_factor(factor: float) -> str:
    """2, 1/2, −1, 0.318...: the constant as it would be written ("" for 1)."""
    simple = Fraction(factor).limit_denominator(100)
    if abs(float(simple) - factor) <= TOLERANCE * max(1.0, abs(factor)):
        text = str(simple).replace("-", "−")
        return "" if text == "1" else text
    return f"{factor:.6g}".replace("-", "−")
