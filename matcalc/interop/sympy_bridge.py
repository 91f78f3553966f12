"""SymPy matrix expressions to matcalc Programs, and matcalc results back to SymPy.

Layer L4 (beside derive): imports expr, shapes, errors, the names the syntax
reserves, and SymPy.  The API imports this module only when from_sympy or
to_sympy is called, so `import matcalc` never loads SymPy.

From SymPy.  A SymPy matrix expression is already typed and shaped, so the IR
is built directly with expr's smart constructors (the ones the elaborator's
second pass uses) instead of printing text and parsing it again: inference
would have to rediscover sizes that SymPy states outright, and a bare `I` in
`kron(I, X)` would get a size of its own.  Each converted node's shape is
compared with SymPy's, so a rule that builds the wrong node fails at once.
The elaborator's checks on names are made here: a name must match the
grammar's NAME and must not be a built-in (`tr`, `I`, `ones`, ...); `rename=`
maps other SymPy names to valid ones.  Kinds follow from shapes:

- an n×1 MatrixSymbol is a vector, a 1×n one a matrix with one row;
- a 1×1 MatrixSymbol is a scalar: matcalc's scalar *is* the 1×1 shape (the
  language reads `matrix(1, 1)` as `scalar`), so to_sympy gives it back as a
  Symbol;
- a SymPy Symbol is a scalar; dimensions are positive integers, Symbols, or
  products of those (as kron makes).

The Program's `source` holds declarations and the expression as text, for
display; its spans are empty (there is no text to point into).

To SymPy.  In matcalc a scalar is a 1×1 matrix; in SymPy it is another type.
A 1×1 product such as x'*A*x stays a 1×1 MatMul where a matrix may stand, and
becomes the scalar Trace(x.T*A*x) where SymPy wants a scalar (a coefficient,
a function's argument, a term beside a Symbol); from_sympy reads the trace of
a 1×1 back as the 1×1 itself.  Named intermediates (a program's definitions, a
derivation's adjoints g_a) are inlined.  matcalc functions with no SymPy
matrix counterpart (elementwise functions of arrays, softmax, vec, norm1, the
commutation matrix, opaque functions) raise UnsupportedError.
"""
from __future__ import annotations

import operator
import re
import unicodedata
from fractions import Fraction
from functools import reduce
from typing import Callable

import sympy as sp
from sympy.matrices.expressions.diagonal import DiagMatrix, DiagonalOf

from .. import expr as E
from ..errors import LimitError, NameError_, ShapeError, UnsupportedError
from ..expr import Fn
from ..shapes import SCALAR, Dim, dim_product, is_column, is_row, is_scalar, show_shape
from ..syntax.elaborate import MAX_MATRIX_POWER, RESERVED

NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")      # NAME in grammar/matcalc.lark

# Functions that mean the same on both sides.  matcalc's are elementwise, so
# only their scalar uses have a SymPy counterpart (SymPy's exp(X) of a matrix
# is the matrix exponential).  Fn -> SymPy function name.
SCALAR_FUNCTIONS: dict[Fn, str] = {
    Fn.EXP: "exp", Fn.LOG: "log", Fn.SIN: "sin", Fn.COS: "cos", Fn.TAN: "tan",
    Fn.TANH: "tanh", Fn.SQRT: "sqrt", Fn.ABS: "Abs", Fn.SIGN: "sign",
}


# ======================================================================
# From SymPy
# ======================================================================

class _FromSympy:
    """One conversion: SymPy nodes to IR (memoised), collecting the inputs."""

    def __init__(self, rename: dict[str, str]):
        self.rename = rename
        self.inputs: dict[str, E.Symbol] = {}
        self.dimensions: set[str] = set()
        self.memo: dict = {}

    def __call__(self, e) -> E.Expr:
        out = self.memo.get(e)
        if out is None:
            out = self.memo[e] = _from_rule(e)(self, e)
            expected = self.shape(e) if e.is_Matrix else SCALAR
            if out.shape != expected:      # a rule built the wrong node: say which
                raise ShapeError(f"converting SymPy's {type(e).__name__} {e}: matcalc made "
                                 f"{show_shape(out.shape)}, SymPy has {show_shape(expected)}")
        return out

    def args(self, e) -> list[E.Expr]:
        return [self(a) for a in e.args]

    # -- names, dimensions, symbols
    def name(self, name: str, what: str) -> str:
        name = self.rename.get(name, name)
        if NAME.fullmatch(name) and name not in RESERVED:
            return name
        suggestion = re.sub(r"[^A-Za-z0-9_]", "_", "".join(map(_greek_word, name)))
        if not suggestion[:1].isalpha():
            suggestion = "v" + suggestion
        if suggestion in RESERVED:
            suggestion += "_"
        why = "is a built-in name" if name in RESERVED else "is not a name in matcalc's language"
        raise NameError_(f"the SymPy {what} {name!r} {why}", hint=f"from_sympy(..., rename={{{name!r}: "
                         f"{suggestion!r}}}); names are [A-Za-z][A-Za-z0-9_]*")

    def dim(self, d) -> Dim:
        if d.is_Integer and d > 0:
            return int(d)
        if d.is_Symbol:
            name = self.name(d.name, "dimension")
            self.dimensions.add(name)
            return name
        if d.is_Mul:
            return reduce(dim_product, (self.dim(f) for f in d.args))
        if d.is_Pow and d.exp.is_Integer and d.exp > 0:      # kron(A, A) is n**2 × n**2
            return reduce(dim_product, [self.dim(d.base)] * int(d.exp))
        raise UnsupportedError(f"the dimension {d} is not a positive integer, a name or a product of those")

    def shape(self, e) -> tuple[Dim, Dim]:
        return (self.dim(sp.sympify(e.shape[0])), self.dim(sp.sympify(e.shape[1])))

    def input(self, name: str, shape, kind: str) -> E.Symbol:
        sym = E.Symbol(name, shape, kind)
        known = self.inputs.setdefault(name, sym)
        if known != sym:
            raise NameError_(f"{name} stands for two things: {show_shape(known.shape)} and {show_shape(shape)}")
        return known


def _greek_word(ch: str) -> str:
    """α -> alpha, Σ -> Sigma: the language spells Greek letters as words."""
    m = re.fullmatch(r"GREEK (SMALL|CAPITAL) LETTER (\w+)", unicodedata.name(ch, ""))
    if not m:
        return ch
    word = m.group(2).lower().replace("lamda", "lambda")      # Unicode's spelling
    return word if m.group(1) == "SMALL" else word.capitalize()


def _matrix_symbol(c: _FromSympy, e) -> E.Expr:
    shape = c.shape(e)
    kind = "scalar" if is_scalar(shape) else "vector" if is_column(shape) else "matrix"
    return c.input(c.name(e.name, "MatrixSymbol"), shape, kind)


def _scalar_symbol(c: _FromSympy, e) -> E.Expr:
    return c.input(c.name(e.name, "Symbol"), SCALAR, "scalar")


def _number(c: _FromSympy, e) -> E.Expr:
    if e.is_Rational:
        return E.const(Fraction(int(e.p), int(e.q)))
    value = float(e)
    if value != value or value in (float("inf"), float("-inf")):
        raise UnsupportedError(f"the SymPy number {e} is not finite")
    return E.const(value)


def _mat_power(c: _FromSympy, e) -> E.Expr:
    base, k = c(e.base), e.exp
    if not k.is_Integer:
        raise UnsupportedError(f"SymPy's MatPow {e} needs an integer exponent")
    k = int(k)
    if base.is_scalar:
        return E.power(base, E.const(k))
    if abs(k) > MAX_MATRIX_POWER:
        raise LimitError(f"matrix powers are limited to |k| <= {MAX_MATRIX_POWER}, not {k}")
    if k == 0:
        return E.Identity(base.shape)
    if k < 0:
        base, k = E.apply(Fn.INV, base), -k
    return base if k == 1 else E.matpow(base, k)


def _inverse(c: _FromSympy, e) -> E.Expr:
    arg = c(e.arg)
    return E.power(arg, E.MINUS_ONE) if arg.is_scalar else E.apply(Fn.INV, arg)


def _of_square(fn: Fn) -> Callable:
    """tr and det: of a 1×1 (x'*A*x, or a to_sympy scalar) they are the value itself."""
    def rule(c: _FromSympy, e) -> E.Expr:
        arg = c(e.arg)
        return arg if arg.is_scalar else E.apply(fn, arg)
    return rule


def _log(c: _FromSympy, e) -> E.Expr:
    (arg,), = [e.args]
    if type(arg).__name__ == "Determinant" and c(arg.arg).shape != SCALAR:
        return E.apply(Fn.LOGDET, c(arg.arg))       # log det X is logdet(X)
    return _scalar_function(Fn.LOG)(c, e)


def _scalar_function(fn: Fn) -> Callable:
    def rule(c: _FromSympy, e) -> E.Expr:
        (arg,) = c.args(e)
        if not arg.is_scalar:
            raise UnsupportedError(f"SymPy's {type(e).__name__} of a {show_shape(arg.shape)} is a matrix "
                                   f"function; matcalc's {fn.text} is elementwise")
        return E.apply(fn, arg)
    return rule


def _hadamard(c: _FromSympy, e) -> E.Expr:
    args = c.args(e)
    return E.mul(*args) if all(a.is_scalar for a in args) else E.hadamard(*args)


def _diag_matrix(c: _FromSympy, e) -> E.Expr:
    v = c(e.args[0])
    if v.is_scalar:
        return v
    return E.apply(Fn.DIAG, E.transpose(v) if is_row(v.shape) else v)


def _sized(make: Callable) -> Callable:
    return lambda c, e: make(c.shape(e))


# SymPy class name -> rule(converter, node).  A node takes the rule of the
# first class in its MRO listed here (Integer and Half find Rational, Inverse
# finds Inverse before MatPow).  Scalar Mul/Add/Pow share the matrix rules:
# matcalc's constructors treat a 1×1 factor as a scalar.
FROM_SYMPY: dict[str, Callable[[_FromSympy, object], E.Expr]] = {
    "MatrixSymbol": _matrix_symbol,
    "Symbol": _scalar_symbol,
    "Rational": _number,
    "Float": _number,
    "NumberSymbol": _number,                       # pi, E: as floats
    "MatMul": lambda c, e: E.mul(*c.args(e)),
    "Mul": lambda c, e: E.mul(*c.args(e)),
    "MatAdd": lambda c, e: E.add(*c.args(e)),
    "Add": lambda c, e: E.add(*c.args(e)),
    "Pow": lambda c, e: E.power(*c.args(e)),
    "Transpose": lambda c, e: E.transpose(c(e.arg)),
    "Inverse": _inverse,
    "MatPow": _mat_power,
    "Trace": _of_square(Fn.TRACE),
    "Determinant": _of_square(Fn.DET),
    "log": _log,
    **{name: _scalar_function(fn) for fn, name in SCALAR_FUNCTIONS.items()
       if fn not in (Fn.LOG, Fn.SQRT)},
    "HadamardProduct": _hadamard,
    "HadamardPower": lambda c, e: E.power(c(e.base), c(e.exp)),
    "KroneckerProduct": lambda c, e: reduce(E.kron, c.args(e)),
    "Identity": _sized(lambda s: E.ONE if is_scalar(s) else E.Identity(s)),
    "ZeroMatrix": _sized(E.zero),
    "OneMatrix": _sized(E.ones),
    "DiagMatrix": _diag_matrix,
    "DiagonalOf": lambda c, e: E.apply(Fn.DIAGV, c(e.args[0])),
}
# sqrt is not a SymPy class (sqrt(x) is Pow(x, 1/2)): Pow converts it.


def _from_rule(e) -> Callable:
    for cls in type(e).__mro__:
        rule = FROM_SYMPY.get(cls.__name__)
        if rule is not None:
            return rule
    raise UnsupportedError(f"SymPy's {type(e).__name__} ({e}) has no matcalc counterpart",
                           hint="supported: " + ", ".join(sorted(FROM_SYMPY)))


def _declaration(sym: E.Symbol) -> str:
    r, c = sym.shape
    kind = {"scalar": "scalar", "vector": f"vector({r})"}.get(sym.kind, f"matrix({r}, {c})")
    return f"{sym.name}: {kind}"


def from_sympy(e, rename: dict[str, str] | None = None) -> E.Program:
    """The Program of a SymPy matrix (or scalar) expression: see the module docstring."""
    if not isinstance(e, sp.Basic):
        e = sp.sympify(e, strict=True)       # numbers only: strings are not parsed
    convert = _FromSympy(dict(rename or {}))
    try:
        output = convert(e)
    except RecursionError:
        raise LimitError("the SymPy expression is nested too deeply to convert") from None
    sizes = sorted(name for name, sym in convert.inputs.items()
                   if sym.kind == "scalar" and name in convert.dimensions)
    if sizes:      # SymPy writes det(αX) as αⁿ det(X); matcalc's sizes are not values
        raise UnsupportedError(f"the Symbol {sizes[0]} is used both as a value and as a dimension",
                               hint="matcalc has no scalars tied to sizes")
    source = "\n".join([_declaration(s) for s in convert.inputs.values()] + [str(output)])
    return E.Program(dict(convert.inputs), (), output, frozenset(), source)


# ======================================================================
# To SymPy
# ======================================================================

def _is_matrix(s) -> bool:
    return bool(getattr(s, "is_Matrix", False))


class _ToSympy:
    """One conversion: IR to SymPy (memoised), inlining named intermediates."""

    def __init__(self, symbols: dict[str, object], definitions: dict[str, E.Expr]):
        self.symbols = symbols
        self.definitions = definitions
        self.memo: dict[E.Expr, object] = {}

    def __call__(self, e: E.Expr):
        for n in E.walk(e):
            if n not in self.memo:
                rule = TO_SYMPY.get(type(n))
                if rule is None:
                    raise UnsupportedError(f"{_what(n)} has no SymPy matrix counterpart")
                self.memo[n] = rule(self, n, [self.memo[k] for k in n.children()])
        return self.memo[e]

    def dim(self, d: Dim):
        if isinstance(d, int):
            return sp.Integer(d)
        return sp.Mul(*(sp.Integer(p) if p.isdigit() else self.symbols.get(p) or sp.Symbol(p)
                        for p in str(d).split("*")))

    @staticmethod
    def scalar(s):
        """A SymPy scalar for a matcalc scalar: the trace of a 1×1 matrix expression."""
        return sp.Trace(s) if _is_matrix(s) else s


def _what(n: E.Expr) -> str:
    name = n.fn.text if isinstance(n, E.Apply) else str(n).split("(")[0] if isinstance(
        n, (E.FrechetAdj, E.FrechetJac, E.Unvec, E.KronAdjLeft, E.KronAdjRight)) else type(n).__name__
    return f"matcalc's {name} (in {n})"


def _symbol(c: _ToSympy, n: E.Symbol, kids):
    if n.kind == "defined" and n.name in c.definitions:
        return c(c.definitions[n.name])
    if n.name in c.symbols:
        return c.symbols[n.name]
    if n.is_scalar:
        return sp.Symbol(n.name)
    return sp.MatrixSymbol(n.name, c.dim(n.shape[0]), c.dim(n.shape[1]))


def _const(c: _ToSympy, n: E.Const, kids):
    v = n.value
    return sp.Float(v) if isinstance(v, float) else sp.Rational(v.numerator, v.denominator)


def _add(c: _ToSympy, n: E.Add, kids):
    if n.is_scalar and not all(_is_matrix(k) for k in kids):
        return sp.Add(*map(c.scalar, kids))
    return sp.MatAdd(*kids)


def _mul(c: _ToSympy, n: E.Mul, kids):
    """Scalar factors multiply as SymPy scalars; the rest is the matrix chain, in order.
    MatMul, not `*`: `*` runs doit(), which rewrites det(αX) as αⁿ det(X) and so
    turns a dimension into a value."""
    chain = [k for f, k in zip(n.factors, kids) if not f.is_scalar]
    coefficient = sp.Mul(*(c.scalar(k) for f, k in zip(n.factors, kids) if f.is_scalar))
    if not chain:
        return coefficient
    return sp.MatMul(*([] if coefficient == 1 else [coefficient]), *chain)


def _hadamard(c: _ToSympy, n: E.Hadamard, kids):
    """Factors share one shape: of 1×1 factors the product is a scalar one."""
    return sp.Mul(*map(c.scalar, kids)) if n.is_scalar else sp.HadamardProduct(*kids)


def _kron(c: _ToSympy, n: E.Kron, kids):
    """kron(α, X) = αX: SymPy's KroneckerProduct takes matrices only."""
    left, right = kids
    return sp.KroneckerProduct(left, right) if _is_matrix(left) and _is_matrix(right) else left * right


def _power(c: _ToSympy, n: E.Power, kids):
    base, exponent = kids
    if n.base.is_scalar:
        return c.scalar(base) ** c.scalar(exponent)
    return sp.HadamardPower(base, c.scalar(exponent))


def _frobenius(c: _ToSympy, n: E.Frobenius, kids):
    left, right = kids
    if not _is_matrix(left):
        return left * c.scalar(right)
    return sp.Trace(left.T * right)


def _apply(c: _ToSympy, n: E.Apply, kids):
    (arg,) = kids
    if n.fn in SCALAR_FUNCTIONS:
        if not n.arg.is_scalar:
            raise UnsupportedError(f"matcalc's elementwise {n.fn.text} of a {show_shape(n.arg.shape)} (in {n}) has "
                               f"no SymPy matrix counterpart (SymPy's {n.fn.text}(X) is a matrix function)")
        return getattr(sp, SCALAR_FUNCTIONS[n.fn])(c.scalar(arg))
    rule = APPLY.get(n.fn)
    if rule is None:
        raise UnsupportedError(f"{_what(n)} has no SymPy matrix counterpart")
    return rule(c, n, arg)


def _sum(c: _ToSympy, n: E.Apply, arg):
    """sum(X) = 1ᵀ X 1, as a scalar."""
    if not _is_matrix(arg):
        return arg
    r, k = arg.shape
    left = [] if r == 1 else [sp.OneMatrix(1, r)]
    right = [] if k == 1 else [sp.OneMatrix(k, 1)]
    return c.scalar(reduce(operator.mul, left + [arg] + right))


def _norm2(c: _ToSympy, n: E.Apply, arg):
    """‖X‖₂ = sqrt(tr(XᵀX)): the Frobenius norm of a matrix, the 2-norm of a vector."""
    return sp.sqrt(sp.Trace(arg.T * arg)) if _is_matrix(arg) else sp.Abs(arg)


def _matrix_fn(sympy_op: Callable, of_scalar: Callable) -> Callable:
    """tr, det, inv, logdet: SymPy's versions take matrices; of a scalar they are of_scalar."""
    return lambda c, n, arg: sympy_op(arg) if _is_matrix(arg) else of_scalar(arg)


# Fn -> rule(converter, node, converted argument), for the non-elementwise functions.
APPLY: dict[Fn, Callable] = {
    Fn.TRACE: _matrix_fn(sp.Trace, lambda s: s),
    Fn.DET: _matrix_fn(sp.Determinant, lambda s: s),
    Fn.LOGDET: _matrix_fn(lambda m: sp.log(sp.Determinant(m)), sp.log),
    Fn.INV: _matrix_fn(sp.Inverse, lambda s: 1 / s),
    Fn.DIAG: _matrix_fn(DiagMatrix, lambda s: s),
    Fn.DIAGV: _matrix_fn(DiagonalOf, lambda s: s),
    Fn.SUM: _sum,
    Fn.NORM2: _norm2,
}


def _sized_to(make: Callable) -> Callable:
    return lambda c, n, kids: make(c.dim(n.shape[0]), c.dim(n.shape[1]))


# IR node class -> rule(converter, node, converted children).  Missing here
# (Commutation, Call, GradCall, Differential): no SymPy matrix counterpart.
TO_SYMPY: dict[type, Callable] = {
    E.Symbol: _symbol,
    E.Const: _const,
    E.Identity: lambda c, n, kids: sp.Identity(c.dim(n.shape[0])),
    E.Zero: _sized_to(sp.ZeroMatrix),
    E.Broadcast: lambda c, n, kids: c.scalar(kids[0]) * _sized_to(sp.OneMatrix)(c, n, kids),
    E.Add: _add,
    E.Mul: _mul,
    E.Hadamard: _hadamard,
    E.Kron: _kron,
    E.Frobenius: _frobenius,
    E.Transpose: lambda c, n, kids: kids[0].T if _is_matrix(kids[0]) else kids[0],
    E.Power: _power,
    E.MatPow: lambda c, n, kids: kids[0] ** n.k,
    E.Apply: _apply,
    E.Solve: lambda c, n, kids: sp.MatMul(sp.Inverse(kids[0]), kids[1]),     # solve(A, B) = A⁻¹B
}


def to_sympy(e: E.Expr | E.Program, symbols: dict[str, object] | None = None,
             definitions: dict[str, E.Expr] | None = None):
    """The SymPy form of an expression, or of a Program's output (its definitions inlined).

    `symbols` maps names (of inputs or dimensions) to the SymPy objects to use,
    e.g. the MatrixSymbols an expression came from; by default a matrix is a
    MatrixSymbol, a scalar a Symbol and a dimension a Symbol of its name.
    """
    if isinstance(e, E.Program):
        definitions = {**{s.name: b for s, b in e.definitions}, **(definitions or {})}
        e = e.output
    return _ToSympy(dict(symbols or {}), dict(definitions or {}))(e)


def derivation_to_sympy(d, symbols: dict[str, object] | None = None):
    """A derivation's result in SymPy: one expression, or {name: expression} for several wrt."""
    definitions = {s.name: b for s, b in list(d.program.definitions) + list(d.adjoints)}
    convert = _ToSympy(dict(symbols or {}), definitions)
    results = {name: convert(r) for name, r in d.results.items()}
    return results[d.wrt[0]] if len(d.wrt) == 1 else results
