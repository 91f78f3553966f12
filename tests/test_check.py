"""The numerical check itself: it catches wrong results, its work is bounded, and
sizes it cannot afford are a limit error, not a crash."""
from __future__ import annotations

from dataclasses import replace

import pytest

import matcalc
from matcalc import expr as E
from matcalc.check import ENTRYWISE_UP_TO, MAX_ENTRIES, sample_inputs
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


# ---------------------------------------------------------------------------
# The check's seven former blind spots: each test feeds it a wrong result that
# the old check passed, and asserts that it fails now.

def _parsed(d, text, let=None):
    """An expression over d's inputs (shapes pinned to d's), to build a wrong result from."""
    pins = {name: (f"symmetric({s.shape[0]})" if s.symmetric else f"matrix({s.shape[0]}, {s.shape[1]})")
            for name, s in d.program.inputs.items()}
    return matcalc.parse(text, let={**(let or {}), **pins}).output


def test_1_transpose_slips_under_inv_and_logdet_fail():
    """Matrices under inv/logdet used to be sampled SPD, where inv(A) = inv(A)'."""
    d = matcalc.grad("tr(inv(A)*X)", "X", {"A": "matrix(3, 3)", "X": "matrix(3, 3)"})
    assert d.check().ok
    assert not _wrong(d, "X", lambda r: _parsed(d, "inv(A)")).check().ok
    d = matcalc.grad("logdet(X)", "X", {"X": "matrix(3, 3)"})
    assert d.check().ok
    assert not _wrong(d, "X", lambda r: _parsed(d, "inv(X)")).check().ok


def test_2_small_derivatives_are_judged_relative_to_their_size():
    """With an absolute tolerance, a zero gradient passed for 1e-6*(x'*A*x)."""
    d = matcalc.grad("1e-6*(x'*A*x)", "x")
    assert d.check().ok
    assert not _wrong(d, "x", lambda r: E.zero(r.shape)).check().ok
    assert not _wrong(d, "x", lambda r: E.mul(E.Const(1.001), r)).check().ok


def test_3_sizes_vary_beyond_three():
    """det(-X) = (-1)^n det(X): -det(X) inv(X)' is its gradient for odd n only, and the
    old check always took n = 3."""
    d = matcalc.grad("det(-X)", "X", {"X": "matrix(n, n)"})
    assert d.check().ok
    assert not _wrong(d, "X", lambda r: _parsed(d, "-det(X)*inv(X)'")).check().ok


def test_3_points_include_sizes_one_and_two():
    import numpy as np
    from matcalc.sampling import dimension_sizes
    program = matcalc.parse("x'*A*y", {"A": "matrix(m, n)"})
    rng = np.random.default_rng(0)
    assert sorted(dimension_sizes(program, rng, point=1).values()) == [1, 2]
    seen = {size for _ in range(20) for size in dimension_sizes(program, rng, point=2).values()}
    assert seen == {1, 2, 3, 4, 5}


def test_4_a_hessian_is_checked_against_the_value_not_against_matcalcs_gradient(monkeypatch):
    """The old check differentiated matcalc's own gradient: a wrong gradient and the Hessian
    consistent with it passed together.  Here matcalc's gradient is made wrong (doubled)."""
    import matcalc.derive
    d = matcalc.hessian("x'*A*x + sum(exp(x))", "x", {"x": "vector(3)"})
    assert d.check().ok
    real = matcalc.derive.grad

    def doubled(program, wrt, *args, **kwargs):
        g = real(program, wrt, *args, **kwargs)
        return replace(g, results={k: E.mul(E.Const(2), v) for k, v in g.results.items()})
    monkeypatch.setattr(matcalc.derive, "grad", doubled)
    monkeypatch.setattr("matcalc.check.grad", doubled, raising=False)
    assert not _wrong(d, "x", lambda r: E.mul(E.Const(2), r)).check().ok


def test_5_opaque_functions_are_neither_elementwise_nor_separable():
    """An elementwise stand-in made grad_f(S) symmetric for a symmetric S."""
    d = matcalc.grad("f(S)", "S", {"f": "function", "S": "symmetric(3)"})
    assert d.check().ok
    assert not _wrong(d, "S", lambda r: _parsed(d, "grad_f(S)", {"f": "function"})).check().ok
    # and each function its own: f and g swapped in the result fail
    d = matcalc.grad("f(x) + 2*g(x)", "x", {"f": "function", "g": "function"})
    assert d.check().ok
    swapped = _wrong(d, "x", lambda r: _parsed(d, "2*grad_f(x) + grad_g(x)", {"f": "function", "g": "function"}))
    assert not swapped.check().ok


def test_5_stand_ins_and_their_gradients_agree():
    import numpy as np
    from matcalc.sampling import opaque_functions
    fns = opaque_functions(matcalc.parse("f(X) + g(x)", {"f": "function", "g": "function"}))
    rng = np.random.default_rng(1)
    for name in ("f", "g"):
        for shape in [(), (4,), (3, 2)]:
            x, d = rng.standard_normal(shape), rng.standard_normal(shape)
            h = 1e-6
            numeric = (fns[name](x + h * d) - fns[name](x - h * d)) / (2 * h)
            assert abs(numeric - np.sum(fns["grad_" + name](x) * d)) < 1e-6 * max(1, abs(numeric))


def test_6_symmetry_is_judged_relative_to_the_size():
    """An unsymmetrised gradient of size 1e-7 passed an absolute symmetry test."""
    d = matcalc.grad("1e-7*x'*S*y", "S", {"S": "symmetric(3)"})
    assert d.check().ok
    assert not _wrong(d, "S", lambda r: _parsed(d, "1e-7*x*y'")).check().ok


def test_6_a_hessian_by_a_symmetric_variable_must_be_a_symmetric_matrix():
    """Adding M (I - K) changes H along no symmetric direction (K vec(D) = vec(D)), so the old
    check, which compared H vec(D) alone, passed it; but it makes H a non-symmetric matrix."""
    d = matcalc.hessian("x'*S*x + tr(S*S)", "S", {"S": "symmetric(3)"})
    assert d.check().ok
    wrong = _wrong(d, "S", lambda r: E.add(r, _parsed(d, "kron(S, I(3))*(I(9) - commutation(3, 3))")))
    assert not wrong.check().ok


def test_7_the_generated_module_is_run(monkeypatch):
    """Right results and a wrong generated module used to pass: the module was never run."""
    import types
    d = matcalc.grad("x'*A*x + sum(tanh(x))", "x")
    assert d.check().ok
    real = matcalc.Derivation.function

    def broken(which):
        def function(self, target="numpy"):
            module = vars(real(self, target)).copy()
            fn = module[which]
            module[which] = lambda *a: 1.01 * fn(*a)
            return types.SimpleNamespace(**module)
        return function
    for which in ("value", "grad_x"):
        monkeypatch.setattr(matcalc.Derivation, "function", broken(which))
        report = d.check()
        assert not report.ok and report.generated[which] > 1e-3, report
        monkeypatch.undo()


# ---------------------------------------------------------------------------
# Domains: declared spd and positive inputs, and what the use requires

def test_spd_and_positive_declarations():
    import numpy as np
    from matcalc.sampling import dimension_sizes
    program = matcalc.parse("A: spd(n)\nb: positive vector(n)\nc: positive scalar\nM: positive matrix(n, m)\n"
                            "x'*A*x + b'*x + c + sum(M)")
    A, b, c, M = (program.inputs[k] for k in "AbcM")
    assert A.kind == "spd" and A.symmetric and A.shape[0] == A.shape[1]
    assert b.positive and c.positive and M.positive and not A.positive
    rng = np.random.default_rng(3)
    for _ in range(5):
        env = sample_inputs(program, rng, dimension_sizes(program, rng, point=2))
        assert np.allclose(env["A"], env["A"].T) and np.all(np.linalg.eigvalsh(env["A"]) > 0)
        assert all(np.all(env[k] > 0) for k in "bcM")


@pytest.mark.parametrize("text", ["x: positive function", "x: positive positive scalar", "S: positive spd(3)"])
def test_a_kind_that_cannot_be_positive_is_an_error(text):
    from matcalc.errors import ParseError
    with pytest.raises(ParseError):
        matcalc.parse(text + "\n1")


def test_matrices_under_inv_and_logdet_are_sampled_non_symmetric():
    import numpy as np
    from matcalc.sampling import dimension_sizes
    program = matcalc.parse("logdet(A) + tr(inv(B)) + det(C)")
    rng = np.random.default_rng(0)
    env = sample_inputs(program, rng, dimension_sizes(program, rng))
    for k in "ABC":
        assert not np.allclose(env[k], env[k].T) and np.linalg.det(env[k]) > 0


@pytest.mark.parametrize("text, wrt, let", [
    ("logdet(X'*A*X)", "X", {"A": "spd(m)"}),
    ("logdet(X'*A*X)", "X", {}),
    ("-sum(log(b - A*x))", "x", {}),
    ("-sum(log(b - A*x)) + c'*x", "A", {}),
    ("log(t - norm2(x)^2)", "x", {"t": "scalar"}),
    ("logdet(A*X*B)", "X", {}),
])
def test_no_false_alarms_on_constrained_domains(text, wrt, let):
    d = matcalc.grad(text, wrt, let)
    report = d.check()
    assert report.ok and report.points == 3, report


def test_a_check_that_finds_no_point_says_so():
    report = matcalc.grad("sum(log(-exp(x)))", "x").check()
    assert not report.ok and report.points == 0 and "could not find a point" in report.message


# ---------------------------------------------------------------------------
# Kinks: a wrong result that agrees with the truth except on a thin region beside
# a kink of the input (abs, sign, step, relu, norm1, max, min).  At 3 random points
# these passed at some seeds (sign(alpha): 4 seeds of 20); the check now adds points
# at other scales and on both sides of the input's own kinks.

SLIPS_AT_KINKS = [     # (input, wrt, declarations, a slip: a term dropped inside the kink's argument)
    ("abs(alpha + sigmoid(x'*x))", "alpha", {}, "sign(alpha)"),
    ("sum(relu(W*x + z))", "x", {"W": "matrix(m, n)", "z": "vector(m)"}, "W'*step(W*x)"),
    ("sum(max(x, y))", "x", {"y": "vector(n)"}, "step(x)"),
    ("sum(min(A*x, y))", "x", {"A": "matrix(n, n)", "y": "vector(n)"}, "A'*step(-A*x)"),
    ("sum(x .* step(x - alpha))", "x", {"alpha": "scalar"}, "step(x)"),
    ("relu(x'*y - alpha)", "y", {"alpha": "scalar", "y": "vector(n)"}, "step(x'*y)*x"),
    ("norm1(A*x - y)", "x", {"A": "matrix(m, n)", "y": "vector(m)"}, "A'*sign(A*x)"),
]


@pytest.mark.parametrize("text, wrt, let, slip", SLIPS_AT_KINKS, ids=[s[0] for s in SLIPS_AT_KINKS])
def test_slips_beside_a_kink_fail_at_every_seed(text, wrt, let, slip):
    d = matcalc.grad(text, wrt, let)
    wrong = _wrong(d, wrt, lambda r: _parsed(d, slip))
    for seed in range(20):
        assert d.check(seed=seed).ok, (seed, d.check(seed=seed))
        report = wrong.check(seed=seed)
        assert not report.ok, (seed, report)


def test_points_beside_kinks_lie_on_both_sides_and_do_not_read_the_result():
    """The added points come from the input alone: a result with no kink (a wrong one)
    gets the same points as the right one, and they straddle the input's kink."""
    import numpy as np
    from matcalc.check.points import Value, across_kinks
    from matcalc.sampling import dimension_sizes
    program = matcalc.parse("abs(alpha + sigmoid(x'*x))")
    rng = np.random.default_rng(0)
    dims = dimension_sizes(program, rng)
    env = sample_inputs(program, rng, dims)
    near = across_kinks(program, {}, dims, env, rng)
    assert near and len(near) % 2 == 0
    value_of = Value(program, {}, dims)
    for before, after in zip(near[::2], near[1::2]):
        assert value_of.sides(before, frozenset())[0] == -value_of.sides(after, frozenset())[0]
    right = matcalc.grad("abs(alpha + sigmoid(x'*x))", "alpha")
    wrong = _wrong(right, "alpha", lambda r: _parsed(right, "alpha"))       # smooth
    assert right.check().points == wrong.check().points > 3


def test_a_difference_across_a_kink_raises_no_false_alarm():
    """A point within a step of a kink: the differences there measure no derivative and
    are not used (they used to make a right result fail)."""
    import numpy as np
    from matcalc.check.differences import compare_gradient
    from matcalc.check.points import Value
    d = matcalc.grad("sum(relu(x))", "x", {"x": "vector(3)"})
    point = {"x": np.array([[1e-5], [-0.7], [2.0]])}
    value_of = Value(d.program, {}, {})
    analytic = np.array([[1.0], [0.0], [1.0]])
    assert compare_gradient([analytic], point, "x", frozenset(), False, value_of, 2.0,
                            np.random.default_rng(0)) == [0.0]
    assert compare_gradient([np.array([[1.0], [1.0], [1.0]])], point, "x", frozenset(), False, value_of, 2.0,
                            np.random.default_rng(0))[0] > 1


# ---------------------------------------------------------------------------
# Zero derivatives: sum(softmax(v)) is 1, so its gradient is zero; what the
# derivation computes is rounding of its terms (1e-17), asymmetric by as much.
# The symmetry test judged that against the result's own size and failed the
# right gradient by a symmetric S (and every zero Hessian).  It is now judged to
# the resolution of the differences, while a small nonzero slip still fails.

ZERO = "sum(softmax(softmax(S*x)))"


@pytest.mark.parametrize("command, wrt", [("grad", "S"), ("grad", "x"), ("hessian", "x"), ("hessian", "S")])
def test_a_zero_derivative_up_to_rounding_passes(command, wrt):
    d = getattr(matcalc, command)(ZERO, wrt, {"S": "symmetric(n)"})
    for seed in range(5):
        assert d.check(seed=seed).ok, d.check(seed=seed)


@pytest.mark.parametrize("command, wrt, slip", [
    ("grad", "S", "1e-6*x*x'"), ("grad", "S", "1e-6*x*(S*x)'"), ("grad", "S", "1e-8*x*(S*x)'"),
    ("grad", "x", "1e-6*x"), ("grad", "x", "1e-8*x"),
    ("hessian", "x", "1e-6*I(n)"), ("hessian", "x", "1e-6*x*(S*x)'"),
])
def test_a_small_nonzero_slip_on_a_zero_derivative_fails(command, wrt, slip):
    """1e-6 of the terms' scale is far above their rounding (resolved to about 1e-10
    by first differences, 1e-8 by second differences)."""
    d = getattr(matcalc, command)(ZERO, wrt, {"S": "symmetric(n)"})
    wrong = _wrong(d, wrt, lambda r: E.add(r, _parsed(d, slip)))
    for seed in range(5):
        assert not wrong.check(seed=seed).ok, seed
