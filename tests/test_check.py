"""The numerical check itself: it catches wrong results, its work is bounded, and
sizes it cannot afford are a limit error, not a crash."""
from __future__ import annotations

from dataclasses import replace

import pytest

import matcalc
from matcalc import expr as E
from matcalc.check import ENTRYWISE_UP_TO, MAX_ENTRIES
from matcalc.errors import LimitError


def _wrong(d, name, change):
    """The derivation with one result replaced by change(result)."""
    return matcalc.Derivation.of(replace(d, results={**d.results, name: change(d.results[name])}))


@pytest.mark.parametrize("command, text, wrt, let", [
    ("grad", "x'*A*x", "A", {"A": "matrix(3, 3)"}),                 # entry by entry
    ("grad", "x'*A*x", "A", {"A": "matrix(40, 40)"}),               # along random directions
    ("grad", "logdet(S) + x'*S*x", "S", {"S": "symmetric(30)"}),
    ("jacobian", "tanh(W*x)", "x", {"x": "vector(150)", "W": "matrix(4, 150)"}),
    ("hessian", "x'*A*x + sum(exp(x))", "x", {"x": "vector(120)"}),
])
def test_a_wrong_result_fails_on_any_size(command, text, wrt, let):
    d = getattr(matcalc, command)(text, wrt, let)
    assert d.check().ok
    # a transposed, a scaled, and a slightly perturbed result must all fail
    wrongs = [lambda r: E.mul(E.Const(1.01), r), lambda r: E.add(r, E.mul(E.Const(0.001), E.transpose(r)))
              if r.shape[0] == r.shape[1] else E.mul(E.Const(-1), r)]
    for change in wrongs:
        assert not _wrong(d, wrt, change).check().ok


def test_large_variables_are_checked_along_directions_quickly():
    """A 300×300 variable: 90,000 entries entry by entry took minutes."""
    d = matcalc.grad("x'*A*x + tr(A*A')", "A", {"A": "matrix(300, 300)"})
    assert 300 * 300 > ENTRYWISE_UP_TO
    assert d.check().ok


@pytest.mark.parametrize("command, text, wrt, let", [
    ("grad", "x'*x", "x", {"x": "vector(99999999999999999999)"}),
    ("grad", "x'*A*x", "A", {"A": "matrix(100000, 100000)"}),
    ("jacobian", "A*x", "A", {"A": "matrix(1000, 1000)"}),            # the Jacobian is 1000 × 10^6
])
def test_sizes_past_the_limit_are_a_limit_error(command, text, wrt, let):
    d = getattr(matcalc, command)(text, wrt, let)
    with pytest.raises(LimitError, match=f"{MAX_ENTRIES:,} entries"):
        d.check()


@pytest.mark.parametrize("size", [3, 30])        # entry by entry, and along random directions
def test_an_unsymmetrised_gradient_by_a_symmetric_variable_fails(size):
    """x*y' is ∂L/∂S for a general S; for a symmetric S the gradient is sym(x*y')."""
    d = matcalc.grad("x'*S*y", "S", {"S": f"symmetric({size})"})
    assert d.check().ok
    unsymmetrised = _wrong(d, "S", lambda r: E.mul(E.Symbol("x", (size, 1)), E.transpose(E.Symbol("y", (size, 1)))))
    assert not unsymmetrised.check().ok


def test_a_result_of_the_wrong_shape_fails():
    """An n×m result for an m×n variable fails the check instead of crashing it, and a
    row where a column belongs fails instead of broadcasting."""
    d = matcalc.grad("x'*A*y", "A", {"A": "matrix(3, 4)"})
    assert not _wrong(d, "A", E.transpose).check().ok
    v = matcalc.grad("x'*A*x", "x", {"x": "vector(3)"})
    assert not _wrong(v, "x", E.transpose).check().ok


@pytest.mark.parametrize("command", ["grad", "jacobian"])
def test_a_derivative_past_the_size_limit_is_a_limit_error(monkeypatch, command):
    """The limit on a derivative's size (distinct subexpressions), here lowered to 30."""
    import matcalc.derive
    monkeypatch.setattr(matcalc.derive, "MAX_RESULT_NODES", 30)
    text = "sum(" + " + ".join(f"sin(A{i}*x)" for i in range(10)) + ")"
    if command == "jacobian":
        text = text[4:-1]
    with pytest.raises(LimitError, match="more than 30 distinct"):
        getattr(matcalc, command)(text, "x")
    monkeypatch.undo()
    assert getattr(matcalc, command)(text, "x").check().ok
