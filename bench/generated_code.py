"""matcalc's generated NumPy code against hand-written NumPy, JAX, PyTorch and HIPS
autograd, float64, 2 threads, all timed side by side (interleaved rounds) in one
process; medians, and ratios against hand-written NumPy (time ÷ hand-written time,
so 1.10 is 10% slower).  Every implementation is checked against matcalc's
result (assert allclose) before anything is timed.

    python bench/generated_code.py [--quick]    (pip install -r bench/requirements.txt first)

Problems: logistic-regression loss and gradient (X 5000×500), its Hessian
(X 2000×200), a two-layer tanh network (512 → 512 → 512, batch 256) value and
gradient with respect to both weight matrices; and, for each, the cost of
matcalc's value_and_grad over its value alone.
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C
import numpy as np

import matcalc

LOGISTIC = "sum(log(1 + exp(-y .* (X*w))))"
MLP = "H1 = tanh(W1*X); L = norm2(W2*H1 - Y)^2"
QUIET = 0.25           # a block of rounds in which other processes kept more cores busy is thrown away
SLOWER = 1.10          # a matcalc row slower than hand-written NumPy by more than this is flagged


def close(got, want, what: str) -> None:
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    scale = max(1.0, float(np.max(np.abs(want))))
    np.testing.assert_allclose(got, want, rtol=1e-7, atol=1e-9 * scale, err_msg=what)


def agree(name: str, out, reference) -> None:
    """out and reference are tuples (value, derivative, ...)."""
    assert len(out) == len(reference), name
    for i, (a, b) in enumerate(zip(out, reference)):
        close(a, b, f"{name}: output {i} disagrees with matcalc")


def _section(title: str, rows, times, reference: str, extra_ref: str | None = None,
             note: str = "") -> tuple[str, dict[str, float]]:
    med = {name: C.median(times[name]) for name, _ in rows}
    header = ["implementation", "median ms", "min ms", "spread (IQR)", f"÷ {reference}"]
    if extra_ref:
        header.append(f"÷ {extra_ref}")
    body = []
    for name, _ in rows:
        row = [name, C.ms(med[name]), C.ms(min(times[name])), C.spread(times[name]),
               f"{med[name] / med[reference]:.2f}"]
        if extra_ref:
            row.append(f"{med[name] / med[extra_ref]:.2f}")
        body.append(row)
    if times.noisy_counted:
        how = (f"Median of {times.kept + times.discarded} interleaved rounds: only {times.kept} quiet rounds "
               f"came within the time limit, so the noisy ones count too (other processes kept "
               f"{times.load:.2f} cores busy on average){note}")
    else:
        how = (f"Median of {times.kept} interleaved rounds"
               + (f" (of {times.wanted} wanted: the time limit came first)" if times.capped else "")
               + f", taken while other processes kept under {QUIET} cores busy ({times.discarded} rounds "
               f"thrown away; {times.load:.2f} cores on average in the rounds kept){note}")
    text = f"### {title}\n\n{how}.\n\n" + C.table(header, body)
    return text, med


# ------------------------------------------------------------------ logistic regression

def logistic(repeats: int):
    n, p = 5000, 500
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, p))
    y = rng.choice([-1.0, 1.0], n)
    w = 0.05 * rng.standard_normal(p)
    v = rng.standard_normal(n)

    gen = matcalc.grad(LOGISTIC, wrt="w").function()
    ref = gen.value_and_grad(y=y, X=X, w=w)

    def hand():
        e = np.exp(-y * (X @ w))
        return np.sum(np.log1p(e)), X.T @ (-y * e / (1.0 + e))

    def hand_value():
        return np.sum(np.log1p(np.exp(-y * (X @ w))))

    rows = [("matcalc value_and_grad", lambda: gen.value_and_grad(y=y, X=X, w=w)),
            ("matcalc grad_w", lambda: gen.grad_w(y=y, X=X, w=w)),
            ("hand-written NumPy", hand)]
    agree("hand-written NumPy", hand(), ref)
    close(gen.grad_w(y=y, X=X, w=w), ref[1], "grad_w against value_and_grad")

    jax = C.setup_jax()
    if jax:
        import jax.numpy as jnp

        def jloss(w_, X_, y_):
            return jnp.sum(jnp.log(1.0 + jnp.exp(-y_ * (X_ @ w_))))
        jvg = jax.jit(jax.value_and_grad(jloss))
        Xj, yj, wj = jnp.asarray(X), jnp.asarray(y), jnp.asarray(w)
        agree("jax", jvg(wj, Xj, yj), ref)
        rows.append(("jax.jit(jax.value_and_grad)", lambda: jax.block_until_ready(jvg(wj, Xj, yj))))

    torch = C.setup_torch()
    if torch:
        Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
        wt = torch.from_numpy(w.copy()).requires_grad_()

        def tvg():
            loss = torch.sum(torch.log(1.0 + torch.exp(-yt * (Xt @ wt))))
            (g,) = torch.autograd.grad(loss, wt)
            return loss.item(), g
        agree("torch", tuple(np.asarray(t.detach()) if hasattr(t, "detach") else t for t in tvg()), ref)
        rows.append(("PyTorch autograd (forward+backward)", tvg))

    ag = C.setup_autograd()
    if ag:
        import autograd.numpy as anp

        def aloss(w_, X_, y_):
            return anp.sum(anp.log(1.0 + anp.exp(-y_ * anp.dot(X_, w_))))
        avg = ag.value_and_grad(aloss)
        agree("autograd", avg(w, X, y), ref)
        rows.append(("HIPS autograd", lambda: avg(w, X, y)))

    rows.append(("floor: the two mat-vecs alone (X@w, X.T@v)", lambda: (X @ w, X.T @ v)))
    rows.append(("matcalc value", lambda: gen.value(y=y, X=X, w=w)))
    rows.append(("hand-written NumPy value", hand_value))
    close(gen.value(y=y, X=X, w=w), ref[0], "value")
    close(hand_value(), ref[0], "hand value")

    times = C.interleaved(rows, repeats, quiet=QUIET)
    text, med = _section(f"Logistic regression loss + gradient, X {n}×{p}", rows, times,
                         "hand-written NumPy")
    return text, med


# ------------------------------------------------------------------ logistic Hessian

def hessian(repeats: int):
    n, p = 2000, 200
    rng = np.random.default_rng(1)
    X = rng.standard_normal((n, p))
    y = rng.choice([-1.0, 1.0], n)
    w = 0.1 * rng.standard_normal(p)

    gen = matcalc.hessian(LOGISTIC, wrt="w").function()
    H = gen.hessian_w(y=y, X=X, w=w)

    def weights():
        q = 1.0 / (1.0 + np.exp(y * (X @ w)))
        return q * (1.0 - q) * (y * y)

    def hand_syrk():
        Z = X * np.sqrt(weights())[:, None]
        return Z.T @ Z                         # NumPy recognises A.T @ A: BLAS syrk

    def hand_gemm():
        return (X.T * weights()) @ X

    hand_value = lambda: np.sum(np.log1p(np.exp(-y * (X @ w))))
    rows = [("matcalc hessian_w", lambda: gen.hessian_w(y=y, X=X, w=w)),
            ("hand-written NumPy, syrk-shaped (Zᵀ Z)", hand_syrk),
            ("hand-written NumPy, gemm-shaped ((Xᵀ·v) X)", hand_gemm)]
    close(hand_syrk(), H, "syrk")
    close(hand_gemm(), H, "gemm")

    jax = C.setup_jax()
    if jax:
        import jax.numpy as jnp

        def jloss(w_, X_, y_):
            return jnp.sum(jnp.log(1.0 + jnp.exp(-y_ * (X_ @ w_))))
        jh = jax.jit(jax.hessian(jloss))
        Xj, yj, wj = jnp.asarray(X), jnp.asarray(y), jnp.asarray(w)
        close(jh(wj, Xj, yj), H, "jax.hessian")
        rows.append(("jax.hessian (jit)", lambda: jh(wj, Xj, yj).block_until_ready()))

    torch = C.setup_torch()
    if torch:
        from torch.autograd.functional import hessian as thess
        Xt, yt, wt = torch.from_numpy(X), torch.from_numpy(y), torch.from_numpy(w.copy())

        def tloss(w_):
            return torch.sum(torch.log(1.0 + torch.exp(-yt * (Xt @ w_))))
        close(thess(tloss, wt).numpy(), H, "torch hessian")
        close(thess(tloss, wt, vectorize=True).numpy(), H, "torch hessian (vectorize)")
        rows.append(("torch.autograd.functional.hessian", lambda: thess(tloss, wt)))
        rows.append(("torch.autograd.functional.hessian(vectorize=True)",
                     lambda: thess(tloss, wt, vectorize=True)))

    rows.append(("matcalc value", lambda: gen.value(y=y, X=X, w=w)))
    rows.append(("matcalc value_and_grad (value + Hessian)", lambda: gen.value_and_grad(y=y, X=X, w=w)))
    rows.append(("hand-written NumPy value", hand_value))
    vg = gen.value_and_grad(y=y, X=X, w=w)
    close(vg[1], H, "value_and_grad's Hessian")
    close(vg[0], hand_value(), "value")

    times = C.interleaved(rows, repeats, quiet=QUIET)
    text, med = _section(f"Logistic regression Hessian, X {n}×{p}", rows, times,
                         "hand-written NumPy, gemm-shaped ((Xᵀ·v) X)",
                         "hand-written NumPy, syrk-shaped (Zᵀ Z)")
    med["hand-written NumPy value_and_hessian"] = med["hand-written NumPy, gemm-shaped ((Xᵀ·v) X)"] \
        + med["hand-written NumPy value"]
    return text, med


# ------------------------------------------------------------------ two-layer MLP

def mlp(repeats: int):
    d, h, k, batch = 512, 512, 512, 256
    rng = np.random.default_rng(2)
    W1 = rng.standard_normal((h, d)) / np.sqrt(d)
    W2 = rng.standard_normal((k, h)) / np.sqrt(h)
    X = rng.standard_normal((d, batch))
    Y = rng.standard_normal((k, batch))

    gen = matcalc.grad(MLP, wrt=["W1", "W2"]).function()
    ref = gen.value_and_grad(W1=W1, X=X, W2=W2, Y=Y)

    def hand():
        H = np.tanh(W1 @ X)
        R = W2 @ H - Y
        G = 2.0 * R
        return np.vdot(R, R), ((W2.T @ G) * (1.0 - H * H)) @ X.T, G @ H.T

    def hand_value():
        R = W2 @ np.tanh(W1 @ X) - Y
        return np.vdot(R, R)

    rows = [("matcalc value_and_grad", lambda: gen.value_and_grad(W1=W1, X=X, W2=W2, Y=Y)),
            ("hand-written NumPy backprop", hand)]
    agree("hand-written NumPy", hand(), ref)

    jax = C.setup_jax()
    if jax:
        import jax.numpy as jnp

        def jloss(W1_, W2_, X_, Y_):
            R = W2_ @ jnp.tanh(W1_ @ X_) - Y_
            return jnp.sum(R * R)
        jvg = jax.jit(jax.value_and_grad(jloss, argnums=(0, 1)))
        args = [jnp.asarray(a) for a in (W1, W2, X, Y)]
        val, (g1, g2) = jvg(*args)
        agree("jax", (val, g1, g2), ref)
        rows.append(("jax.jit(jax.value_and_grad)", lambda: jax.block_until_ready(jvg(*args))))

    torch = C.setup_torch()
    if torch:
        W1t = torch.from_numpy(W1.copy()).requires_grad_()
        W2t = torch.from_numpy(W2.copy()).requires_grad_()
        Xt, Yt = torch.from_numpy(X), torch.from_numpy(Y)

        def tvg():
            R = W2t @ torch.tanh(W1t @ Xt) - Yt
            loss = torch.sum(R * R)
            g1, g2 = torch.autograd.grad(loss, (W1t, W2t))
            return loss.item(), g1, g2
        agree("torch", tuple(t.numpy() if hasattr(t, "numpy") else t for t in tvg()), ref)
        rows.append(("PyTorch autograd (forward+backward)", tvg))

    ag = C.setup_autograd()
    if ag:
        import autograd.numpy as anp

        def aloss(W1_, W2_):
            R = anp.dot(W2_, anp.tanh(anp.dot(W1_, X))) - Y
            return anp.sum(R * R)
        avg = ag.value_and_grad(aloss, argnum=(0, 1)) if _autograd_multi(ag) else None
        if avg is not None:
            val, (g1, g2) = avg(W1, W2)
            agree("autograd", (val, g1, g2), ref)
            rows.append(("HIPS autograd", lambda: avg(W1, W2)))

    rows.append(("matcalc value", lambda: gen.value(W1=W1, X=X, W2=W2, Y=Y)))
    rows.append(("hand-written NumPy value", hand_value))
    close(gen.value(W1=W1, X=X, W2=W2, Y=Y), ref[0], "value")

    times = C.interleaved(rows, repeats, quiet=QUIET)
    text, med = _section(f"Two-layer tanh network, W1 {h}×{d}, W2 {k}×{h}, X {d}×{batch}: "
                         "value + gradient wrt W1 and W2", rows, times, "hand-written NumPy backprop",
                         note=f"; matcalc program `{MLP}`")
    return text, med


def _autograd_multi(ag) -> bool:
    """HIPS autograd takes a tuple argnum from 1.4 on."""
    try:
        ag.value_and_grad(lambda a, b: a * b, argnum=(0, 1))(1.0, 2.0)
        return True
    except TypeError:
        return False


# ------------------------------------------------------------------ report

def run(quick: bool = False) -> dict:
    repeats = 7 if quick else 40
    parts, flags, ratio_rows = [], [], []
    problems = [
        ("logistic loss + gradient", logistic, "matcalc value_and_grad", "matcalc value",
         "hand-written NumPy", "hand-written NumPy value", [("matcalc value_and_grad", "hand-written NumPy"),
                                                            ("matcalc grad_w", "hand-written NumPy"),
                                                            ("matcalc value", "hand-written NumPy value")]),
        ("logistic Hessian", hessian, "matcalc value_and_grad (value + Hessian)", "matcalc value",
         "hand-written NumPy value_and_hessian", "hand-written NumPy value",
         [("matcalc hessian_w", "hand-written NumPy, gemm-shaped ((Xᵀ·v) X)"),
          ("matcalc hessian_w", "hand-written NumPy, syrk-shaped (Zᵀ Z)")]),
        ("two-layer MLP value + gradient", mlp, "matcalc value_and_grad", "matcalc value",
         "hand-written NumPy backprop", "hand-written NumPy value",
         [("matcalc value_and_grad", "hand-written NumPy backprop"),
          ("matcalc value", "hand-written NumPy value")]),
    ]
    for label, fn, vg, val, hvg, hval, checks in problems:
        C.wait_for_quiet(max_wait=5 if quick else 30)
        text, med = fn(repeats)
        parts.append(text)
        print(text + "\n", flush=True)
        ratio_rows.append([label, C.ms(med[val]), C.ms(med[vg]), f"{med[vg] / med[val]:.2f}",
                           f"{med[hvg] / med[hval]:.2f}"])
        for mine, theirs in checks:
            r = med[mine] / med[theirs]
            if r > SLOWER:
                flags.append(f"{label}: {mine} takes {r:.2f}× the time of {theirs} "
                             f"({C.ms(med[mine])} ms against {C.ms(med[theirs])} ms)")
    cost = ("### Gradient/forward cost of matcalc's generated code\n\n"
            "value_and_grad time ÷ value time (for the Hessian row, value_and_grad returns the value and "
            "the Hessian); the same ratio for the hand-written NumPy beside it.\n\n"
            + C.table(["problem", "matcalc value ms", "matcalc value_and_grad ms",
                       "matcalc ratio", "hand-written ratio"], ratio_rows))
    parts.append(cost)
    print(cost, flush=True)
    return {"markdown": "## Generated code against peers\n\n" + "\n\n".join(parts), "flags": flags}


def main(argv=None) -> dict:
    return C.main(run, argv)


if __name__ == "__main__":
    main()
