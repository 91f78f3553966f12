"""Random expressions in a symmetric(n) variable S: the gradient by S must be symmetric
and agree with finite differences along symmetric directions E_ij + E_ji.

The expressions come from test_fuzz.py's generator (every operator and function,
domains kept sane by construction), joined to a term that is sure to use S in a way
whose G is not symmetric by itself (tr(A*S), x'*S*y, f(S*A) with an opaque f).  The
points and the finite differences are this file's own (tests/test_wrong_answers.py),
not matcalc.check's: square matrices are 3I + noise (not symmetric), S is
3I + small symmetric noise, and an opaque f is non-separable and non-elementwise.

    python -m pytest -q tests/test_fuzz_symmetric.py
    HYPOTHESIS_PROFILE=soak SOAK_EXAMPLES=5000 python -m pytest -q tests/test_fuzz_symmetric.py
"""
from __future__ import annotations

import re

import numpy as np
from hypothesis import assume, given, note, settings
from hypothesis import strategies as st

import matcalc
from matcalc.errors import UnsupportedError
from matcalc.numeric import run_program
from tests.test_fuzz import LET, expr, scalar_exprs, share
from tests.test_wrong_answers import (directional, dims_of, draw, evaluate, relative, symmetric_basis,
                                      value_at)

SYM_LET = {**LET, "f": "function"}

# Terms whose G is not symmetric on its own: sym(G) is needed for every one of them.
S_TERMS = ["tr(A*S)", "x'*S*y", "f(S*A)", "tr(inv(A)*S)", "sum(exp(S) .* B)", "f(A*S*A')",
           "logdet(A) + tr(B*S)", "x'*S*S*y", "f(S .* A)", "tanh(x'*S*y)"]

COUNT = {"cases": 0}


def symmetric_point(program, seed):
    """This file's point: S near 3I so that logdet(S), inv(S) exist."""
    dims = dims_of(program)
    env = draw(program, seed, dims)
    if "S" in env:
        n = env["S"].shape[0]
        R = np.random.default_rng(seed + 1000).standard_normal((n, n))
        env["S"] = 3 * np.eye(n) + 0.2 * (R + R.T)
    return dims, env


@settings(max_examples=share(300))
@given(scalar_exprs(), st.sampled_from(S_TERMS), st.sampled_from(["+", "-", "*"]))
def test_random_gradients_by_a_symmetric_variable(text, term, op):
    text = f"({text}) {op} {term}" if op != "*" else f"({text}) * ({term})"
    note(text)
    try:
        d = matcalc.grad(text, "S", let=SYM_LET)
    except UnsupportedError:
        assume(False)
    note(f"result: {d.result}")
    program = d.program
    dims, env = symmetric_point(program, 0)
    value = value_at(program, env, dims)
    assume(np.isfinite(value) and abs(value) < 1e6)
    G = evaluate(d, env, dims)
    assume(np.all(np.isfinite(G)))
    assert relative(G, G.T) < 1e-12, f"{text}: ∂/∂S = {d.result} is not symmetric"
    f = lambda X: value_at(program, {**env, "S": X}, dims)
    nonsmooth = bool(re.search(r"\b(relu|step|sign|abs|norm1|max|min)\(", text))
    for D in symmetric_basis(G.shape[0]):
        got = float(np.sum(G * D))
        want = directional(f, env["S"], D)
        wide = directional(f, env["S"], D, h=1e-4)     # two steps: noise differs, a wrong slope does not
        if nonsmooth and abs(want - wide) > 1e-4 * max(1.0, abs(want)):
            continue                                   # a kink within the step: FD proves nothing here
        assert min(abs(got - want), abs(got - wide)) <= 2e-5 * max(1.0, abs(want)), \
            f"{text}: ∂/∂S = {d.result} along a symmetric direction: {got} against {want}"
    COUNT["cases"] += 1


def test_the_symmetric_fuzzer_ran():
    """Run after the fuzzer (file order): it must have verified most of its examples."""
    if COUNT["cases"] == 0:
        import pytest
        pytest.skip("run together with test_random_gradients_by_a_symmetric_variable")
    assert COUNT["cases"] >= share(300) // 3


PROVED = {"symmetric": 0, "not proved": 0}


@settings(max_examples=share(600))
@given(st.one_of(expr(("n", "n"), 2), expr(("n", "n"), 3),
                 st.sampled_from(["A + A'", "B'*S*B", "A*A'", "inv(S + A*A')", "exp(S) .* S",
                                  "A .* A'", "x*x' + S^3", "diag(x) + W'*W", "(A + A')*(A + A')"])
                 .map(lambda t: type("G", (), {"text": t})())))
def test_a_proved_symmetry_holds_at_general_points(g):
    """is_symmetric is a proof: wherever it says yes, the matrix is symmetric at a point
    where A, B, W are general (not symmetric) matrices and S a symmetric one."""
    from matcalc.rules.symmetry import is_symmetric
    note(g.text)
    program = matcalc.parse(g.text, LET)
    e = program.value
    if not is_symmetric(e):
        PROVED["not proved"] += 1
        return
    PROVED["symmetric"] += 1
    for seed in range(2):
        dims, env = symmetric_point(program, seed)
        M = run_program(program, env, {}, dims)(e)
        assume(np.all(np.isfinite(M)))
        assert relative(M, M.T) < 1e-9, f"{g.text} was proved symmetric but is not: {M}"
