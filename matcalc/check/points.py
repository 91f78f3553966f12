"""Where the check compares: the points, the value evaluated at them, and the limits
on the arrays a check may build.

Points depend on the input alone, never on the results being checked.  A smooth
input gets `points` random points.  An input with kinks (abs, sign, step, relu,
norm1, and so max and min) or a result with them is piecewise smooth: a wrong
result may agree with the truth on most of the space and differ on a thin region
(sign(alpha) for the gradient of abs(alpha + sigmoid(x'*x)) differs only where
-sigmoid(x'*x) < alpha < 0).  Such a check adds
  * points whose free inputs are drawn at several scales (0.1 to 3 times the usual),
    so that kinks near the origin and far from it lie between points, and
  * points on both sides of the input's own kinks: along random lines through the
    first points, where an argument of a kink changes sign (found by bisection on
    the value's evaluation), a point just before and one just after.  A slip that
    moves a kink (a term dropped inside step, relu or max) disagrees on one side.
"""
from __future__ import annotations

import numpy as np

from .. import expr as E
from ..errors import LimitError
from ..numeric import Evaluator, run_program
from ..printing.text import to_text
from ..sampling import movable_inputs, sample_inputs

ATTEMPTS = 20
# The largest array a check may build (32 MB of float64): declared sizes past it
# are a limit error, not an out-of-memory crash.
MAX_ENTRIES = 4_000_000
# Functions whose derivative jumps where an entry of their argument crosses zero.
KINKED = frozenset({E.Fn.ABS, E.Fn.SIGN, E.Fn.STEP, E.Fn.RELU, E.Fn.NORM1})
SCALES = (0.1, 0.3, 1.0, 3.0)       # the free inputs' spread at the extra points, cycled
EXTRA_POINTS = 4                    # random points added where the input or a result has kinks
KINK_LINES = 2                      # lines searched for kinks (through the first points)
LINE_ATTEMPTS = 3                   # directions tried per line until one crosses a kink
KINKS_PER_LINE = 2                  # kinks straddled per line (two points each)
LINE = np.linspace(-3.0, 3.0, 13)   # where a line is sampled before bisecting a change of side
OFFSET = 0.02                       # distance of a straddling point from the kink, in grid steps
BISECTIONS = 16


def has_kinks(roots) -> bool:
    return any(isinstance(n, E.Apply) and n.fn in KINKED for root in roots for n in E.walk(root))


class Value:
    """point -> the program's value.  The differences evaluate it dozens of times, so
    the order of its nodes is worked out once (what run_program would walk each time).
    It also remembers on which side of each kink the last evaluation was (`sides`):
    differences whose points are not all on the same sides measure no derivative."""

    def __init__(self, program, functions, dims):
        self.output = program.output
        self.functions, self.dims = functions, dims
        self.segments, seen = [], set()
        for sym, body in list(program.definitions) + [(None, program.output)]:
            segment = [n for n in E.walk(body) if n not in seen]
            seen.update(segment)
            self.segments.append((sym, body, segment))
        self.kinks = [n.arg for _, _, segment in self.segments for n in segment
                      if isinstance(n, E.Apply) and n.fn in KINKED]
        self.last: np.ndarray | None = None

    def __call__(self, point, fixed=frozenset()):
        env = dict(point)
        ev = Evaluator(env, self.functions, self.dims)
        memo = ev.memo
        with np.errstate(all="ignore"):
            for sym, body, segment in self.segments:
                for n in segment:
                    try:
                        memo[n] = ev._eval(n, [memo[k] for k in n.children()])
                    except np.linalg.LinAlgError:   # singular: not a point of the domain
                        memo[n] = np.full((ev.dim(n.shape[0]), ev.dim(n.shape[1])), np.nan)
                if sym is not None and sym.name not in fixed:
                    env[sym.name] = memo[body]
        if self.kinks:
            self.last = np.concatenate([np.sign(memo[k]).reshape(-1) for k in self.kinks])
        return memo[self.output]

    def sides(self, point, fixed=frozenset()):
        """On which side of each kink `point` lies (None for a smooth value)."""
        if not self.kinks:
            return None
        self(point, fixed)
        return self.last

    def same_sides(self, centre) -> bool:
        """Whether the last evaluation was on the same sides of every kink as `centre`."""
        return centre is None or (self.last is not None and np.array_equal(self.last, centre))


def terms_at(program, env, functions, dims) -> float:
    """The largest finite magnitude met in evaluating the value at env."""
    ev = run_program(program, env, functions, dims)
    ev(program.output)
    return max((float(np.max(np.abs(v), initial=0.0)) for v in list(ev.memo.values()) + list(ev.env.values())
                if np.all(np.isfinite(v))), default=0.0)


def valid_point(program, rng, dims, functions, scale: float = 1.0):
    value_of = Value(program, functions, dims)
    for _ in range(ATTEMPTS):
        env = sample_inputs(program, rng, dims, functions, scale=scale)
        if np.all(np.isfinite(value_of(env))):
            return env
    return None


def extra_plan(points: int) -> list[tuple[int, float]]:
    """(the point number that decides the sizes, the spread) of each added random point."""
    return [(points + i, SCALES[i % len(SCALES)]) for i in range(EXTRA_POINTS)]


def across_kinks(program, functions, dims, env, rng) -> list[dict]:
    """Points on both sides of the input's kinks, along a random line through env that
    moves every input free to move (a constrained one, positive or SPD, stays)."""
    value_of = Value(program, functions, dims)
    if not value_of.kinks:
        return []
    free = movable_inputs(program)
    if not free:
        return []
    direction: dict = {}

    def at(t):
        return {**env, **{n: env[n] + t * d for n, d in direction.items()}}

    def side(t):
        return value_of.last.copy() if np.all(np.isfinite(value_of(at(t)))) else None
    for _ in range(LINE_ATTEMPTS):         # a line may miss every kink: another direction
        for name in free:
            d = rng.standard_normal(env[name].shape)
            direction[name] = (d + d.T) / 2 if program.inputs[name].symmetric else d
        sides = [side(t) for t in LINE]
        changes = [i for i in range(len(LINE) - 1) if sides[i] is not None and sides[i + 1] is not None
                   and not np.array_equal(sides[i], sides[i + 1])]
        if changes:
            break
    out = []
    for i in sorted(rng.permutation(changes)[:KINKS_PER_LINE]):
        lo, hi, start = LINE[i], LINE[i + 1], sides[i]
        for _ in range(BISECTIONS):
            mid = (lo + hi) / 2
            s = side(mid)
            if s is None:
                break
            lo, hi = (mid, hi) if np.array_equal(s, start) else (lo, mid)
        gap = OFFSET * (LINE[1] - LINE[0])
        for t in (lo - gap, hi + gap):
            point = at(t)
            if np.all(np.isfinite(value_of(point))):
                out.append(point)
    return out


def oversized_array(roots, size_of):
    """The first node under `roots` (each visited once) whose array would pass MAX_ENTRIES,
    with its sizes, or None: both --check and --claim refuse such sizes before building."""
    seen: set = set()
    for root in roots:
        for n in E.walk(root):
            if n in seen:
                continue
            seen.add(n)
            sizes = [size_of(d) for d in n.shape]
            if sizes[0] * sizes[1] > MAX_ENTRIES:
                return n, sizes
    return None


def within_limits(derivation, dims) -> None:
    """Refuse sizes whose arrays would not fit, before any is built."""
    program = derivation.program
    roots = [b for _, b in program.definitions] + [program.output] + \
        list(derivation.results.values()) + [b for _, b in derivation.named]
    found = oversized_array(roots, lambda d: _size(d, dims))
    if found:
        n, sizes = found
        raise LimitError(f"--check would build a {sizes[0]:,}×{sizes[1]:,} array (for {_short(n)}), "
                         f"more than the {MAX_ENTRIES:,} entries a check may use; check the same "
                         "expression with smaller sizes, or with named dimensions such as "
                         "matrix(m, n), which the check samples small")


def _size(d, dims) -> int:
    out = 1
    for part in str(d).split("*"):
        out *= int(part) if part.isdigit() else dims[part]
    return out


def _short(e) -> str:
    text = to_text(e)
    return text if len(text) <= 40 else text[:37] + "..."
