"""Derivatives as linear maps: matcalc's hvp against its value_and_grad and JAX's
jvp-of-grad, Newton-CG through d.objective against scikit-learn and a JAX Newton-CG,
and the generated module's size against the number of derivatives.

    python bench/linear_maps.py [--quick]     (pip install -r bench/requirements.txt first)

Timed side by side (interleaved rounds) in one process, float64, 2 threads, as
bench/generated_code.py.  Every implementation is checked against matcalc's
result before it is timed.
"""
from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C
import numpy as np

import matcalc

LOGISTIC = "sum(log(1 + exp(-y .* (X*w)))) + lambda*norm2(w)^2"
MLP = "H1 = tanh(W1*X); L = norm2(W2*H1 - Y)^2"
GOAL = 3.0                 # hvp within 3× value_and_grad (issue 14)


def close(got, want, what):
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    np.testing.assert_allclose(got, want, rtol=1e-7, atol=1e-9 * max(1.0, float(np.max(np.abs(want)))), err_msg=what)


def _table(rows, times, reference):
    med = {name: C.median(times[name]) for name, _ in rows}
    body = [[name, C.ms(med[name]), C.ms(min(times[name])), C.spread(times[name]),
             f"{med[name] / med[reference]:.2f}"] for name, _ in rows]
    how = C.rounds(times)
    return how, C.table(["implementation", "median ms", "min ms", "spread (IQR)", f"÷ {reference}"], body), med


# ------------------------------------------------------------------ hvp

def logistic_hvp(repeats):
    n, p = 5000, 500
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((n, p)), rng.choice([-1.0, 1.0], n)
    w, v, lam = 0.05 * rng.standard_normal(p), rng.standard_normal(p), 0.5
    f = matcalc.hessian(LOGISTIC, wrt="w").function()
    g = matcalc.grad(LOGISTIC, wrt="w").function()
    args = dict(y=y, X=X, w=w, lambda_=lam)
    (ref,) = f.hvp(**args, dw=v)
    H = f.hessian_w(**args)
    close(ref, H @ v, "hvp against hessian_w @ v")
    rows = [("matcalc value_and_grad", lambda: g.value_and_grad(**args)),
            ("matcalc hvp", lambda: f.hvp(**args, dw=v))]
    jax = C.setup_jax()
    if jax:
        import jax.numpy as jnp

        def loss(w_, X_, y_):
            return jnp.sum(jnp.log1p(jnp.exp(-y_ * (X_ @ w_)))) + lam * jnp.sum(w_ * w_)
        Xj, yj, wj, vj = map(jnp.asarray, (X, y, w, v))
        jvg = jax.jit(jax.value_and_grad(loss))
        jhvp = jax.jit(lambda w_, v_, X_, y_: jax.jvp(lambda u: jax.grad(loss)(u, X_, y_), (w_,), (v_,))[1])
        close(jhvp(wj, vj, Xj, yj), ref, "jax hvp")
        rows += [("jax.jit(value_and_grad)", lambda: jax.block_until_ready(jvg(wj, Xj, yj))),
                 ("jax.jit(jvp of grad)", lambda: jax.block_until_ready(jhvp(wj, vj, Xj, yj)))]
    return rows, "matcalc value_and_grad"


def mlp_hvp(repeats):
    width, batch = 512, 256
    rng = np.random.default_rng(1)
    X, Y = rng.standard_normal((width, batch)), rng.standard_normal((width, batch))
    W1, W2 = (rng.standard_normal((width, width)) / np.sqrt(width) for _ in range(2))
    V1, V2 = (rng.standard_normal((width, width)) for _ in range(2))
    hvp = matcalc.hessian(MLP, wrt=["W1", "W2"]).function().hvp      # the Hessian itself is never built
    vg = matcalc.grad(MLP, wrt=["W1", "W2"]).function().value_and_grad
    args = dict(W1=W1, X=X, W2=W2, Y=Y)
    ref = hvp(**args, dW1=V1, dW2=V2)
    rows = [("matcalc value_and_grad", lambda: vg(**args)),
            ("matcalc hvp", lambda: hvp(**args, dW1=V1, dW2=V2))]
    h = 1e-6                                            # the hvp is the gradient's derivative
    plus = vg(**{**args, "W1": W1 + h * V1, "W2": W2 + h * V2})[1:]
    minus = vg(**{**args, "W1": W1 - h * V1, "W2": W2 - h * V2})[1:]
    for a, p_, m in zip(ref, plus, minus):
        np.testing.assert_allclose(a, (p_ - m) / (2 * h), rtol=1e-4, atol=1e-4 * np.max(np.abs(a)))
    jax = C.setup_jax()
    if jax:
        import jax.numpy as jnp

        def loss(Ws, X_, Y_):
            W1_, W2_ = Ws
            R = W2_ @ jnp.tanh(W1_ @ X_) - Y_
            return jnp.sum(R * R)
        Xj, Yj = jnp.asarray(X), jnp.asarray(Y)
        Wj, Vj = (jnp.asarray(W1), jnp.asarray(W2)), (jnp.asarray(V1), jnp.asarray(V2))
        jvg = jax.jit(jax.value_and_grad(loss))
        jhvp = jax.jit(lambda Ws, Vs, X_, Y_: jax.jvp(lambda u: jax.grad(loss)(u, X_, Y_), (Ws,), (Vs,))[1])
        for a, b in zip(jhvp(Wj, Vj, Xj, Yj), ref):
            close(a, b, "jax mlp hvp")
        rows += [("jax.jit(value_and_grad)", lambda: jax.block_until_ready(jvg(Wj, Xj, Yj))),
                 ("jax.jit(jvp of grad)", lambda: jax.block_until_ready(jhvp(Wj, Vj, Xj, Yj)))]
    return rows, "matcalc value_and_grad"


# ------------------------------------------------------------------ Newton-CG

def newton_cg(quick):
    """Fits of L2-regularised logistic regression (X 5000×500) to the same optimum:
    each solver runs to its own tolerance 1e-8 and the table shows what it reached."""
    from scipy.optimize import minimize
    n, p = (2000, 200) if quick else (5000, 500)
    rng = np.random.default_rng(2)
    X = rng.standard_normal((n, p)) / np.sqrt(p)
    y = np.sign(X @ rng.standard_normal(p) + 0.1 * rng.standard_normal(n))
    lam = 0.5                                  # sklearn: C = 1 / (2 lam) with fit_intercept=False
    t = time.perf_counter()
    o = matcalc.grad(LOGISTIC, wrt="w").objective(X=X, y=y, lambda_=lam)
    build = time.perf_counter() - t

    def loss(w):
        return o.fun(w)

    def matcalc_fit():
        return minimize(o.fun, o.x0, jac=o.jac, hessp=o.hessp, method="Newton-CG", options={"xtol": 1e-8}).x
    fits = [("matcalc objective + scipy Newton-CG (hessp)", matcalc_fit)]
    try:
        from sklearn.linear_model import LogisticRegression
        labels = (y > 0).astype(int)
        for solver in ("newton-cg", "lbfgs"):
            model = LogisticRegression(C=1 / (2 * lam), fit_intercept=False, solver=solver, tol=1e-8, max_iter=1000)
            fits.append((f"scikit-learn LogisticRegression({solver})",
                         lambda m=model: m.fit(X, labels).coef_.ravel()))
    except ImportError:
        print("scikit-learn not installed", file=sys.stderr)
    jax = C.setup_jax()
    if jax:
        import jax.numpy as jnp
        Xj, yj = jnp.asarray(X), jnp.asarray(y)

        def jloss(w):
            return jnp.sum(jnp.log1p(jnp.exp(-yj * (Xj @ w)))) + lam * jnp.sum(w * w)
        jf, jg = jax.jit(jloss), jax.jit(jax.grad(jloss))
        jh = jax.jit(lambda w, v: jax.jvp(jax.grad(jloss), (w,), (v,))[1])

        def jax_fit():
            return minimize(lambda w: float(jf(w)), np.zeros(p), jac=lambda w: np.asarray(jg(w)),
                            hessp=lambda w, v: np.asarray(jh(w, v)), method="Newton-CG", options={"xtol": 1e-8}).x
        jax_fit()                              # compile
        fits.append(("JAX (jit fun, grad, jvp-of-grad) + scipy Newton-CG", jax_fit))
    solutions = {name: fit() for name, fit in fits}
    best = min(loss(w) for w in solutions.values())
    times = C.interleaved(fits, 3 if quick else 9, warmup=1, quiet=0.25, max_seconds=120)
    reference = fits[0][0]
    med = {name: C.median(times[name]) for name, _ in fits}
    body = [[name, C.ms(med[name]), f"{med[name] / med[reference]:.2f}", f"{loss(w) - best:.1e}",
             f"{np.linalg.norm(o.jac(w)):.1e}"] for name, w in solutions.items()]
    text = (f"### Newton-CG: L2-regularised logistic regression, X {n}×{p}\n\n"
            f"Each solver to tolerance 1e-8 (scipy: xtol; scikit-learn: tol), median of "
            f"{times.kept + (times.discarded if times.noisy_counted else 0)} interleaved rounds "
            f"(other processes kept {times.load:.2f} cores busy on average). The loss above the best of all and "
            f"the gradient's norm at the answer show they reached the same optimum. matcalc's derivation, "
            f"code generation and compilation, once: {build * 1000:.0f} ms (not in the times).\n\n"
            + C.table(["implementation", "median ms", "÷ matcalc", "loss − best", "‖gradient‖"], body))
    return text, med, reference


# ------------------------------------------------------------------ module size

def _network(layers):
    lines = ["h0 = x"] + [f"h{i} = tanh(W{i}*h{i - 1})" for i in range(1, layers + 1)]
    return "\n".join(lines + [f"L = norm2(h{layers} - y)^2"]), [f"W{i}" for i in range(1, layers + 1)]


def module_size():
    rows, sizes = [], {}
    for layers in (32, 64, 128):
        t = time.perf_counter()
        source = matcalc.grad(*_network(layers)).numpy()
        sizes[layers] = len(source.encode())
        rows.append([layers, f"{sizes[layers] / 1000:.1f} kB",
                     f"×{sizes[layers] / sizes[layers // 2]:.2f}" if layers // 2 in sizes else "",
                     C.seconds(time.perf_counter() - t)])
    text = ("### Generated module size against the number of derivatives\n\n"
            "The gradient of a tanh network with respect to every layer's weights "
            "(`h_i = tanh(W_i*h_(i-1))`, one derivative per layer), NumPy module.\n\n"
            + C.table(["layers (= derivatives)", "module", "per doubling", "derivation + code"], rows))
    return text, sizes


def run(quick: bool = False) -> dict:
    repeats = 10 if quick else 40
    flags, parts = [], ["## Linear maps: hvp, Newton-CG, module size"]
    for title, problem in [("Hessian-vector product, logistic regression, X 5000×500", logistic_hvp),
                           ("Hessian-vector product, two-layer tanh network 512 wide, batch 256", mlp_hvp)]:
        rows, reference = problem(repeats)
        times = C.interleaved(rows, repeats, quiet=0.25)
        how, table, med = _table(rows, times, reference)
        ratio = med["matcalc hvp"] / med[reference]
        parts.append(f"### {title}\n\n{how}. Goal: hvp ≤ {GOAL:.0f}× value_and_grad; here "
                     f"{ratio:.2f}×.\n\n{table}")
        if ratio > GOAL:
            flags.append(f"{title}: hvp {ratio:.2f}× value_and_grad (goal {GOAL:.0f}×)")
    text, med, reference = newton_cg(quick)
    parts.append(text)
    slower = [n for n in med if n != reference and med[n] < med[reference]]
    flags += [f"Newton-CG: {n} is faster than matcalc's" for n in slower]
    text, sizes = module_size()
    parts.append(text)
    if sizes[128] / sizes[64] > 2.5:
        flags.append(f"module size grows ×{sizes[128] / sizes[64]:.2f} per doubling of the derivatives")
    return {"markdown": "\n\n".join(parts), "flags": flags}


def main(argv=None) -> dict:
    argv = sys.argv[1:] if argv is None else argv
    out = run(quick="--quick" in argv)
    print(out["markdown"])
    for f in out["flags"]:
        print("FLAG:", f)
    return out


if __name__ == "__main__":
    main()
