"""Logistic-regression Hessian, X 2000×200, float64: matcalc's generated
hessian_w against hand-written NumPy and jax.hessian (jit, CPU), timed side by
side in one process.  Medians of repeated runs; ratios against jax.

    python bench/hessian_logistic.py            (pip install -r bench/requirements.txt first)
"""
from __future__ import annotations

import os
import statistics
import sys
import time

os.environ.setdefault("JAX_ENABLE_X64", "1")
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=true")

import numpy as np

import matcalc

EXPR = "sum(log(1 + exp(-y .* (X*w))))"
N, P, REPEATS = 2000, 200, 50


def median_ms(fn, repeats=REPEATS) -> float:
    fn()                                   # warm-up (and jit compile)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1e3 * statistics.median(times)


def main() -> None:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((N, P))
    y = rng.choice([-1.0, 1.0], N)
    w = 0.1 * rng.standard_normal(P)

    generated = matcalc.hessian(EXPR, wrt="w").function()
    H = generated.hessian_w(y=y, X=X, w=w)

    def hand():
        p = 1.0 / (1.0 + np.exp(y * (X @ w)))
        return (X.T * (p * (1.0 - p))) @ X            # y² = 1 for ±1 labels

    rows = [("matcalc generated hessian_w", lambda: generated.hessian_w(y=y, X=X, w=w)),
            ("hand-written NumPy", hand)]
    assert np.allclose(hand(), H)
    try:
        import jax
        import jax.numpy as jnp
        jax.config.update("jax_enable_x64", True)

        def loss(w_, X_, y_):
            return jnp.sum(jnp.logaddexp(0.0, -y_ * (X_ @ w_)))
        jax_hessian = jax.jit(jax.hessian(loss))
        Xj, yj, wj = jnp.asarray(X), jnp.asarray(y), jnp.asarray(w)
        assert np.allclose(np.asarray(jax_hessian(wj, Xj, yj)), H)
        rows.append(("jax.hessian (jit, CPU)", lambda: jax_hessian(wj, Xj, yj).block_until_ready()))
    except ImportError:
        print("jax not installed: pip install -r bench/requirements.txt", file=sys.stderr)

    results = [(name, median_ms(fn)) for name, fn in rows]
    reference = dict(results).get("jax.hessian (jit, CPU)")
    print(f"Logistic Hessian, X {N}x{P}, float64, median of {REPEATS} runs")
    print("| implementation | median ms | × jax |")
    print("|---|---:|---:|")
    for name, ms in results:
        ratio = f"{reference / ms:.2f}× faster" if reference else "-"
        print(f"| {name} | {ms:.2f} | {ratio} |")


if __name__ == "__main__":
    main()
