"""Matrix-function kernels, written once for any array namespace `xp`.

Layer L0: imports nothing, so that the generated modules import only their
library.  Each kernel takes the namespace as its first argument and uses only operators and functions that NumPy, PyTorch, JAX and
the array API standard share.  numeric.py runs them with NumPy; the code
targets copy their source into the generated modules (SciPy is not needed at
run time).  docs/matrix-functions.md gives the definitions; tests/test_matfun.py
checks the kernels against eigendecompositions and power series.
"""
from __future__ import annotations


def _expm(xp, a):
    """exp(A) by scaling and squaring with the [13/13] Padé approximant (Higham 2005)."""
    b = (64764752532480000.0, 32382376266240000.0, 7771770303897600.0, 1187353796428800.0,
         129060195264000.0, 10559470521600.0, 670442572800.0, 33522128640.0, 1323241920.0,
         40840800.0, 960960.0, 16380.0, 182.0, 1.0)
    norm = float(xp.linalg.matrix_norm(a, ord=1))
    if not norm < float("inf"):                       # inf or nan
        return a * float("nan")
    s = 0
    while norm > 5.371920351148152 * 2.0 ** s:        # θ13: the Padé error is below 2⁻⁵³
        s += 1
    a = a / 2.0 ** s
    eye = xp.eye(a.shape[0], dtype=a.dtype)
    a2 = a @ a
    a4 = a2 @ a2
    a6 = a4 @ a2
    u = a @ (a6 @ (b[13] * a6 + b[11] * a4 + b[9] * a2) + b[7] * a6 + b[5] * a4 + b[3] * a2 + b[1] * eye)
    v = a6 @ (b[12] * a6 + b[10] * a4 + b[8] * a2) + b[6] * a6 + b[4] * a4 + b[2] * a2 + b[0] * eye
    r = xp.linalg.solve(v - u, v + u)
    for _ in range(s):
        r = r @ r
    return r


def _sqrtm(xp, a):
    """The principal square root by the scaled product form of the Denman–Beavers
    iteration (Higham, Functions of Matrices, (6.29)); A has no eigenvalue on
    the closed negative real axis."""
    n = a.shape[0]
    eye = xp.eye(n, dtype=a.dtype)
    m, y = a, a
    for _ in range(100):
        logdet = float(xp.linalg.slogdet(m)[1])
        if not abs(logdet) < float("inf"):
            return a * float("nan")
        mu2 = 2.718281828459045 ** (-logdet / n)      # μ², μ = |det M|^(-1/2n)
        minv = xp.linalg.inv(m)
        y = (0.5 * mu2 ** 0.5) * (y @ (eye + minv / mu2))
        m = 0.5 * eye + 0.25 * (mu2 * m + minv / mu2)
        if float(xp.linalg.matrix_norm(m - eye, ord=1)) <= 1e-14 * n:
            break
    return y


def _logm(xp, a):
    """The principal logarithm by inverse scaling and squaring: square roots until
    ‖A − I‖₁ ≤ 1/4, then log(I + X) = Σ (−1)^(j+1) Xʲ/j (40 terms: error below 4⁻⁴⁰)."""
    eye = xp.eye(a.shape[0], dtype=a.dtype)
    k = 0
    while float(xp.linalg.matrix_norm(a - eye, ord=1)) > 0.25:
        if k == 60:
            return a * float("nan")
        a = _sqrtm(xp, a)
        k += 1
    x = a - eye
    terms = 40
    r = ((-1.0) ** (terms + 1) / terms) * eye
    for j in range(terms - 1, 0, -1):
        r = ((-1.0) ** (j + 1) / j) * eye + x @ r
    return 2.0 ** k * (x @ r)


def _frechet_adj(xp, f, y, g):
    """f_adj(Y, G) = L_f(Yᵀ, G), the upper-right block of f([[Yᵀ, G], [0, Yᵀ]])
    (Higham, Functions of Matrices, (3.16)); G is scaled to Y's size first, for accuracy."""
    n = y.shape[0]
    yt = y.T
    size = float(xp.linalg.matrix_norm(g, ord=1))
    scale = float(xp.linalg.matrix_norm(y, ord=1)) / size if size > 0 else 1.0
    scale = scale if 0 < scale < float("inf") else 1.0
    top = xp.concat([yt, scale * g], axis=1)
    bottom = xp.concat([xp.zeros_like(g), yt], axis=1)
    return f(xp, xp.concat([top, bottom], axis=0))[:n, n:] / scale


def _frechet_jac(xp, f, y):
    """The n²×n² matrix J with vec(f_adj(Y, M)) = J vec(M) (vec stacks columns):
    its k-th column is vec(f_adj(Y, E_k)), E_k the k-th unit matrix."""
    n = y.shape[0]
    units = xp.eye(n * n, dtype=y.dtype)
    columns = [xp.reshape(_frechet_adj(xp, f, y, xp.reshape(units[k, :], (n, n)).T).T, (n * n,))
               for k in range(n * n)]
    return xp.stack(columns, axis=1)


def _spectral(xp, name, s):
    """f(S) = V f(Λ) Vᵀ for a symmetric S = V Λ Vᵀ; name is exp, log or sqrt."""
    w, v = xp.linalg.eigh(s)
    fw = {"exp": xp.exp, "log": xp.log, "sqrt": xp.sqrt}[name](w)
    return (v * fw[None, :]) @ v.T


def _loewner_adj(xp, name, s, g):
    """L_f(S, G) = V (F ⊙ (Vᵀ G V)) Vᵀ for a symmetric S = V Λ Vᵀ (Daleckii–Krein), F the
    Loewner matrix of divided differences (f(λᵢ) − f(λⱼ))/(λᵢ − λⱼ), f'(λᵢ) where they meet,
    in forms without cancellation for close eigenvalues.  Here f_adj(S, G) = L_f(S, G)."""
    w, v = xp.linalg.eigh(s)
    a, b = w[:, None], w[None, :]
    d = a - b
    same = d == 0
    step = xp.where(same, xp.ones_like(d), d)
    if name == "sqrt":
        f = 1.0 / (xp.sqrt(a) + xp.sqrt(b))
    elif name == "exp":
        f = xp.exp(b) * xp.where(same, xp.ones_like(d), xp.expm1(d) / step)
    else:
        f = xp.where(same, 1.0 / (b + 0.0 * a), xp.log1p(d / b) / step)
    return v @ (f * (v.T @ g @ v)) @ v.T


def _polar(xp, x):
    """U Vᵀ of the thin SVD X = U Σ Vᵀ: the gradient of the nuclear norm (full rank)."""
    u, _, vh = xp.linalg.svd(x, full_matrices=False)
    return u @ vh


KERNELS = {"_polar": _polar, "_spectral": _spectral, "_loewner_adj": _loewner_adj, "_expm": _expm, "_sqrtm": _sqrtm, "_logm": _logm,
           "_frechet_adj": _frechet_adj, "_frechet_jac": _frechet_jac}
