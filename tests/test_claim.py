"""--claim and Derivation.compare: a derivative written by hand, judged.

Each common slip has a claim that makes it, for grad, jacobian and hessian, and
must be named; right claims written differently from matcalc's result must
agree; a claim that does not parse or type is exit 2 with the caret in it.
"""
from __future__ import annotations

import json

import pytest

import matcalc
from matcalc.slips import SLIPS
from matcalc.errors import MatcalcError
from tests.test_cli import assert_points_at, run

SQUARE = {"A": "matrix(n, n)", "X": "matrix(n, n)"}
WIDE = {"A": "matrix(m, n)", "X": "matrix(n, m)"}
SYM = {"S": "symmetric(n)", "A": "matrix(n, n)"}

# (command, expression, wrt, let, claim, diagnosis, factor): the claim is right
# (diagnosis "agrees"), or makes the slip named.
CASES = [
    # grad
    ("grad", "x'*A*x", "x", None, "(A + A')*x", "agrees", None),
    ("grad", "x'*A*x", "x", None, "A*x + A'*x", "agrees", None),
    ("grad", "x'*A*x", "x", None, "((A + A')*x)'", "layout", None),
    ("grad", "x'*A*x", "x", None, "-(A + A')*x", "sign", None),
    ("grad", "x'*A*x", "x", None, "(A + A')*x/2", "factor", 0.5),
    ("grad", "x'*A*x", "x", None, "2*A*x", "assumes-symmetric", None),
    ("grad", "x'*A*x", "x", None, "(A + A')*x + x", "different", None),
    ("grad", "x'*A*x", "x", None, "x'*A*x", "shape", None),
    ("grad", "tr(A*X)", "X", SQUARE, "A'", "agrees", None),
    ("grad", "tr(A*X)", "X", SQUARE, "A", "transposed", None),
    ("grad", "tr(A*X)", "X", SQUARE, "3*A", "transposed", None),
    ("grad", "tr(A*X)", "X", WIDE, "A", "layout", None),
    ("grad", "tr(A*S) + logdet(S)", "S", SYM, "(A + A')/2 + inv(S)", "agrees", None),
    ("grad", "tr(A*S) + logdet(S)", "S", SYM, "A' + inv(S)", "unsymmetrised", None),
    ("grad", "tr(A*S) + logdet(S)", "S", SYM, "A + A' - diag(diag(A)) + 2*inv(S) - diag(diag(inv(S)))",
     "cookbook", None),
    ("grad", "tr(A*S) + logdet(S)", "S", SYM, "A + A' + 2*inv(S)", "factor", 2.0),
    ("grad", "a = W*h + b\nL = sum(exp(a))", "W", None, "exp(a)*h'", "agrees", None),    # an intermediate
    ("grad", "a = W*h + b\nL = sum(exp(a))", "W", None, "h*exp(a)'", "layout", None),
    ("grad", "sum(x)", "x", None, "ones", "agrees", None),                               # sized from the result
    ("grad", "sum(x)", "x", None, "1", "shape", None),
    ("grad", "1e-6*(x'*A*x)", "x", None, "0*x", "different", None),                  # relative, not absolute
    ("grad", "1e-6*(x'*A*x)", "x", None, "1e-6*(A + A')*x", "agrees", None),
    ("grad", "X: spd(n); logdet(X) + tr(A*X)", "X", None, "inv(X) + (A + A')/2", "agrees", None),
    ("grad", "X: spd(n); logdet(X) + tr(A*X)", "X", None, "inv(X) + A'", "unsymmetrised", None),
    ("grad", "-sum(log(b - A*x))", "x", None, "A'*(1 ./ (b - A*x))", "agrees", None),      # a log barrier
    ("grad", "-sum(log(b - A*x))", "x", None, "A'*(1 ./ (b + A*x))", "different", None),
    ("grad", "sum(log(x))", "x", None, "1 ./ x", "agrees", None),
    ("grad", "sum(log(x))", "x", None, "-log(-x)", "not-finite", None),   # sampled where x > 0
    # jacobian
    ("jacobian", "tanh(W*x)", "x", None, "diag(1 - tanh(W*x).^2)*W", "agrees", None),
    ("jacobian", "tanh(W*x)", "x", None, "W'*diag(1 - tanh(W*x).^2)", "layout", None),
    ("jacobian", "A*x", "x", {"A": "matrix(n, n)"}, "A'", "transposed", None),
    ("jacobian", "A*x", "x", None, "-A", "sign", None),
    ("jacobian", "A*x", "x", None, "2*A", "factor", 2.0),
    ("jacobian", "A*X*B", "X", None, "kron(B', A)", "agrees", None),
    ("jacobian", "A*X*B", "X", None, "kron(B, A)", "shape", None),
    ("jacobian", "x", "x", None, "I", "agrees", None),
    # hessian
    ("hessian", "x'*A*x", "x", None, "A + A'", "agrees", None),
    ("hessian", "x'*A*x", "x", None, "2*A", "assumes-symmetric", None),
    ("hessian", "x'*A*x", "x", None, "-(A + A')", "sign", None),
    ("hessian", "x'*x", "x", None, "2*I", "agrees", None),
    ("hessian", "x'*x", "x", None, "I", "factor", 0.5),
    ("hessian", "sum(exp(x))", "x", None, "diag(exp(x))", "agrees", None),
    ("hessian", "sum(exp(x))", "x", None, "exp(x)*exp(x)'", "different", None),
    ("hessian", "sum(exp(x))", "x", None, "exp(x)", "shape", None),
    ("hessian", "tr(X'*A*X)", "X", SQUARE, "kron(I, A + A')", "agrees", None),
    ("hessian", "tr(X'*A*X)", "X", SQUARE, "kron(I, 2*A)", "assumes-symmetric", None),
    ("hessian", "tr(X'*A*X)", "X", SQUARE, "kron(A + A', I)", "different", None),
]


def derive(command, text, wrt, let):
    return getattr(matcalc, command)(text, wrt=wrt, let=let)


@pytest.mark.parametrize("command, text, wrt, let, claim, diagnosis, factor", CASES,
                         ids=[f"{c[0]}-{c[4]}-{c[5]}" for c in CASES])
def test_each_slip_is_named(command, text, wrt, let, claim, diagnosis, factor):
    v = derive(command, text, wrt, let).compare(claim)
    assert v.diagnosis == diagnosis, v.message
    assert v.agrees == (diagnosis == "agrees"), v.message
    if factor is not None:
        assert v.factor == pytest.approx(factor)
    if v.agrees:
        assert v.worst_error < 1e-7 and "agrees" in str(v)
    else:
        assert "DISAGREES" in str(v) and "matcalc:" in str(v)


def test_every_slip_is_tested():
    named = {c[5] for c in CASES}
    assert {s.code for s in SLIPS} - {"arrangement"} <= named     # arrangement: below
    assert {"assumes-symmetric", "shape", "not-finite", "different"} <= named


def test_a_derivative_by_a_scalar_in_another_arrangement():
    """∂Y/∂α as a matrix or as vec: one of the two is matcalc's, the other the same entries rearranged."""
    d = matcalc.jacobian("alpha*X", wrt="alpha", let={"X": "matrix(m, n)"})
    verdicts = [d.compare("X"), d.compare("vec(X)")]
    assert sorted(v.diagnosis for v in verdicts) == ["agrees", "arrangement"], [str(v) for v in verdicts]
    assert sorted(v.diagnosis for v in [d.compare("2*X"), d.compare("2*vec(X)")]) == ["arrangement", "factor"]


def test_the_factor_is_shown_as_a_fraction():
    v = matcalc.grad("x'*A*x", wrt="x").compare("(A + A')*x/3")
    assert v.diagnosis == "factor" and "1/3 ×" in str(v)
    v = matcalc.grad("S: symmetric(n); logdet(S)", wrt="S").compare("inv(S)'")
    assert v.agrees


def test_a_ratio_that_changes_between_points_is_not_a_factor():
    """x'*x has gradient 2x; 2x*sum(x) is a multiple of it at each point, by a different number."""
    v = matcalc.grad("x'*x", wrt="x").compare("2*x*sum(x)")
    assert v.diagnosis == "different"


def test_several_variables_in_order_or_labelled():
    d = matcalc.grad("a = W*h + b\nL = sum(exp(a))", wrt=["W", "b"])
    assert d.compare(["exp(a)*h'", "exp(a)"]).agrees
    assert d.compare(["b = exp(a)", "exp(a)*h'"]).agrees            # the label frees W for the bare one
    assert d.compare({"b": "exp(a)", "W": "exp(a)*h'"}).agrees
    v = d.compare(["exp(a)*h'", "exp(a)'"])
    assert not v.agrees and v.diagnosis == "layout" and [p.diagnosis for p in v.parts] == ["agrees", "layout"]
    only_b = d.compare("b = exp(a)")
    assert only_b.agrees and only_b.variable == "b"
    with pytest.raises(MatcalcError, match="more claims than variables"):
        d.compare(["exp(a)*h'", "exp(a)", "exp(a)"])
    with pytest.raises(MatcalcError, match="two claims for b"):
        d.compare(["b = exp(a)", "b = exp(a)"])
    with pytest.raises(MatcalcError, match="not a variable of differentiation"):
        d.compare("h = exp(a)")


def test_a_claim_may_define_its_own_names():
    assert matcalc.grad("x'*A*x", wrt="x").compare("B = A + A'; B*x").agrees


def test_numerator_layout_claims_are_read_in_that_layout():
    d = matcalc.grad("x'*A*x", wrt="x", layout="numerator")
    assert d.compare("x'*(A + A')").agrees
    v = d.compare("(A + A')*x")
    assert v.diagnosis == "layout" and "numerator layout" in str(v)


# ------------------------------------------------------------------ the command line

def test_cli_exit_status_and_verdict():
    p = run("grad", "x'*A*x", "--wrt", "x", "--claim", "(A + A')*x")
    assert p.returncode == 0, p.err
    assert "# claim for ∂L/∂x: agrees" in p.out
    p = run("grad", "x'*A*x", "--wrt", "x", "--claim", "2*A*x")
    assert p.returncode == 1, p.err
    assert "agrees only where A is symmetric" in p.out
    p = run("hessian", "x'*x", "--wrt", "x", "--claim", "-2*I")      # a formula that starts with '-'
    assert p.returncode == 1 and "the sign" in p.out, p.out + p.err
    p = run("jacobian", "A*x", "--wrt", "x", "--claim", "A'")
    assert p.returncode == 1 and "layout" in p.out


def test_cli_several_claims_and_check():
    args = ["grad", "a = W*h + b\nL = sum(exp(a))", "--wrt", "W", "--wrt", "b"]
    assert run(*args, "--claim", "exp(a)*h'", "--claim", "b = exp(a)", "--check").returncode == 0
    p = run(*args, "--claim", "W = h*exp(a)'", "--check")
    assert p.returncode == 1 and "check: passed" in p.out and "DISAGREES" in p.out


def test_cli_json_verdict():
    p = run("grad", "x'*A*x", "--wrt", "x", "--claim", "(A + A')*x/2", "--format", "json")
    assert p.returncode == 1, p.err
    claim = json.loads(p.out)["claim"]
    assert claim["agrees"] is False and claim["diagnosis"] == "factor"
    (part,) = claim["claims"]
    assert part["variable"] == "x" and part["claim"] == "(A + A')*x/2" and part["factor"] == pytest.approx(0.5)
    p = run("grad", "x'*A*x", "--wrt", "x", "--claim", "(A + A')*x", "--format", "json")
    assert p.returncode == 0 and json.loads(p.out)["claim"]["agrees"] is True


@pytest.mark.parametrize("claim, token, message", [
    ("(A + A')*x +", "", "ends too early"),                 # the caret sits past the end
    ("(A + A')*y", "y", "y is not a name of the expression"),
    ("kron(A, A)*x", "kron(A, A)*x", "cannot multiply"),   # (a column broadcasts: A*x + A is valid)
    ("x = (A + A')*)", ")", "unexpected"),                   # labelled: the caret counts the label too
    ("A = 2*x", "A", "not a variable of differentiation"),
    ("expmat(A)*x", "expmat", "unknown function"),
])
def test_cli_bad_claim_is_exit_2_with_the_caret_in_the_claim(claim, token, message):
    p = run("grad", "x'*A*x", "--wrt", "x", "--claim", claim)
    assert p.returncode == 2, p.out + p.err
    first = p.err.splitlines()[0]
    assert "claim" in first and message in first and "--claim, line 1" in p.err, p.err
    assert claim in p.err
    if token:
        assert_points_at(p.err, token)
    else:
        caret = next(line for line in p.err.splitlines() if line.strip().startswith("| ") and "^" in line)
        assert caret.index("^") == p.err.splitlines()[p.err.splitlines().index(caret) - 1].index("|") + 2 + len(claim)


def test_the_verdict_reads_alone():
    """The derivative it shows spells out the derivation's own names (g_a = ...)."""
    d = matcalc.grad("a = W*h + b\nL = norm2(a - y)^2", wrt=["W", "b"])
    assert d.named, "this derivation should name an adjoint"
    v = d.compare({"b": "a - y"})
    assert v.diagnosis == "factor" and "g_a" not in str(v) and "2*(a - y)" in str(v)


def test_declared_sizes_past_the_limit_are_refused_not_built():
    p = run("grad", "x'*A*x", "--wrt", "x", "--let", "x: vector(100000)", "--claim", "(A + A')*x")
    assert p.returncode == 2 and "limit exceeded" in p.err, p.err
