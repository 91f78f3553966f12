"""--claim: a derivative written by hand, compared with matcalc's.

Layer L5 (beside api): imports the elaborator, numeric evaluation, sampling and
the table of slips (slips.py).
A claim is parsed in the expression's context: every input and named
intermediate is declared with the shape matcalc inferred, so the claim may use
them (an intermediate evaluates as its definition) and cannot bring new ones.
Claim and derivative are evaluated at random points of the inputs' domains;
where they differ, the common slips (slips.SLIPS) are tried in turn, and a
slip is reported only if it explains the difference at every point.
"""
from __future__ import annotations

import functools
import itertools
import re
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping

import numpy as np

from . import expr as E
from .check import MAX_ENTRIES, oversized_array    # the same array limit as --check
from .errors import LimitError, MatcalcError, NameError_, Span, UsageError
from .numeric import run_program
from .printing.pretty import derivative_text
from .printing.text import to_text
from .sampling import dimension_sizes, opaque_functions, sample_inputs
from .shapes import Dim, dim_product, show_shape
from .shapes import transposed as transposed_shape
from .slips import SLIPS, TOLERANCE, Context, difference, explains, show_factor, sym
from .syntax.elaborate import Decl, parse_program

__all__ = ["Verdict", "compare", "parse_claims", "SLIPS"]

POINTS = 5
ATTEMPTS = 20
ORIGIN = "--claim"
SCALAR_HINT = " (a number is a scalar: write ones for all ones, I for the identity, 0*x for zeros)"
MAX_CHOICES = 1000    # ways to fill a claim's open sizes that are tried
LABEL = re.compile(r"\s*([A-Za-z][A-Za-z0-9_]*)\s*=(?!=)")     # "X = formula"


# ------------------------------------------------------------------ verdicts

@dataclass
class Verdict:
    """Whether a claim agrees with the derivative, and if not, how it differs.

    `diagnosis` is "agrees" or the slip's code (see SLIPS; also "shape",
    "not-finite", "different" and "no-point").  With several claims the
    verdict sums up `parts`, one per claim."""
    agrees: bool
    diagnosis: str
    worst_error: float               # relative difference of claim and derivative (inf: other shape)
    message: str
    variable: str | None = None
    claim: str = ""
    factor: float | None = None      # the constant of a "factor" slip
    points: int = 0
    parts: list["Verdict"] = field(default_factory=list)

    def __str__(self) -> str:
        return self.message

    def _repr_pretty_(self, printer, cycle) -> None:     # IPython and Jupyter show the message
        printer.text(self.message)

    def as_json(self) -> dict:
        parts = self.parts or [self]
        return {"agrees": self.agrees, "diagnosis": self.diagnosis,
                "worst_relative_error": _finite_or_none(self.worst_error),
                "claims": [{"variable": p.variable, "claim": p.claim, "agrees": p.agrees,
                            "diagnosis": p.diagnosis, "factor": p.factor,
                            "worst_relative_error": _finite_or_none(p.worst_error),
                            "points": p.points, "message": p.message} for p in parts]}


def _finite_or_none(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


# ------------------------------------------------------------------ parsing

@dataclass(frozen=True)
class Claim:
    variable: str          # the result it claims: a key of the derivation's results
    argument: str          # the text as given (with its "X =" label, if any)
    offset: int            # where the formula starts in `argument`
    program: E.Program     # the formula, parsed; its output is the claimed derivative
    sizes: dict = field(default_factory=dict)    # a size the claim leaves open -> the expression's

    @property
    def formula(self) -> str:
        return self.argument[self.offset:]


def parse_claims(d, claims: str | Iterable[str] | Mapping[str, str]) -> list[Claim]:
    """Assign each claim to a result: `{"X": formula}`, or texts "X = formula",
    or bare formulas, which go to the unclaimed variables in --wrt order."""
    if isinstance(claims, Mapping):
        items = [(name, text, 0) for name, text in claims.items()]
        for name, text, _ in items:
            if name not in d.results:
                raise UsageError(f"a claim for {name}, which is not a variable of differentiation "
                                 f"(--wrt {' --wrt '.join(d.results)})")
    else:
        items = [_label(d, text) for text in ([claims] if isinstance(claims, str) else list(claims))]
    labelled = [name for name, _, _ in items if name is not None]
    for name in labelled:
        if labelled.count(name) > 1:
            raise UsageError(f"two claims for {name}")
    free = iter([name for name in d.results if name not in labelled])
    out = []
    for name, text, offset in items:
        if name is None:
            name = next(free, None)
            if name is None:
                raise UsageError(f"more claims than variables: {len(items)} claims for "
                                 f"{', '.join(d.results)}; label them as 'X = formula'")
        program = _parse(d, text, offset)
        out.append(Claim(name, text, offset, program, _open_sizes(d, program, d.results[name])))
    return out


def _label(d, text: str) -> tuple[str | None, str, int]:
    """("X", text, offset of the formula) for "X = formula"; (None, text, 0) for a formula."""
    m = LABEL.match(text)
    if m is None or m.group(1) not in d.results and m.group(1) not in _names(d):
        return None, text, 0          # a claim of its own definitions: "g = A*x; 2*g"
    if m.group(1) not in d.results:
        raise UsageError(f"the claim is labelled {m.group(1)}, which is not a variable of differentiation "
                         f"(--wrt {' --wrt '.join(d.results)})", Span.at(text, m.start(1), m.end(1)),
                         source=text, origin=ORIGIN)
    return m.group(1), text, m.end()


def _names(d) -> dict[str, Decl]:
    """The expression's inputs, intermediates and functions, as declarations for the claim."""
    shared = {t.name for t, _ in d.shared}
    program = d.program
    decls = {name: _decl(sym) for name, sym in program.inputs.items()}
    decls |= {sym.name: _decl(sym) for sym, _ in program.definitions if sym.name not in shared}
    decls |= {name: Decl("function") for name in program.functions}
    return decls


def _decl(sym: E.Symbol) -> Decl:
    rows, cols = sym.shape
    if sym.symmetric:                       # symmetric(n) or spd(n)
        return Decl(sym.kind, (rows,), positive=sym.positive)
    if (rows, cols) == (1, 1):
        return Decl("scalar", positive=sym.positive)
    return Decl("vector", (rows,), positive=sym.positive) if cols == 1 else \
        Decl("matrix", (rows, cols), positive=sym.positive)


def _parse(d, argument: str, offset: int) -> E.Program:
    """The claim's formula in the expression's context; an error points into the claim."""
    formula = argument[offset:]
    decls = _names(d)
    try:
        program = parse_program(formula, decls)
        for name, sym in program.inputs.items():
            if name not in decls:
                known = ", ".join(n for n, k in decls.items() if k.kind != "function")
                raise NameError_(f"{name} is not a name of the expression", program.spans.get(name),
                                 f"a claim may use the expression's names: {known}")
    except MatcalcError as exc:
        raise _in_claim(exc, argument, offset) from None
    return program


def _in_claim(exc: MatcalcError, argument: str, offset: int) -> MatcalcError:
    """The error, pointing into the whole --claim text and saying that it is the claim."""
    if exc.source is None or exc.source == argument[offset:]:
        if exc.span is not None:
            exc.span = Span.at(argument, exc.span.start + offset, exc.span.end + offset)
        exc.source, exc.origin = argument, ORIGIN
    exc.message = f"in the claim: {exc.message}"
    exc.args = (exc.message,)
    return exc


def _open_sizes(d, claim: E.Program, result: E.Expr) -> dict[str, Dim]:
    """Sizes the claim leaves open (a bare `I` or `ones`: `2*I`, `kron(I, A)`) -> the
    expression's dimension that gives the claim the derivative's shape (or, failing
    that, its transpose's, which the diagnosis then names)."""
    known = set(dimension_sizes(d.program, np.random.default_rng(0)))
    shape = claim.output.shape
    free = sorted(set().union(*(_dims(dim) for dim in shape)) - known)
    if not free:
        return {}
    values = sorted(known) + sorted({int(p) for dim in result.shape for p in str(dim).split("*") if p.isdigit()})
    for want in (result.shape, transposed_shape(result.shape)):
        for choice in itertools.islice(itertools.product(values, repeat=len(free)), MAX_CHOICES):
            sizes = dict(zip(free, choice))
            if tuple(_substitute(dim, sizes) for dim in shape) == tuple(want):
                return sizes
    return {}


def _substitute(dim, sizes: Mapping[str, Dim]):
    parts = [int(p) if p.isdigit() else sizes.get(p, p) for p in str(dim).split("*")]
    return functools.reduce(dim_product, parts)


def _dims(dim) -> set[str]:
    return {part for part in str(dim).split("*") if not part.isdigit()}


# ------------------------------------------------------------------ comparing

def compare(d, claims, seed: int = 0, points: int = POINTS) -> Verdict:
    """The verdict on each claim (see parse_claims) against d's results."""
    parsed = parse_claims(d, claims)
    verdicts = [_judge(d, c, seed, points) for c in parsed]
    if len(verdicts) == 1:
        return verdicts[0]
    failed = [v for v in verdicts if not v.agrees]
    return Verdict(not failed, failed[0].diagnosis if failed else "agrees",
                   max(v.worst_error for v in verdicts), "\n".join(v.message for v in verdicts),
                   points=min(v.points for v in verdicts), parts=verdicts)


def _judge(d, claim: Claim, seed: int, points: int) -> Verdict:
    name = claim.variable
    result = d.results[name]
    label = derivative_text(d, name)
    shape = tuple(_substitute(dim, claim.sizes) for dim in claim.program.output.shape)
    ctx = Context(d.command, d.layout, label, name, _is_symmetric(d, name),
                  same_shape=shape == result.shape, transposed_shape=shape == transposed_shape(result.shape),
                  same_size=dim_product(*shape) == dim_product(*result.shape),
                  shapes=f"your claim is {show_shape(shape)}, and {label} is {show_shape(result.shape)}")
    verdict = lambda agrees, code, err, text, factor=None, n=0: Verdict(
        agrees, code, err, f"claim for {label}: " + ("agrees" if agrees else "DISAGREES: ") + text
        + ("" if agrees else f"\n  matcalc: {label} = {to_text(_spelled_out(d, result))}"), name, claim.formula.strip(), factor, n)
    wrong_shape = lambda: verdict(False, "shape", float("inf"), ctx.shapes + (SCALAR_HINT if shape == (1, 1) else ""))
    if not (ctx.same_shape or ctx.transposed_shape or ctx.same_size):
        return wrong_shape()
    _within_limits(d, claim)
    pairs = _evaluate(d, claim, seed, points)
    if not pairs:
        return verdict(False, "no-point", float("nan"), f"no point found where the expression and its "
                       f"derivative are finite after {ATTEMPTS} random draws; nothing was compared")
    if any(not np.all(np.isfinite(C)) for C, _ in pairs):
        return verdict(False, "not-finite", float("inf"),
                       "your claim is not finite (NaN or infinity) at a point where the derivative is")
    worst = max(difference(C, R) for C, R in pairs)     # inf where the shapes differ
    for slip in SLIPS:
        if not slip.applies(ctx):
            continue
        factor = explains(slip, pairs)
        if factor is None:
            continue
        if slip.code == "agrees":
            return verdict(True, "agrees", worst, f" (worst relative difference {worst:.1e} at "
                           f"{len(pairs)} random point{'s' if len(pairs) > 1 else ''})", n=len(pairs))
        if slip.code == "factor" and show_factor(factor) in ("", "−1"):
            continue          # a factor of ±1 is agreement or the sign, tried above
        return verdict(False, slip.code, worst, slip.explain(ctx, show_factor(factor)),
                       factor if slip.code == "factor" else None, len(pairs))
    assumed = _assumes_symmetric(d, claim, seed, points) if ctx.same_shape else []
    if assumed:
        names = " and ".join(assumed)
        return verdict(False, "assumes-symmetric", worst,
                       f"your claim agrees only where {names} {'is' if len(assumed) == 1 else 'are'} "
                       f"symmetric; {names} {'is' if len(assumed) == 1 else 'are'} not declared symmetric "
                       f"(if {'it is' if len(assumed) == 1 else 'they are'}, say so: --let '{assumed[0]}: "
                       f"symmetric({d.program.inputs[assumed[0]].shape[0]})')", n=len(pairs))
    if not ctx.same_shape:
        return wrong_shape()
    tried = ", ".join(s.code for s in SLIPS[1:] if s.applies(ctx))
    return verdict(False, "different", worst,
                   f"worst relative difference {worst:.1e} at {len(pairs)} random points; "
                   f"not one of the common slips ({tried})", n=len(pairs))


def _spelled_out(d, e: E.Expr) -> E.Expr:
    """e with the derivation's own names (g_a = ..., t1 = ...) replaced by what they stand for,
    so that the verdict can be read alone."""
    meaning: dict = {}
    for g, body in d.named:            # in evaluation order: a body uses only earlier names
        meaning[g] = E.map_bottom_up(body, lambda n: meaning.get(n, n), {})
    return E.map_bottom_up(e, lambda n: meaning.get(n, n), {}) if meaning else e


def _is_symmetric(d, name: str) -> bool:
    sym = d.program.inputs.get(name)
    return sym is not None and sym.symmetric


# ------------------------------------------------------------------ evaluating

def _evaluate(d, claim: Claim, seed: int, points: int,
              adjust: Callable[[dict], dict] = lambda env: env) -> list[tuple[np.ndarray, np.ndarray]]:
    """(claim, derivative) at up to `points` random points where both the value and the
    derivative are finite, sampled from the expression's domain (not the claim's: a claim
    that is not finite there is not the derivative there); `adjust` changes each point."""
    rng = np.random.default_rng(seed)
    program = d.program
    functions = opaque_functions(program)
    result = d.results[claim.variable]
    pairs = []
    for point in range(points):       # sizes vary by point as the check's do: distinct, then 1 and 2, then any
        dims = dimension_sizes(program, rng, point)
        dims |= {free: dims.get(size, size) for free, size in claim.sizes.items()}
        dims = dimension_sizes(claim.program, rng, point) | dims      # and sizes the claim alone has
        for _ in range(ATTEMPTS):
            env = adjust(sample_inputs(program, rng, dims, functions))
            ev = run_program(program, env, functions, dims, d.named)
            if not (np.all(np.isfinite(ev(program.output))) and np.all(np.isfinite(R := ev(result)))):
                continue
            inputs = {k: v for k, v in ev.env.items() if k in program.inputs or k in _defined(program)}
            pairs.append((run_program(claim.program, inputs, functions, dims)(claim.program.output), R))
            break
        else:
            break
    return pairs


def _within_limits(d, claim: Claim) -> None:
    """Refuse sizes whose arrays would not fit, before any is built.  Named dimensions are
    sampled small; a declared number (vector(100000)) is taken as it is."""
    program = d.program
    roots = [b for _, b in program.definitions] + [program.output, d.results[claim.variable]] + \
        [b for _, b in d.named] + [b for _, b in claim.program.definitions] + [claim.program.output]
    found = oversized_array(roots, _fixed_size)
    if found:
        sizes = found[1]
        raise LimitError(f"--claim would build a {sizes[0]:,}×{sizes[1]:,} array, more than the "
                         f"{MAX_ENTRIES:,} entries a comparison may use; compare with smaller sizes, "
                         "or with named dimensions such as matrix(m, n), which are sampled small")


def _fixed_size(dim) -> int:
    """The size a dimension has whatever the sampling: its numbers (a name counts as 1)."""
    return functools.reduce(lambda a, p: a * (int(p) if p.isdigit() else 1), str(dim).split("*"), 1)


def _defined(program: E.Program) -> set[str]:
    return {s.name for s, _ in program.definitions}


def _assumes_symmetric(d, claim: Claim, seed: int, points: int) -> list[str]:
    """The square inputs, not declared symmetric, whose symmetry would make the claim
    right (x'*A*x has gradient (A + A')*x, which is 2*A*x only for a symmetric A)."""
    candidates = [name for name, sym in d.program.inputs.items()
                  if sym.shape[0] == sym.shape[1] != 1 and not sym.symmetric and name != claim.variable]

    def agrees_with_symmetric(names) -> bool:
        def adjust(env):
            return {k: sym(v) if k in names else v for k, v in env.items()}
        pairs = _evaluate(d, claim, seed + 1, points, adjust)
        return bool(pairs) and all(np.all(np.isfinite(C)) and difference(C, R) <= TOLERANCE
                                   for C, R in pairs)

    if not candidates or not agrees_with_symmetric(set(candidates)):
        return []
    alone = [name for name in candidates if agrees_with_symmetric({name})]
    return alone or candidates
