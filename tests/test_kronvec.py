"""vec and kron of a variable (issue 14, item 4): docs/kron-vec.md.

Every derivative is checked by d.check() (central differences at random points,
and the generated NumPy module against the evaluator); tests/test_targets.py runs
the same programs in JAX, PyTorch and the array API.  The operations the adjoints
need (unvec) are checked here against NumPy written independently of matcalc:
numerically, through a round trip of every printer, and in the generated code,
which must never form a dense Kronecker product.
"""
from __future__ import annotations

import numpy as np
import pytest

import matcalc
from matcalc import expr as E
from matcalc.check import dimension_sizes, sample_inputs
from matcalc.errors import MatcalcError
from matcalc.numeric import Evaluator
from matcalc.printing.latex import to_latex
from matcalc.printing.pretty import to_pretty

KRON_LET = {"A": "matrix(n, n)", "B": "matrix(p, p)", "X": "matrix(p, n)"}


def vec(a) -> np.ndarray:
    return np.asarray(a).reshape(-1, 1, order="F")


def evaluate(text: str, let=None, seed: int = 0):
    """(the expression, its value, the inputs) at a random point."""
    program = matcalc.parse(text, let)
    rng = np.random.default_rng(seed)
    dims = dimension_sizes(program, rng)
    env = sample_inputs(program, rng, dims)
    return program.value, Evaluator(env, {}, dims)(program.value), env


def checked(command: str, text: str, wrt, let=None):
    d = getattr(matcalc, command)(text, wrt=wrt, let=let)
    report = d.check()
    assert report.points > 0 and report.ok, f"{text}: {d.result}\n{report}"
    return d


# ----------------------------------------------------------------- unvec

def test_unvec_inverts_vec_column_major():
    e, value, env = evaluate("unvec(v, 2, 3)", {"v": "vector(6)"})
    assert e.shape == (2, 3)
    np.testing.assert_array_equal(value, env["v"].reshape(3, 2).T)
    np.testing.assert_array_equal(vec(value), env["v"])


@pytest.mark.parametrize("text, let", [
    ("unvec(v, 2, 3)", {"v": "vector(6)"}),
    ("unvec(v, m, n)*A", {"A": "matrix(n, n)"}),
    ("unvec(kron(x, y), q, p) + B", {"x": "vector(p)", "y": "vector(q)", "B": "matrix(q, p)"}),
    ("unvec(kron(kron(x, y), z), p*q, r)'*kron(x, y)", {"x": "vector(p)", "y": "vector(q)", "z": "vector(r)"}),
])
def test_unvec_prints_and_parses_back(text, let):
    e = matcalc.parse(text, let).value
    assert matcalc.parse(str(e), let).value == e
    assert "vec⁻¹(" in to_pretty(e)
    assert r"\operatorname{vec}^{-1}_{" in to_latex(e)


@pytest.mark.parametrize("text, let, message", [
    ("sum(unvec(X, m, n))", None, "needs a vector of m*n entries, but X is a matrix"),
    ("sum(unvec(y, m))", None, "unvec takes a vector and two dimensions"),
    ("sum(unvec(y, m, n))", {"y": "vector(5)"}, "needs a vector of m*n entries, but y is a vector(5)"),
    ("sum(unvec(y, m, 2.5))", None, "takes dimensions"),
])
def test_unvec_bad_input_points_at_the_text(text, let, message):
    with pytest.raises(MatcalcError) as info:
        matcalc.parse(text, let)
    assert message in str(info.value)
    assert info.value.span is not None


def test_unvec_is_a_reserved_name():
    with pytest.raises(MatcalcError, match="built-in"):
        matcalc.parse("unvec = x + 1\nL = sum(unvec)")


# ----------------------------------------------------------------- vec of a variable

VEC_GRADIENTS = [
    ("sum(vec(X))", ["X"], None),
    ("y'*vec(A*X*B)", ["X", "A", "B"], None),
    ("norm2(kron(A, B)*vec(X) - y)^2", ["X", "y"], KRON_LET),
    ("vec(X)'*kron(A, B)*vec(X)", ["X"], KRON_LET),
    ("sum(vec(X') .* y) + vec(X)'*vec(X)", ["X"], None),
    ("sum(exp(vec(X*X')))", ["X"], None),
    ("z'*vec(x*y')", ["x", "y"], None),                 # vec of a product of vectors
    ("sum(unvec(y, n, m) .* X)", ["y"], {"X": "matrix(n, m)"}),
]


@pytest.mark.parametrize("text, wrt, let", VEC_GRADIENTS, ids=[c[0] for c in VEC_GRADIENTS])
def test_gradient_through_vec(text, wrt, let):
    d = checked("grad", text, wrt, let)
    for name in wrt:
        assert d.results[name].shape == d.program.inputs[name].shape


def test_least_squares_in_vec_form_reads_in_matrix_form():
    """The vec trick: ∂/∂X ‖(A ⊗ B) vec(X) − y‖² = 2 Bᵀ (B X Aᵀ − unvec(y)) A, no Kronecker product."""
    d = checked("grad", "norm2(kron(A, B)*vec(X) - y)^2", "X", KRON_LET)
    assert str(d.result) == "2*B'*(B*X*A' - unvec(y, p, n))*A"
    assert "kron" not in d.numpy()
    steps = {s.rule.name for s in d.steps}
    assert "adjoint of vec" in steps


@pytest.mark.parametrize("command, text, wrt, let", [
    ("jacobian", "vec(X*A)", "X", None),
    ("jacobian", "unvec(x, n, m)*A", "x", {"A": "matrix(m, m)"}),
    ("hessian", "vec(X*A)'*vec(X*A)", "X", None),
    ("hessian", "norm2(kron(A, B)*vec(X) - y)^2", "X", KRON_LET),
])
def test_jacobians_and_hessians_through_vec(command, text, wrt, let):
    checked(command, text, wrt, let)


# ----------------------------------------------------------------- kron of a variable

def kron_permutation(p, q, m, n) -> np.ndarray:
    """P with vec(L ⊗ R) = P (vec L ⊗ vec R) for L p×q, R m×n, by index arithmetic
    (independent of matcalc): entry (i, j) of L times (a, b) of R sits at row i*m + a,
    column j*n + b of L ⊗ R."""
    P = np.zeros((p * q * m * n, p * q * m * n))
    for i in range(p):
        for j in range(q):
            for a in range(m):
                for b in range(n):
                    row = (j * n + b) * (p * m) + (i * m + a)      # column-major vec of L ⊗ R
                    col = (j * p + i) * (m * n) + (b * m + a)      # vec L ⊗ vec R
                    P[row, col] = 1.0
    return P


def generated(d, name: str, env: dict):
    """The generated NumPy module's derivative at the evaluator's point (user shapes)."""
    from matcalc.numeric import to_user
    args = {k: to_user(env[k], s.shape) for k, s in d.program.inputs.items()}
    return getattr(d.function(), f"{d.command}_{name}")(**args)


def point(d, seed=0):
    rng = np.random.default_rng(seed)
    dims = dimension_sizes(d.program, rng)
    return sample_inputs(d.program, rng, dims)


def test_logdet_of_kron_by_A_is_n_times_inv_A_transposed():
    """∂ log det(A ⊗ B)/∂A = n A⁻ᵀ for an n×n B (log det(A ⊗ B) = n log det A + p log det B)."""
    d = checked("grad", "logdet(kron(A, B))", "A", {"A": "matrix(p, p)", "B": "matrix(n, n)"})
    assert str(d.result) == "tr(I(n))*inv(A)'"
    env = point(d)
    n = env["B"].shape[0]
    np.testing.assert_allclose(generated(d, "A", env), n * np.linalg.inv(env["A"]).T, rtol=1e-9)
    d = checked("grad", "logdet(kron(A, B))", "B", {"A": "matrix(3, 3)", "B": "matrix(n, n)"})
    assert str(d.result) == "3*inv(B)'"


def test_least_squares_in_kron_form_by_every_factor():
    let = {"A": "matrix(q, n)", "B": "matrix(r, p)", "X": "matrix(p, n)"}
    text = "norm2(kron(A, B)*vec(X) - y)^2"
    for name in ("X", "A", "B", "y"):
        d = checked("grad", text, name, let)
        env = point(d)
        K = np.kron(env["A"], env["B"])
        r = K @ vec(env["X"]) - env["y"]
        want = {"X": (2 * K.T @ r).reshape(env["X"].shape, order="F"),
                "y": -2 * r.ravel()}.get(name)
        if want is not None:
            np.testing.assert_allclose(generated(d, name, env), want, rtol=1e-9)
        assert "kron" not in d.numpy().split("def grad_", 1)[1].split("def value_and_grad")[0]


def test_quadratic_form_of_a_kronecker_product():
    d = checked("grad", "x'*kron(A, B)*x", "x", {"A": "matrix(n, n)", "B": "matrix(p, p)"})
    env = point(d)
    K = np.kron(env["A"], env["B"])
    np.testing.assert_allclose(generated(d, "x", env), ((K + K.T) @ env["x"]).ravel(), rtol=1e-9)


@pytest.mark.parametrize("text", ["sum(kron(c, w).^2)", "sum(kron(w, c).^2)"])
def test_sum_of_squares_of_a_kronecker_product_of_vectors(text):
    d = checked("grad", text, "w", None)
    assert str(d.result) == "2*(c'*c)*w"


@pytest.mark.parametrize("text, side", [("kron(X, A)", "left"), ("kron(A, X)", "right"), ("kron(x, y)", "left"),
                                        ("kron(y, x)", "right")])
def test_jacobian_of_a_kronecker_product_is_magnus_neudecker_theorem_3_10(text, side):
    """d vec(dX ⊗ A) = P (I ⊗ vec A) d vec X, d vec(A ⊗ dX) = P (vec A ⊗ I) d vec X."""
    name = "X" if "X" in text else "x"
    let = {"X": "matrix(2, 3)", "A": "matrix(3, 2)", "x": "vector(3)", "y": "vector(2)"}
    d = checked("jacobian", text, name, let)
    env = point(d)
    X, C = env[name], env["A" if name == "X" else "y"]
    if side == "left":
        want = kron_permutation(*X.shape, *C.shape) @ np.kron(np.eye(X.size), vec(C))
    else:
        want = kron_permutation(*C.shape, *X.shape) @ np.kron(vec(C), np.eye(X.size))
    np.testing.assert_allclose(generated(d, name, env), want, atol=1e-12)


@pytest.mark.parametrize("command, text, wrt, let", [
    ("grad", "sum(exp(kron(A, X)) .* C)", ["X", "A"], {"A": "matrix(2, 3)", "X": "matrix(n, m)"}),
    ("grad", "tr(kron(X, X)*B)", ["X"], {"X": "matrix(n, n)"}),
    ("grad", "norm2(kron(X, X'))^2 + sum(kron(x, X*x))", ["X", "x"], None),
    ("grad", "y'*kron(A, X)*z + logdet(kron(S, S) + I)", ["X", "S"], {"S": "spd(n)"}),
    ("hessian", "logdet(kron(A, B))", ["A"], {"A": "matrix(n, n)", "B": "matrix(p, p)"}),
    ("hessian", "sum(kron(c, w).^2)", ["w"], None),
    ("hessian", "sum(sin(kron(B, X)))", ["X"], {"B": "matrix(2, 3)"}),
    ("jacobian", "vec(kron(X, A)*B)", ["X"], {"A": "matrix(2, 2)", "X": "matrix(2, 2)"}),
    ("jacobian", "diag(X)*kron(x, y)'", ["X", "x"], {"X": "matrix(n, n)"}),     # diag of a variable
    ("jacobian", "kron_adj_left(A, G)", ["A", "G"], {"A": "matrix(2, 3)", "G": "matrix(6, 6)"}),
    ("jacobian", "kron_adj_right(G, B)", ["B", "G"], {"B": "matrix(2, 3)", "G": "matrix(6, 6)"}),
    ("grad", "sum(kron_adj_left(A, G).^2) + sum(kron_adj_right(G, B).^2)", ["A", "B", "G"],
     {"A": "matrix(2, 3)", "B": "matrix(3, 2)", "G": "matrix(6, 6)"}),
])
def test_derivatives_through_kron(command, text, wrt, let):
    checked(command, text, wrt, let)


def test_kronecker_adjoints_contract_blocks_without_a_kronecker_product():
    """kron_adj_left(A, G) = Σ Aᵢⱼ Gᵢⱼ, kron_adj_right(G, B) = [B : Gᵢⱼ], by blocks written out."""
    let = {"A": "matrix(2, 3)", "B": "matrix(2, 3)", "G": "matrix(8, 9)"}
    e, value, env = evaluate("kron_adj_left(A, G)", let)
    A, G = env["A"], env["G"]
    blocks = [[G[4 * i:4 * i + 4, 3 * j:3 * j + 3] for j in range(3)] for i in range(2)]
    np.testing.assert_allclose(value, sum(A[i, j] * blocks[i][j] for i in range(2) for j in range(3)))
    e, value, env = evaluate("kron_adj_right(G, B)", let)
    B, G = env["B"], env["G"]
    want = np.array([[np.sum(B * G[2 * a:2 * a + 2, 3 * b:3 * b + 3]) for b in range(3)] for a in range(4)])
    np.testing.assert_allclose(value, want)
    # the defining identities G : (A ⊗ M) = kron_adj_left(A, G) : M = kron_adj_right(G, M) : A
    rng = np.random.default_rng(3)
    A, M, G = rng.standard_normal((2, 3)), rng.standard_normal((4, 3)), rng.standard_normal((8, 9))
    lhs = np.sum(G * np.kron(A, M))
    for text, names in [("kron_adj_left(A, G) : M", "AMG"), ("kron_adj_right(G, M) : A", "AMG")]:
        program = matcalc.parse(text, {"A": "matrix(2, 3)", "M": "matrix(4, 3)", "G": "matrix(8, 9)"})
        got = Evaluator({"A": A, "M": M, "G": G})(program.value)
        assert abs(got.item() - lhs) < 1e-10


@pytest.mark.parametrize("text", ["kron_adj_left(A, G)", "kron_adj_right(G, B)",
                                  "kron_adj_left(A, G)'*kron_adj_right(G', B)"])
def test_kronecker_adjoints_print_and_parse_back(text):
    let = {"A": "matrix(2, 3)", "B": "matrix(2, 3)", "G": "matrix(6, 6)"}
    e = matcalc.parse(text, let).value
    assert matcalc.parse(str(e), let).value == e
    assert "kron_adj_" in to_pretty(e) and r"\operatorname{kron\_adj\_" in to_latex(e)


@pytest.mark.parametrize("text, message", [
    ("sum(kron_adj_left(A, G))", "kron_adj_left(A, G): its size, 4 times another, cannot equal 6"),
    ("sum(kron_adj_right(G, A))", "kron_adj_right(G, A): its size, 4 times another, cannot equal 6"),
    ("sum(kron_adj_left(A, x))", "kron_adj_left(A, x): its size, 4 times another, cannot equal 1"),
    ("sum(kron_adj_left(A))", "takes 2 arguments"),
])
def test_kronecker_adjoint_bad_input_points_at_the_text(text, message):
    with pytest.raises(MatcalcError) as info:
        matcalc.parse(text, {"A": "matrix(2, 4)", "G": "matrix(6, 6)"})
    assert message in str(info.value) and info.value.span is not None
    assert "?" not in str(info.value)


def test_steps_name_the_kronecker_identities():
    d = matcalc.grad("sum(exp(kron(A, X)))", wrt=["X", "A"])
    rules = {s.rule.display for s in d.steps}
    assert "G : (A ⊗ M) = kron_adj_left(A, G) : M" in rules
    assert "G : (M ⊗ B) = kron_adj_right(G, B) : M" in rules
    assert "kron_adj_left(A, G) : dX" in str(d.pretty(steps=True)).replace("kron_adj_left(A, exp(A ⊗ X)) : dX",
                                                                            "kron_adj_left(A, G) : dX")


def test_generated_adjoint_uses_tensordot_in_every_target():
    d = matcalc.grad("sum(kron(A, X) .* C) + sum(kron(X, B) .* C)", wrt="X", let={"A": "matrix(2, 3)"})
    for target, word in [("numpy", "np.tensordot("), ("jax", "jnp.tensordot("), ("torch", "torch.tensordot("),
                         ("array-api", "xp.tensordot(")]:
        grad = d.code(target).split("def grad_X", 1)[1].split('"""', 2)[2].split("def value_and_grad")[0]
        assert word in grad and "kron" not in grad, (target, grad)


# ----------------------------------------------------------------- the tables

def test_every_node_has_printers_an_emitter_and_a_differential():
    """The meta-test over node types: a new node needs every table (docs/kron-vec.md)."""
    import inspect

    from matcalc.printing.code import _Module
    from matcalc.printing.latex import LatexPrinter
    from matcalc.printing.pretty import PrettyPrinter
    from matcalc.printing.text import TextPrinter
    from matcalc.rules.adjoints import ADJOINTS
    from matcalc.rules.differentials import DIFFERENTIALS
    from matcalc.rules.jacobians import JACOBIANS
    nodes = [c for c in vars(E).values() if inspect.isclass(c) and issubclass(c, E.Expr) and c is not E.Expr]
    assert E.Unvec in nodes and E.KronAdjLeft in nodes
    for node in nodes:
        for printer in (TextPrinter, PrettyPrinter, LatexPrinter):
            assert hasattr(printer, f"_print_{node.__name__}"), (printer.__name__, node.__name__)
        if node is not E.Differential:           # dX never reaches generated code
            assert hasattr(_Module, f"_emit_{node.__name__}"), node.__name__
    for node in (E.Unvec, E.KronAdjLeft, E.KronAdjRight, E.Kron):
        assert node in DIFFERENTIALS and node in ADJOINTS and node in JACOBIANS, node.__name__


@pytest.mark.parametrize("text, wrt, name", [("norm2(kron(A, B)*vec(X) - y)^2", "X", "unvec"),
                                             ("sum(kron(A, X) .* C)", "X", "kron_adj_left")])
def test_no_sympy_form_is_said_in_the_languages_words(text, wrt, name):
    pytest.importorskip("sympy")
    from matcalc.errors import UnsupportedError
    with pytest.raises(UnsupportedError, match=rf"matcalc's {name} \(in {name}\("):
        matcalc.grad(text, wrt=wrt, let=KRON_LET if "vec" in text else None).to_sympy()
