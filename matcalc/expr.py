"""The expression IR: immutable, shaped nodes and their smart constructors.

Layer L1: imports errors and shapes.  Every node carries its shape; the
constructors (lower-case functions at the bottom) check shapes, flatten
associative operations and fold numeric constants, and are the only way the
rest of matcalc builds nodes.  Equality is structural with a cached hash,
so shared subtrees cost nothing to compare.
"""
from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field, fields
from fractions import Fraction
from typing import Callable, Iterator

from .errors import LimitError, ShapeError
from .shapes import (SCALAR, Dim, Shape, dim_product, dim_quotient, is_column, is_scalar,
                     is_square, show_shape, transposed)

Number = Fraction | float


class Expr:
    """Base class: structural equality with a hash computed once."""
    shape: Shape
    is_scalar: bool          # shape == (1, 1), set once at construction

    def __post_init__(self):
        object.__setattr__(self, "_hash", hash((type(self).__name__,) + self._key()))
        object.__setattr__(self, "is_scalar", is_scalar(self.shape))   # asked millions of times

    def _key(self) -> tuple:
        return tuple(getattr(self, name) for name in _compared_fields(type(self)))

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other) -> bool:
        if self is other:
            return True
        return (type(self) is type(other) and self._hash == other._hash
                and self._key() == other._key())

    def children(self) -> tuple["Expr", ...]:
        return ()

    def with_children(self, kids: tuple["Expr", ...]) -> "Expr":
        return self

    def __str__(self) -> str:  # the text printer is installed by matcalc.printing
        return _STR_HOOK[0](self)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self}>"

    def _repr_latex_(self) -> str | None:  # Jupyter; the LaTeX printer is installed by matcalc.printing
        return _LATEX_HOOK[0](self)


_STR_HOOK: list[Callable[[Expr], str]] = [lambda e: object.__repr__(e)]
# Expr or Program -> display math.  Hooks, not imports: printers sit above this layer.
_LATEX_HOOK: list[Callable[[object], str | None]] = [lambda e: None]


def node(cls):
    return dataclass(frozen=True, eq=False, repr=False)(cls)


_COMPARED: dict[type, tuple[str, ...]] = {}


def _compared_fields(cls) -> tuple[str, ...]:
    """The fields equality compares, looked up once per class (fields() is slow)."""
    names = _COMPARED.get(cls)
    if names is None:
        names = _COMPARED[cls] = tuple(f.name for f in fields(cls) if f.compare)
    return names


# ----------------------------------------------------------------- leaves

SYMBOL_KINDS = ("scalar", "vector", "matrix", "symmetric", "spd", "defined")


@node
class Symbol(Expr):
    name: str
    shape: Shape
    kind: str = "matrix"      # one of SYMBOL_KINDS; 'defined' = a program's named intermediate
    positive: bool = False    # declared `positive ...`: every entry > 0

    @property
    def symmetric(self) -> bool:
        return self.kind in ("symmetric", "spd")


@node
class Const(Expr):
    value: Number
    shape: Shape = field(default=SCALAR)


PI = math.pi     # `pi` is the scalar Const(PI); the printers spell it pi / \pi / π


@node
class Size(Expr):
    """A dimension used as a number: n in sum(x)/n for a declared x: vector(n)."""
    dim: Dim
    shape: Shape = field(default=SCALAR)


@node
class Identity(Expr):
    shape: Shape


@node
class Zero(Expr):
    shape: Shape


@node
class Commutation(Expr):
    """The commutation matrix K: K vec(A) = vec(Aᵀ) for an m×n matrix A."""
    m: Dim
    n: Dim
    shape: Shape


def commutation(m: Dim, n: Dim) -> Commutation:
    size = dim_product(m, n)
    return Commutation(m, n, (size, size))


@node
class Broadcast(Expr):
    """A scalar repeated over a shape: `ones` is Broadcast(1, shape)."""
    value: Expr
    shape: Shape

    def children(self):
        return (self.value,)

    def with_children(self, kids):
        return broadcast(kids[0], self.shape)


@node
class Differential(Expr):
    """d(target): the differential of a symbol (of any expression, in step displays)."""
    target: Expr
    shape: Shape

    def children(self):
        return ()


# ----------------------------------------------------------- n-ary nodes

@node
class Add(Expr):
    terms: tuple[Expr, ...]
    shape: Shape

    def children(self):
        return self.terms

    def with_children(self, kids):
        return add(*kids)


@node
class Mul(Expr):
    """Matrix product; factors of shape (1,1) are scalar multipliers."""
    factors: tuple[Expr, ...]
    shape: Shape

    def children(self):
        return self.factors

    def with_children(self, kids):
        return mul(*kids)


@node
class Hadamard(Expr):
    factors: tuple[Expr, ...]
    shape: Shape

    def children(self):
        return self.factors

    def with_children(self, kids):
        return hadamard(*kids)


# ----------------------------------------------------------- other nodes

@node
class Kron(Expr):
    left: Expr
    right: Expr
    shape: Shape

    def children(self):
        return (self.left, self.right)

    def with_children(self, kids):
        return kron(*kids)


@node
class Frobenius(Expr):
    left: Expr
    right: Expr
    shape: Shape = field(default=SCALAR)

    def children(self):
        return (self.left, self.right)

    def with_children(self, kids):
        return frobenius(*kids)


@node
class Transpose(Expr):
    arg: Expr
    shape: Shape

    def children(self):
        return (self.arg,)

    def with_children(self, kids):
        return transpose(kids[0])


@node
class Power(Expr):
    """base ^ exponent: a scalar power, or elementwise (.^) for arrays."""
    base: Expr
    exponent: Expr
    shape: Shape

    def children(self):
        return (self.base, self.exponent)

    def with_children(self, kids):
        return power(*kids)


@node
class MatPow(Expr):
    """X^k for a square matrix and an integer k >= 2 (k = -1 is Apply(INV))."""
    base: Expr
    k: int
    shape: Shape

    def children(self):
        return (self.base,)

    def with_children(self, kids):
        return matpow(kids[0], self.k)


class Fn(enum.Enum):
    """Named functions of one argument.  Value: (text name, elementwise?)."""
    EXP = ("exp", True)
    LOG = ("log", True)
    SIN = ("sin", True)
    COS = ("cos", True)
    TAN = ("tan", True)
    TANH = ("tanh", True)
    SQRT = ("sqrt", True)
    ABS = ("abs", True)
    SIGN = ("sign", True)
    STEP = ("step", True)          # Heaviside: the derivative of relu
    SIGMOID = ("sigmoid", True)
    RELU = ("relu", True)
    SOFTPLUS = ("softplus", True)
    ARCSIN = ("arcsin", True)
    ARCCOS = ("arccos", True)
    ARCTAN = ("arctan", True)
    SINH = ("sinh", True)
    COSH = ("cosh", True)
    LOG1P = ("log1p", True)        # log(1 + x), accurate for small x
    EXPM1 = ("expm1", True)        # exp(x) - 1, accurate for small x
    TRACE = ("tr", False)
    DET = ("det", False)
    LOGDET = ("logdet", False)
    INV = ("inv", False)
    DIAG = ("diag", False)         # vector -> diagonal matrix
    DIAGV = ("diag", False, "of a matrix")   # square matrix -> vector of its diagonal
    VEC = ("vec", False)
    SUM = ("sum", False)
    NORM1 = ("norm1", False)
    NORM2 = ("norm2", False)
    SOFTMAX = ("softmax", False)
    LOGSUMEXP = ("logsumexp", False)
    # Along one axis of a matrix, MATLAB's numbering: 1 down each column, 2 across each row.
    SUM_COLS = ("sum", False, "down each column")           # sum(X, 1): a 1×n row
    SUM_ROWS = ("sum", False, "across each row")            # sum(X, 2): an m×1 column
    SOFTMAX_COLS = ("softmax", False, "down each column")   # each column sums to 1
    SOFTMAX_ROWS = ("softmax", False, "across each row")    # each row sums to 1
    LOGSUMEXP_COLS = ("logsumexp", False, "down each column")
    LOGSUMEXP_ROWS = ("logsumexp", False, "across each row")
    # Matrix functions (docs/matrix-functions.md); eig*, chol read the symmetric part ½(S + Sᵀ).
    EXPM = ("expm", False)
    LOGM = ("logm", False)
    SQRTM = ("sqrtm", False)
    EIGVALS = ("eigvals", False)
    EIGMAX = ("eigmax", False)
    EIGMIN = ("eigmin", False)
    EIGVECS = ("eigvecs", False)          # orthonormal eigenvectors, columns in eigvals' order
    EIGVEC_MAX = ("eigvec_max", False)    # unit eigenvector of eigmax
    EIGVEC_MIN = ("eigvec_min", False)
    NORM_NUC = ("norm_nuc", False)
    NORM_SPEC = ("norm_spec", False)
    CHOL = ("chol", False)
    PINV = ("pinv", False)
    ADJ = ("adj", False)
    TRIL_HALF = ("tril_half", False)      # lower triangle, diagonal halved (Murray's Φ)
    POLAR = ("polar", False)              # U Vᵀ of the thin SVD X = U Σ Vᵀ

    def __init__(self, text: str, elementwise: bool, note: str = ""):
        self.text = text
        self.elementwise = elementwise
        self.note = note


def _square(fn: Fn, s: Shape) -> Shape:
    if not is_square(s):
        raise ShapeError(f"{fn.text}() needs a square matrix, got {show_shape(s)}")
    return s


def _column(fn: Fn, s: Shape) -> Shape:
    if not is_column(s):
        raise ShapeError(f"{fn.text}() needs a vector, got {show_shape(s)}")
    return s


def _column_or_one(fn: Fn, s: Shape) -> Shape:
    if s[1] != 1:
        raise ShapeError(f"{fn.text}() needs a vector, got {show_shape(s)}")
    return s


# The axis (1 or 2) of the functions along one axis; the argument order of sum(X, k).
AXIS: dict[Fn, int] = {Fn.SUM_COLS: 1, Fn.SUM_ROWS: 2, Fn.SOFTMAX_COLS: 1, Fn.SOFTMAX_ROWS: 2,
                       Fn.LOGSUMEXP_COLS: 1, Fn.LOGSUMEXP_ROWS: 2}


def reduced(s: Shape, axis: int) -> Shape:
    """The shape after a reduction along an axis: (1, n) down the columns, (m, 1) across the rows."""
    return (1, s[1]) if axis == 1 else (s[0], 1)


# Shape rule of every non-elementwise function: argument shape -> result shape.
FN_SHAPES: dict[Fn, Callable[[Shape], Shape]] = {
    Fn.TRACE: lambda s: (_square(Fn.TRACE, s), SCALAR)[1],
    Fn.DET: lambda s: (_square(Fn.DET, s), SCALAR)[1],
    Fn.LOGDET: lambda s: (_square(Fn.LOGDET, s), SCALAR)[1],
    Fn.INV: lambda s: _square(Fn.INV, s),
    Fn.DIAG: lambda s: (_column(Fn.DIAG, s)[0], s[0]),
    Fn.DIAGV: lambda s: (_square(Fn.DIAGV, s)[0], 1),
    Fn.VEC: lambda s: (dim_product(s[0], s[1]), 1),
    Fn.SUM: lambda s: SCALAR,
    Fn.NORM1: lambda s: SCALAR,
    Fn.NORM2: lambda s: SCALAR,
    Fn.SOFTMAX: lambda s: _column_or_one(Fn.SOFTMAX, s),        # a vector(1) is 1x1 and valid
    Fn.LOGSUMEXP: lambda s: (_column_or_one(Fn.LOGSUMEXP, s), SCALAR)[1],
    **{fn: (lambda axis: lambda s: reduced(s, axis))(AXIS[fn])
       for fn in (Fn.SUM_COLS, Fn.SUM_ROWS, Fn.LOGSUMEXP_COLS, Fn.LOGSUMEXP_ROWS)},
    Fn.SOFTMAX_COLS: lambda s: s,
    Fn.SOFTMAX_ROWS: lambda s: s,
    **{fn: (lambda fn: lambda s: _square(fn, s))(fn)
       for fn in (Fn.EXPM, Fn.LOGM, Fn.SQRTM, Fn.EIGVECS, Fn.CHOL, Fn.ADJ, Fn.TRIL_HALF)},
    **{fn: (lambda fn: lambda s: (_square(fn, s), SCALAR)[1])(fn) for fn in (Fn.EIGMAX, Fn.EIGMIN)},
    **{fn: (lambda fn: lambda s: (_square(fn, s)[0], 1))(fn)
       for fn in (Fn.EIGVALS, Fn.EIGVEC_MAX, Fn.EIGVEC_MIN)},
    Fn.NORM_NUC: lambda s: SCALAR,
    Fn.NORM_SPEC: lambda s: SCALAR,
    Fn.PINV: lambda s: (s[1], s[0]),
    Fn.POLAR: lambda s: s,
}

# The matrix functions whose Fréchet derivative has no closed form: f -> the name of
# f_adj(Y, G) = L_f(Yᵀ, G), the adjoint of L_f(Y, ·) applied to G (docs/matrix-functions.md).
FRECHET_ADJ = {Fn.EXPM: "expm_adj", Fn.LOGM: "logm_adj", Fn.SQRTM: "sqrtm_adj"}


@node
class Apply(Expr):
    fn: Fn
    arg: Expr
    shape: Shape

    def children(self):
        return (self.arg,)

    def with_children(self, kids):
        return apply(self.fn, kids[0])


@node
class Call(Expr):
    """f(arg) for a declared opaque scalar function f."""
    name: str
    arg: Expr
    shape: Shape = field(default=SCALAR)

    def children(self):
        return (self.arg,)

    def with_children(self, kids):
        return call(self.name, kids[0])


@node
class GradCall(Expr):
    """grad_f(arg): the gradient of an opaque function, shaped like arg."""
    name: str
    arg: Expr
    shape: Shape

    def children(self):
        return (self.arg,)

    def with_children(self, kids):
        return grad_call(self.name, kids[0])


@node
class Solve(Expr):
    """solve(A, B) = A⁻¹ B, computed by a solve."""
    a: Expr
    b: Expr
    shape: Shape

    def children(self):
        return (self.a, self.b)

    def with_children(self, kids):
        return solve(*kids)


@node
class FrechetAdj(Expr):
    """expm_adj(Y, G) (logm_adj, sqrtm_adj): L_f(Yᵀ, G), linear in G.  Since
    L_f(Y, E) = f_adj(Yᵀ, E), d f(X) = f_adj(Xᵀ, dX), and the adjoint of
    f_adj(Y, ·) is f_adj(Yᵀ, ·)."""
    fn: Fn
    x: Expr
    g: Expr
    shape: Shape

    def children(self):
        return (self.x, self.g)

    def with_children(self, kids):
        return frechet_adj(self.fn, *kids)


@node
class FrechetJac(Expr):
    """expm_adj_jac(Y): the n²×n² matrix J with vec(expm_adj(Y, M)) = J vec(M)."""
    fn: Fn
    x: Expr
    shape: Shape

    def children(self):
        return (self.x,)

    def with_children(self, kids):
        return frechet_jac(self.fn, kids[0])


@node
class Unvec(Expr):
    """unvec(v, m, n): the m×n matrix whose vec (columns stacked) is v.  The adjoint
    of vec: G : vec(M) = unvec(G, m, n) : M (docs/kron-vec.md)."""
    arg: Expr
    shape: Shape

    def children(self):
        return (self.arg,)

    def with_children(self, kids):
        return unvec(kids[0], self.shape)


@node
class KronAdjLeft(Expr):
    """kron_adj_left(A, G) = Σᵢⱼ Aᵢⱼ Gᵢⱼ, with G cut into p×q blocks Gᵢⱼ (A is p×q):
    the adjoint of M ↦ A ⊗ M, G : (A ⊗ M) = kron_adj_left(A, G) : M (docs/kron-vec.md)."""
    a: Expr
    g: Expr
    shape: Shape

    def children(self):
        return (self.a, self.g)

    def with_children(self, kids):
        return kron_adj_left(*kids)


@node
class KronAdjRight(Expr):
    """kron_adj_right(G, B) = [B : Gᵢⱼ]ᵢⱼ, with G cut into blocks Gᵢⱼ shaped like B:
    the adjoint of M ↦ M ⊗ B, G : (M ⊗ B) = kron_adj_right(G, B) : M (docs/kron-vec.md)."""
    g: Expr
    b: Expr
    shape: Shape

    def children(self):
        return (self.g, self.b)

    def with_children(self, kids):
        return kron_adj_right(*kids)


# ------------------------------------------------------------ constructors

def const(value) -> Const:
    return Const(_number(value))


def _number(value) -> Number:
    if isinstance(value, Fraction):
        return value
    if isinstance(value, int):
        return Fraction(value)
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return Fraction(int(value))
    return value


ONE = Const(Fraction(1))
MINUS_ONE = Const(Fraction(-1))


def ones(shape: Shape) -> Expr:
    return ONE if is_scalar(shape) else Broadcast(ONE, shape)


def zero(shape: Shape) -> Expr:
    return Const(Fraction(0)) if is_scalar(shape) else Zero(shape)


def is_zero(e: Expr) -> bool:
    return isinstance(e, Zero) or (isinstance(e, Const) and e.value == 0)


def is_const(e: Expr, value=None) -> bool:
    return isinstance(e, Const) and (value is None or e.value == value)


def broadcast(value: Expr, shape: Shape) -> Expr:
    if not value.is_scalar:
        raise ShapeError(f"only a scalar can be broadcast, got {show_shape(value.shape)}")
    return value if is_scalar(shape) else Broadcast(value, shape)


def _same_shape(what: str, parts) -> Shape:
    shape = parts[0].shape
    for p in parts[1:]:
        if p.shape != shape:
            raise ShapeError(f"{what} of {show_shape(shape)} and {show_shape(p.shape)}")
    return shape


def add(*terms: Expr) -> Expr:
    flat: list[Expr] = []
    for t in terms:
        flat.extend(t.terms if isinstance(t, Add) else (t,))
    if not flat:
        raise ValueError("add() of nothing")
    lead = 0
    while lead < len(flat) and isinstance(flat[lead], Broadcast):
        lead += 1
    if lead >= 2 and lead < len(flat):    # alpha + beta + x reads as (alpha + beta) + x
        flat = [Broadcast(add(*(b.value for b in flat[:lead])), flat[0].shape)] + flat[lead:]
    if len(flat) == 1:
        return flat[0]
    return Add(tuple(flat), _same_shape("sum", flat))


def chain_shape(factors) -> Shape:
    """Shape of a product: (1,1) factors scale, the rest multiply as matrices."""
    shape = None
    for f in factors:
        if f.is_scalar:
            continue
        if shape is None:
            shape = f.shape
        elif shape[1] != f.shape[0]:
            if is_scalar(shape):
                shape = f.shape
                continue
            raise ShapeError(f"product of {show_shape(shape)} and {show_shape(f.shape)}: "
                             f"{shape[1]} columns against {f.shape[0]} rows")
        else:
            shape = (shape[0], f.shape[1])
    return SCALAR if shape is None else shape


def mul(*factors: Expr) -> Expr:
    """Product; numeric factors fold into one leading coefficient.

    A nested product is flattened unless it is scalar-valued while holding
    non-scalar factors (x'*y): that one stays a single scalar factor.
    """
    flat: list[Expr] = []
    for f in factors:
        if isinstance(f, Mul) and (not f.is_scalar or all(g.is_scalar for g in f.factors)):
            flat.extend(f.factors)
        else:
            flat.append(f)
    coeff = None
    rest = []
    for f in flat:
        if isinstance(f, Const) and f.shape == SCALAR:
            coeff = f.value if coeff is None else _fold(coeff * f.value)
        else:
            rest.append(f)
    if coeff is not None and (coeff != 1 or not rest):
        rest.insert(0, Const(coeff))
    if not rest:
        return ONE
    rest = _fold_constant_outer(rest)
    broadcasts = [f for f in rest if isinstance(f, Broadcast)]
    if len(broadcasts) == 1 and all(f.is_scalar or f is broadcasts[0] for f in rest):
        scale = [f for f in rest if f.is_scalar]        # alpha*ones is the broadcast alpha
        return Broadcast(mul(*scale, broadcasts[0].value), broadcasts[0].shape)
    if len(rest) == 1:
        return rest[0]
    rest = _group_scalar_chains(rest)
    if len(rest) == 1:
        return rest[0]
    return Mul(tuple(rest), chain_shape(rest))


def _group_scalar_chains(factors: list) -> list:
    """Read a chain left to right as the parser does: wherever the product so far
    is 1x1 (x'*y in x'*y*y'*x, or beside a scalar factor) it is one scalar factor."""
    scalars = [f for f in factors if f.is_scalar]
    chain = [f for f in factors if not f.is_scalar]
    groups, current, shape = [], [], None
    for f in chain:
        current.append(f)
        shape = f.shape if shape is None else (shape[0], f.shape[1])
        if shape == SCALAR and len(current) >= 2 and (len(current) < len(chain) or scalars):
            groups.append(Mul(tuple(current), SCALAR))
            current, shape = [], None
    if not groups:
        return factors
    return scalars + groups + current


def _fold_constant_outer(factors: list) -> list:
    """ones*ones' is the all-ones matrix: a column broadcast times a row broadcast."""
    out: list = []
    for f in factors:
        prev = out[-1] if out else None
        if (isinstance(prev, Broadcast) and isinstance(f, Broadcast) and is_column(prev.shape)
                and f.shape[0] == 1 and f.shape[1] != 1):
            out[-1] = Broadcast(mul(prev.value, f.value), (prev.shape[0], f.shape[1]))
        else:
            out.append(f)
    return out


def neg(e: Expr) -> Expr:
    if isinstance(e, Const):
        return Const(-e.value)
    if isinstance(e, Broadcast):
        return Broadcast(neg(e.value), e.shape)
    return mul(MINUS_ONE, e)


def hadamard(*factors: Expr) -> Expr:
    flat: list[Expr] = []
    for f in factors:
        flat.extend(f.factors if isinstance(f, Hadamard) else (f,))
    if len(flat) == 1:
        return flat[0]
    return Hadamard(tuple(flat), _same_shape("elementwise product", flat))


def kron(a: Expr, b: Expr) -> Expr:
    return Kron(a, b, (dim_product(a.shape[0], b.shape[0]), dim_product(a.shape[1], b.shape[1])))


def frobenius(a: Expr, b: Expr) -> Expr:
    _same_shape("Frobenius product", [a, b])
    return Frobenius(a, b)


def transpose(a: Expr) -> Expr:
    if isinstance(a, Broadcast):          # ones' is a row of ones, not a transposed node
        return Broadcast(a.value, transposed(a.shape))
    return Transpose(a, transposed(a.shape))


def power(base: Expr, exponent: Expr) -> Expr:
    if not exponent.is_scalar:
        raise ShapeError(f"an exponent must be a scalar, got {show_shape(exponent.shape)}")
    if isinstance(base, Const) and isinstance(exponent, Const):
        folded = _fold_power(base.value, exponent.value)
        if folded is not None:
            return Const(folded)
    return Power(base, exponent, base.shape)


def matpow(base: Expr, k: int) -> Expr:
    if not is_square(base.shape) or base.is_scalar:
        raise ShapeError(f"a matrix power needs a square matrix, got {show_shape(base.shape)}")
    return MatPow(base, k, base.shape)


def apply(fn: Fn, arg: Expr) -> Expr:
    shape = arg.shape if fn.elementwise else FN_SHAPES[fn](arg.shape)
    return Apply(fn, arg, shape)


def solve(a: Expr, b: Expr) -> Expr:
    if not is_square(a.shape) or a.shape[0] != b.shape[0]:
        raise ShapeError(f"solve(A, B) needs a square A with as many rows as B, got "
                         f"{show_shape(a.shape)} and {show_shape(b.shape)}")
    return Solve(a, b, b.shape)


def frechet_adj(fn: Fn, x: Expr, g: Expr) -> Expr:
    if not is_square(x.shape) or g.shape != x.shape:
        raise ShapeError(f"{FRECHET_ADJ[fn]}(Y, G) needs a square Y and G of its shape, got "
                         f"{show_shape(x.shape)} and {show_shape(g.shape)}")
    return FrechetAdj(fn, x, g, x.shape)


def frechet_jac(fn: Fn, x: Expr) -> Expr:
    size = dim_product(x.shape[0], x.shape[1])
    return FrechetJac(fn, _square_arg(fn, x), (size, size))


def _square_arg(fn: Fn, x: Expr) -> Expr:
    _square(fn, x.shape)
    return x


def unvec(v: Expr, shape: Shape) -> Expr:
    """The matrix of `shape` whose vec is v (v itself where that shape is a column)."""
    if v.shape[1] != 1 or v.shape[0] != dim_product(shape[0], shape[1]):
        raise ShapeError(f"unvec() of {show_shape(v.shape)} to {show_shape(shape)}: it needs a vector "
                         f"of {dim_product(shape[0], shape[1])} entries")
    if shape == v.shape:
        return v
    return transpose(v) if shape[0] == 1 else Unvec(v, tuple(shape))


def _block_shape(what: str, g: Expr, factor: Expr) -> Shape:
    """The shape of G's blocks when G is (factor's shape) × (a block's shape), as a ⊗ product is."""
    rows, cols = dim_quotient(g.shape[0], factor.shape[0]), dim_quotient(g.shape[1], factor.shape[1])
    if rows is None or cols is None:
        raise ShapeError(f"{what} needs G of a Kronecker product's shape, a multiple of "
                         f"{show_shape(factor.shape)}'s, got {show_shape(g.shape)}")
    return (rows, cols)


def kron_adj_left(a: Expr, g: Expr) -> Expr:
    """Σᵢⱼ Aᵢⱼ Gᵢⱼ; a 1×1 A is a scalar (a G), and 1×1 blocks make the sum A : G."""
    shape = _block_shape("kron_adj_left(A, G)", g, a)
    if a.is_scalar:
        return mul(a, g)
    if is_scalar(shape):
        return frobenius(a, g)
    return KronAdjLeft(a, g, shape)


def kron_adj_right(g: Expr, b: Expr) -> Expr:
    """[B : Gᵢⱼ]ᵢⱼ; a 1×1 B is a scalar (b G), and G shaped like B makes it G : B."""
    shape = _block_shape("kron_adj_right(G, B)", g, b)
    if b.is_scalar:
        return mul(b, g)
    if is_scalar(shape):
        return frobenius(g, b)
    return KronAdjRight(g, b, shape)


def call(name: str, arg: Expr) -> Expr:
    return Call(name, arg)


def grad_call(name: str, arg: Expr) -> Expr:
    return GradCall(name, arg, arg.shape)


def differential(target: Symbol) -> Differential:
    return Differential(target, target.shape)


# ------------------------------------------------------ numeric folding

_BIG = 10**40


def _fold(x: Number) -> Number:
    """Keep exact fractions while they stay small; fall back to floats."""
    if isinstance(x, Fraction) and (abs(x.numerator) > _BIG or x.denominator > _BIG):
        try:
            x = float(x)
        except OverflowError:
            x = float("inf")
    if isinstance(x, float) and not math.isfinite(x):
        raise LimitError("a constant overflows the floating-point range while folding")
    return x


def _fold_power(b: Number, p: Number) -> Number | None:
    try:
        if isinstance(p, Fraction) and p.denominator == 1 and abs(p.numerator) <= 64:
            if b == 0 and p < 0:
                return None
            return _fold(Fraction(b) ** int(p) if isinstance(b, Fraction) else b ** int(p))
        if b > 0:
            return float(b) ** float(p)
    except ZeroDivisionError:
        return None
    except OverflowError:
        raise LimitError("a constant overflows the floating-point range while folding") from None
    return None


# --------------------------------------------------------------- walking

def walk(e: Expr) -> Iterator[Expr]:
    """Every distinct node of the DAG, each once (children before parents)."""
    seen: set[int] = set()
    stack: list[tuple[Expr, bool]] = [(e, False)]
    while stack:
        n, done = stack.pop()
        if done:
            yield n
            continue
        if id(n) in seen:
            continue
        seen.add(id(n))
        stack.append((n, True))
        stack.extend((c, False) for c in reversed(n.children()) if id(c) not in seen)


def symbols(e: Expr) -> dict[str, Symbol]:
    """The free symbols of e by name (a Differential's target included)."""
    out = {}
    for n in walk(e):
        if isinstance(n, Symbol):
            out[n.name] = n
        elif isinstance(n, Differential):        # dX, or d(body) in a step's first line
            out.update({n.target.name: n.target} if isinstance(n.target, Symbol) else symbols(n.target))
    return out


def map_bottom_up(e: Expr, fn: Callable[[Expr], Expr], memo: dict | None = None) -> Expr:
    """Rebuild e with fn applied to every node after its children (shared nodes once)."""
    memo = {} if memo is None else memo
    for n in walk(e):
        if n in memo:
            continue
        kids = n.children()
        if kids:
            new_kids = tuple(memo[k] for k in kids)
            rebuilt = n if all(a is b for a, b in zip(kids, new_kids)) else n.with_children(new_kids)
        else:
            rebuilt = n
        memo[n] = fn(rebuilt)
    return memo[e]


# --------------------------------------------------------------- programs

@dataclass(frozen=True)
class Program:
    """A parsed input: inputs, named definitions in order, and the output.

    `output` is the expression that gets differentiated: the bare expression,
    or the Symbol of the last definition.
    """
    inputs: dict[str, Symbol]                  # free symbols, in order of appearance
    definitions: tuple[tuple[Symbol, Expr], ...]
    output: Expr
    functions: frozenset[str] = frozenset()    # declared opaque functions
    source: str = ""
    spans: dict = field(default_factory=dict, compare=False)   # name -> Span of first use
    declared: frozenset[str] = field(default=frozenset(), compare=False)   # kinds given by the text or --let
    assumed: tuple = field(default=(), compare=False)   # naming defaults that decided a kind (syntax.kinds)

    def _repr_latex_(self) -> str | None:  # Jupyter: the definitions, and the inputs' shapes
        return _LATEX_HOOK[0](self)

    @property
    def value(self) -> Expr:
        """The output with the last definition's symbol replaced by its expression."""
        if self.definitions and self.output is self.definitions[-1][0]:
            return self.definitions[-1][1]
        return self.output
