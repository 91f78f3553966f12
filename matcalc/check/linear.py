"""The checks of derivatives as linear maps: a differential along a direction, a
Hessian block ∂²L/∂X∂Y, and the generated module's Hessian-vector product, each
against differences of the value (never against another of matcalc's results)."""
from __future__ import annotations

import numpy as np

from ..numeric import from_user, to_user
from .differences import (HESSIAN_DIRECTIONS, HESSIAN_ENTRYWISE_UP_TO, ROUNDING, STEP2, discrepancy,
                          entry_directions, first_differences, random_directions)


def along(direction: np.ndarray):
    """The comparison of a differential df (evaluated along `direction`, a column vec(dX))
    with the first difference of the value along it."""
    def compare(candidates, point, name, fixed, symmetric, value_of, terms, rng) -> list[float]:
        numeric, noise = first_differences(value_of, point, name, fixed, direction, terms)
        return [discrepancy(a.reshape(-1, 1, order="F"), numeric, noise)
                if a is not None and a.size == numeric.shape[0] else float("inf") for a in candidates]
    return compare


def block(x_name: str, y_name: str, x_symmetric: bool, y_symmetric: bool):
    """The comparison of a Hessian block ∂²L/∂vec(X)∂vec(Y) with mixed second differences
    of the value along pairs of directions, one in X and one in Y."""
    def compare(candidates, point, name, fixed, symmetric, value_of, terms, rng) -> list[float]:
        x, y = point[x_name], point[y_name]
        U, V = (random_directions(z, sym, rng, HESSIAN_DIRECTIONS) if z.size > HESSIAN_ENTRYWISE_UP_TO
                else entry_directions(z, sym) for z, sym in ((x, x_symmetric), (y, y_symmetric)))
        numeric, noise = np.zeros((U.shape[1], V.shape[1])), np.zeros((U.shape[1], V.shape[1]))
        for i, u in enumerate(U.T):
            for j, v in enumerate(V.T):
                numeric[i, j], noise[i, j] = mixed_difference(
                    value_of, point, fixed, {x_name: u.reshape(x.shape, order="F")},
                    {y_name: v.reshape(y.shape, order="F")}, terms)
        return [discrepancy(U.T @ a @ V, numeric, noise) if a is not None and a.shape == (x.size, y.size)
                else float("inf") for a in candidates]
    return compare


def mixed_difference(value_of, point, fixed, u: dict, v: dict, terms=0.0) -> tuple[float, float]:
    """d²L(point + s u + t v)/ds dt at 0 (u, v: name -> direction), by four-point mixed
    differences Richardson-extrapolated from h and 2h, and an estimate of its error
    (infinite where the stencil crosses a kink)."""
    scale = max([1.0] + [float(np.max(np.abs(point[n]), initial=0.0)) for n in set(u) | set(v)])
    h = STEP2 * scale
    centre = value_of.sides(point, fixed)
    smooth = True

    def f(a, b):
        nonlocal smooth
        moved = {n: point[n] + a * u.get(n, 0.0) + b * v.get(n, 0.0) for n in set(u) | set(v)}
        value = float(value_of({**point, **moved}, fixed).item())
        smooth = smooth and value_of.same_sides(centre)
        return value
    est, size = {}, terms
    for k in (1, 2):
        values = [f(k * h, k * h), f(k * h, -k * h), f(-k * h, k * h), f(-k * h, -k * h)]
        est[k] = (values[0] - values[1] - values[2] + values[3]) / (4 * (k * h) ** 2)
        size = max(size, max(abs(x) for x in values))
    if not smooth:
        return 0.0, float("inf")
    return (4 * est[1] - est[2]) / 3, abs(est[1] - est[2]) + ROUNDING * size / h ** 2


def hvp_error(module, names, program, env, functions, value_of, terms, rng, pairs: int = 3) -> float:
    """The generated hvp along random directions v (every variable at once), read with
    random u: Σ_X ⟨u_X, hvp_X(v)⟩ against the mixed second difference of the value along u, v."""
    worst = 0.0
    args = [to_user(env[n], s.shape) for n, s in program.inputs.items()]
    opaque = sorted(program.functions)
    args += [functions[f] for f in opaque] + [functions["grad_" + f] for f in opaque]

    def symmetric(n):
        return program.inputs[n].symmetric
    for _ in range(pairs):
        u = {n: random_directions(env[n], symmetric(n), rng, 1).reshape(env[n].shape, order="F") for n in names}
        v = {n: random_directions(env[n], symmetric(n), rng, 1).reshape(env[n].shape, order="F") for n in names}
        try:
            with np.errstate(all="ignore"):
                got = module.hvp(*args, *[to_user(v[n], program.inputs[n].shape) for n in names])
            analytic = sum(float(np.sum(u[n] * from_user(g, program.inputs[n].shape))) for n, g in zip(names, got))
        except Exception:        # noqa: BLE001 -- whatever the generated code raises is a failed check
            return float("inf")
        numeric, noise = mixed_difference(value_of, env, frozenset(), u, v, terms)
        worst = max(worst, discrepancy(np.array([[analytic]]), np.array([[numeric]]), np.array([[noise]])))
    return worst
