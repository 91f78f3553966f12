"""Common subexpressions of generated code, recognised up to transposition and scale.

Layer L2: imports expr, rules.algebra (for symmetry) and the target precedences.
The code printer (code.py) writes each function's body with `_Function` (below),
which shares subexpressions by the keys of this module:

* `Keys.key(e)`: a key (rep, c, t) with e = c · rep (transposed when t), where rep is
  one representative of e's class: e, eᵀ, −e and 2e share it.  The canonical forms of
  the derivation move transposes inwards ((AB)ᵀ = BᵀAᵀ, f(A)ᵀ = f(Aᵀ) for elementwise
  f), so tanh(W₁X) and tanh(XᵀW₁ᵀ) both occur; with one key the code computes one of
  them and transposes the name (a view, no work).
* `place_scalars(exprs)`: each constant factor c of a product moved to where scaling
  costs least: into the operand that other products want scaled by the same c (so it
  is scaled once: 2·r for both gradients of ‖W₂ tanh(W₁X) − Y‖²), else into a vector
  operand of a matrix product, else left where it is.  `2.0 * (A @ B)` is a full pass
  over the result; `A @ (2.0 * v)` is a pass over a vector.
"""
from __future__ import annotations

import re
from collections import Counter
from fractions import Fraction

from .. import expr as E
from ..expr import Fn
from ..rules.algebra import is_symmetric
from ..shapes import is_column, is_row
from .plans import Plans, expected_entries
from .targets import ATOM, MUL, UNARY

_TEMP = re.compile(r"\b_t\d+\b")

# Functions with f(Xᵀ) = f(X): the argument is taken in one orientation (diag(AB) = diag(BᵀAᵀ)).
ORIENTATION_FREE = {E.Fn.TRACE, E.Fn.DIAGV, E.Fn.SUM, E.Fn.NORM1, E.Fn.NORM2, E.Fn.DET, E.Fn.LOGDET,
                    E.Fn.NORM_NUC, E.Fn.NORM_SPEC, E.Fn.EIGVALS, E.Fn.EIGMAX, E.Fn.EIGMIN}

# Nodes through which a transpose moves inwards, and through which a scalar factor
# moves to one operand (c(AB) = (cA)B, c(A⊙B) = (cA)⊙B, (cA)ᵀ = cAᵀ).
_SCALE_THROUGH = (E.Mul, E.Hadamard, E.Transpose)


def _is_vector_or_scalar(e: E.Expr) -> bool:
    return e.is_scalar or is_column(e.shape) or is_row(e.shape)


def _transposes(e: E.Expr) -> int:
    return sum(isinstance(n, E.Transpose) for n in E.walk(e))


class Keys:
    """Keys of subexpressions modulo transposition and a constant factor (memoised)."""

    def __init__(self):
        self._pushed: dict[tuple[E.Expr, bool], E.Expr] = {}
        self._keys: dict[E.Expr, tuple[E.Expr, Fraction | float, bool]] = {}
        self._order: dict[E.Expr, tuple] = {}

    def pushed(self, e: E.Expr, t: bool = False) -> E.Expr:
        """e (or eᵀ when t) with every transpose moved as far in as it goes."""
        memo = self._pushed.get((e, t))
        if memo is not None:
            return memo
        out = self._push(e, t)
        self._pushed[(e, t)] = out
        return out

    def _push(self, e: E.Expr, t: bool) -> E.Expr:
        if isinstance(e, E.Transpose):
            return self.pushed(e.arg, not t)
        if isinstance(e, E.Apply) and e.fn in ORIENTATION_FREE and not e.arg.is_scalar:
            arg = min(self.pushed(e.arg), self.pushed(e.arg, True), key=self._rank)
            e = e if arg == e.arg else E.apply(e.fn, arg)
            return E.transpose(e) if t and not e.is_scalar else e
        if e.is_scalar:      # its own transpose: uᵀv and vᵀu are one scalar, in one orientation
            if isinstance(e, E.Mul) and not any(f.is_scalar for f in e.factors):
                ahead = E.mul(*(self.pushed(f) for f in e.factors))
                back = E.mul(*(self.pushed(f, True) for f in reversed(e.factors)))
                return min(ahead, back, key=self._rank)
            return e
        if isinstance(e, E.Mul):
            factors = [self.pushed(f, t) for f in e.factors]
            return E.mul(*(reversed(factors) if t else factors))
        if isinstance(e, E.Add):
            return E.add(*(self.pushed(x, t) for x in e.terms))
        if isinstance(e, E.Hadamard):      # commutative: one order, so that A ⊙ B and Bᵀ ⊙ Aᵀ meet
            return E.hadamard(*sorted((self.pushed(x, t) for x in e.factors), key=self._rank))
        if isinstance(e, E.Apply) and e.fn.elementwise:
            return E.apply(e.fn, self.pushed(e.arg, t))
        if isinstance(e, E.Power) and e.exponent.is_scalar and not e.base.is_scalar:
            return E.power(self.pushed(e.base, t), e.exponent)
        if not t or is_symmetric(e):
            return e
        return E.transpose(e)

    def _rank(self, e: E.Expr) -> tuple:
        """A total order on the two orientations: fewer transposes first, then the text."""
        memo = self._order.get(e)
        if memo is None:
            memo = self._order[e] = (_transposes(e), str(e))
        return memo

    def key(self, e: E.Expr) -> tuple[E.Expr, Fraction | float, bool]:
        """(rep, c, t) with e = c · (repᵀ if t else rep); rep has no constant factor."""
        memo = self._keys.get(e)
        if memo is not None:
            return memo
        c, rest = Fraction(1), self.pushed(e)
        if isinstance(rest, E.Mul) and isinstance(rest.factors[0], E.Const) and not rest.is_scalar:
            c, rest = rest.factors[0].value, E.mul(*rest.factors[1:])
        flipped = self.pushed(rest, True)
        if flipped != rest and self._rank(flipped) < self._rank(rest):
            out = (flipped, c, True)
        else:
            out = (rest, c, False)
        self._keys[e] = out
        return out


def scaled(c, e: E.Expr) -> E.Expr:
    return E.mul(c if isinstance(c, E.Expr) else E.Const(c), e)


# ------------------------------------------------------------ where constants go

def _split(e: E.Expr):
    """(c, rest) for a non-scalar product with a constant factor c ≠ ±1, else None.  c is a
    number, or a scalar of sizes only (1/sqrt(dk) in attention), which is placed the same way."""
    if not isinstance(e, E.Mul) or e.is_scalar or not e.factors[0].is_scalar:
        return None
    head = [f for f in e.factors if f.is_scalar]
    rest = E.mul(*(f for f in e.factors if not f.is_scalar))
    if len(head) == 1 and isinstance(head[0], E.Const):
        return (head[0].value, rest) if abs(head[0].value) != 1 else None
    if all(isinstance(f, E.Const) or not E.symbols(f) for f in head):
        return E.mul(*head), rest
    return None


def _reachable(e: E.Expr, keys: Keys) -> dict[E.Expr, E.Expr]:
    """rep -> an occurrence, for every operand a scalar factor of e can move into."""
    out: dict[E.Expr, E.Expr] = {}
    todo = [e]
    while todo:
        x = todo.pop()
        rep = keys.key(x)[0]
        if rep in out:
            continue
        out[rep] = x
        if isinstance(x, _SCALE_THROUGH) and not x.is_scalar:
            todo += [k for k in x.children() if not k.is_scalar]
    return out


def _size(e: E.Expr) -> tuple[int, float]:
    """(order, expected entries): the number of named dimensions (a vector 1, a matrix 2),
    then the mean entry count when each is independently large or small (plans.py), so
    that a t×t matrix weighs more than a t×p one (E[t²] > E[t]E[p]).  diag(v) is v."""
    if _is_diag(e):
        e = e.arg
    return sum(d != 1 for d in e.shape), expected_entries(e.shape)


def _replace_once(e: E.Expr, target: E.Expr, c, keys: Keys) -> tuple[E.Expr, bool]:
    """e with its first occurrence (through _SCALE_THROUGH nodes) of target's class scaled by c."""
    if keys.key(e)[0] == keys.key(target)[0] and keys.key(e)[1] == keys.key(target)[1]:
        # c diag(v) = diag(c v): still a broadcast, and a pass over v
        return (E.apply(Fn.DIAG, scaled(c, e.arg)) if _is_diag(e) else scaled(c, e)), True
    if not isinstance(e, _SCALE_THROUGH) or e.is_scalar:
        return e, False
    kids = list(e.children())
    for i, k in enumerate(kids):
        if k.is_scalar:
            continue
        new, done = _replace_once(k, target, c, keys)
        if done:      # rebuilt as is: the smart constructors would pull c back to the front
            kids[i] = new
            return type(e)(*((kids[0],) if isinstance(e, E.Transpose) else (tuple(kids),)), e.shape), True
    return e, False


def place_scalars(exprs: list[E.Expr], keys: Keys) -> list[E.Expr]:
    """exprs with each constant factor of a product moved where it costs least (see the module doc)."""
    wanted: Counter = Counter()       # (c, rep) -> products that could scale rep by c
    for root in exprs:
        for n in set(E.walk(root)):
            split = _split(n)
            if split:
                c, rest = split
                c = abs(c) if isinstance(c, (int, float, Fraction)) else c
                for rep in _reachable(rest, keys):
                    wanted[(c, rep)] += 1

    def score(c, rep, occurrence):
        shared = wanted[(c, rep)] if wanted[(c, rep)] > 1 else 0
        # an input scaled is a copy nothing else reads, and it splits products of inputs
        # (2Xᵀ in R Wvᵀ 2Xᵀ is no longer the X Wv the forward pass forms)
        order, entries = _size(occurrence)
        return (shared, -order, -entries, not isinstance(_untransposed(occurrence), E.Symbol))

    def place(n: E.Expr) -> E.Expr:
        split = _split(n)
        if not split:
            return n
        c, rest = split
        # −2(A ⊙ B): 2 moves in and the sign stays out, so that 2A is the 2A other products share
        sign = -1 if isinstance(c, (int, float, Fraction)) and c < 0 else 1
        c = abs(c) if sign < 0 else c
        here = score(c, keys.key(rest)[0], rest)
        best, where = here, None
        # in one order for every product, so that products tied between operands pick the same one
        for rep, occurrence in sorted(_reachable(rest, keys).items(), key=lambda kv: keys._rank(kv[0])):
            s = score(c, rep, occurrence)
            if s > best:
                best, where = s, occurrence
        if where is None:
            return n
        moved, done = _replace_once(rest, where, c, keys)
        return (E.neg(moved) if sign < 0 else moved) if done else n

    memo: dict = {}
    return [E.map_bottom_up(root, place, memo) for root in exprs]


# ------------------------------------------------------------ one generated function's body

def _is_diag(e: E.Expr | None) -> bool:
    return isinstance(e, E.Apply) and e.fn is Fn.DIAG


def _is_ones_vector(e: E.Expr | None) -> bool:
    """c·ones(n) or its transpose: a Broadcast vector (a product with it is a sum)."""
    return isinstance(e, E.Broadcast) and (is_column(e.shape) or is_row(e.shape)) and not e.is_scalar


def _is_ones_matrix(e: E.Expr | None) -> bool:
    """c·ones(k, n), neither a vector nor a scalar: a product with it is a sum, repeated."""
    return isinstance(e, E.Broadcast) and not (is_column(e.shape) or is_row(e.shape) or e.is_scalar)


def _trivial(e: E.Expr) -> bool:
    """Never worth a temporary: a name, a number, ones (products with it are sums, often not made)."""
    return isinstance(e, (E.Symbol, E.Const)) or (isinstance(e, E.Transpose) and isinstance(e.arg, E.Symbol)) \
        or _is_ones_vector(e)


# Chains longer than this share only whole products (the subchains are quadratic in number).
SUBCHAINS_UP_TO = 12


def _subchains(chain: list[E.Expr]) -> list[tuple[int, int, E.Expr]]:
    """(start, length, product) of 2 to len-1 consecutive factors of a matrix chain, longest first."""
    if not 3 <= len(chain) <= SUBCHAINS_UP_TO:
        return []
    return [(i, n, _product(chain[i:i + n])) for n in range(len(chain) - 1, 1, -1) for i in range(len(chain) - n + 1)]


def _product(factors: list[E.Expr]) -> E.Expr:
    """The product of matrix factors as they are: E.mul would pull a constant placed inside
    one (2R in 2R Wvᵀ Xᵀ, place_scalars) back to the front, a pass over the larger result."""
    return E.Mul(tuple(factors), E.chain_shape(factors))


def _untransposed(e: E.Expr) -> E.Expr:
    """Aᵀ is A's class: computed as A (then transposed by name), never as Aᵀ of itself."""
    while isinstance(e, E.Transpose):
        e = e.arg
    return e


class _Function:
    """Straight-line code for one generated function, with shared subexpressions.

    Subexpressions are shared by class (Keys): e, eᵀ and c·e are one class
    when the derivation holds more than one of them; the first form met is computed,
    and the others are its name, transposed (a view) or scaled (one pass, never a
    recomputation)."""

    def __init__(self, module, roots: list[E.Expr], plan: int = 0, plans: tuple | None = None):
        """module: the code printer (code._Module): its emit, op, next_temp and keys.  plan:
        which of `self.choices` (plans.Plans.choices) to write; plans: (Plans, choices) of
        another _Function of the same roots, not searched again."""
        self.m = module
        self.keys = module.keys
        self.lines: list[str] = []
        self.names: dict[tuple, tuple[str, bool]] = {}    # (rep, c) -> (name, holds repᵀ)
        self.uses: Counter = Counter()                     # (rep, c) -> uses
        self.form: dict[tuple, E.Expr] = {}                # (rep, c) -> the form computed
        self.base: dict[E.Expr, object] = {}               # rep -> the c of the class the others scale
        self.pending: set[tuple] = set()                   # classes whose code is being written
        self.precedence: dict[str, int] = {}               # temporary -> its source's precedence
        for root in roots:
            self.uses[self._class(root)] += 1
        todo = list(reversed(roots))
        seen: set[E.Expr] = set()
        while todo:
            n = _untransposed(todo.pop())
            if n in seen:
                continue
            seen.add(n)
            cls = self._class(n)
            # a class's parts are used once by it, whichever of its forms is written: a second form
            # (X W₁ + 1b₁ᵀ and W₁ᵀXᵀ + b₁1ᵀ) counted again would name X W₁ apart from the sum,
            # an extra temporary as large as the sum that lives to the end of the function
            counted = cls not in self.form
            if cls not in self.form or (_split(self.form[cls]) and not _split(n)):
                self.form[cls] = n      # c·(A B) last: the form with c placed inside (place_scalars)
                counted = True
            rep, c = cls
            if c == 1 or rep not in self.base:
                self.base[rep] = c
            for k in reversed(n.children()):
                if counted:
                    self.uses[self._class(k)] += 1
                todo.append(k)
        chains = []
        diagonals = {n.arg for n in seen if isinstance(n, E.Apply) and n.fn is Fn.DIAGV}
        for form in list(self.form.values()):   # products inside chains: shared with whole classes
            if isinstance(form, E.Mul):
                chain = [x for x in form.factors if not x.is_scalar]
                for _, _, part in _subchains(chain):
                    self.uses[self._class(part)] += 1
                if form in diagonals and not any(_is_diag(x) for x in chain):
                    chain = chain[:-1]      # diag(L R): L times R elementwise (code.py), L a product
                if len(chain) >= 3:
                    chains.append(chain)
        # products common to chains, formed once where that saves work (X Wk in attention)
        if plans is None:
            search = Plans(chains, _subchains, self._class,
                           lambda cls: cls in self.form and self.uses[cls] > 1 and not _trivial(cls[0]))
            plans = search, search.choices()
        self.search, self.choices = plans
        self.formed = set(self.choices[plan])
        for (rep, c), form in list(self.form.items()):   # c·rep from the base class's name: a use of it
            base = (rep, self.base[rep])
            if c != base[1] and not any(self._class(k) == base for k in form.children()):
                self.uses[base] += 1

    def _class(self, e: E.Expr) -> tuple:
        rep, c, _ = self.keys.key(e)
        return rep, c

    def assign(self, name: str, e: E.Expr, body_of: E.Expr | None = None):
        self.lines.append(f"{name} = {self.code(e)[0]}")
        self._name(e, name)
        if body_of is not None:
            self._name(body_of, name)

    def _name(self, e: E.Expr, name: str) -> None:
        rep, c, t = self.keys.key(e)
        self.names.setdefault((rep, c), (name, t))

    def _oriented(self, name: str, holds_t: bool, want_t: bool, rep: E.Expr) -> str:
        vector = is_column(rep.shape) or is_row(rep.shape) or rep.is_scalar
        return name + ".T" if holds_t != want_t and not vector else name

    def code(self, e: E.Expr) -> tuple[str, int]:
        """(source, precedence) of e, emitting temporaries for shared parts."""
        rep, c, t = self.keys.key(e)
        if (rep, c) in self.names:
            return self._oriented(*self.names[(rep, c)], t, rep), ATOM
        base = self.base.get(rep, c)
        # a multiple of a class computed anyway: a pass over its name, not a recomputation
        # (not while the base class is being written: its form may be written from this one)
        via_base = base != c and ((rep, base) in self.names or self.uses[(rep, base)] > 1) \
            and (rep, base) not in self.pending
        if self.uses[(rep, c)] > 1 and not _trivial(rep):
            form = self.form.get((rep, c)) or _untransposed(e)
            self.pending.add((rep, c))
            src, prec = self._scale(c / base, rep, base) if via_base else self.m.emit(self, form)
            self.pending.discard((rep, c))
            name = self.temp(src, prec)
            held = False if via_base else self.keys.key(form)[2]
            self.names[(rep, c)] = (name, held)
            return self._oriented(name, held, t, rep), ATOM
        if via_base:
            return self._scale(c / base, E.transpose(rep) if t else rep, base)
        return self.m.emit(self, e)

    def _scale(self, ratio, rep: E.Expr, base) -> tuple[str, int]:
        """ratio · (base · rep), from the code of base · rep: a negation or one multiplication."""
        src = self.code(scaled(base, rep) if base != 1 else rep)
        arg = src[0] if src[1] >= (ATOM if ratio == -1 else MUL + 1) else f"({src[0]})"
        if ratio == -1:
            return "-" + arg, UNARY
        return f"{float(ratio)!r} * {arg}", MUL

    def part(self, whole: E.Expr, e: E.Expr) -> tuple[str, int]:
        """The code of e, a part an emitter writes `whole` from without naming `whole`
        (diag(v) as a broadcast of v): named if `whole` is wanted again."""
        return (self.named(e), ATOM) if self.shared(whole) else self.code(e)

    def wrap_part(self, whole: E.Expr, e: E.Expr) -> str:
        src, prec = self.part(whole, e)
        return src if prec >= ATOM else f"({src})"

    def computed(self, e: E.Expr) -> bool:
        """Is e computed anyway (a whole subexpression somewhere, and shared)?  A product that
        only two chains have in common is not: multiplying it out could cost more than
        each chain in its own cheapest order (Xᵀ G X, d×d, against Xᵀ (G (X W)))."""
        cls = self._class(e)
        return cls in self.formed or (cls in self.form and self.shared(e))

    def needs(self, e: E.Expr) -> bool:
        """Does this function compute e (up to transposition and scale)?"""
        return self._class(e) in self.form

    def pair(self, x: E.Expr, both: str) -> str:
        """The name of (logsumexp(x), softmax(x)), computed together by the op `both` (one exp)."""
        key = (both,) + self._class(x)
        if key not in self.names:
            self.names[key] = (self.temp(self.m.op(both, x=self.code(x))[0]), False)
        return self.names[key][0]

    def shared(self, e: E.Expr) -> bool:
        """Is e (up to transposition and scale) named already, or used more than once?"""
        rep, c, _ = self.keys.key(e)
        return (rep, c) in self.names or (self.uses[(rep, c)] > 1 and not _trivial(rep))

    def name_as(self, e: E.Expr, src: str) -> str:
        """src (the code of e) into a temporary that e's class will reuse."""
        rep, c, t = self.keys.key(e)
        if (rep, c) in self.names:
            return self._oriented(*self.names[(rep, c)], t, rep)
        name = self.temp(src)
        self.names[(rep, c)] = (name, t)
        return name

    def named(self, e: E.Expr) -> str:
        """e as a name: a temporary unless it is one already (for code that uses it twice)."""
        src, prec = self.code(e)
        if prec == ATOM and src.isidentifier():
            return src
        name = self.temp(src, prec)
        self._name(e, name)
        return name

    def temp(self, src: str, prec: int = 0) -> str:
        """A new temporary holding src (of precedence prec: 0 when unknown, parenthesised if inlined)."""
        name = f"_t{self.m.next_temp()}"
        self.lines.append(f"{name} = {src}")
        self.precedence[name] = prec
        return name

    def finished(self, lines: list[str]) -> list[str]:
        """lines (this function's, with its return) with each temporary read only once written
        where it is read.  Use counts are by class, and a plan that forms a shared product
        (plans.py) reads some classes once that another plan reads twice: a name read once
        keeps its array alive to the end of the function for nothing."""
        lines = list(lines)
        reads = Counter(m for line in lines for m in _TEMP.findall(line.split(" = ", 1)[-1]))
        for i, line in enumerate(lines):
            name, _, src = line.partition(" = ")
            if name not in self.precedence or reads[name] != 1:
                continue
            j = next(j for j in range(i + 1, len(lines)) if re.search(rf"\b{name}\b", lines[j]))
            code = src if self.precedence[name] >= ATOM else f"({src})"
            lines[j] = re.sub(rf"\b{name}\b", lambda _: code, lines[j])
            lines[i] = None
        return [line for line in lines if line is not None]

    def wrap(self, e: E.Expr, level: int) -> str:
        src, prec = self.code(e)
        return f"({src})" if prec < level else src
