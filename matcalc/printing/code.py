"""The generated module of docs/reference.md §3 (value, grad_X, value_and_grad), for any target.

Layer L2: imports expr, the target tables and the text printer.  What a
target spells differently (NumPy, JAX, PyTorch, the array API) is data in
targets.py; this printer holds what they share.  The emitters of products
(matrix chains, ⊙, diag(v) and ones as broadcasts and sums) are products.py's, a
mixin of _Module; which subexpressions and products are shared is cse.py's and plans.py's.
Vectors are 1-D arrays and scalars 0-d, so vector transposes vanish,
column times row is an outer product, and diag(v) @ A is the broadcast v[:, None] * A.
A subexpression used twice is computed once, into a temporary `_tN`
(a name the input language cannot produce); nothing from the input reaches
the code except identifiers the grammar accepted, renamed where they would
collide with Python's keywords and builtins or the module's own names.
"""
from __future__ import annotations

import builtins
import keyword
from fractions import Fraction

from .. import expr as E
from ..errors import UnsupportedError
from ..expr import Fn
from ..rules.algebra import is_spd, is_symmetric
from ..shapes import is_column, is_row, is_scalar
from . import cse
from .cse import _Function, _is_diag
from .targets import ADD, ATOM, MUL, POW, UNARY, Form, Target, form
from .numerical import with_solves
from .products import ProductEmitters
from .text import to_text

# With more derivatives than this, grad_X calls value_and_grad instead of holding
# its own copy of the forward and backward passes, passing its inputs through
# (not listing them again): the module stays linear in size.
SEPARATE_UP_TO = 4

# Matrix functions of a 1x1 argument, which the generated code holds as a scalar
# (LOGDET becomes the target's log).
SCALAR_FORMS = {Fn.TRACE: "{x}", Fn.DET: "{x}", Fn.LOGDET: None, Fn.INV: "1.0 / {x}",
                Fn.SUM: "{x}", Fn.DIAGV: "{x}", Fn.VEC: "{x}"}
# Functions of the symmetric part ½(S + Sᵀ) (eigh and cholesky read one triangle only).
SYMMETRIC_PART = {Fn.EIGVALS, Fn.EIGMAX, Fn.EIGMIN, Fn.EIGVECS, Fn.EIGVEC_MAX, Fn.EIGVEC_MIN, Fn.CHOL}
# What the generated code assumes where a matrix function appears (docs/matrix-functions.md).
ASSUMPTIONS = {
    Fn.EIGMAX: "eigmax: the largest eigenvalue is simple (distinct from the next)",
    Fn.EIGMIN: "eigmin: the smallest eigenvalue is simple",
    Fn.EIGVEC_MAX: "eigvec_max: the largest eigenvalue is simple",
    Fn.EIGVEC_MIN: "eigvec_min: the smallest eigenvalue is simple",
    Fn.EIGVECS: "eigvecs: distinct eigenvalues",
    Fn.POLAR: "polar (the gradient of norm_nuc): X has full rank",
    Fn.PINV: "pinv: its argument has full rank (the rank is constant nearby)",
    Fn.CHOL: "chol: its argument is symmetric positive definite",
    Fn.LOGM: "logm: no eigenvalue on the closed negative real axis",
    Fn.SQRTM: "sqrtm: no eigenvalue on the closed negative real axis",
    E.Solve: "solve(A, B): A is invertible",
}
# Functions that share their work: logsumexp and softmax (of a vector, or along an axis)
# exponentiate the same.  fn -> (its partner, the op computing both, fn's index in its result)
PAIRED = {Fn.LOGSUMEXP: (Fn.SOFTMAX, "logsumexp_softmax", 0),
          Fn.SOFTMAX: (Fn.LOGSUMEXP, "logsumexp_softmax", 1),
          Fn.LOGSUMEXP_COLS: (Fn.SOFTMAX_COLS, "logsumexp_softmax_cols", 0),
          Fn.SOFTMAX_COLS: (Fn.LOGSUMEXP_COLS, "logsumexp_softmax_cols", 1),
          Fn.LOGSUMEXP_ROWS: (Fn.SOFTMAX_ROWS, "logsumexp_softmax_rows", 0),
          Fn.SOFTMAX_ROWS: (Fn.LOGSUMEXP_ROWS, "logsumexp_softmax_rows", 1)}
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


class _Module(ProductEmitters):
    def __init__(self, d, target: Target):
        self.d = d
        self.t = target
        self.keys = cse.Keys()
        program = d.program
        self.program = program
        self.wrt = list(d.results)
        own = set(target.bound) | {"value", "value_and_grad", "hvp", "jvp", "value_and_jvp"} | \
            {f"{d.command}_{w}" for w in self.wrt} | {f"jvp_{w}" for w in d.wrt}
        inputs = list(program.inputs) + sorted(program.functions) + \
            [f"grad_{f}" for f in sorted(program.functions)]
        local = [s.name for s, _ in program.definitions] + [g.name for g, _ in list(d.adjoints) + list(d.hvp_named)]
        self.py = python_names(inputs + local, own)
        self.params = [self.py[n] for n in inputs]
        # the directions dX of a jvp or hvp: parameters beside the inputs, named apart from every name
        directions = python_names([f"d{w}" for w in d.wrt], own | set(self.py.values()))
        self.direction = {w: directions[f"d{w}"] for w in d.wrt}
        self.dims = self._dimension_sources()
        self._temps = 0
        self.constants: list[str] = []      # module-level lines: the plans _cheapest chooses from
        # Constants (eye, zeros) and scalar inputs take the dtype and device of an array
        # input: a variable differentiated by first, which is floating (labels y may be ints).
        arrays = [self.py[n] for n in sorted(program.inputs, key=lambda n: n not in d.results)
                  if not is_scalar(program.inputs[n].shape)]
        like = target.like.format(r=arrays[0]) if target.like and arrays else target.like_without_arrays
        self.like = ", " + like if like else ""

    def fill(self, template: str | Form, **operands: tuple[str, int]) -> tuple[str, int]:
        """A target template with its operands' (source, precedence) filled in."""
        t = form(template)
        args = {k: src if prec >= t.operand else f"({src})" for k, (src, prec) in operands.items()}
        return t.text.format(like=self.like, **args), t.prec

    def op(self, key: str, **operands: tuple[str, int]) -> tuple[str, int]:
        return self.fill(self.t.ops[key], **operands)

    def prologue(self) -> list[str]:
        """The target's first lines of every function: its namespace, scalar inputs as arrays."""
        lines = []
        inputs = [self.py[n] for n in self.program.inputs]
        if self.t.namespace_line and inputs:
            lines.append(self.t.namespace_line.format(arrays=", ".join(inputs)))
        if self.t.scalar_line:
            lines += [self.t.scalar_line.format(s=self.py[n], like=self.like)
                      for n, s in self.program.inputs.items() if is_scalar(s.shape)]
        return lines

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
            raise TypeError(f"the code printer has no rule for {type(e).__name__}")
        return method(f, e)

    def _emit_Symbol(self, f, e):
        return self.py[e.name], ATOM

    def _emit_Differential(self, f, e):
        return self.direction[e.target.name], ATOM        # dX: the direction, a parameter

    def _emit_Const(self, f, e):
        v = float(e.value)
        return repr(v), (ATOM if v >= 0 else UNARY)

    def _emit_Size(self, f, e):
        code = self.dim(e.dim)
        return code, (ATOM if code.isidentifier() or code.endswith("]") else MUL)

    def _emit_Identity(self, f, e):
        return self.op("eye", n=(self.dim(e.shape[0]), ATOM))

    def _emit_Commutation(self, f, e):
        return self.op("commutation", m=(self.dim(e.m), ATOM), n=(self.dim(e.n), ATOM))

    def _emit_Zero(self, f, e):
        return self.op("zeros", **self._shape_operands(e.shape))

    def _emit_Broadcast(self, f, e):
        return self.op("full", **self._shape_operands(e.shape), v=f.code(e.value))

    def _shape_operands(self, shape) -> dict[str, tuple[str, int]]:
        """{shape}: an int for a vector, a tuple otherwise; {dims}: always a tuple."""
        code = self.shape_code(shape)
        return {"shape": (code, ATOM), "dims": (code if code.startswith("(") else f"({code},)", ATOM)}

    def _emit_Add(self, f, e):
        out = []
        for i, (t, full) in enumerate(zip(e.terms, self._full(e.terms))):
            if isinstance(t, E.Broadcast):
                t = t.value                       # NumPy broadcasts a scalar term
            sign = " + " if i else ""
            if i and isinstance(t, E.Mul) and isinstance(t.factors[0], E.Const) and t.factors[0].value < 0:
                t, sign = E.mul(E.Const(-t.factors[0].value), *t.factors[1:]), " - "
            elif i and isinstance(t, E.Const) and t.value < 0:
                t, sign = E.Const(-t.value), " - "
            out.append(sign + (self._broadcast_operand(f, t, full) or f.wrap(t, ADD + (1 if i else 0))))
        return "".join(out), ADD

    def _emit_Kron(self, f, e):
        def two_d(x):
            src = f.code(x)[0]
            if is_column(x.shape):
                return f"({src})[:, None]"
            if is_row(x.shape):
                return f"({src})[None, :]"
            return src
        kron = self.op("kron", a=(two_d(e.left), ATOM), b=(two_d(e.right), ATOM))
        if is_column(e.shape) or is_row(e.shape):
            return self.op("flatten", x=kron)
        return kron

    def _emit_Frobenius(self, f, e):
        return self.op("frobenius", a=f.code(e.left), b=f.code(e.right))

    def _emit_Transpose(self, f, e):
        if is_scalar(e.shape) or is_column(e.shape) or is_row(e.shape):
            return f.code(e.arg)
        return f.wrap(e.arg, ATOM) + ".T", ATOM

    def _emit_Power(self, f, e):
        if E.is_const(e.exponent, 2) and isinstance(e.base, E.Apply) and e.base.fn is Fn.NORM2:
            x = f.named(e.base.arg)           # ‖x‖² without the square root and its rounding
            return self.op("frobenius", a=(x, ATOM), b=(x, ATOM))
        if E.is_const(e.exponent, -1):
            return f"1.0 / {f.wrap(e.base, POW)}", MUL
        if E.is_const(e.exponent, Fraction(1, 2)):
            return self.call(f, self.t.functions[Fn.SQRT], e.base)
        return f"{f.wrap(e.base, ATOM)} ** {self._exponent(f, e.exponent)}", POW

    def _exponent(self, f, p: E.Expr) -> str:
        """Integer exponents print as ints: x ** 2 takes NumPy's fast square path."""
        if isinstance(p, E.Const) and float(p.value).is_integer() and p.value >= 0:
            return str(int(p.value))
        return f.wrap(p, POW)

    def _emit_MatPow(self, f, e):
        return self.op("matrix_power", x=f.code(e.base), k=(str(e.k), ATOM))

    def _emit_Apply(self, f, e):
        diagonal = self._diagonal_of_product(f, e)
        if diagonal is not None:
            return diagonal
        partner, both, index = PAIRED.get(e.fn, (None, None, None))
        if partner is not None and f.needs(E.apply(partner, e.arg)):
            return f"{f.pair(e.arg, both)}[{index}]", ATOM
        if e.arg.is_scalar and e.fn in SCALAR_FORMS:     # tr(x'*A*x): a scalar already
            if SCALAR_FORMS[e.fn] is None:
                return self.call(f, self.t.functions[Fn.LOG], e.arg, POW)[0], SCALAR_FORMS_PREC[e.fn]
            return SCALAR_FORMS[e.fn].format(x=f.wrap(e.arg, POW)), SCALAR_FORMS_PREC[e.fn]
        if e.fn is Fn.LOGDET and is_spd(e.arg):
            return self.op("logdet_spd", x=f.code(e.arg))
        if e.fn in E.FRECHET_ADJ and is_symmetric(e.arg):       # expm, logm, sqrtm of a symmetric matrix
            return self.op("spectral", f=(repr(e.fn.text[:-1]), ATOM), x=f.code(e.arg))
        if e.fn in SYMMETRIC_PART and not is_symmetric(e.arg):
            half = E.mul(E.Const(Fraction(1, 2)), E.add(e.arg, E.transpose(e.arg)))
            return self.call(f, self.t.functions[e.fn], half)
        if e.fn is Fn.VEC:
            if is_column(e.arg.shape) or is_row(e.arg.shape):       # the same 1-D array, precedence kept
                return f.code(e.arg)
            return self.op("vec", x=f.code(e.arg))
        return self.call(f, self.t.functions[e.fn], e.arg)

    def _diagonal_of_product(self, f, e) -> tuple[str, int] | None:
        """diag(L R) = Σⱼ (L ⊙ Rᵀ)ᵢⱼ and tr(L R) = Lᵀ : R: the diagonal or its sum without the
        rest of the product (n² work, not n³)."""
        if not (e.fn in (Fn.DIAGV, Fn.TRACE) and isinstance(e.arg, E.Mul)):
            return None
        chain = [x for x in e.arg.factors if not x.is_scalar]
        scale = [x for x in e.arg.factors if x.is_scalar]
        if len(chain) < 2 or any(_is_diag(x) for x in chain):
            return None
        left, right = E.mul(*chain[:-1]), chain[-1]
        if any(is_column(x.shape) or is_row(x.shape) for x in (left, right)):
            return None
        if e.fn is Fn.TRACE:        # in the orientation with fewer transposed operands (a copy each in vdot)
            total = min((self.op("frobenius", a=f.code(a), b=f.code(b)) for a, b in
                         ((E.transpose(left), right), (left, E.transpose(right)))), key=lambda c: c[0].count(".T"))
        else:
            pairs = f"{f.wrap(left, MUL + 1)} * {f.wrap(E.transpose(right), MUL + 1)}"
            total = self.op("sum_axis", x=(pairs, MUL), axis=("1", ATOM))
        if not scale:
            return total
        return f"{f.wrap(E.mul(*scale), MUL)} * {total[0]}", MUL

    def call(self, f, template, arg: E.Expr, level: int = 0) -> tuple[str, int]:
        """A function's template applied to arg (parenthesised below `level`).  An argument
        the template uses twice is computed once; a constant one becomes an array where
        the target's functions take only arrays (torch.exp(2.0) is a TypeError)."""
        twice = form(template).text.count("{x}") > 1
        if self.t.constant and not E.symbols(arg):
            x = self.fill(self.t.constant, v=f.code(arg))
            return self.fill(template, x=(f.temp(x[0]), ATOM) if twice else x)
        if twice:
            return self.fill(template, x=(f.named(arg), ATOM))
        return self.fill(template, x=(f.wrap(arg, level), ATOM) if level else f.code(arg))

    def _emit_Solve(self, f, e):
        return self.op("solve", a=f.code(e.a), b=f.code(e.b))

    def _emit_FrechetAdj(self, f, e):
        if is_symmetric(e.x):
            return self.op("loewner_adj", f=(repr(e.fn.text[:-1]), ATOM), x=f.code(e.x), g=f.code(e.g))
        return self.op("frechet_adj", f=(f"_{e.fn.text}", ATOM), x=f.code(e.x), g=f.code(e.g))

    def _emit_FrechetJac(self, f, e):
        return self.op("frechet_jac", f=(f"_{e.fn.text}", ATOM), x=f.code(e.x))

    def _emit_KronAdjLeft(self, f, e):
        """Σᵢⱼ Aᵢⱼ Gᵢⱼ as one tensordot over G reshaped to (p, m, q, n): no p·m × q·n product."""
        return self._kron_adj(f, e, "kron_adj_left", e.a.shape, a=f.code(e.a), g=f.code(e.g))

    def _emit_KronAdjRight(self, f, e):
        return self._kron_adj(f, e, "kron_adj_right", e.b.shape, g=f.code(e.g), b=f.code(e.b))

    def _kron_adj(self, f, e, key, factor_shape, **operands):
        sizes = {k: (self.dim(d), ATOM) for k, d in zip("pqmn", (*factor_shape, *e.shape))}
        out = self.op(key, **operands, **sizes)
        return self.op("flatten", x=out) if is_column(e.shape) or is_row(e.shape) else out

    def _emit_Unvec(self, f, e):
        if is_row(e.shape):                 # a row is the same 1-D array as its vec
            return f.code(e.arg)
        return self.op("unvec", x=f.code(e.arg), r=(self.dim(e.shape[0]), ATOM), c=(self.dim(e.shape[1]), ATOM))

    def _emit_Call(self, f, e):
        return f"{self.py[e.name]}({f.code(e.arg)[0]})", ATOM

    def _emit_GradCall(self, f, e):
        return f"{self.py['grad_' + e.name]}({f.code(e.arg)[0]})", ATOM

    # ---------------------------------------------------- functions
    def function(self, name: str, doc: str, results: list[E.Expr], directions: list[str] = (),
                 as_tuple: bool = False) -> str:
        """def name(inputs..., dX, ...): straight-line code for the results; `directions`
        names the variables whose directions dX it takes (a jvp or hvp)."""
        program = self.program
        defs = _needed(list(program.definitions) + list(self.d.adjoints) + list(self.d.hvp_named), results)
        memo: dict = {}           # solves for inverses that are only multiplied (numerical.py)
        defs = [(sym, with_solves(body, memo)) for sym, body in defs]
        results = [with_solves(r, memo) for r in results]
        placed = cse.place_scalars([b for _, b in defs] + results, self.keys)
        defs, results = [(s, b) for (s, _), b in zip(defs, placed)], placed[len(defs):]
        roots = [b for _, b in defs] + results
        first = _Function(self, roots)
        variants = [first] + [_Function(self, roots, plan=i, plans=(first.search, first.choices))
                              for i in range(1, len(first.choices))]
        choose = self._plan_choice(first) if len(variants) > 1 else None
        if choose is None:
            variants = variants[:1]
        body = [f'    """{doc}"""'] + [f"    {line}" for line in self.prologue()]
        if choose is not None:          # products to form once depend on the sizes: chosen at run time
            body.append(f"    _plan = {choose}")
        for i, fn in enumerate(variants):
            branch = i + 1 < len(variants)
            if branch:
                body.append(f"    if _plan == {i}:")
            body += [("        " if branch else "    ") + line for line in self._body(fn, defs, results, as_tuple)]
        params = self.params + [self.direction[w] for w in directions]
        return f"def {name}({', '.join(params)}):\n" + "\n".join(body) + "\n"

    def _body(self, fn: _Function, defs, results, as_tuple: bool) -> list[str]:
        """One plan's straight-line code, ending in its return."""
        for sym, body in defs:
            fn.assign(self.py[sym.name], body, body_of=sym)
        # a result with no input in it (the gradient 1 of alpha + ...) is still the library's array
        out = [self.fill(self.t.constant, v=fn.code(r))[0] if self.t.constant and r.is_scalar and not E.symbols(r)
               else fn.code(r)[0] for r in results]
        returned = out[0] if len(out) == 1 and not as_tuple else ", ".join(out) + ("," if len(out) == 1 else "")
        return fn.finished(fn.lines + [f"return {returned}"])

    def _plan_choice(self, fn: _Function) -> str | None:
        """_cheapest over each plan's chains (those alike in every plan left out) at the
        arrays' sizes; None where a size is fixed by no input.  The chains are a module
        constant, their sizes indices into the tuple of sizes the call passes."""
        layouts = [fn.search.layout(c) for c in fn.choices]
        alike = {i for i, chain in enumerate(layouts[0]) if all(i < len(lo) and lo[i] == chain for lo in layouts)}
        plans = [[chain for i, chain in enumerate(lo) if i not in alike] for lo in layouts]
        dims = list(dict.fromkeys(d for plan in plans for chain in plan for r, c, _ in chain for d in (r, c)))
        try:
            sizes = [self.dim(d) for d in dims]
        except UnsupportedError:
            return None
        at = {d: i for i, d in enumerate(dims)}
        table = f"_PLANS_{len(self.constants) + 1}"
        self.constants.append(f"{table} = {tuple(tuple(tuple((at[r], at[c], int(diag)) for r, c, diag in chain) for chain in plan) for plan in plans)!r}")
        return f"_cheapest({table}, ({', '.join(sizes)},))"

    def delegate(self, name: str, doc: str, index: int) -> str:
        """A derivative taken from value_and_grad: one copy of the backward pass in the module,
        and a few lines per derivative whatever the number of inputs (value_and_grad's
        parameters, passed through), so the module grows linearly with the derivatives."""
        return (f"def {name}(*inputs, **by_name):\n    \"\"\"{doc}\n\n    Takes the inputs of value_and_grad "
                f"(by position or by name) and computes every derivative: call value_and_grad to have "
                f"them all at once.\"\"\"\n"
                f"    return value_and_grad(*inputs, **by_name)[{index}]\n")


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


def _is_scalar_variable(d, name: str) -> bool:
    variable = d.program.inputs.get(name) or next((s for s, _ in d.program.definitions if s.name == name), None)
    return variable is not None and variable.is_scalar


def _comment(label: str, g: E.Expr) -> str:
    text = to_text(g)
    return f"{label} = {text}" if len(text) < 200 else "see the derivation"


def _derivative_sections(m: _Module, d) -> list[str]:
    """grad_X / jacobian_X / hessian_X (and hessian_X_Y blocks), value_and_grad, and for a
    Hessian hvp: the differential of the gradient along every direction, never the matrix."""
    what = {"grad": "∂L/∂{}", "jacobian": "∂vec(f)/∂vec({})", "hessian": "∂²L/∂vec({})²"}[d.command]
    delegate = len(d.results) > SEPARATE_UP_TO
    sections = []
    for i, (name, g) in enumerate(d.results.items()):
        comment = _comment(f"{d.command}_{name}", g)
        pair = d.blocks.get(name)
        label = ("∂f/∂{}" if d.command == "jacobian" and _is_scalar_variable(d, name) else what).format(name)
        if pair:
            label = f"∂²L/∂vec({pair[0]})∂vec({pair[1]})"
        if delegate:
            sections.append(m.delegate(f"{d.command}_{name}", f"{label}: {comment}", i + 1))
        else:
            sections.append(m.function(f"{d.command}_{name}", f"{label}: {comment}", [g]))
    sections.append(m.function("value_and_grad", "The value and every gradient (" +
                               ", ".join(d.results) + "), sharing the forward pass.",
                               [d.program.output] + list(d.results.values())))
    if d.hvp:
        directions = ", ".join(m.direction[w] for w in d.wrt)
        sections.append(m.function("hvp", f"The Hessian times the direction ({directions}): a tuple shaped like "
                                   f"({', '.join(d.wrt)}), the differential of the gradient; never forms the Hessian.",
                                   [d.hvp[w] for w in d.wrt], d.wrt, as_tuple=True))
    return sections


def _jvp_sections(m: _Module, d) -> list[str]:
    """jvp_X(..., dX) per variable: df along dX; with several, jvp(..., dX, dY) the total; and value_and_jvp."""
    sections = [m.function(f"jvp_{name}", f"df along d{name}: {_comment(f'jvp_{name}', g)}", [g], [name])
                for name, g in d.results.items()]
    if len(d.results) > 1:
        sections.append(m.function("jvp", f"The total differential df: {_comment('jvp', d.total)}", [d.total], d.wrt))
    sections.append(m.function("value_and_jvp", "The value and the total differential df, sharing the forward pass.",
                               [d.program.output, d.total], d.wrt))
    return sections


def module_source(d, target: Target) -> str:
    """The generated module's source for one target."""
    m = _Module(d, target)
    value = d.program.output
    sections = [m.function("value", "The value of the expression.", [value])]
    if d.command == "differential":
        sections += _jvp_sections(m, d)
    else:
        sections += _derivative_sections(m, d)
    shapes = []
    for name, sym in d.program.inputs.items():
        shape = sym.shape
        kind = "scalar" if is_scalar(shape) else (f"vector({shape[0]})" if is_column(shape)
                                                  else f"matrix({shape[0]}, {shape[1]})")
        shapes.append(f"    {m.py[name]}: {kind}{' (symmetric)' if sym.symmetric else ''}")
    header = ['"""Generated by matcalc.', "", f"Inputs ({target.inputs_doc}):", *shapes]
    for fname in sorted(d.program.functions):
        header.append(f"    {m.py[fname]}, {m.py['grad_' + fname]}: a scalar function of one argument and its gradient")
    used = {n.fn if isinstance(n, E.Apply) else type(n) for r in [value, *d.results.values()]
            for n in E.walk(r)}
    used |= {n.fn for _, body in d.program.definitions for n in E.walk(body) if isinstance(n, E.Apply)}
    notes = [note for key, note in ASSUMPTIONS.items() if key in used]
    if notes:
        header += ["", "Assumes:", *(f"    {note}" for note in notes)]
    header += ['"""', *target.imports, ""]
    # the helpers the code calls (read off the code: a discarded operand's source called none)
    helpers = [target.helper_source(h) for h in sorted(target.helpers_used("\n".join(sections)))]
    constants = ["# The matrix chains of each plan _cheapest picks from: (rows, columns, diagonal),\n"
                 "# each size an index into the sizes the call passes.\n" + "\n".join(m.constants) + "\n"] \
        if m.constants else []
    return "\n".join(header) + "\n" + "\n\n".join(helpers + constants + sections)
