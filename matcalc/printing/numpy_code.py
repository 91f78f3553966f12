"""The NumPy module of interface.md §3: value, grad_X, value_and_grad.

Layer L2: imports expr, the elementwise registry and the text printer.
Vectors are 1-D arrays and scalars floats, so vector transposes vanish,
column times row is np.outer, and diag(v) @ A is the broadcast v[:, None] * A.
A subexpression used twice is computed once, into a temporary `_tN`
(a name the input language cannot produce); nothing from the input reaches
the code except identifiers the grammar accepted, renamed where they would
collide with Python's keywords and builtins or the module's own names.
"""
from __future__ import annotations

import builtins
import keyword
from collections import Counter
from fractions import Fraction

from .. import expr as E
from ..errors import UnsupportedError
from ..expr import Fn
from ..rules.algebra import is_nonnegative
from ..rules.elementwise import ELEMENTWISE
from ..shapes import is_column, is_row, is_scalar
from .text import to_text

ADD, MUL, UNARY, POW, ATOM = range(1, 6)

# With more derivatives than this, grad_X calls value_and_grad instead of holding
# its own copy of the forward and backward passes: the module stays linear in size.
SEPARATE_UP_TO = 4

COMMUTATION = ("_commutation", '''def _commutation(m, n):
    """K with K @ A.reshape(-1, order="F") == A.T.reshape(-1, order="F") for an m x n A."""
    r, c = np.meshgrid(np.arange(m), np.arange(n), indexing="ij")
    k = np.zeros((m * n, m * n))
    k[(c + r * n).ravel(), (r + c * m).ravel()] = 1.0
    return k
''')

HELPERS = {
    Fn.SIGMOID: ("_sigmoid", '''def _sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))       # = 1/(1 + exp(-x)), without overflow
'''),
    Fn.SOFTMAX: ("_softmax", '''def _softmax(x):
    z = np.exp(x - np.max(x))
    return z / np.sum(z)
'''),
    Fn.LOGSUMEXP: ("_logsumexp", '''def _logsumexp(x):
    m = np.max(x)
    return m + np.log(np.sum(np.exp(x - m)))
'''),
}

FUNCTIONS = {
    Fn.TRACE: "np.trace({x})",
    Fn.DET: "np.linalg.det({x})",
    Fn.LOGDET: "np.linalg.slogdet({x})[1]",
    Fn.INV: "np.linalg.inv({x})",
    Fn.DIAG: "np.diag({x})",
    Fn.DIAGV: "np.diag({x})",
    Fn.SUM: "np.sum({x})",
    Fn.NORM1: "np.sum(np.abs({x}))",
    Fn.NORM2: "np.linalg.norm({x})",
    Fn.SOFTMAX: "_softmax({x})",
    Fn.LOGSUMEXP: "_logsumexp({x})",
    **{fn: entry.code for fn, entry in ELEMENTWISE.items()},
}


# Matrix functions of a 1x1 argument, which NumPy holds as a float.
SCALAR_FORMS = {Fn.TRACE: "{x}", Fn.DET: "{x}", Fn.LOGDET: "np.log({x})", Fn.INV: "1.0 / {x}",
                Fn.SUM: "{x}", Fn.DIAGV: "{x}", Fn.VEC: "{x}"}
SCALAR_FORMS_PREC = {Fn.TRACE: POW, Fn.DET: POW, Fn.LOGDET: ATOM, Fn.INV: MUL, Fn.SUM: POW,
                     Fn.DIAGV: POW, Fn.VEC: POW}


def python_names(names, reserved) -> dict[str, str]:
    """Input name -> a safe Python identifier (trailing underscores on clashes)."""
    taken = set(reserved)
    out = {}
    for name in names:
        candidate = name
        while (keyword.iskeyword(candidate) or keyword.issoftkeyword(candidate)
               or candidate in dir(builtins) or candidate in taken):
            candidate += "_"
        taken.add(candidate)
        out[name] = candidate
    return out


def _is_diag(e: E.Expr) -> bool:
    return isinstance(e, E.Apply) and e.fn is Fn.DIAG


def _trivial(e: E.Expr) -> bool:
    return isinstance(e, (E.Symbol, E.Const)) or (isinstance(e, E.Transpose) and isinstance(e.arg, E.Symbol))


class _Function:
    """Straight-line code for one generated function, with shared subexpressions."""

    def __init__(self, module: "_Module", roots: list[E.Expr]):
        self.m = module
        self.lines: list[str] = []
        self.names: dict[E.Expr, str] = {}
        self.uses: Counter = Counter()
        seen = set()
        for root in roots:
            self.uses[root] += 1
            for n in E.walk(root):
                if n in seen:
                    continue
                seen.add(n)
                for k in n.children():
                    self.uses[k] += 1

    def assign(self, name: str, e: E.Expr, body_of: E.Expr | None = None):
        self.lines.append(f"{name} = {self.code(e)[0]}")
        self.names[e] = name
        if body_of is not None:
            self.names[body_of] = name

    def code(self, e: E.Expr) -> tuple[str, int]:
        """(source, precedence) of e, emitting temporaries for shared parts."""
        if e in self.names:
            return self.names[e], ATOM
        src, prec = self.m.emit(self, e)
        if self.uses[e] > 1 and not _trivial(e):
            name = f"_t{self.m.next_temp()}"
            self.lines.append(f"{name} = {src}")
            self.names[e] = name
            return name, ATOM
        return src, prec

    def named(self, e: E.Expr) -> str:
        """e as a name: a temporary unless it is one already (for code that uses it twice)."""
        src, prec = self.code(e)
        if prec == ATOM and src.isidentifier():
            return src
        name = f"_t{self.m.next_temp()}"
        self.lines.append(f"{name} = {src}")
        self.names[e] = name
        return name

    def wrap(self, e: E.Expr, level: int) -> str:
        src, prec = self.code(e)
        return f"({src})" if prec < level else src


class _Module:
    def __init__(self, d):
        self.d = d
        program = d.program
        self.program = program
        self.wrt = list(d.results)
        own = {"np", "value", "value_and_grad"} | {f"{d.command}_{w}" for w in self.wrt}
        inputs = list(program.inputs) + sorted(program.functions) + \
            [f"grad_{f}" for f in sorted(program.functions)]
        local = [s.name for s, _ in program.definitions] + [g.name for g, _ in d.adjoints]
        self.py = python_names(inputs + local, own)
        self.params = [self.py[n] for n in inputs]
        self.helpers: set[Fn] = set()
        self.dims = self._dimension_sources()
        self._temps = 0

    def next_temp(self) -> int:
        self._temps += 1
        return self._temps

    def _dimension_sources(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for name, sym in self.program.inputs.items():
            py = self.py[name]
            if is_scalar(sym.shape):
                continue
            if is_column(sym.shape) or is_row(sym.shape):
                d = sym.shape[0] if is_column(sym.shape) else sym.shape[1]
                out.setdefault(str(d), f"{py}.shape[0]")
            else:
                out.setdefault(str(sym.shape[0]), f"{py}.shape[0]")
                out.setdefault(str(sym.shape[1]), f"{py}.shape[1]")
        return out

    def dim(self, d) -> str:
        if isinstance(d, int):
            return str(d)
        parts = []
        for p in str(d).split("*"):
            if p.isdigit():
                parts.append(p)
            elif p in self.dims:
                parts.append(self.dims[p])
            else:
                raise UnsupportedError(f"the size {p} is not fixed by any input, so code cannot be generated")
        return " * ".join(parts)

    def shape_code(self, shape) -> str:
        if is_column(shape):
            return self.dim(shape[0])
        if is_row(shape):
            return self.dim(shape[1])
        return f"({self.dim(shape[0])}, {self.dim(shape[1])})"

    # ---------------------------------------------------- node emitters
    def emit(self, f: _Function, e: E.Expr) -> tuple[str, int]:
        method = getattr(self, "_emit_" + type(e).__name__, None)
        if method is None:
            raise TypeError(f"the NumPy printer has no rule for {type(e).__name__}")
        return method(f, e)

    def _emit_Symbol(self, f, e):
        return self.py[e.name], ATOM

    def _emit_Const(self, f, e):
        v = float(e.value)
        return repr(v), (ATOM if v >= 0 else UNARY)

    def _emit_Identity(self, f, e):
        return f"np.eye({self.dim(e.shape[0])})", ATOM

    def _emit_Commutation(self, f, e):
        self.helpers.add("commutation")
        return f"_commutation({self.dim(e.m)}, {self.dim(e.n)})", ATOM

    def _emit_Zero(self, f, e):
        return f"np.zeros({self.shape_code(e.shape)})", ATOM

    def _emit_Broadcast(self, f, e):
        return f"np.full({self.shape_code(e.shape)}, {f.code(e.value)[0]})", ATOM

    def _emit_Add(self, f, e):
        out = []
        for i, t in enumerate(e.terms):
            if isinstance(t, E.Broadcast):
                t = t.value                       # NumPy broadcasts a scalar term
            if i and isinstance(t, E.Mul) and isinstance(t.factors[0], E.Const) and t.factors[0].value < 0:
                out.append(" - " + f.wrap(E.mul(E.Const(-t.factors[0].value), *t.factors[1:]), MUL + 1))
            elif i and isinstance(t, E.Const) and t.value < 0:
                out.append(f" - {repr(float(-t.value))}")
            else:
                out.append((" + " if i else "") + f.wrap(t, ADD + (1 if i else 0)))
        return "".join(out), ADD

    def _emit_Mul(self, f, e):
        """Scalar factors times the matrix chain; a sign in front."""
        coeff = 1.0
        parts: list[tuple[str, int]] = []
        for x in e.factors:
            if isinstance(x, E.Const):
                coeff *= float(x.value)
            elif x.is_scalar:
                parts.append(f.code(x))
        chain = [x for x in e.factors if not x.is_scalar]
        if chain:
            parts.append(self._chain(f, chain))
        if abs(coeff) != 1.0 or not parts:
            parts.insert(0, (repr(abs(coeff)), ATOM))
        if len(parts) == 1:
            src, prec = parts[0]
        else:   # left-associative: only the first operand may itself be a product
            src = " * ".join(p if pr > MUL or (i == 0 and pr == MUL) else f"({p})"
                             for i, (p, pr) in enumerate(parts))
            prec = MUL
        if coeff < 0:   # -(X.T @ v), never (-X.T) @ v: negate the small result, not the matrix
            return "-" + (src if prec == ATOM else f"({src})"), UNARY
        return src, prec

    def _chain(self, f, chain) -> tuple[str, int]:
        """A matrix chain; right-to-left when it ends in a vector (A @ (B @ x))."""
        right_first = is_column(chain[-1].shape) and not is_row(chain[0].shape)
        gram = self._gram(f, chain)
        if gram is not None:
            return gram
        matrices = all(not (is_column(x.shape) or is_row(x.shape) or _is_diag(x)) for x in chain)
        if len(chain) >= 3 and matrices:
            # matrices only: the cheapest parenthesisation depends on the sizes, known at call time
            return "np.linalg.multi_dot([" + ", ".join(self._operand(f, x)[0] for x in chain) + "])", ATOM
        # `alone` is the factor while the partial product is a single one (diag(v) needs to be seen)
        if right_first:
            alone = chain[-1]
            src, shape, prec = self._operand(f, alone)
            for x in reversed(chain[:-1]):
                lsrc, lshape, lprec = self._operand(f, x)
                src, shape, prec = self._product(f, (x, lsrc, lshape, lprec), (alone, src, shape, prec))
                alone = None
            return src, prec
        alone = chain[0]
        src, shape, prec = self._operand(f, alone)
        for x in chain[1:]:
            rsrc, rshape, rprec = self._operand(f, x)
            src, shape, prec = self._product(f, (alone, src, shape, prec), (x, rsrc, rshape, rprec))
            alone = None
        return src, prec

    def _gram(self, f, chain) -> tuple[str, int] | None:
        """Xᵀ diag(v) X with v >= 0 as ZᵀZ, Z = sqrt(v) X: NumPy hands Zᵀ Z to BLAS syrk,
        which computes half the entries (the logistic Hessian: 1.2× faster than gemm)."""
        if not (len(chain) == 3 and _is_diag(chain[1]) and isinstance(chain[0], E.Transpose)
                and chain[0].arg == chain[2] and not (is_column(chain[2].shape) or is_row(chain[2].shape))
                and is_nonnegative(chain[1].arg)):
            return None
        v, vp = f.code(chain[1].arg)
        z = f"_t{self.next_temp()}"
        f.lines.append(f"{z} = np.sqrt({v})[:, None] * {f.wrap(chain[2], MUL + 1)}")
        return f"{z}.T @ {z}", MUL

    def _operand(self, f, x):
        if isinstance(x, E.Transpose) and not (is_scalar(x.shape) or is_column(x.shape) or is_row(x.shape)):
            return f.wrap(x.arg, ATOM) + ".T", x.shape, ATOM
        if isinstance(x, E.Transpose):
            src, prec = f.code(x.arg)
            return src, x.shape, prec
        src, prec = f.code(x)
        return src, x.shape, prec

    def _product(self, f, left, right):
        lx, ls, lshape, lp = left
        rx, rs, rshape, rp = right
        shape = (lshape[0], rshape[1])
        par = lambda s, p: s if p >= MUL + 1 else f"({s})"
        # diag(v) next to something: a broadcast instead of a dense diagonal
        atom = lambda s, p: s if p >= ATOM else f"({s})"
        if isinstance(lx, E.Apply) and lx.fn is Fn.DIAG:
            v, vp = f.code(lx.arg)
            if is_column(rshape):
                return f"{atom(v, vp)} * {par(rs, rp)}", shape, MUL
            return f"{atom(v, vp)}[:, None] * {par(rs, rp)}", shape, MUL
        if isinstance(rx, E.Apply) and rx.fn is Fn.DIAG:
            v, vp = f.code(rx.arg)
            return f"{par(ls, lp)} * {atom(v, vp)}", shape, MUL
        if is_scalar(lshape) or is_scalar(rshape):
            return f"{par(ls, lp)} * {par(rs, rp)}", shape, MUL
        if is_column(lshape) and is_row(rshape):
            return f"np.outer({ls}, {rs})", shape, ATOM
        return f"{par(ls, lp)} @ {par(rs, rp)}", shape, MUL

    def _emit_Hadamard(self, f, e):
        return " * ".join(f.wrap(x, MUL + 1) for x in e.factors), MUL

    def _emit_Kron(self, f, e):
        def two_d(x):
            src = f.code(x)[0]
            if is_column(x.shape):
                return f"({src})[:, None]"
            if is_row(x.shape):
                return f"({src})[None, :]"
            return src
        src = f"np.kron({two_d(e.left)}, {two_d(e.right)})"
        if is_column(e.shape) or is_row(e.shape):
            src += ".reshape(-1)"
        return src, ATOM

    def _emit_Frobenius(self, f, e):
        return f"np.vdot({f.code(e.left)[0]}, {f.code(e.right)[0]})", ATOM

    def _emit_Transpose(self, f, e):
        if is_scalar(e.shape) or is_column(e.shape) or is_row(e.shape):
            return f.code(e.arg)
        return f.wrap(e.arg, ATOM) + ".T", ATOM

    def _emit_Power(self, f, e):
        if E.is_const(e.exponent, 2) and isinstance(e.base, E.Apply) and e.base.fn is Fn.NORM2:
            x = f.named(e.base.arg)           # ‖x‖² without the square root and its rounding
            return f"np.vdot({x}, {x})", ATOM
        if E.is_const(e.exponent, -1):
            return f"1.0 / {f.wrap(e.base, POW)}", MUL
        if E.is_const(e.exponent, Fraction(1, 2)):
            return f"np.sqrt({f.code(e.base)[0]})", ATOM
        return f"{f.wrap(e.base, ATOM)} ** {self._exponent(f, e.exponent)}", POW

    def _exponent(self, f, p: E.Expr) -> str:
        """Integer exponents print as ints: x ** 2 takes NumPy's fast square path."""
        if isinstance(p, E.Const) and float(p.value).is_integer() and p.value >= 0:
            return str(int(p.value))
        return f.wrap(p, POW)

    def _emit_MatPow(self, f, e):
        return f"np.linalg.matrix_power({f.code(e.base)[0]}, {e.k})", ATOM

    def _emit_Apply(self, f, e):
        if e.fn in HELPERS:
            self.helpers.add(e.fn)
        if e.arg.is_scalar and e.fn in SCALAR_FORMS:     # tr(x'*A*x): a float in NumPy
            return SCALAR_FORMS[e.fn].format(x=f.wrap(e.arg, POW)), SCALAR_FORMS_PREC[e.fn]
        if e.fn is Fn.VEC:
            src = f.code(e.arg)[0]
            if is_column(e.arg.shape) or is_row(e.arg.shape):
                return src, ATOM
            return f"{f.wrap(e.arg, ATOM)}.reshape(-1, order='F')", ATOM
        return FUNCTIONS[e.fn].format(x=f.code(e.arg)[0]), ATOM

    def _emit_Call(self, f, e):
        return f"{self.py[e.name]}({f.code(e.arg)[0]})", ATOM

    def _emit_GradCall(self, f, e):
        return f"{self.py['grad_' + e.name]}({f.code(e.arg)[0]})", ATOM

    # ---------------------------------------------------- functions
    def function(self, name: str, doc: str, results: list[E.Expr]) -> str:
        program = self.program
        defs = _needed(list(program.definitions) + list(self.d.adjoints), results)
        fn = _Function(self, [b for _, b in defs] + results)
        for sym, body in defs:
            fn.assign(self.py[sym.name], body, body_of=sym)
        out = [fn.code(r)[0] for r in results]
        body = [f'    """{doc}"""'] + [f"    {line}" for line in fn.lines]
        body.append(f"    return {out[0] if len(out) == 1 else ', '.join(out)}")
        return f"def {name}({', '.join(self.params)}):\n" + "\n".join(body) + "\n"


    def delegate(self, name: str, doc: str, index: int) -> str:
        """A derivative taken from value_and_grad: one copy of the backward pass in the module."""
        return (f"def {name}({', '.join(self.params)}):\n    \"\"\"{doc}\n\n    (Computes every derivative: "
                f"call value_and_grad to have them all at once.)\"\"\"\n"
                f"    return value_and_grad({', '.join(self.params)})[{index}]\n")


def _needed(definitions, roots) -> list[tuple[E.Symbol, E.Expr]]:
    """The definitions the roots depend on, in their original order."""
    wanted: set[str] = set()
    for r in roots:
        wanted |= set(E.symbols(r))
    keep = []
    for sym, body in reversed(definitions):
        if sym.name in wanted:
            keep.append((sym, body))
            wanted |= set(E.symbols(body))
    return list(reversed(keep))


def numpy_module(d) -> str:
    """The generated module's source."""
    m = _Module(d)
    value = d.program.output
    sections = [m.function("value", "The value of the expression.", [value])]
    what = {"grad": "∂L/∂{}", "jacobian": "∂vec(f)/∂vec({})", "hessian": "∂²L/∂vec({})²"}[d.command]
    delegate = len(d.results) > SEPARATE_UP_TO
    for i, (name, g) in enumerate(d.results.items()):
        text = to_text(g)
        comment = f"{d.command}_{name} = {text}" if len(text) < 200 else "see the derivation"
        if delegate:
            sections.append(m.delegate(f"{d.command}_{name}", f"{what.format(name)}: {comment}", i + 1))
        else:
            sections.append(m.function(f"{d.command}_{name}", f"{what.format(name)}: {comment}", [g]))
    sections.append(m.function("value_and_grad", "The value and every gradient (" +
                               ", ".join(d.results) + "), sharing the forward pass.",
                               [value] + list(d.results.values())))
    shapes = []
    for name, sym in d.program.inputs.items():
        shape = sym.shape
        kind = "scalar" if is_scalar(shape) else (f"vector({shape[0]})" if is_column(shape)
                                                  else f"matrix({shape[0]}, {shape[1]})")
        shapes.append(f"    {m.py[name]}: {kind}{' (symmetric)' if sym.symmetric else ''}")
    header = ['"""Generated by matcalc.', "", "Inputs (vectors are 1-D arrays, scalars floats):", *shapes]
    for fname in sorted(d.program.functions):
        header.append(f"    {m.py[fname]}, {m.py['grad_' + fname]}: a scalar function of one argument and its gradient")
    header += ['"""', "import numpy as np", ""]
    helpers = [COMMUTATION[1] if h == "commutation" else HELPERS[h][1]
               for h in sorted(m.helpers, key=lambda h: h if isinstance(h, str) else h.text)]
    return "\n".join(header) + "\n" + "\n\n".join(helpers + sections)
