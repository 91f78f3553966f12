"""Result sizes against the book's closed forms; writes docs/result-sizes.md.

    python bench/result_sizes.py          # a few seconds; needs only matcalc's own dependencies

For every row of the Matrix Cookbook table (tests/test_cookbook.py) and every example
below (the examples/ programs and the textbook rows of issue 13), the size of matcalc's
result is counted in tokens of its text form (names, numbers, operators, brackets,
commas: `tokens`) and set beside the size of the book's closed form written in the same
language.  A result with named parts (`g_a = ...`) counts the right-hand side of every
line.  The goal is a result no larger than GOAL_FACTOR × book + GOAL_SLACK tokens; the
rows that miss it are listed with the reason.  tests/test_result_sizes.py keeps the
published table current.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import matcalc  # noqa: E402
from matcalc.errors import MatcalcError  # noqa: E402
from tests.test_cookbook import ROWS  # noqa: E402

OUTPUT = ROOT / "docs" / "result-sizes.md"
GOAL_FACTOR, GOAL_SLACK = 1.25, 2
TOKEN = re.compile(r"\.\*|\./|\.\^|[A-Za-z_][A-Za-z_0-9]*|\d+(?:\.\d*)?|\S")
SIZED = re.compile(r"\b(I|ones)\([^()]*\)")      # I(n), ones(m, n): one object, its size an annotation


def example(path: str) -> str:
    return (ROOT / "examples" / path).read_text("utf-8")


LOGISTIC = "y = sigmoid(Phi*w); L = -sum(t .* log(y) + (1 - t) .* log(1 - y))"

# (id, command, program, wrt list, let, {wrt: the book's closed form})
EXAMPLES = [
    ("bishop-4.91", "grad", LOGISTIC, ["w"], {}, {"w": "Phi'*(y - t)"}),
    ("bishop-4.97", "hessian", LOGISTIC, ["w"], {}, {"w": "Phi'*diag(y .* (1 - y))*Phi"}),
    ("nmf-kl", "grad", "sum(X .* log(X ./ (W*H)) - X + W*H)", ["H"], {}, {"H": "W'*(1 - X ./ (W*H))"}),
    ("log-softmax", "jacobian", "log(softmax(z))", ["z"], {}, {"z": "I(n) - ones(n)*softmax(z)'"}),
    ("tr-AX-jacobian", "jacobian", "tr(A*X)", ["X"], {"A": "matrix(n, n)", "X": "matrix(n, n)"},
     {"X": "vec(A')'"}),
    ("vae-kl-mu", "grad", "-sum(1 + lv - mu.^2 - exp(lv))/2", ["mu"], {"mu": "scalar"}, {"mu": "n*mu"}),
    ("centering", "jacobian", "mu = sum(x)/D; xc = x - mu", ["x"], {"D": "scalar"},
     {"x": "I(n) - ones(n, n)/D"}),
    ("backprop.mc", "grad", example("backprop.mc"), ["W", "b", "h"], {},
     {"W": "grad_f(a)*h'", "b": "grad_f(a)", "h": "W'*grad_f(a)"}),
    ("expm_fit.mc", "grad", example("expm_fit.mc"), ["tau"], {}, {"tau": "2*r'*A*expm(tau*A)*x0"}),
    ("gaussian.mc", "grad", example("gaussian.mc"), ["mu", "Sigma"], {},
     {"mu": "-inv(Sigma)*r", "Sigma": "(inv(Sigma) - inv(Sigma)*r*r'*inv(Sigma))/2"}),
    ("gp_likelihood.mc", "grad", example("gp_likelihood.mc"), ["sigma2"], {},
     {"sigma2": "(tr(inv(C)) - y'*inv(C)*inv(C)*y)/2"}),
    ("lambda_max.mc", "grad", example("lambda_max.mc"), ["x1"], {},
     {"x1": "eigvec_max(A0 + x1*A1 + x2*A2)'*A1*eigvec_max(A0 + x1*A1 + x2*A2)"}),
    ("least_squares.mc", "grad", example("least_squares.mc"), ["w"], {}, {"w": "2*X'*r + 2*lambda*w"}),
    ("logistic.mc", "grad", example("logistic.mc"), ["w"], {}, {"w": "-X'*(y .* sigmoid(z)) + lambda*w"}),
    ("mlp.mc", "grad", example("mlp.mc"), ["W1", "b1", "W2", "b2"], {},
     {"W1": "((1 - h1.^2) .* (W2'*(a2 - y)))*x'", "b1": "(1 - h1.^2) .* (W2'*(a2 - y))",
      "W2": "(a2 - y)*h1'", "b2": "a2 - y"}),
    ("smoothed_nuclear.mc", "grad", example("smoothed_nuclear.mc"), ["W"], {},
     {"W": "W*inv(sqrtm(W'*W + epsilon*I))"}),
]

# Why a row misses the goal, where the reason is known (id -> reason).
WHY = {
    "vae-kl-mu": "no expression for a dimension: n is written sum(ones(n))",
    "gp_likelihood.mc": "the gradient through chol keeps the Cholesky adjoint (tril_half); no rule reduces it "
                        "to tr(C⁻¹)",
    "eq105": "a gradient through kron() of a variable is not supported yet",
    "eq120-kron": "a gradient through kron() of a variable is not supported yet",
    "eq120-kron-infer": "a gradient through kron() of a variable is not supported yet",
    "eq70-vec": "a gradient through vec() of a variable is not supported yet",
    "eq70-vec-infer": "a gradient through vec() of a variable is not supported yet",
}


def tokens(text: str) -> int:
    """Tokens of a text form; for a program of lines `name = rhs`, of the right-hand sides."""
    lines = [line.split("=", 1)[1] if re.match(r"^\s*[A-Za-z_][A-Za-z_0-9]*\s*=[^=]", line) else line
             for line in text.splitlines() if line.strip()]
    return sum(len(TOKEN.findall(SIZED.sub(r"\1", line))) for line in lines)


def cases():
    """(id, command, program, wrt list, let, book forms) for every row."""
    for rid, expr, wrt, let, closed in ROWS:
        yield rid, "grad", expr, [wrt], let, {wrt: closed}
    yield from EXAMPLES


def measure(rid, command, program, wrt, let, book) -> dict:
    try:
        d = getattr(matcalc, command)(program, wrt=wrt, let=let)
        text = d.text()
        ours = tokens(text)
    except MatcalcError as e:
        text, ours = f"({type(e).__name__})", None
    theirs = sum(tokens(book[w]) for w in wrt)
    ok = ours is not None and ours <= GOAL_FACTOR * theirs + GOAL_SLACK
    return {"id": rid, "ours": ours, "book": theirs, "ok": ok, "text": text,
            "book_text": "; ".join(book[w] for w in wrt)}


def rows() -> list[dict]:
    return [measure(*c) for c in cases()]


def _cell(text: str) -> str:
    return "`" + text.replace("\n", "; ").replace("|", "\\|") + "`"


def markdown(results: list[dict]) -> str:
    missed = [r for r in results if not r["ok"]]
    out = ["# Result sizes against the book's closed forms", "",
           "Written by `python bench/result_sizes.py`; do not edit by hand "
           "(tests/test_result_sizes.py checks that it is current).", "",
           "Size = tokens of the text form (names, numbers, operators, brackets, commas); a result with "
           "named parts counts every right-hand side.  Goal: at most "
           f"{GOAL_FACTOR} × book + {GOAL_SLACK} tokens.  "
           f"{len(results) - len(missed)} of {len(results)} rows meet it.", "",
           "## Rows that miss the goal", ""]
    if not missed:
        out.append("none")
    for r in missed:
        out.append(f"- {r['id']}: {r['ours']} tokens against {r['book']}: "
                   + WHY.get(r["id"], "no rule yet brings it to the book's form"))
    out += ["", "## Every row", "", "| id | matcalc | book | ratio | goal | matcalc's result | book |",
            "|---|---:|---:|---:|---|---|---|"]
    for r in results:
        ratio = f"{r['ours'] / r['book']:.2f}" if r["ours"] is not None else "-"
        out.append(f"| {r['id']} | {r['ours'] if r['ours'] is not None else '-'} | {r['book']} | {ratio} | "
                   f"{'yes' if r['ok'] else 'no'} | {_cell(r['text'])} | {_cell(r['book_text'])} |")
    return "\n".join(out) + "\n"


def parse_table(text: str) -> dict[str, tuple[str, str]]:
    """id -> (matcalc's size, book's size) from the published table."""
    out = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.split("|")]
        if len(cells) > 4 and cells[1] not in ("id", "---", "") and not cells[1].startswith("-"):
            out[cells[1]] = (cells[2], cells[3])
    return out


def main() -> None:
    results = rows()
    OUTPUT.write_text(markdown(results), "utf-8")
    missed = sum(not r["ok"] for r in results)
    print(f"wrote {OUTPUT.relative_to(ROOT)}: {len(results)} rows, {missed} miss the goal")


if __name__ == "__main__":
    main()
