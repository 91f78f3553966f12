"""Mutation test: the check has teeth.

Every Cookbook row's gradient (tests/test_cookbook.py) and a fixed sample of the
fuzz generator's gradients (tests/test_fuzz.py) are mutated the ways a derivation
slips: transposed, scaled by 2, negated, one term dropped, the symmetric part
removed, an antisymmetric part added, presented in the other layout, and (for a
symmetric variable) the Cookbook's G + Gᵀ − diag(G).  Every mutant that changes
the value must be rejected by `d.check()`.

Whether a mutant changes the value is decided numerically, at points drawn
independently of the check's (another seed, other sizes): that only sorts
mutants (2·0 = 0 is no mutant), it claims no symbolic property.  The kill rate
over the value-changing mutants is asserted to be 1 and printed with `-s`;
the survivors, if any, are listed with their expressions.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import replace
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import matcalc
from matcalc import expr as E
from matcalc.check.differences import ROUNDING, STEP
from matcalc.check.points import terms_at
from matcalc.errors import MatcalcError
from matcalc.layout import as_denominator
from matcalc.numeric import run_program
from matcalc.printing.text import to_text
from matcalc.sampling import dimension_sizes, opaque_functions, sample_inputs
from tests.test_cookbook import ROWS, XFAIL
from tests.test_fuzz import LET, scalar_exprs

FUZZ_SAMPLE = 40          # fuzz gradients mutated (a fixed, derandomised sample)
TALLY = {"gradients": 0, "mutants": 0, "value-changing": 0, "killed": 0, "survivors": [], "equivalent": Counter()}


def _first_sum(e: E.Expr) -> E.Expr | None:
    """The outermost Add of e (breadth first), whose terms a slip could drop."""
    queue = [e]
    while queue:
        n = queue.pop(0)
        if isinstance(n, E.Add):
            return n
        queue += list(n.children())
    return None


def _mutant_results(G: E.Expr, X: E.Symbol) -> list[tuple[str, E.Expr]]:
    half, minus = E.Const(Fraction(1, 2)), E.Const(-1)
    out = [("scaled by 2", E.mul(E.Const(2), G)), ("negated", E.mul(minus, G))]
    if not G.is_scalar:
        out.append(("transposed", E.transpose(G)))
    if G.shape[0] == G.shape[1] and not G.is_scalar:
        out.append(("symmetric part removed", E.mul(half, E.add(G, E.mul(minus, E.transpose(G))))))
        twist = E.mul(G, E.transpose(X))       # Y - Yᵀ is antisymmetric, and nonzero for most G, X
        out.append(("antisymmetric part added", E.add(G, twist, E.mul(minus, E.transpose(twist)))))
        if X.symmetric:
            out.append(("G + Gᵀ − diag(G)", E.add(G, E.transpose(G), E.mul(minus, E.apply(
                E.Fn.DIAG, E.apply(E.Fn.DIAGV, G))))))
    total = _first_sum(G)
    if total is not None:
        for i, term in enumerate(total.terms[:3]):
            rest = E.add(*[t for j, t in enumerate(total.terms) if j != i])
            out.append((f"term {to_text(term)[:30]} dropped",
                        E.map_bottom_up(G, lambda n, total=total, rest=rest: rest if n == total else n, {})))
    return out


def mutants(d) -> list[tuple[str, matcalc.Derivation]]:
    name = d.wrt[0]
    X = d.program.inputs[name]
    out = [(label, replace(d, results={name: r})) for label, r in _mutant_results(d.result, X)]
    out.append(("the other layout", replace(d, layout="numerator")))    # the result unchanged, labelled numerator
    return out


def changes_value(d, mutant) -> bool:
    """The check's view of the mutant (denominator layout) differs from d's result at
    some independent point."""
    program, name = d.program, d.wrt[0]
    original = d.result
    changed = as_denominator(mutant, mutant.layout).results[name]
    if changed.shape != original.shape:
        return True
    rng = np.random.default_rng(777)
    functions = opaque_functions(program, salt=5)
    for point in (0, 2, 2):
        dims = dimension_sizes(program, rng, point=point)
        env = sample_inputs(program, rng, dims, functions)
        ev = run_program(program, env, functions, dims, d.adjoints)
        a, b = ev(original), ev(changed)
        if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
            continue
        scale = max(float(np.max(np.abs(a), initial=0)), float(np.max(np.abs(b), initial=0)))
        # a zero gradient evaluates to rounding of the value's terms (1e-17): twice it,
        # or its transpose, is no other gradient, and no check can tell them apart
        rounding = ROUNDING * terms_at(program, env, functions, dims) / STEP
        if np.max(np.abs(a - b), initial=0) > max(1e-9 * scale, rounding) and scale > 0:
            return True
    return False


def run_mutants(d, origin: str) -> list[str]:
    """Check every mutant of d; the survivors that change the value, described."""
    survivors = []
    TALLY["gradients"] += 1
    for label, mutant in mutants(d):
        TALLY["mutants"] += 1
        if not changes_value(d, mutant):
            TALLY["equivalent"][label.split(" ")[0] if label.startswith("term") else label] += 1
            continue
        TALLY["value-changing"] += 1
        if mutant.check().ok:
            shown = as_denominator(mutant, mutant.layout).result
            survivors.append(f"{origin}: {label}: {to_text(shown)[:120]}")
        else:
            TALLY["killed"] += 1
    TALLY["survivors"] += survivors
    return survivors


COOKBOOK = [pytest.param(*r[:4], id=r[0]) for r in ROWS if r[0] not in XFAIL]


@pytest.mark.parametrize("rid, expr, wrt, let", COOKBOOK)
def test_cookbook_mutants_are_killed(rid, expr, wrt, let):
    d = matcalc.grad(expr, wrt=wrt, let=let)
    assert d.check().ok
    survivors = run_mutants(d, rid)
    assert not survivors, "\n".join(survivors)


@settings(max_examples=FUZZ_SAMPLE, derandomize=True, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(text=scalar_exprs(), wrt_choice=st.integers(0, 5))
def test_fuzz_mutants_are_killed(text, wrt_choice):
    try:
        program = matcalc.parse(text, LET)
        names = list(program.inputs)
        if not names:
            return
        d = matcalc.grad(program, names[wrt_choice % len(names)])
    except MatcalcError:
        return                               # what the fuzz test skips (known bugs) is not this test's
    report = d.check()
    if not report.ok:
        return                               # test_fuzz judges the derivation; this test judges the check
    survivors = run_mutants(d, text)
    assert not survivors, "\n".join(survivors)


def test_kill_rate():
    """Runs after the two above (file order): the kill rate over what they mutated."""
    if TALLY["value-changing"] == 0:
        pytest.skip("run with the mutation tests above")
    rate = TALLY["killed"] / TALLY["value-changing"]
    print(f"\nmutation test: {TALLY['gradients']} gradients, {TALLY['mutants']} mutants, "
          f"{TALLY['value-changing']} change the value, {TALLY['killed']} killed: kill rate {rate:.1%}")
    print("  equivalent (not counted), by mutation:", dict(TALLY["equivalent"]))
    for s in TALLY["survivors"]:
        print("  survivor:", s)
    assert rate == 1.0
