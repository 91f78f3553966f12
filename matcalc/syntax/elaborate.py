"""Elaboration: a lark tree to a typed Program.

Layer L2: imports errors, shapes, expr and the parser.  Two passes over the
tree: `_Infer` gives every name a kind and unifies dimensions (reporting
shape errors at the offending text), then `_Build` makes IR nodes with the
resolved shapes through expr's smart constructors.
"""
from __future__ import annotations

import difflib
import itertools
import re
from dataclasses import dataclass
from fractions import Fraction

from lark import Token, Tree

from .. import expr as E
from ..errors import LimitError, NameError_, ParseError, ShapeError, Span
from ..shapes import SCALAR, DimVar, ProductConflict, Unifier, dim_factors, dim_product
from .kinds import Conflict, Kinds
from .readings import column_notes, product_notes, transposed
from .parser import parse_tree

GREEK = frozenset("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi "
                  "omicron pi rho sigma tau upsilon phi chi psi omega".split())
KINDS = ("scalar", "vector", "matrix", "symmetric", "spd", "function")
DIM_NAMES = ("n", "m", "p", "q", "r", "k", "l", "s", "t")
MAX_MATRIX_POWER = 32


@dataclass(frozen=True)
class Decl:
    kind: str                    # one of KINDS
    dims: tuple = ()             # names (str) or ints
    span: Span | None = None
    positive: bool = False       # `positive ...`: every entry > 0


def default_kind(name: str) -> str:
    """Kinds by naming: Greek word -> scalar, upper-case -> matrix, else vector."""
    if name in GREEK:
        return "scalar"
    return "matrix" if name[0].isupper() else "vector"


def naming_reason(name: str) -> str:
    return ("a Greek name" if name in GREEK else "an upper-case name" if name[0].isupper()
            else "a lower-case name")


# ------------------------------------------------------------ functions
# name -> (arity, shape rule during inference, builder).  Elementwise
# functions are generated from expr.Fn.

def _infer_same(inf, t, shapes):
    return shapes[0]


def _infer_square_to(result):
    def rule(inf, t, shapes):
        (r, c), = shapes
        inf.require_matrix(t, (r, c), "a square matrix")
        inf.unify(r, c, t, "needs a square matrix")
        return SCALAR if result == "scalar" else (r, c)
    return rule


def _infer_diag(inf, t, shapes):
    (r, c), = shapes
    if inf.u.find(c) == 1:
        return (r, r)
    if inf.kinds.open(c):          # a vector or a matrix, decided when the width is known
        return inf.kinds.diag((r, c), t, f"{inf.src(t)} needs a vector or a square matrix")
    inf.require_matrix(t, (r, c), "a vector or a square matrix")
    inf.unify(r, c, t, "needs a vector or a square matrix")
    return (r, 1)


def _reciprocal(f: E.Expr) -> E.Expr:
    """1/f of a scalar; 1/s^k is s^-k (the printer's /s^k reads back as what it printed)."""
    if isinstance(f, E.Power) and isinstance(f.exponent, E.Const):
        return E.power(f.base, E.Const(-f.exponent.value))
    return E.power(f, E.MINUS_ONE)


def _is_literal(t) -> bool:
    """A number, or a negated one: a constant broadcast decides nothing about a name."""
    return t.data == "number" or (t.data == "neg" and t.children[0].data == "number")


def _infer_broadcasting_call(what: str):
    """max(a, b), min(a, b), clip(x, lo, hi): the arguments broadcast pairwise, left to right;
    a number among them decides nothing about a name's kind."""
    def rule(inf, t, shapes):
        args = t.children[1:]
        shape, literal = shapes[0], _is_literal(args[0])
        for other, arg in zip(shapes[1:], args[1:]):
            shape = inf.kinds.broadcast(shape, other, t, what, (literal, _is_literal(arg)))
            literal = False
        return shape
    return rule


def _infer_vector_to(result):
    def rule(inf, t, shapes):
        (r, c), = shapes
        arg = t.children[1] if len(t.children) > 1 else t
        name = str(t.children[0]) if len(t.children) > 1 else ""
        # softmax(X*W) of a batch: the axis is what was forgotten
        def why():       # told when it fails, with the sizes known by then
            hint = (f"along each row: {name}({inf.src(arg)}, 2); down each column: {name}({inf.src(arg)}, 1)"
                    if name in AXIS_FUNCTIONS and not inf.kinds.is_one(r) else None)
            return f"{inf.src(t)} needs a vector, but {inf.src(arg)} is {inf.show((r, c))}", hint
        if inf.kinds.open(r):         # softmax(x) makes x a vector, not a scalar (whose softmax is 1)
            inf.kinds.mark_nonunit(r, t, f"{inf.src(t)} needs a vector")
        if inf.kinds.open(c):         # a name's width still free: it may yet be a matrix
            inf.kinds.vector((r, c), t, why)
        elif not inf.u.unify(c, 1):
            inf.fail(t, why()[0], hint=why()[1])
        return SCALAR if result == "scalar" else (r, 1)
    return rule


def _infer_vec(inf, t, shapes):
    (r, c), = shapes
    return (inf.product(c, r, t), 1)          # columns stacked: the column index varies slowest


def _infer_kron(inf, t, shapes):
    (a, b), (c, d) = shapes
    return (inf.product(a, c, t), inf.product(b, d, t))


def _infer_square_to_vector(inf, t, shapes):
    (r, c), = shapes
    inf.require_matrix(t, (r, c), "a square matrix")
    inf.unify(r, c, t, "needs a square matrix")
    return (r, 1)


def _second_like_first(inf, t, first, second, rows_only: bool, what: str) -> None:
    """solve(A, B), f_adj(Y, G): the second argument's rows (and columns) are the first's;
    the message shows both shapes (never an unsettled dimension's internal name)."""
    (r, c), (r2, c2) = first, second
    if not rows_only and (inf.u.find(r2) == 1) != (inf.u.find(c2) == 1):
        inf.fail(t, f"{inf.src(t)} needs {what}, but {inf.src(t.children[2])} is {inf.show(second)}")
    if not (inf.u.unify(r, r2) and (rows_only or inf.u.unify(c, c2))):
        inf.fail(t, f"{inf.src(t)} needs {what}, but {inf.src(t.children[1])} is {inf.show(first)} "
                    f"and {inf.src(t.children[2])} is {inf.show(second)}")


def _infer_solve(inf, t, shapes):
    (r, c), (r2, c2) = shapes
    inf.require_matrix(t, (r, c), "a square matrix A in solve(A, B)")
    inf.unify(r, c, t, "needs a square matrix A in solve(A, B)")
    _second_like_first(inf, t, (r, c), (r2, c2), True, "B with as many rows as A in solve(A, B)")
    return (r, c2)


def _infer_frechet_adj(inf, t, shapes):
    (r, c), (r2, c2) = shapes
    inf.require_matrix(t, (r, c), "a square matrix Y in f_adj(Y, G)")
    inf.unify(r, c, t, "needs a square matrix Y in f_adj(Y, G)")
    _second_like_first(inf, t, (r, c), (r2, c2), False, "G of Y's shape in f_adj(Y, G)")
    return (r, c)


def _infer_frechet_jac(inf, t, shapes):
    (r, c), = shapes
    inf.require_matrix(t, (r, c), "a square matrix")
    inf.unify(r, c, t, "needs a square matrix")
    size = inf.product(r, c)
    return (size, size)


def _infer_kron_adj(left: bool):
    """kron_adj_left(A, G), kron_adj_right(G, B): G is the shape of A ⊗ M (of M ⊗ B); the result M's."""
    def rule(inf, t, shapes):
        (p, q), (g_rows, g_cols) = shapes if left else shapes[::-1]
        m, n = inf.u.fresh(nonunit=False), inf.u.fresh(nonunit=False)
        rows, cols = (inf.product(p, m, t), inf.product(q, n, t)) if left else \
            (inf.product(m, p, t), inf.product(n, q, t))
        inf.u.unify(g_rows, rows)        # a product variable takes any size: a G that is not
        inf.u.unify(g_cols, cols)        # a multiple of the factor's shape fails as the products settle
        return (m, n)
    return rule


def _build_diag(args):
    x, = args
    return E.apply(E.Fn.DIAG if x.shape[1] == 1 and x.shape[0] != 1 else E.Fn.DIAGV, x)


def _fn(fn):
    return lambda args: E.apply(fn, args[0])


FUNCTIONS = {
    **{fn.text: (1, _infer_same, _fn(fn)) for fn in E.Fn if fn.elementwise},
    "tr": (1, _infer_square_to("scalar"), _fn(E.Fn.TRACE)),
    "det": (1, _infer_square_to("scalar"), _fn(E.Fn.DET)),
    "logdet": (1, _infer_square_to("scalar"), _fn(E.Fn.LOGDET)),
    "inv": (1, _infer_square_to("matrix"), _fn(E.Fn.INV)),
    "diag": (1, _infer_diag, _build_diag),
    "vec": (1, _infer_vec, _fn(E.Fn.VEC)),
    "sum": (1, lambda inf, t, s: SCALAR, _fn(E.Fn.SUM)),
    "norm1": (1, lambda inf, t, s: SCALAR, _fn(E.Fn.NORM1)),
    "norm2": (1, lambda inf, t, s: SCALAR, _fn(E.Fn.NORM2)),
    "softmax": (1, _infer_vector_to("vector"), _fn(E.Fn.SOFTMAX)),
    "logsumexp": (1, _infer_vector_to("scalar"), _fn(E.Fn.LOGSUMEXP)),
    "kron": (2, _infer_kron, lambda args: E.kron(*args)),
    # max(a, b) = b + relu(a - b), min(a, b) = a - relu(a - b): the derivative goes through step
    "max": (2, _infer_broadcasting_call("take the maximum of"), None),
    "min": (2, _infer_broadcasting_call("take the minimum of"), None),
    # clip(x, lo, hi) = min(max(x, lo), hi), as NumPy's clip and PPO's objective write it
    "clip": (3, _infer_broadcasting_call("clip"), None),
    # the adjoints of M ↦ A ⊗ M and M ↦ M ⊗ B (docs/kron-vec.md)
    "kron_adj_left": (2, _infer_kron_adj(True), lambda args: E.kron_adj_left(*args)),
    "kron_adj_right": (2, _infer_kron_adj(False), lambda args: E.kron_adj_right(*args)),
    # matrix functions (docs/matrix-functions.md)
    **{fn.text: (1, _infer_square_to("matrix"), _fn(fn))
       for fn in (E.Fn.EXPM, E.Fn.LOGM, E.Fn.SQRTM, E.Fn.EIGVECS, E.Fn.CHOL, E.Fn.ADJ, E.Fn.TRIL_HALF)},
    **{fn.text: (1, _infer_square_to("scalar"), _fn(fn)) for fn in (E.Fn.EIGMAX, E.Fn.EIGMIN)},
    **{fn.text: (1, _infer_square_to_vector, _fn(fn)) for fn in (E.Fn.EIGVALS, E.Fn.EIGVEC_MAX, E.Fn.EIGVEC_MIN)},
    "norm_nuc": (1, lambda inf, t, s: SCALAR, _fn(E.Fn.NORM_NUC)),
    "norm_spec": (1, lambda inf, t, s: SCALAR, _fn(E.Fn.NORM_SPEC)),
    "pinv": (1, lambda inf, t, s: (s[0][1], s[0][0]), _fn(E.Fn.PINV)),
    "polar": (1, _infer_same, _fn(E.Fn.POLAR)),
    "solve": (2, _infer_solve, lambda args: E.solve(*args)),
    **{name: (2, _infer_frechet_adj, (lambda fn: lambda args: E.frechet_adj(fn, *args))(fn))
       for fn, name in E.FRECHET_ADJ.items()},
    **{name + "_jac": (1, _infer_frechet_jac, (lambda fn: lambda args: E.frechet_jac(fn, args[0]))(fn))
       for fn, name in E.FRECHET_ADJ.items()},
}
# Names people reach for, mapped to ours, for "did you mean" hints.
ALIASES = {"trace": "tr", "inverse": "inv", "determinant": "det", "log_det": "logdet",
           "norm": "norm2", "frobenius": "norm2", "transpose": "A'", "logistic": "sigmoid",
           "heaviside": "step", "ln": "log", "linsolve": "solve", "cholesky": "chol",
           "logdet_chol": "logdet", "nuclear": "norm_nuc", "eig": "eigvals", "lambda_max": "eigmax", "diagonal": "diag", "kronecker": "kron"}
# Functions people ask for that are not here yet: name -> what it is, for the hint.
# A name that FUNCTIONS gains never reaches this table, so adding a function ends its hint.
NOT_YET = {"expm": "the matrix exponential", "logm": "the matrix logarithm",
           "sqrtm": "the matrix square root",
           "eig": "eigenvalues", "eigvals": "eigenvalues", "eigmax": "the largest eigenvalue",
           "eigmin": "the smallest eigenvalue", "svd": "the singular value decomposition",
           "solve": "a linear solve; inv(A)*B is the same", "pinv": "the pseudo-inverse",
           "chol": "the Cholesky factor", "adj": "the adjugate", "norm_nuc": "the nuclear norm",
           "norm_spec": "the spectral norm"}
ELEMENTWISE_NAMES = frozenset(fn.text for fn in E.Fn if fn.elementwise)
CLOSE_NAME = 0.75        # difflib ratio for "did you mean": max vs softmax (0.6) is not a typo
# Constants that take their dimensions as arguments: name -> (argument counts, example).
SIZED = {"commutation": ((2,), "commutation(m, n)"), "ones": ((1, 2), "ones(n) or ones(m, n)"),
         "I": ((1,), "I(n)")}


def sized_shape(name: str, dims: list) -> tuple:
    if name == "commutation":
        size = dim_product(*dims)
        return (size, size)
    if name == "I":
        return (dims[0], dims[0])
    return (dims[0], dims[1] if len(dims) == 2 else 1)


# Functions with an optional axis, MATLAB's numbering: sum(X, 1) down each column (a row),
# sum(X, 2) across each row (a column).  name -> its Fn along axes 1 and 2.
AXIS_FUNCTIONS = {"sum": (E.Fn.SUM_COLS, E.Fn.SUM_ROWS), "mean": (E.Fn.SUM_COLS, E.Fn.SUM_ROWS),
                  "softmax": (E.Fn.SOFTMAX_COLS, E.Fn.SOFTMAX_ROWS),
                  "logsumexp": (E.Fn.LOGSUMEXP_COLS, E.Fn.LOGSUMEXP_ROWS)}
SOFTMAXES = {E.Fn.SOFTMAX: None, E.Fn.SOFTMAX_COLS: 1, E.Fn.SOFTMAX_ROWS: 2}

# unvec(v, m, n): an expression, then the m×n shape it is folded into (names, numbers or products).
UNVEC = "unvec"
RESERVED = frozenset(FUNCTIONS) | frozenset(KINDS) | {"I", "ones", "commutation", UNVEC, "mean"}


def _span(text: str, t) -> Span:
    if isinstance(t, Token):
        return Span.at(text, t.start_pos, t.end_pos)
    meta = t.meta
    if getattr(meta, "empty", True):
        return Span.at(text, 0)
    return Span.at(text, meta.start_pos, meta.end_pos)


def _number(text: str, tok: Token) -> Fraction | float:
    s = str(tok)
    m = re.search(r"[eE]([+-]?\d+)$", s)
    if (m and abs(int(m.group(1))) > 300) or len(s) > 400:
        value = float(s)
        if value in (float("inf"), float("-inf")):
            raise LimitError(f"the number {s[:20]}{'...' if len(s) > 20 else ''} is too large",
                             _span(text, tok))
        return value
    return Fraction(s)


def _integer(e: E.Expr) -> int | None:
    if isinstance(e, E.Const) and isinstance(e.value, Fraction) and e.value.denominator == 1:
        return int(e.value)
    return None


# ----------------------------------------------------------------- pass 1

class _Infer:
    """Kinds and shapes: every name gets one shape, dimensions unified."""

    def __init__(self, text: str, decls: dict[str, Decl]):
        self.text = text
        self.decls = decls
        self.u = Unifier()
        self.names: dict[str, tuple] = {}        # name -> shape (with DimVars)
        self.free: dict[str, Span] = {}          # free symbols in order of first use
        self.defined: dict[str, tuple] = {}
        self.leaf_shape: dict[int, tuple] = {}   # id(tree) of I / ones -> shape
        self.power_of: dict[int, int] = {}       # id(tree) of a matrix power -> its total |k|, nesting included
        self.kinds = Kinds(self.u, self.conflict_message)
        self.kind_vars: dict = {}                # undeclared name -> its KindVar
        self.sizes = {d for decl in decls.values() for d in decl.dims if isinstance(d, str)}
        self.assumed: tuple = ()
        self.products: list[tuple] = []          # (tree, left shape, right shape) of each a*b, for the notes

    # -- helpers
    def fail(self, t, message, cls=ShapeError, hint=None):
        raise cls(message, _span(self.text, t), hint)

    def src(self, t) -> str:
        s = _span(self.text, t)
        snippet = self.text[s.start:s.end]
        return snippet if len(snippet) <= 40 else snippet[:37] + "..."

    def show(self, shape) -> str:
        r, c = (self.u.find(d) for d in shape)
        known = lambda *ds: "" if any(isinstance(d, DimVar) for d in ds) else f"({', '.join(map(str, ds))})"
        if r == 1 and c == 1:
            return "a scalar"
        if c == 1:
            return f"a vector{known(r)}"
        if r == 1:
            return f"a row vector{known(c)}"
        return f"a matrix{known(r, c)}"

    def size(self, d) -> str:
        """A dimension in the user's terms: its name or number, or where it is not known
        yet, the input it comes from (never an inference variable's internal name)."""
        root = self.u.find(d)
        if not isinstance(root, DimVar):
            return str(root)
        for name, (r, c) in self.names.items():
            if self.u.find(r) is root:
                return f"the length of {name}" if self.u.find(c) == 1 else f"the number of rows of {name}"
            if self.u.find(c) is root:
                return f"the number of columns of {name}"
        return "a size not known yet"

    def count(self, d, noun: str) -> str:
        """'3 rows', 'n rows', or 'as many rows as the length of x'."""
        size = self.size(d)
        if size.isdigit():
            return f"{size} {noun}{'s' if size != '1' else ''}"
        return f"as many {noun}s as {size}" if size.startswith(("the ", "a ")) else f"{size} {noun}s"

    def unify(self, a, b, t, why):
        if not self.u.unify(a, b):
            self.fail(t, f"{self.src(t)}: {why} ({self.size(a)} against {self.size(b)})")

    def require_matrix(self, t, shape, what: str):
        """A function of matrices must not quietly turn a vector into a 1x1 matrix
        (a 1x1 expression is fine: tr(x'*A*x) is the trace trick)."""
        if (self.u.find(shape[0]) == 1) != (self.u.find(shape[1]) == 1):
            arg = t.children[1] if len(t.children) > 1 else t
            self.fail(t, f"{self.src(t)} needs {what}, but {self.src(arg)} is {self.show(shape)}")

    def is_scalar(self, shape) -> bool:
        return self.u.find(shape[0]) == 1 and self.u.find(shape[1]) == 1

    def force_scalar(self, t, shape, message: str, hint=None) -> None:
        """`/`, an exponent: the operand is a scalar (an undeclared name becomes one)."""
        if not (self.u.unify(shape[0], 1, force=True) and self.u.unify(shape[1], 1, force=True)):
            self.fail(t, message, hint=hint)

    def conflict_message(self, t, a, b, what: str) -> tuple[str, str | None]:
        """The error for an elementwise operation or a product whose shapes cannot agree."""
        l, r = t.children[-2:]
        if what == "frobenius":
            return (f"the Frobenius product needs equal shapes: {self.src(l)} is {self.show(a)}, "
                    f"{self.src(r)} is {self.show(b)}", None)
        if what == "multiply":
            return (f"cannot multiply {self.src(l)} ({self.show(a)}) by {self.src(r)} ({self.show(b)}): "
                    f"{self.count(a[1], 'column')} against {self.count(b[0], 'row')}",
                    "use .* for the elementwise product" if a == b else None)
        if what == "clip":              # clip(x, lo, hi): the pair that does not broadcast
            x, lo, hi = t.children[1:]
            return (f"cannot clip {self.src(x)} between {self.src(lo)} and {self.src(hi)}: "
                    f"{self.show(a)} against {self.show(b)}", None)
        hint = None
        for side, (x, y) in (("right", (a, b)), ("left", (b, a))):
            # a column as long as the other side's rows are wide: the row (its transpose) was meant
            # (or as long as it could be: a width no declaration fixed)
            if (self.u.find(y[1]) == 1 and self.u.find(y[0]) != 1 and self.kinds.sure(x[1])
                    and (self.u.find(y[0]) == self.u.find(x[1]) or isinstance(self.u.find(x[1]), DimVar))):
                hint = f"a column is added to every column, a row to every row: {transposed(self, t, side)}"
        return (f"cannot {what} {self.src(l)} ({self.show(a)}) and {self.src(r)} ({self.show(b)})", hint)

    def product(self, slow, fast, t=None):
        return self.u.product(slow, fast, t)

    def dim(self, d):
        return d if isinstance(d, int) else str(d)

    # -- names
    def name(self, t, name: str):
        if name in self.defined:
            return self.defined[name]
        if name in self.names:
            return self.names[name]
        decl = self.decls.get(name)
        if decl is None and name == "I":
            d = self.u.fresh()
            self.leaf_shape[id(t)] = (d, d)
            return (d, d)
        if decl is None and name == "ones":      # a vector, like every lower-case name
            shape = (self.u.fresh(), 1)
            self.leaf_shape[id(t)] = shape
            return shape
        if name in FUNCTIONS:
            self.fail(t, f"{name} is a function; call it as {name}(...)", NameError_)
        if decl is None and (name == "pi" or name in self.sizes):    # π, a declared dimension's size
            self.leaf_shape[id(t)] = SCALAR
            return SCALAR
        if decl is None:
            shape = self.kinds.name(name, default_kind(name), naming_reason(name))
            self.kind_vars[name] = self.kinds.kinds[-1]
            self.names[name] = shape
            self.free[name] = _span(self.text, t)
            return shape
        kind = decl.kind
        if kind == "function":
            self.fail(t, f"{name} is a function; call it as {name}(...)", NameError_)
        dims = decl.dims
        if kind == "scalar":
            shape = SCALAR
        elif kind == "vector":
            shape = (dims[0] if dims else self.u.fresh(), 1)
        elif kind in ("symmetric", "spd"):
            d = dims[0] if dims else self.u.fresh()
            shape = (d, d)
        else:
            shape = tuple(dims) if dims else (self.u.fresh(), self.u.fresh())
        self.names[name] = shape
        self.free[name] = _span(self.text, t)
        return shape

    # -- statements
    def definition(self, t):
        name_tok, body = t.children
        name = str(name_tok)
        if name in RESERVED or name in self.decls and self.decls[name].kind == "function":
            self.fail(name_tok, f"{name} is a built-in name and cannot be defined", NameError_)
        if name in self.defined:
            self.fail(name_tok, f"{name} is defined twice", NameError_)
        if name in self.names:
            self.fail(name_tok, f"{name} is used before its definition", NameError_,
                      "define a name before the lines that use it")
        if name in self.decls:
            self.fail(name_tok, f"{name} is declared as an input and cannot also be defined", NameError_)
        self.defined[name] = self.infer(body)

    # -- expressions
    def infer(self, t):
        if isinstance(t, Token):
            raise AssertionError(t)
        rule = getattr(self, "t_" + t.data, None)
        if rule is None:
            raise AssertionError(f"no inference for {t.data}")
        try:
            return rule(t)
        except Conflict as exc:
            self.fail(exc.origin if exc.origin is not None else t, exc.message, hint=exc.hint)

    def t_number(self, t):
        _number(self.text, t.children[0])
        return SCALAR

    def t_name(self, t):
        return self.name(t, str(t.children[0]))

    def t_neg(self, t):
        return self.infer(t.children[0])

    def t_transpose(self, t):
        r, c = self.infer(t.children[0])
        return (c, r)

    def _elementwise(self, t, what):
        a, b = (self.infer(c) for c in t.children[:2])
        return self.kinds.broadcast(a, b, t, what, tuple(map(_is_literal, t.children[:2])))

    def t_add(self, t):
        return self._elementwise(t, "add")

    def t_sub(self, t):
        return self._elementwise(t, "subtract")

    def t_hadamard(self, t):
        return self._elementwise(t, "multiply elementwise")

    def t_ediv(self, t):
        return self._elementwise(t, "divide elementwise")

    def t_mul(self, t):
        l, r = t.children[:2]
        a, b = self.infer(l), self.infer(r)
        self.products.append((t, a, b))
        return self.kinds.product(a, b, t)

    def t_div(self, t):
        l, r = t.children
        a, b = self.infer(l), self.infer(r)
        self.force_scalar(r, b, f"cannot divide by {self.src(r)} ({self.show(b)}): / divides by a scalar",
                          hint="use ./ for elementwise division or inv() for the inverse")
        return a

    def _power_operands(self, t):
        l, r = t.children
        a, b = self.infer(l), self.infer(r)
        self.force_scalar(r, b, f"the exponent {self.src(r)} must be a scalar, not {self.show(b)}")
        return l, r, a

    def t_pow(self, t):
        l, r, a = self._power_operands(t)
        if self.kinds.open(a[0]) and self.u.find(a[1]) == 1 and self.kinds.default_scalar(a[0]):
            self.force_scalar(l, a, "")          # alpha^2: a Greek name has a scalar power
        if self.is_scalar(a):
            return a
        if self.u.find(a[1]) == 1 or self.u.find(a[0]) == 1:
            self.fail(t, f"{self.src(l)} is {self.show(a)}; ^ is a matrix power",
                      hint=f"use .^ for the elementwise power: {self.src(l)}.^{self.src(r)}")
        self.unify(a[0], a[1], l, "a matrix power needs a square matrix")
        if not (r.data == "number" or (r.data == "neg" and r.children[0].data == "number")) \
                or not re.fullmatch(r"-?\s*\d+", self.src(r)):
            self.fail(r, f"a matrix power needs an integer exponent, not {self.src(r)}",
                      hint="use .^ for an elementwise power")
        k = abs(int(self.src(r).replace(" ", "")))
        if k > MAX_MATRIX_POWER:
            self.fail(r, f"matrix powers are limited to |k| <= {MAX_MATRIX_POWER} (the derivative of X^k "
                         f"has k terms)", LimitError)
        # powers nested in the base multiply: (A^32)^32 is A^1024, whose derivative has 1024 terms
        total = k * max([self.power_of.get(id(n), 1) for n in l.iter_subtrees()], default=1)
        if total > MAX_MATRIX_POWER:
            self.fail(t, f"nested matrix powers multiply to a total power of {total}, past the limit of "
                         f"{MAX_MATRIX_POWER} (the derivative of X^k has k terms)", LimitError)
        self.power_of[id(t)] = total
        return a

    def t_epow(self, t):
        return self._power_operands(t)[2]

    def t_frobenius(self, t):
        l, r = t.children
        self.kinds.same(self.infer(l), self.infer(r), t, "frobenius")
        return SCALAR

    def dims_of(self, t, args, name: str = "commutation") -> list:
        """The arguments of commutation(m, n), ones(n), ones(m, n), I(n): dimensions, not expressions."""
        counts, example = SIZED[name]
        dims = []
        for a in args:
            if a.data == "number" and re.fullmatch(r"[1-9]\d*", str(a.children[0])):
                dims.append(int(str(a.children[0])))
            elif a.data == "name":
                dims.append(str(a.children[0]))
            else:
                self.fail(a, f"{name}() takes dimensions (names or positive integers), not {self.src(a)}")
        if len(dims) not in counts:
            self.fail(t, f"{name}() takes {' or '.join(map(str, counts))} dimension"
                         f"{'s' if counts != (1,) else ''}, e.g. {example}", NameError_)
        return dims

    def unvec_dims(self, t, args) -> tuple:
        """The m, n of unvec(v, m, n): names, positive integers or products of them (m*n)."""
        if len(args) != 3:
            self.fail(t, f"unvec takes a vector and two dimensions, e.g. unvec(v, m, n), got "
                         f"{len(args)} argument{'s' if len(args) != 1 else ''}", NameError_)

        def dim(a):
            if a.data == "number" and re.fullmatch(r"[1-9]\d*", str(a.children[0])):
                return int(str(a.children[0]))
            if a.data == "name":
                return str(a.children[0])
            if a.data == "mul":
                return dim_product(dim(a.children[0]), dim(a.children[1]))
            self.fail(a, f"unvec(v, m, n) takes dimensions (names, positive integers or products "
                         f"like m*n) after the vector, not {self.src(a)}")
        return dim(args[1]), dim(args[2])

    def t_unvec(self, t, args):
        m, n = self.unvec_dims(t, args)
        r, c = self.infer(args[0])
        size = dim_product(m, n)
        if not (self.u.unify(c, 1) and self.u.unify(r, self.product(n, m, t))):
            self.fail(t, f"{self.src(t)} needs a vector of {size} entries, but {self.src(args[0])} "
                         f"is {self.show((r, c))}")
        return (m, n)

    def t_call(self, t):
        name_tok, *args = t.children
        name = str(name_tok)
        if name in SIZED:
            return sized_shape(name, self.dims_of(t, args, name))
        if name == UNVEC:
            return self.t_unvec(t, args)
        shapes = [self.infer(a) for a in args]
        decl = self.decls.get(name)
        if decl is not None and decl.kind == "function" or (
                name.startswith("grad_") and (d := self.decls.get(name[5:])) and d.kind == "function"):
            if len(args) != 1:
                self.fail(t, f"{name} takes one argument, got {len(args)}", NameError_)
            return SCALAR if not name.startswith("grad_") or name in self.decls else shapes[0]
        if name in AXIS_FUNCTIONS and (len(args) == 2 or name == "mean"):
            return self.along_axis(t, name, args, shapes)
        if name not in FUNCTIONS:
            self.fail(name_tok, f"unknown function {name}", NameError_, self.unknown_function_hint(name))
        arity, rule, _ = FUNCTIONS[name]
        if len(args) != arity:
            self.fail(t, f"{name} takes {arity} argument{'s' if arity > 1 else ''}, got {len(args)}",
                      NameError_)
        return rule(self, t, shapes)

    def along_axis(self, t, name: str, args, shapes):
        """sum(X, k), mean(X[, k]), softmax(X, k), logsumexp(X, k): k is 1 or 2, written as a number."""
        if len(args) not in (1, 2):
            self.fail(t, f"{name} takes one or two arguments (an array and an axis, 1 or 2), got {len(args)}",
                      NameError_)
        if len(args) == 1:                       # mean(x), mean(X): a scalar
            return SCALAR
        axis = self.axis(name, args[1])
        (r, c) = shapes[0]
        if name == "softmax":
            return (r, c)
        return (1, c) if axis == 1 else (r, 1)

    def axis(self, name: str, arg) -> int:
        if arg.data == "number" and str(arg.children[0]) in ("1", "2"):
            return int(str(arg.children[0]))
        self.fail(arg, f"the axis of {name} is 1 (down each column) or 2 (across each row), not {self.src(arg)}",
                  hint=f"{name}(X, 1) works down each column, {name}(X, 2) across each row")

    def unknown_function_hint(self, name: str) -> str:
        """A function that is not supported yet says so; a typo gets the one close name;
        a matrix function (expm) is never pointed to its elementwise namesake (exp)."""
        lower = name.lower()
        if lower in NOT_YET:
            return f"{lower} ({NOT_YET[lower]}) is not supported yet"
        if lower.endswith("m") and lower[:-1] in ELEMENTWISE_NAMES:
            return (f"{lower} (a matrix function) is not supported yet; {lower[:-1]} is elementwise: "
                    f"{lower[:-1]}(X) applies it to every entry")
        known = sorted(set(FUNCTIONS) | set(ALIASES) | {n for n, d in self.decls.items() if d.kind == "function"})
        parts = lower.split("_")
        if len(parts) > 1 and all(p in known for p in parts):       # log_softmax: a composition
            return f"write the composition: {'('.join(parts)}(...{')' * len(parts)}"
        close = [ALIASES.get(c, c) for c in difflib.get_close_matches(lower, known, n=1, cutoff=CLOSE_NAME)]
        if close:
            return f"did you mean {close[0]}?"
        return f"an unknown scalar function must be declared: --let '{name}: function'"

    # -- resolving kinds and dimensions
    def solve_kinds(self, output_tree, scalar_output: bool) -> None:
        """Decide every undeclared name's kind (syntax/kinds.py).  Under grad and hessian the
        output is a scalar, which can decide kinds too; where it cannot be one, the kinds
        are solved without it and the command says what is wrong."""
        def settle():
            try:
                self.u.settle()
            except ProductConflict as exc:
                raise Conflict(exc.origin, f"{self.src(exc.origin)}: {exc.reason}") from None
        def some_array():
            """The command may make names scalars, but not every name: grad of A*x is refused
            (the expression is a vector), not read as a product of two scalars."""
            settle()
            arrays = [k for k in self.kinds.kinds if self.kinds.kind_of(k) != "scalar"]
            declared = [d for d in self.decls.values() if d.kind not in ("scalar", "function")]
            if not arrays and not declared and any(k.default != "scalar" for k in self.kinds.kinds):
                raise Conflict(output_tree, "every name would be a scalar")
        before, pending = self.u.snapshot(), list(self.kinds.pending)
        try:
            if scalar_output and output_tree is not None:
                self.kinds.force_scalar(self.output_shape, output_tree, "")
                self.assumed = tuple(self.kinds.solve(some_array)) + self.notes()
                return
        except Conflict:
            self.u.restore(before)
            # propagation consumed the constraints it settled: the restored sizes need them all again
            kinds = Kinds(self.u, self.conflict_message, self.kinds.kinds, pending)
            kinds.broadcasts, kinds.column_reads = self.kinds.broadcasts, self.kinds.column_reads
            self.kinds = kinds
        try:       # without the command's scalar, each name takes its default or what a use forces
            self.assumed = tuple(self.kinds.solve(settle, others=False)) + self.notes()
        except Conflict as exc:
            self.fail(exc.origin if exc.origin is not None else output_tree, exc.message, hint=exc.hint)

    def notes(self) -> tuple:
        """Readings the text does not spell out (readings.py), after the naming defaults'."""
        return column_notes(self) + product_notes(self)

    def names_in(self, t) -> list[str]:
        """The names read in t, in order."""
        return [str(n.children[0]) for n in t.iter_subtrees_topdown() if n.data == "name"]

    def span(self, t) -> Span:
        return _span(self.text, t)

    def resolve(self) -> None:
        used = {d for decl in self.decls.values() for d in decl.dims if isinstance(d, str)}
        # not a name of the program either: a scalar n and X's rows both printed as n read as one
        used |= set(self.decls) | set(self.names) | set(self.defined)
        names = (n for n in itertools.chain(DIM_NAMES, (f"n{i}" for i in itertools.count(1)))
                 if n not in used)
        try:
            self.u.settle()
            self.u.match_products()
            self.u.settle()
            # name the free dimensions, those that a product fixes last (from their factors)
            for only_free in (True, False):
                products = self.u.product_roots() if only_free else set()
                for shape in list(self.names.values()) + list(self.leaf_shape.values()):
                    for d in shape:
                        root = self.u.find(d)
                        if isinstance(root, DimVar) and root.id not in products:
                            self.u.unify(root, next(names))
                self.u.settle()
        except ProductConflict as exc:
            raise ShapeError(f"{self.src(exc.origin)}: {exc.reason}",
                             _span(self.text, exc.origin),
                             "declare the inputs' sizes, e.g. --let 'A: matrix(2, 3)'") from None

    def concrete(self, shape):
        out = []
        for d in shape:
            root = self.u.find(d)
            out.append(root if not isinstance(root, DimVar) else "n0")
        return tuple(out)


# ----------------------------------------------------------------- pass 2

class _Build:
    """IR nodes from the tree, with the shapes pass 1 settled."""

    def __init__(self, inf: _Infer):
        self.inf = inf
        self.symbols: dict[str, E.Symbol] = {}

    def symbol(self, name: str) -> E.Symbol:
        sym = self.symbols.get(name)
        if sym is None:
            decl = None
            if name in self.inf.defined:
                shape, kind = self.inf.concrete(self.inf.defined[name]), "defined"
            else:
                decl = self.inf.decls.get(name)
                k = self.inf.kind_vars.get(name)
                kind = decl.kind if decl else self.inf.kinds.kind_of(k)
                shape = self.inf.concrete(self.inf.names[name])
            sym = self.symbols[name] = E.Symbol(name, shape, kind, bool(decl and decl.positive))
        return sym

    def build(self, t) -> E.Expr:
        try:
            return getattr(self, "b_" + t.data)(t)
        except ShapeError as exc:     # constraints pass 1 could not see: point at this node
            if exc.span is None:
                exc.span = _span(self.inf.text, t)
            raise

    def b_number(self, t):
        return E.Const(_number(self.inf.text, t.children[0]))

    def b_name(self, t):
        name = str(t.children[0])
        if id(t) in self.inf.leaf_shape:
            if name == "pi":
                return E.Const(E.PI)
            if name in self.inf.sizes:
                return E.Size(name)
            shape = self.inf.concrete(self.inf.leaf_shape[id(t)])
            return E.Identity(shape) if name == "I" else E.ones(shape)
        return self.symbol(name)

    def b_neg(self, t):
        return E.neg(self.build(t.children[0]))

    def b_transpose(self, t):
        return E.transpose(self.build(t.children[0]))

    def _operands(self, t):
        return self.build(t.children[0]), self.build(t.children[1])

    @staticmethod
    def _broadcast(a, b):
        """Both operands of an elementwise operation at its shape: a scalar repeated, a row
        or a column repeated as a product with ones (X + ones(m)*r), so that its
        differential and adjoint (the sum along that axis) follow from the product's."""
        shape = tuple(x if x != 1 else y for x, y in zip(a.shape, b.shape))
        return expand(a, shape), expand(b, shape)

    def b_add(self, t):
        return E.add(*self._broadcast(*self._operands(t)))

    def b_sub(self, t):
        a, b = self._broadcast(*self._operands(t))
        return E.add(a, E.neg(b))

    def b_mul(self, t):
        return E.mul(*self._operands(t))

    def b_div(self, t):
        a, b = self._operands(t)
        # the divisor leads, as the printer reads it; a/(2*n) is a/2/n, as 2*n is printed back
        divisors = b.factors if isinstance(b, E.Mul) and all(f.is_scalar for f in b.factors) else (b,)
        return E.mul(*(_reciprocal(f) for f in divisors), a)

    def b_hadamard(self, t):
        a, b = self._operands(t)
        return E.mul(a, b) if a.is_scalar or b.is_scalar else E.hadamard(*self._broadcast(a, b))

    def b_ediv(self, t):
        a, b = self._operands(t)
        inverse = E.power(b, E.MINUS_ONE)
        return E.mul(a, inverse) if a.is_scalar or b.is_scalar else E.hadamard(*self._broadcast(a, inverse))

    def extremum(self, name: str, a: E.Expr, b: E.Expr) -> E.Expr:
        """max(a, b) = b + relu(a − b), min(a, b) = a − relu(a − b); max(x, 0) is relu(x)."""
        a, b = self._broadcast(a, b)
        def zero(e):
            return E.is_zero(e) or (isinstance(e, E.Broadcast) and E.is_zero(e.value))
        if zero(a) or zero(b):           # max(0, z) = relu(z), min(0, z) = −relu(−z), either order
            z = b if zero(a) else a
            return E.apply(E.Fn.RELU, z) if name == "max" else E.neg(E.apply(E.Fn.RELU, E.neg(z)))
        if name == "max":
            return E.add(b, E.apply(E.Fn.RELU, E.add(a, E.neg(b))))
        return E.add(a, E.neg(E.apply(E.Fn.RELU, E.add(a, E.neg(b)))))

    def b_pow(self, t):
        a, b = self._operands(t)
        if a.is_scalar:
            return E.power(a, b)
        k = _integer(b)
        if k == -1:
            return E.apply(E.Fn.INV, a)
        if k < 0:
            return E.matpow(E.apply(E.Fn.INV, a), -k)
        if k == 0:
            return E.Identity(a.shape)
        return a if k == 1 else E.matpow(a, k)

    def b_epow(self, t):
        return E.power(*self._operands(t))

    def b_frobenius(self, t):
        return E.frobenius(*self._operands(t))

    def b_call(self, t):
        name_tok, *args = t.children
        name = str(name_tok)
        if name in SIZED:
            dims = self.inf.dims_of(t, args, name)
            shape = sized_shape(name, dims)
            return (E.commutation(*dims) if name == "commutation" else
                    E.Identity(shape) if name == "I" else E.ones(shape))
        if name == UNVEC:
            return E.unvec(self.build(args[0]), self.inf.unvec_dims(t, args))
        if name in AXIS_FUNCTIONS and (len(args) == 2 or name == "mean") and name not in self.inf.decls:
            axis = self.inf.axis(name, args[1]) if len(args) == 2 else None
            return along_axis(name, self.build(args[0]), axis)
        built = [self.build(a) for a in args]
        if name in ("max", "min") and name not in self.inf.decls:
            return self.extremum(name, *built)
        if name == "clip" and name not in self.inf.decls:
            return self.extremum("min", self.extremum("max", built[0], built[1]), built[2])
        if name == "log" and isinstance(built[0], E.Apply) and SOFTMAXES.get(built[0].fn):
            return log_softmax(built[0])
        if name in FUNCTIONS and (name not in self.inf.decls):
            return FUNCTIONS[name][2](built)
        if name.startswith("grad_") and name not in self.inf.decls:
            return E.grad_call(name[5:], built[0])
        return E.call(name, built[0])


def along_axis(name: str, x: E.Expr, axis: int | None) -> E.Expr:
    """The node of sum/mean/softmax/logsumexp along an axis.  Along an axis of size 1 the
    operation is trivial (a column summed across its rows is itself); along the one long
    axis of a vector it is the vector operation (sum(x, 1) is sum(x))."""
    if axis is None:                                          # mean(x), mean(X)
        return E.mul(E.power(count(x.shape[0], x.shape[1]), E.MINUS_ONE), E.apply(E.Fn.SUM, x))
    size = x.shape[axis - 1]
    other = x.shape[2 - axis]
    cols, rows = AXIS_FUNCTIONS[name]
    base = "sum" if name == "mean" else name
    if size == 1:
        out = {"sum": x, "softmax": E.ones(x.shape), "logsumexp": x}[base]
    elif other == 1:                                          # a vector along its length
        arg = x if axis == 1 else E.transpose(x)
        whole = {"sum": E.Fn.SUM, "softmax": E.Fn.SOFTMAX, "logsumexp": E.Fn.LOGSUMEXP}[base]
        out = E.apply(whole, arg)
        if base == "softmax" and axis == 2:
            out = E.transpose(out)
    else:
        out = E.apply(cols if axis == 1 else rows, x)
    if name == "mean":
        out = E.mul(E.power(count(size, 1), E.MINUS_ONE), out)
    return out


def count(r, c) -> E.Expr:
    """The number of entries r*c: a number, or the size named by a declaration (mean(x) = sum(x)/n)."""
    size = dim_product(r, c)
    if isinstance(size, int):
        return E.const(size)
    return E.mul(*(E.const(f) if isinstance(f, int) else E.Size(f) for f in dim_factors(size)))


def log_softmax(s: E.Apply) -> E.Expr:
    """log(softmax(Z, k)) = Z − logsumexp(Z, k) repeated along k: finite for any finite logits,
    where the log of an underflowed softmax would be −∞."""
    z = s.arg
    axis = SOFTMAXES[s.fn]
    if axis is None:
        return E.add(z, E.neg(E.broadcast(E.apply(E.Fn.LOGSUMEXP, z), z.shape)))
    lse = E.apply(E.Fn.LOGSUMEXP_COLS if axis == 1 else E.Fn.LOGSUMEXP_ROWS, z)
    return E.add(z, E.neg(expand(lse, z.shape)))


def expand(e: E.Expr, shape) -> E.Expr:
    """e repeated to `shape` along its axes of size 1."""
    if e.shape == tuple(shape):
        return e
    if e.is_scalar:
        return E.broadcast(e, shape)
    if e.shape[1] == 1:                              # a column against every column
        return E.mul(e, E.ones((1, shape[1])))
    return E.mul(E.ones((shape[0], 1)), e)          # a row against every row


# ---------------------------------------------------------------- entry

def _declarations(text: str, tree: Tree) -> dict[str, Decl]:
    decls: dict[str, Decl] = {}
    for stmt in tree.children:
        if isinstance(stmt, Tree) and stmt.data == "decl":
            head, kind = stmt.children
            name = str(head).split(":")[0].strip()
            span = _span(text, head)
            if name in decls:
                raise NameError_(f"{name} is declared twice", span)
            if name in RESERVED:
                raise NameError_(f"{name} is a built-in name and cannot be declared", span)
            positive = kind.data == "kind_positive"
            if positive:
                kind = kind.children[0]
                if kind.data in ("kind_positive", "kind_function", "kind_spd"):
                    raise ParseError(f"{kind.data.removeprefix('kind_')} cannot be declared positive",
                                     _span(text, kind), "positive scalar, positive vector(n), positive "
                                     "matrix(m, n), positive symmetric(n)")
            dims = []
            for d in kind.children:
                tok = d.children[0]
                dims.append(int(tok) if tok.type == "INT" else str(tok))
                if tok.type == "INT" and int(tok) == 0:
                    raise ShapeError("a dimension must be positive", _span(text, tok))
            kind_name = kind.data.removeprefix("kind_")
            if kind_name == "matrix" and dims[0] == 1 and dims[1] == 1:
                kind_name = "scalar"
            decls[name] = Decl(kind_name, tuple(dims), span, positive)
    return decls


def parse_declaration(text: str) -> tuple[str, Decl]:
    """'A: matrix(n, n)' -> ('A', Decl).  Used for --let."""
    tree = parse_tree(text)
    decls = _declarations(text, tree)
    if len(tree.children) != 1 or len(decls) != 1:
        raise ParseError("expected a declaration like 'A: matrix(m, n)'", Span.at(text, 0, len(text)),
                         "kinds: scalar, vector(n), matrix(m, n), symmetric(n), spd(n), function; "
                         "positive before scalar, vector, matrix or symmetric")
    return next(iter(decls.items()))


def parse_kind(name: str, kind: str) -> Decl:
    return parse_declaration(f"{name}: {kind}")[1]


def parse_program(text: str, let: dict[str, Decl] | None = None, scalar_output: bool = False) -> E.Program:
    """Parse and elaborate a program; `let` declarations override the text's.  With
    `scalar_output` (grad, hessian) the output's being a scalar can decide kinds."""
    tree = parse_tree(text)
    decls = {**_declarations(text, tree), **(let or {})}
    statements = [s for s in tree.children if isinstance(s, Tree) and s.data != "decl"]
    if not statements:
        raise ParseError("there is no expression to differentiate", Span.at(text, len(text)),
                         "write an expression, e.g. \"x'*A*x\"")
    inf = _Infer(text, decls)
    for i, stmt in enumerate(statements):
        if stmt.data == "defn":
            inf.definition(stmt)
        elif i != len(statements) - 1:
            raise ParseError("only the last line may be a bare expression", _span(text, stmt),
                             "give it a name: `a = ...`")
        else:
            inf.output_shape = inf.infer(stmt)
    last = statements[-1]
    if last.data == "defn":
        inf.output_shape = inf.defined[str(last.children[0])]
    output_tree = last.children[1] if last.data == "defn" else last
    inf.free["<output>"] = _span(text, output_tree)
    inf.solve_kinds(output_tree, scalar_output)
    try:
        inf.resolve()
    except ShapeError as exc:
        raise ShapeError(exc.message, exc.span or Span.at(text, 0, len(text)), exc.hint) from None
    build = _Build(inf)
    definitions = []
    output = None
    for stmt in statements:
        if stmt.data == "defn":
            sym = build.symbol(str(stmt.children[0]))
            definitions.append((sym, build.build(stmt.children[1])))
            output = sym
        else:
            output = build.build(stmt)
    inputs = {name: build.symbol(name) for name in inf.free if name != "<output>"}
    functions = frozenset(n for n, d in decls.items() if d.kind == "function")
    return E.Program(inputs, tuple(definitions), output, functions, text, dict(inf.free), frozenset(decls),
                     inf.assumed)
