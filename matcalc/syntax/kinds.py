"""Kinds from usage: kind variables solved beside the dimension variables.

Layer L2: imports shapes only.  An undeclared name's kind is not fixed when the
name is read: its shape holds dimension variables that may still be 1 (a scalar
is 1×1, a vector n×1).  Operations whose typing depends on whether an operand is
a scalar (a product, an elementwise operation, which broadcasts) are
constraints that settle as dimensions become known; `/`, an exponent and the
command (grad needs a scalar) force dimensions to 1 directly.  What no use
decides, the naming rule decides, name by name in order of first use; a default
that makes the program fail gives way to the other kind.  A default that
mattered (the other kind would also type, and the default made a scalar) is
recorded as an assumption, which the command line prints as a note.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..shapes import DimVar, ProductConflict, Unifier

MAX_BRANCHES = 256         # kind choices tried before the first failure is reported


class Conflict(Exception):
    """A constraint that cannot hold: `origin` is the tree to point at, `message` why,
    `hint` a way out (b' for a column against the wrong axis)."""

    def __init__(self, origin, message: str, hint: str | None = None):
        super().__init__(message)
        self.origin, self.message, self.hint = origin, message, hint


@dataclass
class KindVar:
    """An undeclared name: its shape (r, c); scalar when r is 1, else its array kind."""
    name: str
    default: str               # scalar | vector | matrix, by the naming rule
    shape: tuple
    reason: str                # "a Greek name", "a lower-case name", ...
    decided_by_default: bool = False

    @property
    def array_kind(self) -> str:
        return "vector" if self.shape[1] == 1 else "matrix"

    @property
    def alternative(self) -> str:
        return self.array_kind if self.default == "scalar" else "scalar"


@dataclass(frozen=True)
class Assumption:
    """A default that decided: `name` taken as `kind`, and `other` would also have typed."""
    name: str
    kind: str
    other: str
    reason: str

    @property
    def note(self) -> str:
        example = {"scalar": "scalar", "vector": "vector(n)", "matrix": "matrix(m, n)"}[self.other]
        article = "an" if self.other[0] in "aeiou" else "a"
        return (f"{self.name} is taken as a {self.kind} ({self.reason}); if it is {article} {self.other}, "
                f"--let '{self.name}: {example}'")


class Kinds:
    """The pending constraints over one Unifier, and the kind variables to decide."""

    def __init__(self, u: Unifier, describe, kinds=None, pending=None):
        self.u = u
        self.describe = describe            # (origin, a, b, what) -> (message, hint) for a conflict
        self.kinds: list[KindVar] = list(kinds or [])
        self.pending: list[tuple] = list(pending or [])     # ("bcast" | "mul" | "diag" | "vector" | "link", ...)
        self.branches = 0
        # for the notes: each elementwise pair's shapes and whether each side is a literal,
        # and the broadcasts that made a column's length equal to a matrix's row count
        self.broadcasts: list[tuple] = []
        self.column_reads: dict[int, tuple] = {}

    # ------------------------------------------------------------ dimensions
    def is_one(self, d) -> bool:
        return self.u.find(d) == 1 and not isinstance(self.u.find(d), DimVar)

    def sure(self, d) -> bool:
        """Known not to be 1: a size, a name, or a variable marked non-unit."""
        r = self.u.find(d)
        return r.nonunit if isinstance(r, DimVar) else r != 1

    def open(self, d) -> bool:
        """Still free to be 1 or not."""
        r = self.u.find(d)
        return isinstance(r, DimVar) and not r.nonunit

    def scalar(self, shape) -> bool:
        return self.is_one(shape[0]) and self.is_one(shape[1])

    def surely_array(self, shape) -> bool:
        return self.sure(shape[0]) or self.sure(shape[1])

    def _unify(self, a, b, origin, why, force: bool = False) -> None:
        """`force`: where a use decides that an undeclared name is a scalar."""
        if not self.u.unify(a, b, force=force):
            raise Conflict(origin, why)

    def default_scalar(self, d) -> bool:
        """Whether d is the size of an undeclared name the naming rule makes a scalar."""
        root = self.u.find(d)
        return any(k.default == "scalar" and self.u.find(k.shape[0]) is root for k in self.kinds)

    def mark_nonunit(self, d, origin, why) -> None:
        r = self.u.find(d)
        if isinstance(r, DimVar):
            r.nonunit = True
        elif r == 1:
            raise Conflict(origin, why)

    # ------------------------------------------------------------ names
    def name(self, name: str, default: str, reason: str) -> tuple:
        """The shape of an undeclared name: (r, 1) for a lower-case or Greek name (a scalar
        or a vector), (r, c) for an upper-case one (a scalar or a matrix)."""
        r = self.u.fresh(nonunit=False, soft=True)
        c = 1 if default != "matrix" else self.u.fresh(nonunit=False, soft=True)
        k = KindVar(name, default, (r, c), reason)
        self.kinds.append(k)
        if c != 1:
            self.pending.append(("link", k))
        return k.shape

    def decided(self, k: KindVar) -> bool:
        return not self.open(k.shape[0])

    def kind_of(self, k: KindVar) -> str:
        return "scalar" if self.is_one(k.shape[0]) else k.array_kind

    # ------------------------------------------------------------ constraints
    def broadcast(self, a, b, origin, what: str, literal=(False, False)) -> tuple:
        """The shape of an elementwise a ∘ b: per axis equal sizes, or one side 1 (a scalar,
        a row against a matrix's rows, a column against its columns, a column and a row).
        `literal`: which sides are numbers (max(0, x) broadcasts nothing a name decided)."""
        self.broadcasts.append((a, b, literal))
        return self._constrain("bcast", a, b, origin, what)

    def product(self, a, b, origin) -> tuple:
        """The shape of a*b: a scalar times anything, or a matrix product."""
        if self.scalar(a):
            return b
        if self.scalar(b):
            return a
        return self._constrain("mul", a, b, origin)

    def diag(self, shape, origin, what: str) -> tuple:
        """The shape of diag(a): a vector's diagonal matrix, or a square matrix's diagonal.
        Which one waits until a's width is known (1 or not), as a product does."""
        return self._constrain("diag", shape, origin, what)

    def vector(self, shape, origin, why) -> None:
        """a (softmax's argument) is a vector: settled when its width is known, and an
        error naming the function (not a product inside it) when that width is not 1;
        why() gives that error's message and hint."""
        entry = ("vector", shape, origin, why)
        if not self._vector(entry):
            self.pending.append(entry)

    def _vector(self, entry) -> bool:
        _, (_, c), origin, why = entry
        if self.sure(c):
            raise Conflict(origin, *why())
        return self.is_one(c)

    # how many operand shapes each constraint takes; an entry is (kind, *operands, out, origin, ...)
    OPERANDS = {"bcast": 2, "mul": 2, "diag": 1}

    def _constrain(self, kind: str, *args) -> tuple:
        """A fresh result shape and the constraint tying it to the operands: settled now
        where it can be, else pending until the sizes are known."""
        out = (self.u.fresh(nonunit=False), self.u.fresh(nonunit=False))
        k = self.OPERANDS[kind]
        entry = (kind, *args[:k], out, *args[k:])
        if not getattr(self, "_" + kind)(entry):
            self.pending.append(entry)
        return out

    def same(self, a, b, origin, what: str) -> None:
        """Equal shapes (a Frobenius product): where one side is 1 and the other an
        undeclared name's open size, the naming default decides, as for a broadcast."""
        entry = ("same", a, b, origin, what)
        if not self._same(entry):
            self.pending.append(entry)

    def _same(self, entry) -> bool:
        _, a, b, origin, what = entry
        settled = True
        for da, db in zip(a, b):
            if self.u.unify(da, db):
                continue
            if not (self.open(da) or self.open(db)):
                raise Conflict(origin, *self.describe(origin, a, b, what))
            settled = False                       # 1 against a name's open size: the kinds decide
        return settled

    def force_scalar(self, shape, origin, why: str) -> None:
        self._unify(shape[0], 1, origin, why, force=True)
        self._unify(shape[1], 1, origin, why, force=True)

    def _bcast(self, entry) -> bool:
        """Settle what can be settled; True when nothing is left pending."""
        _, a, b, out, origin, what = entry
        rows_apart = self.u.find(a[0]) is not self.u.find(b[0])
        try:
            settled = all([self._axis(a[i], b[i], out[i], origin) for i in (0, 1)])
        except Conflict:
            message, hint = self.describe(origin, a, b, what)
            raise Conflict(origin, message, hint) from None
        if rows_apart and self.u.find(a[0]) is self.u.find(b[0]):
            self.column_reads[id(origin)] = (origin, a, b)       # this broadcast chose the length
        return settled

    def column_broadcasts(self) -> list[tuple]:
        """(origin, side) for each column added to a matrix's columns whose length only this
        broadcast decided (X*W + b, b undeclared): the row b' may have been meant."""
        out = []
        for origin, a, b in self.column_reads.values():
            for side, (v, m) in (("left", (a, b)), ("right", (b, a))):
                if (self.is_one(v[1]) and self.sure(v[0]) and self.sure(m[1])
                        and self.u.find(v[0]) is self.u.find(m[0])):
                    out.append((origin, side))
        return out

    def _against_scalar(self, k: KindVar) -> bool:
        """Whether k, as an array, has a scalar that is not a literal broadcast against it."""
        return any((x is k.shape and self.scalar(y) and not y_literal)
                   for a, b, (a_literal, b_literal) in self.broadcasts
                   for x, y, y_literal in ((a, b, b_literal), (b, a, a_literal)))

    def _against_row(self, k: KindVar) -> bool:
        """Whether k, as a column, is broadcast against a row: every pair of their entries, a
        matrix (mean(C.^2, 1) + eps with eps a vector is n×m, with eps a scalar a row)."""
        return any(x is k.shape and self.is_one(y[0]) and self.sure(y[1]) and self.sure(x[0])
                   for a, b, _ in self.broadcasts for x, y in ((a, b), (b, a)))

    def _axis(self, da, db, dout, origin) -> bool:
        if self.is_one(dout):       # a scalar result (the command's, a Frobenius product's): both sides are
            self._unify(da, 1, origin, "", force=True)
            self._unify(db, 1, origin, "", force=True)
            return True
        if self.is_one(da):
            self._unify(dout, db, origin, "")
            return True
        if self.is_one(db):
            self._unify(dout, da, origin, "")
            return True
        if self.sure(da) and self.sure(db):
            self._unify(da, db, origin, "")
            self._unify(dout, da, origin, "")
            return True
        if self.u.find(da) is self.u.find(db):
            self._unify(dout, da, origin, "")
            return True
        if self.sure(da) or self.sure(db):        # the other is 1 or the same size
            self._unify(dout, da if self.sure(da) else db, origin, "")
            return False
        return False

    def _mul(self, entry) -> bool:
        _, a, b, out, origin = entry
        if self.scalar(out):
            # a 1×1 product (x/(a*b)): a column's height, a row's width is 1 either way
            # (scalar times scalar, or a 1×k row times a k×1 column)
            if self.is_one(a[1]):
                self._unify(a[0], 1, origin, "", force=True)
            if self.is_one(b[0]):
                self._unify(b[1], 1, origin, "", force=True)
        if self.scalar(a) or self.scalar(b):
            shape = b if self.scalar(a) else a        # (a 1×1 out makes the other a scalar too)
            if not (self.u.unify(out[0], shape[0], force=True) and self.u.unify(out[1], shape[1], force=True)):
                raise Conflict(origin, *self.describe(origin, a, b, "multiply"))
            return True
        if self.surely_array(a) and self.surely_array(b):
            if not (self.u.unify(a[1], b[0]) and self.u.unify(out[0], a[0]) and self.u.unify(out[1], b[1])):
                message, hint = self.describe(origin, a, b, "multiply")
                raise Conflict(origin, message, hint)
            return True
        return False

    def _diag(self, entry) -> bool:
        _, (r, c), out, origin, what = entry
        if self.is_one(c):
            self._unify(out[0], r, origin, what)
            self._unify(out[1], r, origin, what)
            return True
        if self.sure(c):
            self._unify(r, c, origin, what)
            self._unify(out[0], r, origin, what)
            self._unify(out[1], 1, origin, what)
            return True
        return False

    def _link(self, entry) -> bool:
        """An upper-case name is a scalar (both sizes 1) or a matrix (neither 1)."""
        k = entry[1]
        r, c = k.shape
        why = f"{k.name} would be neither a scalar nor a matrix"
        if self.is_one(r) or self.is_one(c):
            self._unify(r, 1, None, why, force=True)
            self._unify(c, 1, None, why, force=True)
            return True
        if self.sure(r) or self.sure(c):
            self.mark_nonunit(r, None, why)
            self.mark_nonunit(c, None, why)
            return True
        return False

    def propagate(self) -> None:
        """Settle the pending constraints to a fixpoint.  They are in the order of the text's
        operations, children first: sizes flow up (operands to results) on a forward
        pass and down (the command's scalar to the operands) on a backward one, so the
        passes alternate, and a program settles in a few passes whatever its length."""
        changed, forward = True, True
        while changed and self.pending:
            changed = False
            left = []
            for entry in (self.pending if forward else reversed(self.pending)):
                if getattr(self, "_" + entry[0])(entry):
                    changed = True
                else:
                    left.append(entry)
            self.pending = left if forward else left[::-1]
            forward = not forward

    def flush(self) -> None:
        """With every kind decided, what is still open is a size that may be 1 (vec of a
        1×1): a product of two such is a matrix product, an elementwise pair has equal sizes."""
        while self.pending:
            entry = self.pending.pop(0)
            if entry[0] == "mul":
                _, a, b, out, origin = entry
                if not (self.u.unify(a[1], b[0]) and self.u.unify(out[0], a[0]) and self.u.unify(out[1], b[1])):
                    message, hint = self.describe(origin, a, b, "multiply")
                    raise Conflict(origin, message, hint)
            elif entry[0] == "vector":
                self._unify(entry[1][1], 1, entry[2], entry[3]()[0])
            elif entry[0] == "diag":           # a width that may be 1 reads as a vector
                self._settle_products()        # unless a product (vec, kron) fixes it first
                if not self._diag(entry):
                    self._unify(entry[1][1], 1, entry[3], entry[4])
                    self._diag(entry)
            elif entry[0] == "same":
                _, a, b, origin, what = entry
                if not all(self.u.unify(da, db) for da, db in zip(a, b)):
                    raise Conflict(origin, *self.describe(origin, a, b, what))
            elif entry[0] == "bcast":
                _, a, b, out, origin, what = entry
                for i in (0, 1):
                    if not (self.is_one(a[i]) or self.is_one(b[i]) or self.u.unify(a[i], b[i])):
                        message, hint = self.describe(origin, a, b, what)
                        raise Conflict(origin, message, hint)
                if not self._bcast(entry):
                    raise Conflict(origin, *self.describe(origin, a, b, what))
            self.propagate()

    def _settle_products(self) -> None:
        try:
            self.u.settle()
        except ProductConflict as exc:
            raise Conflict(exc.origin, exc.reason) from None

    # ------------------------------------------------------------ deciding
    def decide(self, k: KindVar, kind: str) -> None:
        if kind == "scalar":
            self.force_scalar(k.shape, None, f"{k.name} cannot be a scalar")
        else:
            for d in k.shape:
                if d != 1:
                    self.mark_nonunit(d, None, f"{k.name} cannot be a {kind}")

    def solve(self, finish=None, notes: bool = True, others: bool = True) -> list[Assumption]:
        """Decide every kind variable: propagation first, then the naming default in order
        of first use, and with `others` the other kind where the default cannot type (a
        lower-case name a scalar, a Greek name a vector; an upper-case name stays a matrix
        unless a use forces it).  `finish` runs when all are decided (the rest of
        inference, which may still fail)."""
        self.propagate()
        open_kinds = [k for k in self.kinds if not self.decided(k)]
        if not open_kinds:
            self.flush()
            if finish is not None:
                finish()
            return []
        k = open_kinds[0]
        before = self.u.snapshot()
        pending = list(self.pending)
        try:
            self.decide(k, k.default)
            rest = self.solve(finish, notes, others)
        except Conflict as first:
            self.branches += 1
            if self.branches > MAX_BRANCHES or not others or k.default == "matrix":
                raise
            self.u.restore(before)
            self.pending = list(pending)
            try:
                self.decide(k, k.alternative)
                return self.solve(finish, notes, others)
            except Conflict:
                self.u.restore(before)
                self.pending = list(pending)
                raise first from None
        # a default that broadcasts a scalar against an array is never silent: the Greek
        # scalar against an array, or an array (a lower-case vector) against a scalar or a row
        broadcasting = k.default == "scalar" or (k.default == "vector" and (self._against_scalar(k)
                                                                            or self._against_row(k)))
        if notes and broadcasting and self._would_type(k, before, pending, finish):
            return [Assumption(k.name, k.default, k.alternative, k.reason)] + rest
        return rest

    def _would_type(self, k, before, pending, finish) -> bool:
        """Whether the other kind for k types too (the state after the solve is kept)."""
        after, after_pending, branches = self.u.snapshot(), list(self.pending), self.branches
        self.u.restore(before)
        self.pending = list(pending)
        try:
            self.decide(k, k.alternative)
            self.solve(finish, notes=False, others=False)
            return True
        except Conflict:
            return False
        finally:
            self.u.restore(after)
            self.pending, self.branches = after_pending, branches
