"""One request of the web page to one answer: the command line's options as
JSON in, the `--format json` object (api.as_json) or an error out.

Imports only matcalc.api, so that the same code answers in the server's worker
processes and in the browser under Pyodide (the static site).  Nothing from a
request is executed: its text is parsed and differentiated, and the check runs
the code matcalc generated on random arrays.
"""
from __future__ import annotations

import json

from .. import api

COMMANDS = tuple(c for c in ("grad", "jacobian", "hessian", "differential") if callable(getattr(api, c, None)))
# Every kind the language may have; capabilities() keeps those this matcalc parses.
KIND_CANDIDATES = ("scalar", "vector(n)", "matrix(m, n)", "symmetric(n)", "spd(n)", "positive scalar",
                   "positive vector(n)", "positive matrix(m, n)", "function")
MAX_LIST = 64                  # --wrt and --let entries a request may carry
MAX_FIELD_CHARS = 100_000      # any one text field (the parser's own limit is the same)
# field -> (accepted types, default)
FIELDS = {"command": (str, "grad"), "expr": (str, None), "wrt": ((list, str), []), "let": ((list, str), []),
          "layout": (str, "denominator"), "steps": ((bool, str, type(None)), False),
          "check": (bool, False), "claim": ((str, list, type(None)), None)}


class RequestError(Exception):
    """A request that does not have the shape of the command line's options."""


def capabilities() -> dict:
    """What this matcalc can do, for the page to offer: commands, kinds, --claim, layouts."""
    kinds = []
    for kind in KIND_CANDIDATES:
        try:
            api.parse_kind("x", kind)
            kinds.append(kind.split("(")[0])
        except api.MatcalcError:
            pass
    return {"commands": list(COMMANDS), "kinds": kinds, "layouts": list(api.LAYOUTS),
            "claim": callable(getattr(api.Derivation, "compare", None))}


def answer(body) -> tuple[int, dict]:
    """(HTTP status, JSON object) for one request body (already decoded JSON)."""
    try:
        request = _validated(body)
    except RequestError as exc:
        return 400, error_body("error", str(exc), origin="request")
    return _derive(**request)


def answer_text(text: str) -> str:
    """answer() from JSON text to JSON text {"status", "body"}: the Pyodide worker's entry."""
    try:
        body = json.loads(text)
    except ValueError as exc:
        status, out = 400, error_body("error", f"the request is not JSON: {exc}", origin="request")
    else:
        status, out = answer(body)
    return json.dumps({"status": status, "body": out}, ensure_ascii=False)


def _validated(body) -> dict:
    if not isinstance(body, dict):
        raise RequestError("the request must be a JSON object such as "
                           '{"command": "grad", "expr": "x\'*A*x", "wrt": ["x"]}')
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise RequestError(f"unknown field {unknown[0]!r}: the fields are {', '.join(FIELDS)}")
    if "expr" not in body:
        raise RequestError("field 'expr' is missing: the expression or program to differentiate")
    out = {}
    for name, (types, default) in FIELDS.items():
        value = body.get(name, default)
        if not isinstance(value, types):
            raise RequestError(f"field {name!r} has the wrong type")
        out[name] = value
    if isinstance(out["claim"], list) and not all(isinstance(c, str) for c in out["claim"][:MAX_LIST + 1]):
        raise RequestError("field 'claim' is a formula, or a list of formulas (one per --wrt)")
    for name in ("wrt", "let"):
        items = [out[name]] if isinstance(out[name], str) else out[name]
        if len(items) > MAX_LIST or not all(isinstance(i, str) for i in items):
            raise RequestError(f"field {name!r} must be a list of at most {MAX_LIST} strings")
        out[name] = items
    claims = [out["claim"]] if isinstance(out["claim"], str) else (out["claim"] or [])
    if len(claims) > MAX_LIST:
        raise RequestError(f"field 'claim' must be a list of at most {MAX_LIST} strings")
    texts = [out["expr"], *claims, *out["wrt"], *out["let"]]
    if any(len(t) > MAX_FIELD_CHARS for t in texts):
        raise RequestError(f"a field is longer than {MAX_FIELD_CHARS:,} characters")
    if out["command"] not in COMMANDS:
        raise RequestError(f"unknown command {out['command'][:40]!r}: choose {', '.join(COMMANDS)}")
    if out["layout"] not in api.LAYOUTS:
        raise RequestError(f"unknown layout {out['layout'][:40]!r}: choose {', '.join(api.LAYOUTS)}")
    steps = out["steps"]
    if isinstance(steps, str) and steps not in ("brief", "all"):
        raise RequestError("field 'steps' is true, false, \"brief\" or \"all\"")
    out["steps"] = "brief" if steps is True else (steps or None)
    return out


def _derive(command, expr, wrt, let, layout, steps, check, claim) -> tuple[int, dict]:
    text, origin, program = "", "--let", None       # what an error points into
    try:
        declarations = {}
        for decl in let:
            text = decl
            name, parsed = api.parse_declaration(decl)
            declarations[name] = parsed
        text, origin = expr, "<expression>"
        program = api.parse_program(expr, declarations, command in api.SCALAR_COMMANDS)
        d = getattr(api, command)(program, wrt, layout=layout)
        report, no_check = _check(d) if check else (None, None)
        verdict, unavailable = None, None
        if claim:
            text, origin = (claim if isinstance(claim, str) else "\n".join(claim)), "--claim"
            verdict, unavailable = _claim(d, claim)
        out = api.as_json(d, report, steps, verdict)
        if no_check:
            out["check"] = no_check
        if unavailable:
            out["claim"] = unavailable
        elif verdict is not None:
            out["claim"]["supported"] = True
        return 200, out
    except api.MatcalcError as exc:
        return 400, _matcalc_error_body(exc, text, origin, program)
    except (RecursionError, MemoryError):
        return 400, error_body("limit exceeded", "the expression is too large or too deeply nested to process",
                               origin=origin)
    except Exception as exc:  # a bug: one paragraph, as the command line says it
        return 500, error_body("internal error",
                               f"internal error (a bug in matcalc, please report it): {type(exc).__name__}: {exc}")


def _check(d):
    """(the check's report, None), or (None, why it cannot run here)."""
    try:
        return d.check(), None
    except ImportError as exc:            # the static site without Pyodide's NumPy
        return None, {"ok": None, "message": f"the check needs NumPy, which is not available here ({exc.name})"}


def _claim(d, claim):
    """(the --claim verdict, None), or (None, why it cannot be given here)."""
    if not callable(getattr(d, "compare", None)):
        return None, {"supported": False, "agrees": None,
                      "message": "this version of matcalc cannot check a claim (--claim)"}
    try:
        return d.compare(claim), None
    except ImportError as exc:          # the static site without Pyodide's NumPy
        return None, {"supported": False, "agrees": None,
                      "message": f"comparing a claim needs NumPy, which is not available here ({exc.name})"}


def _matcalc_error_body(exc, text: str, origin: str, program) -> dict:
    source = exc.source if exc.source is not None else text
    out = error_body(exc.kind, exc.message, hint=exc.hint, origin=exc.origin or origin,
                 rendered=exc.render(text, origin))
    if exc.span is not None:
        out["error"].update(line=exc.span.line, column=exc.span.column,
                            end_column=exc.span.column + max(1, exc.span.end - exc.span.start),
                            source=source)
    if program is not None:      # the page offers the inputs even when --wrt is wrong
        out["inputs"] = {n: {"kind": s.kind, "shape": list(s.shape)} for n, s in program.inputs.items()}
    return out


def error_body(kind: str, message: str, hint: str | None = None, origin: str | None = None,
           rendered: str | None = None) -> dict:
    if rendered is None:
        rendered = message if kind == "internal error" else f"{kind}: {message}"
    return {"error": {"kind": kind, "message": message, "hint": hint, "origin": origin, "line": None,
                      "column": None, "rendered": rendered}}
