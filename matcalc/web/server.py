"""`matcalc serve`: the page and its JSON API over HTTP, with Starlette and uvicorn
(the optional extra `web`; imported only by this command, never by `import matcalc`).

    GET  /               the page (static/index.html), every asset under /static/
    GET  /api/health     {"status": "ok", "version", "commands", "kinds", "claim", "limits"}
    POST /api/derive     the command line's options as JSON -> the --format json object;
                         400 with {"error": {line, column, message, ...}} for bad input,
                         413 for a body over MAX_BODY, 415 for a body that is not JSON

Derivations run in pool.Pool's worker processes under a time limit.  Only loopback
host names are accepted when bound to loopback, so a web site cannot reach the
server through DNS rebinding.
"""
from __future__ import annotations

import contextlib
import json
import threading
import webbrowser
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from .. import __version__
from . import service
from .pool import Pool

STATIC = Path(__file__).parent / "static"
MAX_BODY = 256 * 1024          # bytes: room for the 100,000-character input limit, in UTF-8, and the rest
LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")
SECURITY_HEADERS = [
    # everything from this origin; KaTeX sets inline styles; no frames, no sniffing
    (b"content-security-policy", b"default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
                                 b"frame-ancestors 'none'; base-uri 'none'; form-action 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]


def _with_headers(app):
    async def wrapped(scope, receive, send):
        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + SECURITY_HEADERS
            await send(message)
        await app(scope, receive, send_with_headers)
    return wrapped


def _json(status: int, body: dict) -> JSONResponse:
    return JSONResponse(body, status_code=status)


def create_app(host: str = "127.0.0.1", workers: int | None = None, time_limit: float = 10.0,
               open_url: str | None = None):
    pool = Pool(workers, time_limit)

    async def index(request: Request):
        return FileResponse(STATIC / "index.html", headers={"cache-control": "no-cache"})

    async def health(request: Request):
        return _json(200, {"status": "ok", "version": __version__, **service.capabilities(),
                           "limits": {"body_bytes": MAX_BODY, "time_seconds": time_limit,
                                      "field_chars": service.MAX_FIELD_CHARS}})

    async def derive(request: Request):
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            return _json(415, service.error_body("error", "send the request as application/json"))
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY):
            return _json(413, service.error_body("limit exceeded", f"the request is over {MAX_BODY:,} bytes"))
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY:
                return _json(413, service.error_body("limit exceeded", f"the request is over {MAX_BODY:,} bytes"))
        try:
            parsed = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            return _json(400, service.error_body("error", f"the request is not JSON: {exc}", origin="request"))
        return _json(*await pool.answer(parsed))

    @contextlib.asynccontextmanager
    async def lifespan(app):
        await pool.start()
        app.state.pool = pool
        if open_url:
            threading.Timer(0.5, webbrowser.open, [open_url]).start()
        try:
            yield
        finally:
            pool.close()

    hosts = list(LOOPBACK) if host in LOOPBACK else ["*"]
    app = Starlette(routes=[Route("/", index), Route("/api/health", health), Route("/api/derive", derive,
                                                                                   methods=["POST"]),
                            Mount("/static", StaticFiles(directory=STATIC), name="static")],
                    middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=hosts)], lifespan=lifespan)
    return _with_headers(app)


def serve(host: str = "127.0.0.1", port: int = 8000, open_browser: bool = False, workers: int | None = None,
          time_limit: float = 10.0) -> None:
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}/"
    print(f"matcalc: serving the page at {url} (Ctrl+C stops)", flush=True)
    uvicorn.run(create_app(host, workers, time_limit, url if open_browser else None), host=host, port=port,
                log_level="warning", limit_concurrency=512, timeout_graceful_shutdown=2)
