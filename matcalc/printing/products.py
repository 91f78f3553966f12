"""The code printer's emitters of products: matrix chains, ⊙, and the forms that are
not products at all (diag(v) beside a matrix is a broadcast, a product with ones is a
sum, (A ⊗ B) v is two products, Xᵀ diag(v) X is a Gram matrix).

Layer L2: a mixin of code._Module (which holds the other node emitters and assembles
the functions); `self` is the module printer, `f` the function being written (cse._Function).
"""
from __future__ import annotations

from .. import expr as E
from ..errors import UnsupportedError
from ..expr import Fn
from ..rules.algebra import is_nonnegative, transposed
from ..shapes import is_column, is_row, is_scalar
from .cse import _is_diag, _is_ones_matrix, _is_ones_vector, _subchains
from .targets import ADD, ATOM, MUL, UNARY


class ProductEmitters:
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

    def chain_order(self, chain) -> str:
        """How _chain multiplies: 'right' (ends in a vector: A @ (B @ x)), 'left', or 'multi_dot'."""
        matrices = all(not (is_column(x.shape) or is_row(x.shape) or _is_diag(x)) for x in chain)
        if len(chain) >= 3 and matrices and "multi_dot" in self.t.ops:
            return "multi_dot"
        return "right" if is_column(chain[-1].shape) and not is_row(chain[0].shape) else "left"

    def _chain(self, f, chain) -> tuple[str, int]:
        """A matrix chain; right-to-left when it ends in a vector (A @ (B @ x)).  A partial
        product that is a shared subexpression (uᵀv in u uᵀ v and in the value) is its name."""
        gram = self._gram(f, chain)
        if gram is not None:
            return gram
        # a product computed anyway, or shared with other chains where only diag(v) factors
        # (broadcasts, no products) are left around it
        shared = next(((i, n, p) for i, n, p in _subchains(chain) if f.computed(p) or (
            f.shared(p) and all(_is_diag(x) for x in chain[:i] + chain[i + n:]))), None)
        if shared is not None:      # the longest product computed anyway (A B in A B x and in A B): its name
            i, n, part = shared
            return self._chain(f, chain[:i] + [part] + chain[i + n:])
        ends = self._diag_ends(f, chain)
        if ends is not None:
            return ends
        order = self.chain_order(chain)
        if order == "multi_dot":
            # matrices only: the cheapest parenthesisation depends on the sizes, known at call time
            return self.op("multi_dot", xs=(", ".join(self._operand(f, x)[0] for x in chain), ATOM))
        right = order == "right"
        seq = list(reversed(chain)) if right else list(chain)
        # `alone` is the factor while the partial product is a single one (diag(v) needs to be seen)
        alone = seq[0]
        src, shape, prec = self._operand(f, alone, lazy=len(chain) > 1)
        for k in range(1, len(seq)):
            x = seq[k]
            if right:
                product = self._kron_times_vector(f, x, src, prec) if is_column(shape) else None
            else:   # vᵀ (A ⊗ B) = ((Aᵀ ⊗ Bᵀ) v)ᵀ, and a row is the same 1-D array as its column
                product = self._kron_times_vector(f, x, src, prec, transpose=True) if is_row(shape) else None
            if product is not None:
                src, prec = product
                shape = (x.shape[0], shape[1]) if right else (shape[0], x.shape[1])
            else:
                xsrc, xshape, xprec = self._operand(f, x, lazy=True)
                if right:
                    src, shape, prec = self._product(f, (x, xsrc, xshape, xprec), (alone, src, shape, prec))
                else:
                    src, shape, prec = self._product(f, (alone, src, shape, prec), (x, xsrc, xshape, xprec))
            alone = None
            if k + 1 < len(seq):
                part = E.mul(*(reversed(seq[:k + 1]) if right else seq[:k + 1]))
                if f.computed(part):
                    src, prec = f.name_as(part, src), ATOM
        return src, prec

    def _diag_ends(self, f, chain) -> tuple[str, int] | None:
        """diag(v) A B C diag(w): the matrices in their cheapest order, then the diagonals as
        broadcasts (which cost the same at either end)."""
        lo, hi = 0, len(chain)
        while lo < hi and _is_diag(chain[lo]):
            lo += 1
        while hi > lo and _is_diag(chain[hi - 1]):
            hi -= 1
        middle = chain[lo:hi]
        if not (lo or hi < len(chain)) or len(middle) < 3 or self.chain_order(middle) != "multi_dot":
            return None
        src, prec = self._chain(f, middle)
        shape = (middle[0].shape[0], middle[-1].shape[1])
        for x in reversed(chain[:lo]):
            src, shape, prec = self._product(f, (x, "", x.shape, ATOM), (None, src, shape, prec))
        for x in chain[hi:]:
            src, shape, prec = self._product(f, (None, src, shape, prec), (x, "", x.shape, ATOM))
        return src, prec

    def _kron_times_vector(self, f, x, v_src, v_prec, transpose=False) -> tuple[str, int] | None:
        """(A ⊗ B) v = vec_r(A V Bᵀ) with V = v as a matrix (row-major vec, as kron is):
        two products instead of an mp × nq matrix.  Also for a sum of c (A ⊗ B) terms,
        and with transpose, (A ⊗ B)ᵀ v = (Aᵀ ⊗ Bᵀ) v, for a row times the Kronecker product."""
        terms = x.terms if isinstance(x, E.Add) else (x,)
        parts = []
        for t in terms:
            coeff, kron = (t.factors[0], t.factors[1]) if isinstance(t, E.Mul) and len(t.factors) == 2 \
                and isinstance(t.factors[0], E.Const) else (None, t)
            if not (isinstance(kron, E.Kron) and all(not (is_column(k.shape) or is_row(k.shape) or is_scalar(k.shape))
                                                     for k in (kron.left, kron.right))):
                return None
            if transpose:
                kron = E.kron(transposed(kron.left), transposed(kron.right))
            parts.append((coeff, kron))
        try:
            shapes = [(self.dim(k.left.shape[1]), self.dim(k.right.shape[1])) for _, k in parts]
        except UnsupportedError:
            return None          # a size no input fixes: the dense form, which needs none
        v = v_src if v_prec == ATOM and v_src.isidentifier() else f.temp(v_src)
        out = []
        for (coeff, kron), (n, q) in zip(parts, shapes):
            V = self.op("unflatten", x=(v, ATOM), r=(n, ATOM), c=(q, ATOM))
            a, bt = self._operand(f, kron.left)[0], self._operand(f, transposed(kron.right))[0]
            term = self.op("flatten", x=(f"{a} @ {V[0]} @ {bt}", MUL))[0]
            out.append(term if coeff is None else f"{float(coeff.value)!r} * {term}")
        return " + ".join(out), (ATOM if len(out) == 1 and parts[0][0] is None else ADD)

    def _gram(self, f, chain) -> tuple[str, int] | None:
        """Xᵀ diag(v) X with v >= 0 as ZᵀZ, Z = sqrt(v) X: NumPy hands Zᵀ Z to BLAS syrk,
        which computes half the entries (the logistic Hessian: 1.2× faster than gemm)."""
        if not (len(chain) == 3 and _is_diag(chain[1]) and isinstance(chain[0], E.Transpose)
                and chain[0].arg == chain[2] and not (is_column(chain[2].shape) or is_row(chain[2].shape))
                and is_nonnegative(chain[1].arg)):
            return None
        root, _ = self.fill(self.t.functions[Fn.SQRT], x=f.code(chain[1].arg))
        z = f.temp(f"{root}[:, None] * {f.wrap(chain[2], MUL + 1)}")
        return f"{z}.T @ {z}", MUL

    def _operand(self, f, x, lazy: bool = False):
        if lazy and _is_diag(x):
            return "", x.shape, ATOM      # _product broadcasts diag(v): no dense matrix is made
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
        if _is_diag(lx) and _is_diag(rx):       # diag(v) diag(w) = diag(v ⊙ w)
            return self.call(f, self.t.functions[Fn.DIAG], E.hadamard(lx.arg, rx.arg))[0], shape, ATOM
        if isinstance(lx, E.Apply) and lx.fn is Fn.DIAG:
            v, vp = f.part(lx, lx.arg)
            if is_column(rshape):
                return f"{atom(v, vp)} * {par(rs, rp)}", shape, MUL
            return f"{atom(v, vp)}[:, None] * {par(rs, rp)}", shape, MUL
        if isinstance(rx, E.Apply) and rx.fn is Fn.DIAG:
            v, vp = f.part(rx, rx.arg)
            return f"{par(ls, lp)} * {atom(v, vp)}", shape, MUL
        if is_scalar(lshape) or is_scalar(rshape):
            return f"{par(ls, lp)} * {par(rs, rp)}", shape, MUL
        # ones' A and A ones: sums along an axis, not products (a 1-D array has axis 0 only)
        if _is_ones_vector(lx) and is_row(lshape) and not is_row(rshape):
            return self._scaled_sum(f, lx, (rs, rp), 0), shape, MUL
        if _is_ones_vector(rx) and is_column(rshape) and not is_column(lshape):
            return self._scaled_sum(f, rx, (ls, lp), 0 if is_row(lshape) else 1), shape, MUL
        if is_column(lshape) and is_row(rshape):
            return self.op("outer", a=(ls, lp), b=(rs, rp))[0], shape, ATOM
        # A times the constant matrix c·ones(k, n): c·(A 1) 1ᵀ, row sums repeated (m·k work, not m·k·n);
        # beside a vector the dense product is no more work than the sum
        matrices = not any(is_column(x) or is_row(x) for x in (lshape, rshape))
        if _is_ones_matrix(rx) and matrices:
            ones = (self.op("full", **self._shape_operands((rshape[1], 1)), v=(repr(1.0), ATOM))[0], ATOM)
            return self.op("outer", a=(self._scaled_sum(f, rx, (ls, lp), 1), MUL), b=ones)[0], shape, ATOM
        if _is_ones_matrix(lx) and matrices:
            ones = (self.op("full", **self._shape_operands((lshape[0], 1)), v=(repr(1.0), ATOM))[0], ATOM)
            return self.op("outer", a=ones, b=(self._scaled_sum(f, lx, (rs, rp), 0), MUL))[0], shape, ATOM
        return f"{par(ls, lp)} @ {par(rs, rp)}", shape, MUL

    @staticmethod
    def _atom(total: str, ones: E.Broadcast) -> str:
        """_scaled_sum's code as an operand of an index: a call, or c * call in parentheses."""
        return total if E.is_const(ones.value, 1) else f"({total})"

    def _scaled_sum(self, f, ones: E.Broadcast, x: tuple[str, int], axis: int) -> str:
        total = self.op("sum_axis", x=x, axis=(str(axis), ATOM))[0]
        return total if E.is_const(ones.value, 1) else f"{f.wrap(ones.value, MUL + 1)} * {total}"

    def _broadcast_operand(self, f, e: E.Expr, full: bool) -> str | None:
        """v ones' (or ones vᵀ) beside a full-size operand of + or .*: v[:, None] (v[None, :]),
        which the library broadcasts, instead of an outer product."""
        if not (full and isinstance(e, E.Mul) and not e.is_scalar):
            return None
        chain = [x for x in e.factors if not x.is_scalar]
        scalars = [x for x in e.factors if x.is_scalar]
        matrix = not (is_column(e.shape) or is_row(e.shape))
        for at_end in (True, False):
            # s A ones(k, n) beside a full operand: (s (A 1))[:, None], s times the sums, not the matrix
            ones = chain[-1] if at_end else chain[0]
            if not (matrix and len(chain) >= 2 and _is_ones_matrix(ones)):
                continue
            rest = E.mul(*(chain[:-1] if at_end else chain[1:]))
            total = self._scaled_sum(f, ones, f.code(rest), (0 if is_column(rest.shape) else 1) if at_end else 0)
            if scalars:
                total = f"{f.wrap(E.mul(*scalars), MUL + 1)} * {self._atom(total, ones)}"
            index = "[:, None]" if at_end else "[None, :]"
            return (f"({total})" if scalars else self._atom(total, ones)) + index
        if len(e.factors) != 2:
            return None
        a, b = e.factors
        if is_column(a.shape) and _is_ones_vector(b) and E.is_const(b.value, 1):
            return f"{f.wrap_part(e, a)}[:, None]"
        if is_row(b.shape) and _is_ones_vector(a) and E.is_const(a.value, 1):
            return f"{f.wrap_part(e, b)}[None, :]"
        return None

    def _full(self, parts) -> list[bool]:
        """For each part: is there another part that is not an outer product with ones?"""
        outer = [isinstance(p, E.Broadcast) or isinstance(p, E.Mul) and len(p.factors) == 2
                 and any(_is_ones_vector(x) for x in p.factors) for p in parts]
        return [any(not o for j, o in enumerate(outer) if j != i) for i in range(len(parts))]

    def _emit_Hadamard(self, f, e):
        full = self._full(e.factors)
        masks = self._masks(f, e.factors)
        return " * ".join(self._broadcast_operand(f, x, ok) or (self.op("step_mask", x=f.code(x.arg))[0] if m
                                                                else f.wrap(x, MUL + 1))
                          for x, ok, m in zip(e.factors, full, masks)), MUL

    def _masks(self, f, factors) -> list[bool]:
        """For each factor: is it step(x) written as the comparison x > 0 (a boolean array the
        product promotes, where a target has the op)?  Only beside a factor that is not a step,
        whose type the product takes, and only where step(x) is not named for other uses:
        g ⊙ step(x) is then one pass, as hand-written backprop's g * (x > 0)."""
        if "step_mask" not in self.t.ops:
            return [False] * len(factors)
        step = [isinstance(x, E.Apply) and x.fn is Fn.STEP and not f.shared(x) for x in factors]
        other = any(not (isinstance(x, E.Apply) and x.fn is Fn.STEP) for x in factors)
        return [s and other for s in step]

