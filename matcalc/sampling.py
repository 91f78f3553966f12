"""Random inputs from each symbol's domain, for checks and identity tests.

Layer L3: imports expr, numeric and the elementwise registry.  The domain
is what a declaration says (`spd(n)`, `positive ...`, `symmetric(n)`) and
what the program's use requires, and no more: a matrix under inv/det/logdet
only needs a positive determinant, so it is drawn non-symmetric (symmetric
points hide transpose slips); SPD only where declared.  Entries are positive
under log/sqrt/division, small under tan, and a log barrier's slack
(`log(b - A*x)`) is drawn after the rest, so that it is positive.
"""
from __future__ import annotations

import zlib

import numpy as np

from . import expr as E
from .expr import Fn
from .numeric import Evaluator, run_program
from .rules.elementwise import ELEMENTWISE

# What an argument needs, strongest first.  'accretive': a symmetric part that is
# positive definite (closed under +, ᵀ, inv and congruence Yᵀ·Y), so nonsingular
# with det > 0; 'posdet': det > 0 (closed under products of square factors too).
RANK = {"spd": 5, "accretive": 4, "posdet": 3, "positive": 2, "bounded": 1, "real": 0}
# Matrix functions whose argument must be nonsingular (det > 0 for logdet: one domain serves all three).
NONSINGULAR_ARGS = {Fn.LOGDET, Fn.DET, Fn.INV}
# Matrix functions whose argument needs a positive definite symmetric part: logm and sqrtm
# (no eigenvalue on the closed negative real axis), chol (which reads the symmetric part).
ACCRETIVE_ARGS = {Fn.LOGM, Fn.SQRTM, Fn.CHOL}


class _Requirements:
    """name -> domain, from where each symbol is used, plus the Gram factors that must be
    tall (rows, columns) and the slacks `s` of `s - rest > 0` drawn after the rest."""

    def __init__(self, program: E.Program):
        self.need: dict[str, str] = {}
        self.tall: list = []
        self.slacks: list[tuple[E.Symbol, list[E.Expr]]] = []
        self.bodies = {s.name: b for s, b in program.definitions}
        self.inputs = program.inputs
        for root in [b for _, b in program.definitions] + [program.output]:
            for n in E.walk(root):
                if isinstance(n, E.Apply) and n.fn in NONSINGULAR_ARGS:
                    self.mark(n.arg, "posdet", set())
                elif isinstance(n, E.Apply) and n.fn in ACCRETIVE_ARGS:
                    self.mark(n.arg, "accretive", set())
                elif isinstance(n, (E.FrechetAdj, E.FrechetJac)) and n.fn in ACCRETIVE_ARGS:   # logm_adj, sqrtm_adj
                    self.mark(n.x, "accretive", set())
                elif isinstance(n, E.Apply) and n.fn in ELEMENTWISE and ELEMENTWISE[n.fn].domain != "real":
                    self.mark(n.arg, ELEMENTWISE[n.fn].domain, set())
                elif isinstance(n, E.Power) and not (isinstance(n.exponent, E.Const) and
                                                     _is_int(n.exponent.value) and n.exponent.value >= 0):
                    self.mark(n.base, "positive", set())
        slack_names = {s.name for s, _ in self.slacks}
        for sym in program.inputs.values():       # declarations: the domain is at least what they say
            declared = "spd" if sym.kind == "spd" else ("positive" if getattr(sym, "positive", False) else None)
            if declared and RANK[declared] > RANK[self.need.get(sym.name, "real")]:
                self.need[sym.name] = declared
            if sym.symmetric and self.need.get(sym.name) in ("accretive", "posdet"):
                self.need[sym.name] = "spd"      # a symmetric matrix with det > 0 sampled SPD
            if sym.name in slack_names and self.need.get(sym.name, "real") != "real":
                self.slacks = [s for s in self.slacks if s[0].name != sym.name]   # used elsewhere too

    def mark(self, e: E.Expr, domain: str, seen: set) -> None:
        if (id(e), domain) in seen:
            return
        seen.add((id(e), domain))
        if isinstance(e, E.Symbol):
            if e.name in self.bodies:
                self.mark(self.bodies[e.name], domain, seen)
            elif RANK[domain] > RANK[self.need.get(e.name, "real")]:
                self.need[e.name] = domain
            return
        getattr(self, "_" + domain)(e, seen)

    # -- one method per domain: how the requirement passes to the parts
    def _posdet(self, e, seen):
        if isinstance(e, (E.Transpose, E.MatPow)) or (isinstance(e, E.Apply) and e.fn is Fn.INV):
            self.mark(e.children()[0], "posdet", seen)
        elif isinstance(e, E.Add):
            self._accretive(e, seen)
        elif isinstance(e, E.Apply) and e.fn is Fn.DIAG:      # det(diag(x)) > 0 for x > 0
            self.mark(e.arg, "positive", seen)
        elif isinstance(e, E.Kron):
            for k in e.children():
                self.mark(k, "posdet", seen)
        elif isinstance(e, E.Mul) and not self._congruence(e, seen):
            matrices = [f for f in e.factors if not f.is_scalar]
            if all(f.shape[0] == f.shape[1] for f in matrices):        # det(AB) = det(A) det(B)
                self._scalars_positive(e, seen)
                for f in matrices:
                    self.mark(f, "posdet", seen)
            else:        # a square product of rectangular factors: no inner size below the outer one
                self.tall += [(f.shape[1], e.shape[0]) for f in matrices[:-1]]

    def _accretive(self, e, seen):
        if isinstance(e, E.Transpose) or (isinstance(e, E.Apply) and e.fn is Fn.INV):
            self.mark(e.children()[0], "accretive", seen)
        elif isinstance(e, E.Add):
            for term in e.terms:
                if not _negated(term):        # a subtracted term is left general
                    self.mark(term, "accretive", seen)
        elif isinstance(e, E.Apply) and e.fn is Fn.DIAG:
            self.mark(e.arg, "positive", seen)
        elif isinstance(e, E.Mul) and not self._congruence(e, seen):
            matrices = [f for f in e.factors if not f.is_scalar]
            if len(matrices) == 1:                                       # alpha*X
                self._scalars_positive(e, seen)
                self.mark(matrices[0], "accretive", seen)

    def _spd(self, e, seen):
        self._accretive(e, seen)

    def _positive(self, e, seen):
        if isinstance(e, E.Add) and self._slack(e):
            return
        if isinstance(e, (E.Add, E.Transpose, E.Hadamard, E.Mul)) or (isinstance(e, E.Apply) and e.fn is Fn.INV):
            for k in e.children():
                self.mark(k, "positive", seen)

    def _bounded(self, e, seen):
        if isinstance(e, (E.Add, E.Transpose)):
            for k in e.children():
                self.mark(k, "bounded", seen)

    # -- the patterns
    def _congruence(self, e: E.Mul, seen) -> bool:
        """Yᵀ M Y or Y M Yᵀ (M accretive, or absent: the Gram YᵀY): Y must be tall."""
        factors = [f for f in e.factors if not f.is_scalar]
        if len(factors) < 2:
            return False
        first, last = factors[0], factors[-1]
        if isinstance(first, E.Transpose) and first.arg == last:           # Yᵀ ... Y
            self.tall.append((last.shape[0], last.shape[1]))
        elif isinstance(last, E.Transpose) and last.arg == first:           # Y ... Yᵀ
            self.tall.append((first.shape[1], first.shape[0]))
        else:
            return False
        self._scalars_positive(e, seen)
        if len(factors) == 3:
            self.mark(factors[1], "accretive", seen)
        return len(factors) <= 3

    def _scalars_positive(self, e: E.Mul, seen) -> None:
        for f in e.factors:
            if f.is_scalar and not isinstance(f, E.Const):
                self.mark(f, "positive", seen)

    def _slack(self, e: E.Add) -> bool:
        """s - rest > 0 with s an input: s is drawn after the rest (a log barrier)."""
        if not any(_negated(t) for t in e.terms):
            return False
        for term in e.terms:
            sym = term.value if isinstance(term, E.Broadcast) else term
            if isinstance(sym, E.Symbol) and sym.name in self.inputs and sym.name not in self.bodies:
                rest = [t for t in e.terms if t is not term]
                if sym.name not in {n for t in rest for n in E.symbols(t)}:
                    self.slacks.append((sym, rest))
                    return True
        return False


def _negated(e: E.Expr) -> bool:
    return isinstance(e, E.Mul) and isinstance(e.factors[0], E.Const) and e.factors[0].value < 0


def _domain_requirements(program: E.Program, tall: list | None = None) -> dict[str, str]:
    """name -> domain (see RANK); Gram factors that must be tall are appended to `tall`."""
    req = _Requirements(program)
    if tall is not None:
        tall += req.tall
    return req.need


def _is_int(v) -> bool:
    return float(v).is_integer()


def dimension_sizes(program: E.Program, rng: np.random.Generator, point: int = 0) -> dict[str, int]:
    """A size per symbolic dimension, by the check's point number: at point 0 distinct
    sizes from 3 up (so transposition slips show), at point 1 sizes 1 and 2 (both, where
    there are two dimensions or more: size-1 and even-size edge cases), later any from 1 to 5."""
    names = []
    shapes = [sym.shape for sym in program.inputs.values()]
    for root in [b for _, b in program.definitions] + [program.output]:
        shapes += [n.shape for n in E.walk(root)]     # I and ones may carry sizes of their own
    for shape in shapes:
        for d in shape:
            for part in str(d).split("*"):
                if not part.isdigit() and part not in names:
                    names.append(part)
    if point == 1:
        small = rng.permutation([2] + [1 + (i % 2) for i in range(len(names) - 1)])
        out = {name: int(small[i]) for i, name in enumerate(names)}
    elif point > 1:
        out = {name: int(rng.integers(1, 6)) for name in names}
    else:
        sizes = rng.permutation(np.arange(2, 2 + max(len(names), 1)) + 1)
        out = {name: int(sizes[i % len(sizes)]) for i, name in enumerate(names)}
    tall: list = []
    _domain_requirements(program, tall)
    for rows, cols in tall:          # a Gram product that must be nonsingular: sizes that make it so
        rows, cols = str(rows), str(cols)
        if rows in out and cols in out and out[rows] < out[cols]:
            out[rows], out[cols] = out[cols], out[rows]
        elif rows in out and cols.isdigit():
            out[rows] = max(out[rows], int(cols))
        elif cols in out and rows.isdigit():
            out[cols] = min(out[cols], int(rows))
    return out


def sample_inputs(program: E.Program, rng: np.random.Generator, dims: dict[str, int],
                  functions: dict | None = None, scale: float = 1.0) -> dict[str, np.ndarray]:
    """One random point (2-D arrays) in every input's domain; `scale` spreads the inputs
    whose domain is every real (the check varies it to cross kinks far and near)."""
    req = _Requirements(program)
    ev = Evaluator({}, dims=dims)
    env = {}
    for name, sym in program.inputs.items():
        r, c = ev.dim(sym.shape[0]), ev.dim(sym.shape[1])
        domain = req.need.get(name, "real") if r == c else _entrywise(req.need.get(name))
        env[name] = DRAW[domain](rng, r, c) * (scale if domain == "real" else 1.0)
        if sym.symmetric:
            env[name] = (env[name] + env[name].T) / 2
    for sym, rest in req.slacks:
        values = run_program(program, env, functions or opaque_functions(program), dims)
        total = sum(values(t) for t in rest)
        if sym.is_scalar:                   # t - rest > 0 for every entry of rest
            env[sym.name] = np.max(-total, initial=-np.inf).reshape(1, 1) + rng.uniform(0.5, 2.0, (1, 1))
        else:
            env[sym.name] = -total + rng.uniform(0.5, 2.0, env[sym.name].shape)
    return env


def movable_inputs(program: E.Program) -> list[str]:
    """The inputs whose domain is every real (no declaration or use constrains them, and
    no log barrier's slack): a point may move them anywhere."""
    req = _Requirements(program)
    slacks = {s.name for s, _ in req.slacks}
    return [name for name in program.inputs
            if req.need.get(name, "real") == "real" and name not in slacks]


def _entrywise(domain):
    return domain if domain in ("positive", "bounded") else "real"


def _accretive(rng, n, _):
    """S + K: S SPD, K antisymmetric, so non-symmetric with a positive definite symmetric part."""
    q, _r = np.linalg.qr(rng.standard_normal((n, n)))
    k = rng.standard_normal((n, n))
    return (q * rng.uniform(1.0, 3.0, n)) @ q.T + 0.5 * (k - k.T)


def _spd(rng, n, _):
    q, _r = np.linalg.qr(rng.standard_normal((n, n)))
    return (q * rng.uniform(1.0, 3.0, n)) @ q.T


DRAW = {
    "spd": _spd,
    "accretive": _accretive,
    "posdet": _accretive,
    "positive": lambda rng, r, c: rng.uniform(0.5, 2.0, (r, c)),
    "bounded": lambda rng, r, c: rng.uniform(-0.8, 0.8, (r, c)),
    "real": lambda rng, r, c: rng.standard_normal((r, c)),
}


# ------------------------------------------------------------ opaque functions
# Each `f: function` gets its own smooth stand-in, neither elementwise nor separable
# (an elementwise one is blind to a missing transpose or symmetrisation):
#   f(X) = a : X + ½ ((c : X)²)/size + Σ sin(B vec(X) + φ),
# with a, c, B, φ drawn per function name and argument size.

class _StandIn:
    def __init__(self, name: str, salt: int = 0):
        self.seed = zlib.crc32(name.encode()) ^ salt
        self.constants: dict[int, tuple] = {}

    def _for(self, size: int):
        if size not in self.constants:
            rng = np.random.default_rng([self.seed, size])
            self.constants[size] = (rng.standard_normal(size), rng.standard_normal(size),
                                    rng.standard_normal((3, size)) / np.sqrt(size), rng.uniform(0, 6.3, 3))
        return self.constants[size]

    def value(self, x):
        v = np.asarray(x, dtype=float).reshape(-1, order="F")
        a, c, b, phase = self._for(v.size)
        return float(a @ v + 0.5 * (c @ v) ** 2 / v.size + np.sum(np.sin(b @ v + phase)))

    def gradient(self, x):
        x = np.asarray(x, dtype=float)
        v = x.reshape(-1, order="F")
        a, c, b, phase = self._for(v.size)
        g = a + (c @ v) / v.size * c + b.T @ np.cos(b @ v + phase)
        return g.reshape(x.shape, order="F")


def opaque_functions(program: E.Program, salt: int = 0) -> dict:
    """'f' -> f(X), 'grad_f' -> ∇f(X) for every opaque function of the program
    (`salt` draws other constants: a check can vary them across runs)."""
    out = {}
    for name in program.functions:
        stand_in = _StandIn(name, salt)
        out[name] = stand_in.value
        out["grad_" + name] = stand_in.gradient
    return out
