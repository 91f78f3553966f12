"""The command line of docs/reference.md §2.

Layer L6: argparse over the API.  Exit status: 0 success, 1 a --check
failed or a --claim disagrees, 2 bad input (with line, column and caret), 3 an internal error
(a bug: reported in one paragraph, never as a traceback).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys

from . import api
from .errors import MatcalcError, Span, UsageError
from .syntax.elaborate import parse_declaration

EXIT_OK, EXIT_CHECK_FAILED, EXIT_BAD_INPUT, EXIT_INTERNAL = 0, 1, 2, 3
CODE_FORMATS = api.CODE_FORMATS
FORMAT_NAMES = ["text", "pretty", "latex", *CODE_FORMATS, "json"]
COMMENT = {"text": "# ", "pretty": "# ", "latex": "% ", **{fmt: "# " for fmt in CODE_FORMATS}}


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.print_usage(sys.stderr)
        print(f"error: {message}", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="matcalc", description="Symbolic matrix calculus: gradients, Jacobians, Hessians, differentials.")
    parser.add_argument("--version", action="version", version="matcalc 0.1.0")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name, what in [("grad", "gradient of a scalar expression"),
                       ("jacobian", "Jacobian of a vector expression"),
                       ("hessian", "Hessian of a scalar expression (several --wrt: every block)"),
                       ("differential", "the differential df, in terms of dX (several --wrt: the total differential)")]:
        p = commands.add_parser(name, help=what, description=what)
        p.add_argument("expr", nargs="?", help="the expression, or - for standard input")
        p.add_argument("-f", "--file", help="read a program from FILE")
        p.add_argument("--wrt", action="append", required=True, metavar="X",
                       help="variable to differentiate by (repeatable)")
        p.add_argument("--let", action="append", default=[], metavar="'NAME: KIND'",
                       help="declare a name, e.g. --let 'A: matrix(n, n)' (repeatable)")
        p.add_argument("--format", choices=FORMAT_NAMES, default="text")
        p.add_argument("--layout", choices=api.LAYOUTS, default=api.LAYOUTS[0],
                       help="denominator (default: a gradient has its variable's shape) "
                            "or numerator (every gradient transposed)")
        p.add_argument("--steps", nargs="?", const="brief", choices=["brief", "all"],
                       help="show the derivation, each step naming its identity")
        p.add_argument("--check", action="store_true",
                       help="verify against finite differences at random points")
        p.add_argument("--claim", action="append", metavar="FORMULA",
                       help="compare a derivative of your own with matcalc's: exit 0 if it agrees, 1 if "
                            "not; with several --wrt repeat it in --wrt order or write 'X = FORMULA'")
        p.add_argument("-o", "--output", metavar="FILE", help="write the output to FILE")
    _add_web_commands(commands)
    return parser


def _add_web_commands(commands) -> None:
    """`serve` and `site`: the web page (docs/web.md); their modules load only when run."""
    p = commands.add_parser("serve", help="the web page and its JSON API, on 127.0.0.1",
                            description="Serve the web page (needs the extra: pip install 'matcalc-symbolic[web]').")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--open", action="store_true", help="open the page in a browser")
    p.add_argument("--workers", type=int, default=None, help="derivations run at once (default: CPU count, at least 2)")
    p.add_argument("--time-limit", type=float, default=10.0, metavar="SECONDS",
                   help="a derivation running longer is stopped and answered with an error")
    p = commands.add_parser("site", help="write the page as a static site that runs matcalc in the browser",
                            description="Write DIR: the web page with matcalc running in the browser (Pyodide).")
    p.add_argument("dir", metavar="DIR")
    p.add_argument("--pyodide", metavar="PATH",
                   help="Pyodide's npm package (a .tgz or its unpacked folder); default: `npm pack pyodide`")


def _web(args) -> int:
    try:
        if args.command == "serve":
            from .web.server import serve           # Starlette and uvicorn: only for this command
            serve(args.host, args.port, args.open, args.workers, args.time_limit)
        else:
            from .web.site import SiteError, build
            try:
                print(build(args.dir, args.pyodide))
            except SiteError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return EXIT_BAD_INPUT
        return EXIT_OK
    except ImportError as exc:
        print(f"error: matcalc {args.command} needs {exc.name}: pip install 'matcalc-symbolic[web]'",
              file=sys.stderr)
        return EXIT_BAD_INPUT


def _read_source(args) -> tuple[str, str]:
    if args.file and args.expr:
        raise UsageError("give the expression or -f FILE, not both")
    if args.file:
        try:
            with open(args.file, "rb") as fh:
                return _decode(fh.read(), args.file), args.file
        except OSError as exc:
            raise UsageError(f"cannot read {args.file}: {exc.strerror}") from None
    if args.expr == "-":
        return _decode(sys.stdin.buffer.read(), "<stdin>"), "<stdin>"
    if args.expr is None:
        raise UsageError("no expression: give it as an argument, -f FILE, or - for standard input")
    return args.expr, "<expression>"


def _decode(data: bytes, origin: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        text = data[:exc.start].decode("utf-8", "replace") + "?"
        raise MatcalcError(f"{origin} is not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start})",
                           Span.at(text, len(text) - 1), "save the file as UTF-8",
                           source=text, origin=origin) from None


def _json(d, args, report, verdict=None) -> str:
    return json.dumps(api.as_json(d, report, args.steps, verdict), indent=2, ensure_ascii=False)


def _attach(argv: list[str]) -> list[str]:
    """`--claim "-2*x"`: a formula may start with '-', which argparse would take for an option."""
    out = []
    for arg in argv:
        if out and out[-1] == "--claim" and arg.startswith("-"):
            out[-1] = f"--claim={arg}"
        else:
            out.append(arg)
    return out


def run(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(_attach(sys.argv[1:] if argv is None else list(argv)))
    if args.command in ("serve", "site"):
        if extra:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        return _web(args)
    # an expression that starts with '-' ("-x'*x") looks like an option to argparse
    if len(extra) == 1 and args.expr is None and not re.fullmatch(r"--?[A-Za-z][\w-]*(=.*)?", extra[0]):
        args.expr = extra[0]
    elif extra:
        formats = [e[2:] for e in extra if e.startswith("--") and e[2:] in FORMAT_NAMES]
        hint = f" (the output format is --format {formats[0]})" if formats else ""
        parser.error(f"unrecognized arguments: {' '.join(extra)}{hint}")
    source, origin = "", "<expression>"
    let_text = ""
    try:
        let = {}
        for decl in args.let:
            let_text, origin = decl, "--let"
            name, parsed = parse_declaration(decl)
            let[name] = parsed
        let_text = ""
        source, origin = _read_source(args)
        program = api.parse_program(source, let, args.command in api.SCALAR_COMMANDS)
        for assumption in program.assumed:        # a naming default that decided a kind
            print(f"note: {assumption.note}", file=sys.stderr)
        d = getattr(api, args.command)(program, args.wrt, layout=args.layout)
        report = d.check() if args.check else None
        verdict = d.compare(args.claim) if args.claim else None
        if args.format == "json":
            output = _json(d, args, report, verdict)
        else:
            output = api.formatted(d, args.format, args.steps)
        for outcome in (report, verdict):
            if outcome is not None and args.format != "json":
                output += "\n" + "\n".join(COMMENT[args.format] + line for line in outcome.message.splitlines())
        if args.output:
            with open(args.output, "w", encoding="utf-8") as fh:
                fh.write(output + "\n")
        else:
            print(output)
        failed = (report is not None and not report.ok) or (verdict is not None and not verdict.agrees)
        return EXIT_CHECK_FAILED if failed else EXIT_OK
    except MatcalcError as exc:
        print(exc.render(let_text or source, origin), file=sys.stderr)
        return EXIT_BAD_INPUT
    except BrokenPipeError:           # `matcalc ... | head`: the reader left; stay quiet
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except RecursionError:
        print("limit exceeded: the expression is too deeply nested to process", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception as exc:  # a bug: one paragraph, no traceback
        print(f"internal error (a bug in matcalc, please report it): {type(exc).__name__}: {exc}",
              file=sys.stderr)
        return EXIT_INTERNAL


def main() -> None:
    sys.exit(run())
