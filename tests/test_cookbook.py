"""Matrix Cookbook (Petersen & Pedersen, Nov 2012), section 2: derivative identities.

Every row is (id, expression, wrt, let, closed_form):

* `expression` and `closed_form` are written in matcalc's input language;
* `closed_form` is the book's answer in the layout of docs/reference.md (∂L/∂X has
  the shape of X), so e.g. the book's (X⁻¹)ᵀ is written `inv(X)'`;
* `let` holds the declarations the expression needs beyond kinds-by-naming.

For each row the test checks matcalc's gradient three ways:

1. `d.check()` — finite differences at random points of the right domain;
2. matcalc's symbolic result against the closed form, both evaluated with
   matcalc's own numerical evaluator at the same random inputs (rtol 1e-8);
3. the generated NumPy function `grad_<wrt>` against the closed form.

Equation numbers are those of the Nov 2012 edition; an id with a suffix
(`eq57-abs`) is a variant or direct consequence of that equation, and ids
without a number cover the elementwise / softmax / diag / symmetric forms.
For a matrix declared `symmetric(n)` the gradient is sym(G) = (G + Gᵀ)/2 of
the unconstrained gradient G — not the Cookbook's G + Gᵀ − diag(G) of
section 2.9 — so the closed forms in the symmetric group are written that way.
"""
from __future__ import annotations

import builtins
import keyword

import numpy as np
import pytest

import matcalc
from matcalc.check import dimension_sizes, sample_inputs
from matcalc.numeric import Evaluator, run_program, to_user

# --------------------------------------------------------------------------
# The table
# --------------------------------------------------------------------------

SQ = {"X": "matrix(n, n)"}          # X square, where the expression leaves it free

ROWS = [
    # ---- 2.2 Derivatives of a determinant (46)-(58) ---------------------
    # (49) ∂det(X)/∂X = det(X) (X⁻¹)ᵀ
    ("eq49", "det(X)", "X", {}, "det(X)*inv(X)'"),
    # (51) ∂det(AXB)/∂X = det(AXB) (X⁻¹)ᵀ   (A, X, B square)
    ("eq51", "det(A*X*B)", "X", {"A": "matrix(n, n)", "X": "matrix(n, n)", "B": "matrix(n, n)"},
     "det(A*X*B)*inv(X)'"),
    # (52) X square and invertible: ∂det(XᵀAX)/∂X = 2 det(XᵀAX) X⁻ᵀ
    ("eq52", "det(X'*A*X)", "X", SQ, "2*det(X'*A*X)*inv(X)'"),
    # (53) X not square, A symmetric: ∂det(XᵀAX)/∂X = 2 det(XᵀAX) AX(XᵀAX)⁻¹
    ("eq53", "det(X'*A*X)", "X", {"A": "symmetric(n)", "X": "matrix(n, 2)"},
     "2*det(X'*A*X)*A*X*inv(X'*A*X)"),
    # (54) X not square, A general: det(XᵀAX)(AX(XᵀAX)⁻¹ + AᵀX(XᵀAᵀX)⁻¹)
    ("eq54", "det(X'*A*X)", "X", {"A": "matrix(n, n)", "X": "matrix(n, 2)"},
     "det(X'*A*X)*(A*X*inv(X'*A*X) + A'*X*inv(X'*A'*X))"),
    # (55) ∂ln det(XᵀX)/∂X = 2 (X⁺)ᵀ = 2 X (XᵀX)⁻¹   (X tall, full column rank)
    ("eq55", "logdet(X'*X)", "X", {"X": "matrix(n, 2)"}, "2*X*inv(X'*X)"),
    # log of (53): ∂ln det(XᵀAX)/∂X = 2AX(XᵀAX)⁻¹   (A symmetric, X tall)
    ("eq53-logdet", "logdet(X'*A*X)", "X", {"A": "symmetric(n)", "X": "matrix(n, 2)"},
     "2*A*X*inv(X'*A*X)"),
    # (57) ∂ln|det(X)|/∂X = (X⁻¹)ᵀ
    ("eq57", "logdet(X)", "X", {}, "inv(X)'"),
    ("eq57-abs", "log(abs(det(X)))", "X", {}, "inv(X)'"),
    # ... where det can be negative (det(XA) with X, A unconstrained)
    ("eq57-abs-neg", "log(abs(det(X*A)))", "X", {"X": "matrix(n, n)", "A": "matrix(n, n)"}, "inv(X)'"),
    # (58) ∂det(X^k)/∂X = k det(X^k) X⁻ᵀ
    ("eq58-k2", "det(X^2)", "X", {}, "2*det(X^2)*inv(X)'"),
    ("eq58-k3", "det(X^3)", "X", {}, "3*det(X^3)*inv(X)'"),
    # powers of the determinant, from (49): ∂det(X)²/∂X = 2det(X)²X⁻ᵀ, ∂det(X)⁻¹/∂X = −X⁻ᵀ/det(X)
    ("eq49-sq", "det(X)^2", "X", {}, "2*det(X)^2*inv(X)'"),
    ("eq49-recip", "1/det(X)", "X", {}, "-inv(X)'/det(X)"),
    # logdet of a product: ∂ln det(AXB)/∂X = X⁻ᵀ   (from (46))
    ("eq46-logdet-AXB", "logdet(A*X*B)", "X",
     {"A": "matrix(n, n)", "X": "matrix(n, n)", "B": "matrix(n, n)"}, "inv(X)'"),
    # (46) with Y = αX: ∂det(αX)/∂X = det(αX) X⁻ᵀ
    ("eq46-scaled", "det(alpha*X)", "X", {}, "det(alpha*X)*inv(X)'"),

    # ---- 2.3 Derivatives of an inverse (59)-(64) ------------------------
    # (61) ∂aᵀX⁻¹b/∂X = −X⁻ᵀ a bᵀ X⁻ᵀ
    ("eq61", "a'*inv(X)*b", "X", {}, "-inv(X)'*a*b'*inv(X)'"),
    ("eq61-pow", "a'*X^-1*b", "X", {}, "-inv(X)'*a*b'*inv(X)'"),
    # (62) ∂det(X⁻¹)/∂X = −det(X⁻¹)(X⁻¹)ᵀ
    ("eq62", "det(inv(X))", "X", {}, "-det(inv(X))*inv(X)'"),
    # (63) ∂tr(AX⁻¹B)/∂X = −(X⁻¹BAX⁻¹)ᵀ
    ("eq63", "tr(A*inv(X)*B)", "X", {}, "-(inv(X)*B*A*inv(X))'"),
    # (64) ∂tr((X + A)⁻¹)/∂X = −((X + A)⁻¹(X + A)⁻¹)ᵀ
    ("eq64", "tr(inv(X + A))", "X", {}, "-(inv(X + A)*inv(X + A))'"),
    # logdet via the inverse: ∂ln det(X⁻¹)/∂X = −X⁻ᵀ
    ("eq57-inv", "logdet(inv(X))", "X", {}, "-inv(X)'"),
    # (59) twice: ∂tr(AX⁻²)/∂X = −(X⁻²AX⁻¹ + X⁻¹AX⁻²)ᵀ
    ("eq59-sq", "tr(A*X^-2)", "X", {}, "-(inv(X)^2*A*inv(X) + inv(X)*A*inv(X)^2)'"),
    # (59) on a similarity: tr(XAX⁻¹) = tr(A) does not depend on X
    ("eq59-similar", "tr(X*A*inv(X))", "X", {}, "0*X"),

    # ---- 2.4 Derivatives of eigenvalues (67)-(68) -----------------------
    # (67) ∂Σλ(X)/∂X = ∂tr(X)/∂X = I     (68) ∂Πλ(X)/∂X = det(X) X⁻ᵀ
    # (the same identities as eq99 and eq49)

    # ---- 2.5.1 Scalar forms, first order (69)-(76) ----------------------
    # (69) ∂xᵀa/∂x = ∂aᵀx/∂x = a
    ("eq69-xa", "x'*a", "x", {}, "a"),
    ("eq69-ax", "a'*x", "x", {}, "a"),
    # (70) ∂aᵀXb/∂X = a bᵀ
    ("eq70", "a'*X*b", "X", {}, "a*b'"),
    # (71) ∂aᵀXᵀb/∂X = b aᵀ
    ("eq71", "a'*X'*b", "X", {}, "b*a'"),
    # (72) ∂aᵀXa/∂X = ∂aᵀXᵀa/∂X = a aᵀ
    ("eq72", "a'*X*a", "X", {}, "a*a'"),
    ("eq72-T", "a'*X'*a", "X", {}, "a*a'"),
    # Frobenius-product form of (70): ∂(A : X)/∂X = A, ∂sum(X)/∂X = 1 1ᵀ
    ("eq70-frob", "A : X", "X", {}, "A"),
    ("eq70-frob-r", "X : A", "X", {}, "A"),
    ("eq70-sum", "sum(X)", "X", {}, "ones*ones'"),
    ("eq70-sum-v", "sum(x)", "x", {}, "ones"),
    # vec form of (70): ∂vec(X)ᵀvec(A)/∂X = A  (declared, and with the shapes left to inference)
    ("eq70-vec", "vec(X)'*vec(A)", "X", {"X": "matrix(n, m)", "A": "matrix(n, m)"}, "A"),
    ("eq70-vec-infer", "vec(X)'*vec(A)", "X", {}, "A"),

    # ---- 2.5.2 Scalar forms, second order (77)-(89) --------------------
    # (78) ∂bᵀXᵀXc/∂X = X(bcᵀ + cbᵀ)
    ("eq78", "b'*X'*X*c", "X", {}, "X*(b*c' + c*b')"),
    # (79) ∂(Bx + b)ᵀC(Dx + d)/∂x = BᵀC(Dx + d) + DᵀCᵀ(Bx + b)
    ("eq79", "(B*x + b)'*C*(D*x + d)", "x", {}, "B'*C*(D*x + d) + D'*C'*(B*x + b)"),
    # (81) ∂xᵀBx/∂x = (B + Bᵀ)x
    ("eq81", "x'*B*x", "x", {}, "(B + B')*x"),
    ("eq81-sym", "x'*B*x", "x", {"B": "symmetric(n)"}, "2*B*x"),
    # ∂xᵀBx/∂B = x xᵀ
    ("eq81-B", "x'*B*x", "B", {}, "x*x'"),
    # (82) ∂bᵀXᵀDXc/∂X = DᵀXbcᵀ + DXcbᵀ
    ("eq82", "b'*X'*D*X*c", "X", {}, "D'*X*b*c' + D*X*c*b'"),
    # (83) ∂(Xb + c)ᵀD(Xb + c)/∂X = (D + Dᵀ)(Xb + c)bᵀ
    ("eq83", "(X*b + c)'*D*(X*b + c)", "X", {}, "(D + D')*(X*b + c)*b'"),
    # (84) D symmetric: = 2D(Xb + c)bᵀ
    ("eq84", "(X*b + c)'*D*(X*b + c)", "X", {"D": "symmetric(n)"}, "2*D*(X*b + c)*b'"),
    # (85) W symmetric: ∂(x − As)ᵀW(x − As)/∂s = −2AᵀW(x − As)
    ("eq85", "(x - A*s)'*W*(x - A*s)", "s", {"W": "symmetric(n)"}, "-2*A'*W*(x - A*s)"),
    # (86) ∂(x − s)ᵀW(x − s)/∂x = 2W(x − s)
    ("eq86", "(x - s)'*W*(x - s)", "x", {"W": "symmetric(n)"}, "2*W*(x - s)"),
    # (87) ∂(x − s)ᵀW(x − s)/∂s = −2W(x − s)
    ("eq87", "(x - s)'*W*(x - s)", "s", {"W": "symmetric(n)"}, "-2*W*(x - s)"),
    # (88) ∂(x − As)ᵀW(x − As)/∂x = 2W(x − As)
    ("eq88", "(x - A*s)'*W*(x - A*s)", "x", {"W": "symmetric(n)"}, "2*W*(x - A*s)"),
    # (89) ∂(x − As)ᵀW(x − As)/∂A = −2W(x − As)sᵀ
    ("eq89", "(x - A*s)'*W*(x - A*s)", "A", {"W": "symmetric(n)"}, "-2*W*(x - A*s)*s'"),
    # (85) with W general: −Aᵀ(W + Wᵀ)(x − As)
    ("eq85-general", "(x - A*s)'*W*(x - A*s)", "s", {}, "-A'*(W + W')*(x - A*s)"),
    # xᵀx and the weighted least-squares forms
    ("eq131-xx", "x'*x", "x", {}, "2*x"),
    ("eq-ls", "(A*x - b)'*(A*x - b)", "x", {}, "2*A'*(A*x - b)"),
    ("eq-ls-A", "(A*x - b)'*(A*x - b)", "A", {}, "2*(A*x - b)*x'"),
    # (97) ∇(xᵀAx + bᵀx) = (A + Aᵀ)x + b   (2.5.4 gradient and Hessian)
    ("eq-quad-grad", "x'*A*x + b'*x", "x", {}, "(A + A')*x + b"),
    # scalar coefficient: ∂(α xᵀx)/∂α = xᵀx, ∂/∂x = 2αx
    ("eq-alpha", "alpha*x'*x", "alpha", {}, "x'*x"),
    ("eq-alpha-x", "alpha*x'*x", "x", {}, "2*alpha*x"),
    # scalar functions of forms: ∂(aᵀx)²/∂x = 2(aᵀx)a, ∂‖x‖³/∂x = 3‖x‖x,
    # Rayleigh quotient xᵀAx/xᵀx (A symmetric), ∂ln(xᵀAx)/∂x
    ("eq-square-linear", "(a'*x)^2", "x", {}, "2*(a'*x)*a"),
    ("eq-norm-cubed", "norm2(x)^3", "x", {}, "3*norm2(x)*x"),
    ("eq-rayleigh", "x'*A*x/(x'*x)", "x", {"A": "symmetric(n)"},
     "2*(A*x - (x'*A*x)/(x'*x)*x)/(x'*x)"),
    ("eq-log-quad", "log(x'*A*x)", "x", {"A": "symmetric(n)"}, "2*A*x/(x'*A*x)"),

    # ---- 2.5.3 Scalar forms, higher order (90)-(91) --------------------
    # (90) ∂aᵀXⁿb/∂X = Σ_{r=0}^{n-1} (Xʳ)ᵀ a bᵀ (X^{n-1-r})ᵀ, n = 3
    ("eq90", "a'*X^3*b", "X", {}, "a*b'*X'*X' + X'*a*b'*X' + X'*X'*a*b'"),
    ("eq90-n2", "a'*X*X*b", "X", {}, "a*b'*X' + X'*a*b'"),
    # (91) ∂aᵀ(Xⁿ)ᵀXⁿb/∂X, n = 2
    ("eq91", "a'*(X^2)'*X^2*b", "X", {},
     "X^2*b*a'*X' + X'*X^2*b*a' + X^2*a*b'*X' + X'*X^2*a*b'"),

    # ---- 2.6.1 Traces, first order (99)-(105) --------------------------
    # (99) ∂tr(X)/∂X = I
    ("eq99", "tr(X)", "X", {}, "I"),
    # (100) ∂tr(XA)/∂X = Aᵀ
    ("eq100", "tr(X*A)", "X", {}, "A'"),
    # (101) ∂tr(AXB)/∂X = AᵀBᵀ
    ("eq101", "tr(A*X*B)", "X", {}, "A'*B'"),
    # (102) ∂tr(AXᵀB)/∂X = BA
    ("eq102", "tr(A*X'*B)", "X", {}, "B*A"),
    # (103) ∂tr(XᵀA)/∂X = A
    ("eq103", "tr(X'*A)", "X", {}, "A"),
    # (104) ∂tr(AXᵀ)/∂X = A
    ("eq104", "tr(A*X')", "X", {}, "A"),
    # (105) ∂tr(A ⊗ X)/∂X = tr(A) I
    ("eq105", "tr(kron(A, X))", "X", {"A": "matrix(m, m)", "X": "matrix(n, n)"}, "tr(A)*I"),

    # ---- 2.6.2 Traces, second order (106)-(120) ------------------------
    # (106) ∂tr(X²)/∂X = 2Xᵀ
    ("eq106", "tr(X^2)", "X", {}, "2*X'"),
    ("eq106-prod", "tr(X*X)", "X", {}, "2*X'"),
    # (107) ∂tr(X²B)/∂X = (XB + BX)ᵀ
    ("eq107", "tr(X^2*B)", "X", {}, "(X*B + B*X)'"),
    # (108) ∂tr(XᵀBX)/∂X = BX + BᵀX
    ("eq108", "tr(X'*B*X)", "X", {}, "B*X + B'*X"),
    # (109) ∂tr(BXXᵀ)/∂X = BX + BᵀX
    ("eq109", "tr(B*X*X')", "X", {}, "B*X + B'*X"),
    # (110) ∂tr(XXᵀB)/∂X = BX + BᵀX
    ("eq110", "tr(X*X'*B)", "X", {}, "B*X + B'*X"),
    # (111) ∂tr(XBXᵀ)/∂X = XBᵀ + XB
    ("eq111", "tr(X*B*X')", "X", {}, "X*B' + X*B"),
    ("eq111-inv", "tr(X*inv(B)*X')", "X", {}, "X*inv(B)' + X*inv(B)"),
    # (112) ∂tr(BXᵀX)/∂X = XBᵀ + XB
    ("eq112", "tr(B*X'*X)", "X", {}, "X*B' + X*B"),
    # (113) ∂tr(XᵀXB)/∂X = XBᵀ + XB
    ("eq113", "tr(X'*X*B)", "X", {}, "X*B' + X*B"),
    # (114) ∂tr(AXBX)/∂X = AᵀXᵀBᵀ + BᵀXᵀAᵀ
    ("eq114", "tr(A*X*B*X)", "X", {}, "A'*X'*B' + B'*X'*A'"),
    # (115) ∂tr(XᵀX)/∂X = ∂tr(XXᵀ)/∂X = 2X
    ("eq115", "tr(X'*X)", "X", {}, "2*X"),
    ("eq115-XXt", "tr(X*X')", "X", {}, "2*X"),
    # (116) ∂tr(BᵀXᵀCXB)/∂X = CᵀXBBᵀ + CXBBᵀ
    ("eq116", "tr(B'*X'*C*X*B)", "X", {}, "C'*X*B*B' + C*X*B*B'"),
    # (117) ∂tr(XᵀBXC)/∂X = BXC + BᵀXCᵀ
    ("eq117", "tr(X'*B*X*C)", "X", {}, "B*X*C + B'*X*C'"),
    # (118) ∂tr(AXBXᵀC)/∂X = AᵀCᵀXBᵀ + CAXB
    ("eq118", "tr(A*X*B*X'*C)", "X", {}, "A'*C'*X*B' + C*A*X*B"),
    # (119) ∂tr((AXB + C)(AXB + C)ᵀ)/∂X = 2Aᵀ(AXB + C)Bᵀ
    ("eq119", "tr((A*X*B + C)*(A*X*B + C)')", "X", {}, "2*A'*(A*X*B + C)*B'"),
    # (120) ∂tr(X ⊗ X)/∂X = ∂tr(X)tr(X)/∂X = 2tr(X) I
    ("eq120-kron", "tr(kron(X, X))", "X", SQ, "2*tr(X)*I"),
    ("eq120", "tr(X)*tr(X)", "X", {}, "2*tr(X)*I"),
    ("eq120-kron-infer", "tr(kron(X, X))", "X", {}, "2*tr(X)*I"),
    ("eq120-cube", "tr(X)^3", "X", {}, "3*tr(X)^2*I"),

    # ---- 2.6.3 Traces, higher order (121)-(123) ------------------------
    # (121) ∂tr(X^k)/∂X = k (X^{k-1})ᵀ
    ("eq121-k3", "tr(X^3)", "X", {}, "3*(X^2)'"),
    ("eq121-k4", "tr(X^4)", "X", {}, "4*(X^3)'"),
    # (122) ∂tr(AX^k)/∂X = Σ_{r=0}^{k-1} (XʳAX^{k-r-1})ᵀ, k = 3
    ("eq122", "tr(A*X^3)", "X", {}, "(A*X^2)' + (X*A*X)' + (X^2*A)'"),
    # (123) ∂tr(BᵀXᵀCXXᵀCXB)/∂X
    ("eq123", "tr(B'*X'*C*X*X'*C*X*B)", "X", {},
     "C*X*X'*C*X*B*B' + C'*X*B*B'*X'*C'*X + C*X*B*B'*X'*C*X + C'*X*X'*C'*X*B*B'"),

    # ---- 2.6.4 Traces, other (124)-(128) -------------------------------
    # (124) ∂tr(AX⁻¹B)/∂X = −X⁻ᵀAᵀBᵀX⁻ᵀ
    ("eq124", "tr(A*inv(X)*B)", "X", {}, "-inv(X)'*A'*B'*inv(X)'"),
    # (125) C symmetric: ∂tr((XᵀCX)⁻¹A)/∂X = −CX(XᵀCX)⁻¹(A + Aᵀ)(XᵀCX)⁻¹
    ("eq125", "tr(inv(X'*C*X)*A)", "X", {"C": "symmetric(n)", "X": "matrix(n, 2)"},
     "-C*X*inv(X'*C*X)*(A + A')*inv(X'*C*X)"),
    # (126) B, C symmetric: ∂tr((XᵀCX)⁻¹(XᵀBX))/∂X
    ("eq126", "tr(inv(X'*C*X)*(X'*B*X))", "X",
     {"B": "symmetric(n)", "C": "symmetric(n)", "X": "matrix(n, 2)"},
     "-2*C*X*inv(X'*C*X)*X'*B*X*inv(X'*C*X) + 2*B*X*inv(X'*C*X)"),
    # (127) A, B, C symmetric: ∂tr((A + XᵀCX)⁻¹(XᵀBX))/∂X
    ("eq127", "tr(inv(A + X'*C*X)*(X'*B*X))", "X",
     {"A": "symmetric(2)", "B": "symmetric(n)", "C": "symmetric(n)", "X": "matrix(n, 2)"},
     "-2*C*X*inv(A + X'*C*X)*X'*B*X*inv(A + X'*C*X) + 2*B*X*inv(A + X'*C*X)"),
    # (128) is about the matrix sine; matcalc's sin is elementwise, so
    # tr(sin(X)) = Σ sin(Xᵢᵢ) and its gradient is I ⊙ cos(X).
    ("eq128-elementwise", "tr(sin(X))", "X", {}, "I .* cos(X)"),

    # ---- 2.7 Vector norms (129)-(131), 2.8 matrix norms (132) ----------
    # (129) ∂‖x − a‖₂/∂x = (x − a)/‖x − a‖₂
    ("eq129", "norm2(x - a)", "x", {}, "(x - a)/norm2(x - a)"),
    ("eq129-a", "norm2(x - a)", "a", {}, "(a - x)/norm2(x - a)"),
    ("eq129-x", "norm2(x)", "x", {}, "x/norm2(x)"),
    # (131) ∂‖x‖₂²/∂x = 2x
    ("eq131", "norm2(x)^2", "x", {}, "2*x"),
    ("eq131-shift", "norm2(x - a)^2", "x", {}, "2*(x - a)"),
    ("eq131-ls", "norm2(A*x - b)^2", "x", {}, "2*A'*(A*x - b)"),
    # (132) ∂‖X‖_F²/∂X = 2X
    ("eq132", "norm2(X)^2", "X", {}, "2*X"),
    ("eq132-shift", "norm2(X - A)^2", "X", {}, "2*(X - A)"),
    ("eq132-frob", "X : X", "X", {}, "2*X"),
    ("eq132-fro", "norm2(X)", "X", {}, "X/norm2(X)"),
    # ‖x‖₁ away from the kinks: ∂/∂x = sign(x)
    ("norm1-v", "norm1(x)", "x", {}, "sign(x)"),
    ("norm1-m", "norm1(X)", "X", {}, "sign(X)"),
    ("norm1-shift", "norm1(x - a)", "x", {}, "sign(x - a)"),

    # ---- Elementwise functions, Hadamard, diag, sum, softmax ------------
    ("ew-exp", "sum(exp(x))", "x", {}, "exp(x)"),
    ("ew-log", "sum(log(x))", "x", {}, "1 ./ x"),
    ("ew-sqrt", "sum(sqrt(x))", "x", {}, "0.5*x .^ -0.5"),
    ("ew-sigmoid", "sum(sigmoid(x))", "x", {}, "sigmoid(x) .* (1 - sigmoid(x))"),
    ("ew-softplus", "sum(softplus(x))", "x", {}, "sigmoid(x)"),
    ("ew-tanh", "sum(tanh(x))", "x", {}, "1 - tanh(x) .^ 2"),
    ("ew-sin", "a'*sin(x)", "x", {}, "a .* cos(x)"),
    ("ew-abs", "sum(abs(x))", "x", {}, "sign(x)"),
    ("ew-relu", "sum(relu(x))", "x", {}, "(sign(x) + 1)/2"),
    ("ew-pow", "sum(x .^ 3)", "x", {}, "3*x .^ 2"),
    ("ew-logistic", "sum(log(1 + exp(-y .* a)))", "a", {}, "-y .* sigmoid(-y .* a)"),
    ("ew-matrix", "sum(exp(A*x))", "x", {}, "A'*exp(A*x)"),
    ("ew-matrix-W", "sum(tanh(W*h + b))", "W", {}, "(1 - tanh(W*h + b) .^ 2)*h'"),
    ("ew-div", "sum(a ./ x)", "x", {}, "-a ./ (x .* x)"),
    ("had-sum", "sum(a .* x)", "x", {}, "a"),
    ("had-quad", "x'*(a .* x)", "x", {}, "2*a .* x"),
    ("had-matrix", "sum(X .* A)", "X", {}, "A"),
    ("had-square", "sum((X .* A) .^ 2)", "X", {}, "2*X .* A .* A"),
    ("had-trace", "tr((X .* A)*B)", "X", {}, "A .* B'"),
    ("diag-quad", "x'*diag(a)*x", "x", {}, "2*a .* x"),
    ("diag-quad-a", "x'*diag(a)*x", "a", {}, "x .* x"),
    ("diag-trace", "tr(diag(x)*A)", "x", {}, "diag(A)"),
    ("diag-of-X", "a'*diag(X)", "X", {}, "diag(a)"),
    ("diag-sum", "sum(diag(X))", "X", {}, "I"),
    ("softmax-lse", "logsumexp(x)", "x", {}, "softmax(x)"),
    ("softmax-lse-explicit", "log(sum(exp(x)))", "x", {}, "exp(x)/sum(exp(x))"),
    ("softmax-linear", "a'*softmax(x)", "x", {}, "softmax(x) .* (a - a'*softmax(x))"),
    ("softmax-xent", "logsumexp(x) - y'*x", "x", {}, "softmax(x) - y"),
    ("softmax-xent-W", "logsumexp(W*h) - y'*W*h", "W", {}, "(softmax(W*h) - y)*h'"),
    ("scalar-exp", "exp(alpha)*sum(x)", "alpha", {}, "exp(alpha)*sum(x)"),

    # ---- 2.9 Structured (symmetric) matrices: ∂L/∂S = sym(G) = (G + Gᵀ)/2,
    #      not the book's (141)-style G + Gᵀ − diag(G) ---------------------
    ("sym-trace", "tr(A*S)", "S", {"S": "symmetric(n)"}, "(A + A')/2"),
    ("sym-logdet", "logdet(S)", "S", {"S": "symmetric(n)"}, "inv(S)"),
    ("sym-det", "det(S)", "S", {"S": "symmetric(n)"}, "det(S)*inv(S)"),
    ("sym-quad", "a'*S*a", "S", {"S": "symmetric(n)"}, "a*a'"),
    ("sym-bilinear", "a'*S*b", "S", {"S": "symmetric(n)"}, "(a*b' + b*a')/2"),
    ("sym-square", "tr(S*S)", "S", {"S": "symmetric(n)"}, "2*S"),
    ("sym-pow", "tr(S^3)", "S", {"S": "symmetric(n)"}, "3*S*S"),
    ("sym-frob", "norm2(S)^2", "S", {"S": "symmetric(n)"}, "2*S"),
    ("sym-inv-quad", "x'*inv(S)*x", "S", {"S": "symmetric(n)"}, "-inv(S)*x*x'*inv(S)"),
    ("sym-inv-trace", "tr(A*inv(S))", "S", {"S": "symmetric(n)"}, "-inv(S)*(A + A')*inv(S)/2"),
    ("sym-SBS", "tr(S*B*S)", "S", {"S": "symmetric(n)"}, "(S*B + B*S + B'*S + S*B')/2"),
    ("sym-gauss", "logdet(S) + tr(inv(S)*A)", "S", {"S": "symmetric(n)"},
     "inv(S) - inv(S)*(A + A')*inv(S)/2"),
    ("sym-gauss-x", "logdet(S) + (x - mu)'*inv(S)*(x - mu)", "S",
     {"S": "symmetric(n)", "mu": "vector(n)"}, "inv(S) - inv(S)*(x - mu)*(x - mu)'*inv(S)"),
    ("sym-XtSX", "tr(X'*S*X)", "S", {"S": "symmetric(n)"}, "X*X'"),
]


class GeneratedCodeMismatch(AssertionError):
    """Step 3 failed: the generated NumPy grad_<wrt> disagrees with the closed form."""


# Rows matcalc cannot do today, with the exception each one must fail with.
# strict=True: when a bug is fixed the xfail turns into a failure, and its entry
# here should be deleted.
XFAIL: dict[str, tuple[type, str]] = {
}


def _param(row):
    rid = row[0]
    if rid in XFAIL:
        raises, reason = XFAIL[rid]
        return pytest.param(*row, id=rid, marks=pytest.mark.xfail(strict=True, raises=raises, reason=reason))
    return pytest.param(*row, id=rid)


PARAMS = [_param(r) for r in ROWS]

# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------

POINTS = 2          # random points for the closed-form comparisons
RTOL = 1e-8


def _declaration(sym) -> str:
    """A `let` kind that pins `sym` to the shape the program inferred."""
    r, c = sym.shape
    if sym.kind == "scalar":
        return "scalar"
    if sym.kind == "vector":
        return f"vector({r})"
    if sym.kind == "symmetric":
        return f"symmetric({r})"
    return f"matrix({r}, {c})"


def _closed_form(d, let, text):
    """Parse the closed form with every symbol pinned to the original's shape."""
    pins = {name: _declaration(sym) for name, sym in d.program.inputs.items()}
    closed = matcalc.parse(text, let={**let, **pins})
    unknown = set(closed.inputs) - set(d.program.inputs)
    assert not unknown, f"closed form uses names not in the expression: {sorted(unknown)}"
    assert not closed.definitions, "closed forms are single expressions"
    return closed.output


def _dims_for(closed, target_shape, dims):
    """Dimensions of the closed form's own free sizes (a bare `I`, `ones`) from the variable."""
    dims = dict(dims)
    ev = Evaluator({}, dims=dims)
    for mine, theirs in zip(closed.shape, target_shape):
        if isinstance(mine, str) and not all(p.isdigit() or p in dims for p in mine.split("*")):
            dims[mine] = ev.dim(theirs)
    return dims


def _assert_close(actual, expected, what, error=AssertionError):
    assert np.all(np.isfinite(expected)), f"{what}: closed form not finite at the sample point"
    if actual.shape != expected.shape:
        raise error(f"{what}: shape {actual.shape}, expected {expected.shape}")
    scale = max(1.0, float(np.max(np.abs(expected))))
    try:
        # entries that cancel to zero get an absolute allowance at rounding level of the scale
        np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=RTOL * 1e-2 * scale, err_msg=what)
    except AssertionError as e:
        raise error(str(e)) from None


def _points(d):
    """Random points (dims, 2-D env) in the domain check.py would use."""
    rng = np.random.default_rng(20120)
    for _ in range(POINTS):
        dims = dimension_sizes(d.program, rng)
        for _attempt in range(20):
            env = sample_inputs(d.program, rng, dims)
            value = run_program(d.program, env, dims=dims)(d.program.output)
            if np.all(np.isfinite(value)):
                break
        yield dims, env


def _python_name(name: str) -> str:
    """The generated code renames keywords and builtins (docs/reference.md §3); the table avoids them."""
    assert not keyword.iskeyword(name) and not hasattr(builtins, name), \
        f"keep the table free of names the generated code renames: {name}"
    return name


# --------------------------------------------------------------------------
# The tests
# --------------------------------------------------------------------------

@pytest.mark.parametrize("rid, expr, wrt, let, closed", PARAMS)
def test_cookbook_identity(rid, expr, wrt, let, closed):
    d = matcalc.grad(expr, wrt=wrt, let=let)

    # 1. finite differences
    report = d.check()
    assert report.ok, f"{expr}: d/d{wrt} = {d.result}\n{report}"

    # 2. the symbolic result against the book's closed form
    closed_expr = _closed_form(d, let, closed)
    target = d.program.inputs[wrt].shape
    assert d.result.shape == target, f"result shape {d.result.shape}, variable shape {target}"
    fns = d.function()
    generated = getattr(fns, f"grad_{wrt}")
    for dims, env in _points(d):
        ours = run_program(d.program, env, dims=dims, extra=d.adjoints)(d.result)
        book = Evaluator(env, dims=_dims_for(closed_expr, target, dims))(closed_expr)
        _assert_close(ours, book, f"{expr}: d/d{wrt} = {d.result}  vs  {closed}")

        # 3. the generated NumPy function against the closed form
        kwargs = {_python_name(n): to_user(env[n], s.shape) for n, s in d.program.inputs.items()}
        out = np.asarray(generated(**kwargs), dtype=float)
        expected = to_user(book, target)
        _assert_close(out, np.asarray(expected, dtype=float),
                      f"generated grad_{wrt} for {expr}  vs  {closed}", GeneratedCodeMismatch)


def test_table_size():
    assert len(ROWS) >= 70
    ids = [r[0] for r in ROWS]
    assert len(ids) == len(set(ids)), "row ids must be unique"
