"""L2-regularised logistic regression by Newton-CG, with matcalc's gradient and hvp.

    python examples/newton_logistic.py          (needs SciPy: pip install 'matcalc-symbolic[optimize]')

matcalc derives the gradient and the Hessian-vector product of the loss; d.objective
binds the data and flattens the variables, giving fun, jac and hessp as
scipy.optimize.minimize takes them.  hessp never forms the 500×500 Hessian: it is the
differential of the gradient, X'*(s .* (X*dw)) + 2*lambda*dw, about the cost of a gradient.
"""
import time

import numpy as np

import matcalc

LOSS = "sum(log(1 + exp(-y .* (X*w)))) + lambda*norm2(w)^2"


def data(samples=5000, features=500, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((samples, features)) / np.sqrt(features)
    w_true = rng.standard_normal(features)
    y = np.sign(X @ w_true + 0.1 * rng.standard_normal(samples))
    return X, y


def fit(X, y, lam=1.0, tol=1e-8):
    d = matcalc.grad(LOSS, wrt="w", let={"y": "vector(m)", "lambda": "scalar"})
    objective = d.objective(X=X, y=y, **{"lambda": lam})
    result = objective.minimize("Newton-CG", options={"xtol": tol})
    return objective.unflatten(result.x)["w"], result, objective


if __name__ == "__main__":
    X, y = data()
    start = time.perf_counter()
    w, result, objective = fit(X, y)
    seconds = time.perf_counter() - start
    print(f"Newton-CG: loss {result.fun:.6f} in {result.nit} iterations, {seconds:.2f} s "
          f"({objective.evaluations['value_and_grad']} value_and_grad, {objective.evaluations['hvp']} hvp calls); "
          f"|gradient| {np.linalg.norm(objective.jac(result.x)):.1e}")
