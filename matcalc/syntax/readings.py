"""Notes on readings that inference chose where the text may have meant another.

Layer L2: imports nothing of matcalc.  Elaboration (elaborate.py) asks, once every kind
is decided, which of its broadcasts and products read an undeclared name in a way the
text does not spell out, and prints each as a note beside the naming defaults of
kinds.Assumption (the JSON lists them all under "assumed"):

* a column broadcast down a matrix's columns where only the broadcast said how long the
  column is (`X*W + b`, b undeclared: b' may have been meant);
* a lower-case name made a scalar by a product with a column (`y*log(p)`, as NumPy
  writes the elementwise product `y .* log(p)`).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ColumnReading:
    """A vector broadcast down a matrix's columns (one entry per row), where only the
    broadcast said how long the vector is: `name` is its text, `fixed` the row spelling."""
    name: str
    matrix: str
    fixed: str
    kind: str = "column"
    other: str = "row"

    @property
    def note(self) -> str:
        return (f"{self.name} is taken as a column, one entry per row of {self.matrix}; "
                f"if it has one entry per column, write {self.fixed}")


@dataclass(frozen=True)
class ProductReading:
    """A lower-case name (a vector by the naming rule) that a product with a column made a
    scalar: `product` is the product's text, `fixed` the elementwise spelling."""
    name: str
    product: str
    fixed: str
    kind: str = "scalar"
    other: str = "vector"

    @property
    def note(self) -> str:
        return (f"{self.name} is taken as a scalar, since {self.product} is a product with a vector; "
                f"if {self.name} is a vector, the elementwise product is {self.fixed}")


def _cut(inf, t) -> tuple[int, int]:
    span = inf.span(t)
    return span.start, span.end


def transposed(inf, t, side: str) -> str:
    """t's text with its `side` operand transposed: X*W + b -> X*W + b'."""
    l, r = t.children[-2:]
    (t0, t1), (l0, l1), (_, r1) = _cut(inf, t), _cut(inf, l), _cut(inf, r)
    return inf.text[t0:r1] + "'" if side == "right" else inf.text[l0:l1] + "'" + inf.text[l1:t1]


def column_notes(inf) -> tuple:
    """A column broadcast whose length inference chose (X*W + b, nothing declared) is a
    reading, not a certainty: say so, with the row spelling (b')."""
    notes = []
    for t, side in inf.kinds.column_broadcasts():
        l, r = t.children[-2:]
        vector, matrix = (l, r) if side == "left" else (r, l)
        notes.append(ColumnReading(inf.src(vector), inf.src(matrix), transposed(inf, t, side)))
    return tuple(notes)


def product_notes(inf) -> tuple:
    """y*log(p) with y undeclared and log(p) a column: y can only be a scalar there, which the
    naming rule (a vector) did not decide; the NumPy spelling of y .* log(p) reads so too."""
    notes, told = [], set()
    kinds = inf.kinds
    for t, a, b in inf.products:
        for operand, mine, other in ((t.children[0], a, b), (t.children[1], b, a)):
            column = kinds.is_one(other[1]) and kinds.sure(other[0])
            if not (column and kinds.scalar(mine)):
                continue
            for name in inf.names_in(operand):
                k = inf.kind_vars.get(name)
                if k is None or k.default != "vector" or name in told or not kinds.scalar(k.shape):
                    continue
                told.add(name)
                (t0, t1), (_, l1), (r0, _) = _cut(inf, t), _cut(inf, t.children[0]), _cut(inf, t.children[1])
                between = inf.text[l1:r0]
                between = " .* " if between.strip() == "*" else between.replace("*", ".*", 1)
                fixed = inf.text[t0:l1] + between + inf.text[r0:t1]
                notes.append(ProductReading(name, inf.src(t), fixed if len(fixed) <= 60 else fixed[:57] + "..."))
    return tuple(notes)
