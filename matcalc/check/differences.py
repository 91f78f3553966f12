"""Finite differences of the value, and the comparisons of gradients, Jacobians and
Hessians with them.

Each comparison takes candidate values of one result at a point (2-D, as the IR sees
it: the result evaluated, and the generated code's) and returns for each the worst
relative error of the entries compared; a result of the wrong shape (or None: the
code raised) is inf.  The differences are computed once, for all candidates.
`terms` is the largest magnitude the value's evaluation meets: its rounding error
(1 - tanh(u)^2 near 1 loses all digits of a tiny derivative) scales with that, not
with the value.

A difference whose stencil crosses a kink of the value (an argument of abs, sign,
step, relu or norm1 changes sign between the points it evaluates) measures no
derivative: its error estimate is infinite, so it judges nothing (see
points.Value.sides).
"""
from __future__ import annotations

import numpy as np

TOLERANCE = 1e-5        # relative error per entry, beyond the differences' own error estimate
STEP = 1e-4             # first differences: Richardson from h and 2h
STEP2 = 1e-3            # second differences (Hessians)
ROUNDING = 64 * np.finfo(float).eps    # rounding of one evaluation, relative to its magnitude
NEGLIGIBLE = 1e-8       # entries below this fraction of the largest are judged against that fraction
# A variable with more entries is checked along random directions rather than
# entry by entry, so the work of a check does not grow with the declared sizes.
ENTRYWISE_UP_TO = 100
DIRECTIONS = 12
HESSIAN_ENTRYWISE_UP_TO = 6      # Hessians: pairs of directions cost the square
HESSIAN_DIRECTIONS = 5


def compare_gradient(candidates, point, name, fixed, symmetric, value_of, terms, rng) -> list[float]:
    x = point[name]
    directions = directions_for(x, symmetric, rng)
    numeric = None
    errors = []
    for analytic in candidates:
        if analytic is None or analytic.shape != x.shape:
            errors.append(float("inf"))       # a result of the wrong shape fails, whatever its entries
            continue
        if numeric is None:
            numeric, noise = first_differences(value_of, point, name, fixed, directions, terms)
        # symmetric directions cannot see an asymmetric part: test it directly, to the
        # resolution of the differences (a zero gradient's rounding is no asymmetry)
        err = _asymmetry(analytic, ROUNDING * terms / _step(x, STEP)) if symmetric else 0.0
        errors.append(max(err, discrepancy(analytic.reshape(1, -1, order="F") @ directions, numeric, noise)))
    return errors


def compare_jacobian(candidates, point, name, fixed, symmetric, value_of, terms, rng) -> list[float]:
    x = point[name]
    directions = directions_for(x, symmetric, rng)
    numeric, noise = first_differences(value_of, point, name, fixed, directions, terms)
    shape = value_of(point, fixed).shape if x.size == 1 else None

    def as_jacobian(analytic):
        # ∂F/∂α has F's shape (a scalar variable): its vec is the Jacobian
        if analytic is not None and shape is not None and analytic.shape == shape:
            return analytic.reshape(-1, 1, order="F")
        return analytic
    return [discrepancy(a @ directions, numeric, noise)
            if a is not None and a.shape == (numeric.shape[0], x.size) else float("inf")
            for a in map(as_jacobian, candidates)]


def compare_hessian(candidates, point, name, fixed, symmetric, value_of, terms, rng) -> list[float]:
    x = point[name]
    if x.size <= HESSIAN_ENTRYWISE_UP_TO:
        directions = entry_directions(x, symmetric)
    else:
        directions = random_directions(x, symmetric, rng, HESSIAN_DIRECTIONS)
    numeric = None
    errors = []
    for analytic in candidates:
        if analytic is None or analytic.shape != (x.size, x.size):
            errors.append(float("inf"))
            continue
        if numeric is None:
            numeric, noise = second_differences(value_of, point, name, fixed, directions, terms)
        # a Hessian is a symmetric matrix; tested directly, since by a symmetric S the
        # (symmetric) directions of the differences see only H + Hᵀ
        errors.append(max(_asymmetry(analytic, ROUNDING * terms / _step(x, STEP2) ** 2),
                          discrepancy(directions.T @ analytic @ directions, numeric, noise)))
    return errors


COMPARE = {"grad": compare_gradient, "jacobian": compare_jacobian, "hessian": compare_hessian}


def relative(a: np.ndarray, b: np.ndarray) -> float:
    """max |a - b| relative to the larger of the two."""
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        return float("inf")
    scale = max(float(np.max(np.abs(a), initial=0.0)), float(np.max(np.abs(b), initial=0.0)))
    return float(np.max(np.abs(a - b), initial=0.0)) / scale if scale > 0 else 0.0


def _asymmetry(a: np.ndarray, floor: float) -> float:
    """max |a - aᵀ| beyond `floor` (what the differences cannot resolve: rounding of the
    value's terms over the step), relative to a's largest entry."""
    if not np.all(np.isfinite(a)):
        return float("inf")
    excess = float(np.max(np.abs(a - a.T), initial=0.0)) - floor
    return excess / float(np.max(np.abs(a))) if excess > 0 else 0.0


def discrepancy(analytic: np.ndarray, numeric: np.ndarray, noise: np.ndarray) -> float:
    """The worst entry's error beyond the differences' error estimate, relative to that
    entry (or to NEGLIGIBLE of the largest entry, for entries near zero).  A zero result
    (rounding of the terms, below the noise) passes; a small nonzero one is judged
    against its own size, so a slip of 1e-6 of the terms' scale fails."""
    if not (np.all(np.isfinite(analytic)) and np.all(np.isfinite(numeric))):
        return float("inf")     # a NaN must fail the check, not vanish in max()
    scale = max(float(np.max(np.abs(numeric), initial=0.0)), float(np.max(np.abs(analytic), initial=0.0)))
    if scale == 0.0:
        return 0.0
    excess = np.maximum(np.abs(analytic - numeric) - noise, 0.0)
    return float(np.max(excess / np.maximum(np.abs(numeric), NEGLIGIBLE * scale), initial=0.0))


def _step(x: np.ndarray, base: float) -> float:
    return base * max(1.0, float(np.max(np.abs(x), initial=0.0)))


def first_differences(value_of, env, name, fixed, directions, terms=0.0):
    """The derivative of vec(value) along each column of `directions`, Richardson-extrapolated
    from steps h and 2h, and per entry an estimate of its error (infinite where the
    stencil crosses a kink)."""
    x = env[name]
    h = _step(x, STEP)
    centre = value_of.sides(env, fixed)
    estimates, noises = [], []
    for column in directions.T:
        d = column.reshape(x.shape, order="F")
        f, smooth = {}, True
        for k in (-2, -1, 1, 2):
            f[k] = value_of({**env, name: x + k * h * d}, fixed).reshape(-1, order="F")
            smooth = smooth and value_of.same_sides(centre)
        near = (f[1] - f[-1]) / (2 * h)
        far = (f[2] - f[-2]) / (4 * h)
        size = np.maximum(np.max(np.abs(np.stack(list(f.values()))), axis=0), terms)
        estimates.append((4 * near - far) / 3 if smooth else np.zeros_like(near))
        noises.append(np.abs(near - far) + ROUNDING * size / h if smooth else np.full_like(near, np.inf))
    return np.stack(estimates, axis=1), np.stack(noises, axis=1)


def second_differences(value_of, env, name, fixed, directions, terms=0.0):
    """uᵢᵀ H uⱼ for every pair of columns, from four-point second differences of the
    value (Richardson from h and 2h), and per entry an estimate of its error."""
    x = env[name]
    h = _step(x, STEP2)
    k = directions.shape[1]
    cols = [c.reshape(x.shape, order="F") for c in directions.T]
    estimate, noise = np.zeros((k, k)), np.zeros((k, k))
    centre = value_of.sides(env, fixed)
    smooth = [True]

    def f(step):
        value = float(value_of({**env, name: x + step}, fixed).item())
        smooth[0] = smooth[0] and value_of.same_sides(centre)
        return value

    for i in range(k):
        for j in range(i, k):
            s, size, smooth[0] = {}, terms, True
            for t in (1, 2):
                values = [f(t * h * (cols[i] + cols[j])), f(t * h * (cols[i] - cols[j])),
                          f(t * h * (cols[j] - cols[i])), f(-t * h * (cols[i] + cols[j]))]
                s[t] = (values[0] - values[1] - values[2] + values[3]) / (4 * (t * h) ** 2)
                size = max(size, max(abs(v) for v in values))
            estimate[i, j] = estimate[j, i] = (4 * s[1] - s[2]) / 3 if smooth[0] else 0.0
            noise[i, j] = noise[j, i] = abs(s[1] - s[2]) + ROUNDING * size / h ** 2 if smooth[0] else np.inf
    return estimate, noise


def directions_for(x, symmetric, rng):
    return entry_directions(x, symmetric) if x.size <= ENTRYWISE_UP_TO else random_directions(x, symmetric, rng)


def random_directions(x: np.ndarray, symmetric: bool, rng, count: int = DIRECTIONS) -> np.ndarray:
    """Columns vec(D) of `count` random unit directions (symmetric ones for a symmetric X)."""
    columns = []
    for _ in range(count):
        d = rng.standard_normal(x.shape)
        if symmetric:
            d = d + d.T
        columns.append((d / np.sqrt(np.sum(d * d))).reshape(-1, order="F"))
    return np.stack(columns, axis=1)


def entry_directions(x: np.ndarray, symmetric: bool) -> np.ndarray:
    """Columns vec(D): every entry, or for a symmetric X the pairs E_ij + E_ji."""
    columns = []
    for idx in zip(*np.unravel_index(np.arange(x.size), x.shape, order="F")):
        if symmetric and idx[0] > idx[1]:
            continue
        d = np.zeros_like(x)
        d[idx] = 1.0
        if symmetric:
            d[idx[::-1]] = 1.0
        columns.append(d.reshape(-1, order="F"))
    return np.stack(columns, axis=1)
