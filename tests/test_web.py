"""The web layer without a browser: service.answer (what the page and the static
site both run), and `matcalc serve` over HTTP on loopback: the JSON API, its
limits (body size, time per derivation), and that nothing web is imported by
`import matcalc` or the other commands.  The page itself: test_web_browser.py;
the load test: test_web_load.py."""
from __future__ import annotations

import contextlib
import importlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from matcalc import api
from matcalc.web import service

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = json.loads((ROOT / "matcalc/web/static/examples.json").read_text(encoding="utf-8"))
# a Hessian of a long product grows faster than linearly: 95 s here, far past the tests' 3 s limit
RUNAWAY = {"command": "hessian", "expr": "x'*" + "A*" * 60 + "x", "wrt": ["A"]}


def need(module: str):
    """The web extra: required in CI, skipped where it is not installed."""
    if os.environ.get("CI"):
        return importlib.import_module(module)
    return pytest.importorskip(module)


# ---- service.answer: the JSON contract -------------------------------------------

def test_an_answer_is_the_command_lines_json():
    status, out = service.answer({"command": "grad", "expr": "a = W*h + b; L = f(a)", "wrt": ["W"],
                                  "let": ["f: function"], "layout": "denominator", "steps": True, "check": True})
    assert status == 200
    cli = subprocess.run([sys.executable, "-m", "matcalc", "grad", "a = W*h + b; L = f(a)", "--wrt", "W",
                          "--let", "f: function", "--steps", "--check", "--format", "json"],
                         capture_output=True, text=True, cwd=ROOT)
    assert json.loads(cli.stdout) == json.loads(json.dumps(out))
    assert out["results"]["W"]["text"] == "grad_f(a)*h'"
    assert out["check"]["ok"] is True
    assert out["inputs"]["W"]["declared"] is False and out["functions"] == ["f"]
    # every --format's output, as the command line prints it
    for fmt in api.FORMATS:
        printed = subprocess.run([sys.executable, "-m", "matcalc", "grad", "a = W*h + b; L = f(a)", "--wrt", "W",
                                  "--let", "f: function", "--steps", "--format", fmt],
                                 capture_output=True, text=True, cwd=ROOT).stdout
        assert printed == out["formats"][fmt] + "\n", fmt


def test_a_let_declares_and_changes_the_result():
    _, default = service.answer({"expr": "x'*A*x", "wrt": ["x"]})
    _, declared = service.answer({"expr": "x'*A*x", "wrt": ["x"], "let": ["A: symmetric(n)"]})
    assert default["results"]["x"]["text"] == "(A + A')*x"
    assert declared["results"]["x"]["text"] == "2*A*x"
    assert declared["inputs"]["A"] == {"kind": "symmetric", "shape": ["n", "n"], "declared": True}
    assert default["inputs"]["A"]["declared"] is False


def test_bad_input_is_400_with_line_column_and_the_caret_the_command_line_prints():
    status, out = service.answer({"expr": "x = 1\ny = x'*A*z + ", "wrt": ["x"]})
    assert status == 400
    err = out["error"]
    cli = subprocess.run([sys.executable, "-m", "matcalc", "grad", "x = 1\ny = x'*A*z + ", "--wrt", "x"],
                         capture_output=True, text=True, cwd=ROOT)
    assert cli.returncode == 2 and err["rendered"] == cli.stderr.rstrip("\n")
    assert (err["kind"], err["line"], err["column"]) == ("syntax error", 2, 14)
    assert "^" in err["rendered"] and err["source"] == "x = 1\ny = x'*A*z + "


@pytest.mark.parametrize("body, says", [
    ([1, 2], "JSON object"),
    ({"wrt": ["x"]}, "'expr' is missing"),
    ({"expr": 3, "wrt": ["x"]}, "'expr' has the wrong type"),
    ({"expr": "x'*x", "wrt": ["x"], "format": "numpy"}, "unknown field 'format'"),
    ({"expr": "x'*x", "wrt": ["x"], "command": "integrate"}, "unknown command"),
    ({"expr": "x'*x", "wrt": ["x"], "layout": "sideways"}, "unknown layout"),
    ({"expr": "x'*x", "wrt": [1]}, "list of at most"),
    ({"expr": "x'*x", "wrt": ["x"] * 65}, "list of at most"),
    ({"expr": "x'*x", "wrt": ["x"], "steps": "some"}, "'steps'"),
    ({"expr": "x'*x", "wrt": ["x"], "check": "yes"}, "'check' has the wrong type"),
])
def test_a_request_not_shaped_like_the_options_is_400(body, says):
    status, out = service.answer(body)
    assert status == 400 and says in out["error"]["message"]


def test_errors_in_a_let_or_a_wrt_point_into_that_text_and_carry_the_inputs():
    status, out = service.answer({"expr": "x'*A*x", "wrt": ["x"], "let": ["A: matrx(n)"]})
    assert status == 400 and out["error"]["origin"] == "--let" and out["error"]["source"] == "A: matrx(n)"
    status, out = service.answer({"expr": "x'*A*x", "wrt": ["z"]})
    assert status == 400 and out["error"]["origin"] == "--wrt"
    assert list(out["inputs"]) == ["x", "A"]        # the page offers these instead


def test_a_claim_is_answered_as_the_command_line_answers_it():
    status, out = service.answer({"expr": "x'*A*x", "wrt": ["x"], "claim": "2*A*x"})
    assert status == 200 and out["claim"]["supported"] is True and out["claim"]["agrees"] is False
    cli = subprocess.run([sys.executable, "-m", "matcalc", "grad", "x'*A*x", "--wrt", "x", "--claim", "2*A*x",
                          "--format", "json"], capture_output=True, text=True, cwd=ROOT)
    assert cli.returncode == 1
    assert {k: v for k, v in out["claim"].items() if k != "supported"} == json.loads(cli.stdout)["claim"]
    assert "symmetric" in out["claim"]["message"]
    status, out = service.answer({"expr": "x'*A*x", "wrt": ["x"], "claim": ["(A + A')*x"]})
    assert status == 200 and out["claim"]["agrees"] is True
    # a claim that does not parse points into the claim
    status, out = service.answer({"expr": "x'*A*x", "wrt": ["x"], "claim": "2*A*"})
    assert status == 400 and out["error"]["origin"] == "--claim" and "^" in out["error"]["rendered"]


def test_the_check_and_claim_say_unavailable_where_numpy_cannot_be_imported(monkeypatch):
    monkeypatch.setitem(sys.modules, "numpy", None)          # as under Pyodide without its NumPy
    for module in ("matcalc.check", "matcalc.claim"):
        monkeypatch.delitem(sys.modules, module, raising=False)
    status, out = service.answer({"expr": "x'*A*x", "wrt": ["x"], "check": True, "claim": "2*A*x"})
    assert status == 200 and out["check"]["ok"] is None and "NumPy" in out["check"]["message"]
    assert out["claim"]["supported"] is False and "NumPy" in out["claim"]["message"]


def test_capabilities_list_what_this_matcalc_parses():
    caps = service.capabilities()
    assert {"grad", "jacobian", "hessian"} <= set(caps["commands"])
    assert {"scalar", "vector", "matrix", "symmetric", "function"} <= set(caps["kinds"])
    assert caps["claim"] == callable(getattr(api.Derivation, "compare", None))


@pytest.mark.parametrize("example", EXAMPLES, ids=[e["title"] for e in EXAMPLES])
def test_every_gallery_example_derives_and_passes_the_check(example):
    status, out = service.answer({k: example[k] for k in ("command", "expr", "wrt", "let")} | {"check": True})
    assert status == 200, out
    assert out["check"]["ok"] is True, out["check"]


def test_answer_text_is_the_pyodide_workers_entry():
    reply = json.loads(service.answer_text(json.dumps({"expr": "logdet(X)", "wrt": ["X"]})))
    assert reply["status"] == 200 and reply["body"]["results"]["X"]["text"] == "inv(X)'"
    assert json.loads(service.answer_text("{not json"))["status"] == 400


# ---- start-up: nothing web unless serving --------------------------------------

def test_import_matcalc_and_the_cli_load_no_web_module():
    probe = ("import sys, matcalc, matcalc.cli\n"
             "matcalc.cli.run(['grad', \"x'*x\", '--wrt', 'x', '--format', 'json'])\n"
             "print(sorted(m for m in sys.modules if m.split('.')[0] in ('starlette', 'uvicorn', 'anyio')"
             " or m.startswith('matcalc.web')))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip().splitlines()[-1] == "[]"


# ---- the server over HTTP ----------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_server(time_limit: float = 3.0, workers: int = 2):
    """`matcalc serve` on a free loopback port, stopped afterwards; yields (base URL, process)."""
    need("starlette"), need("uvicorn")
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "matcalc", "serve", "--port", str(port), "--workers", str(workers),
                             "--time-limit", str(time_limit)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(base + "/api/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"matcalc serve did not start: {proc.stderr.read().decode()[-2000:]}")
                time.sleep(0.2)
        yield base, proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def post(base: str, body, content_type: str = "application/json", raw: bytes | None = None, timeout: float = 30):
    data = raw if raw is not None else json.dumps(body).encode()
    request = urllib.request.Request(base + "/api/derive", data=data, method="POST",
                                     headers={"content-type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.fixture(scope="module")
def server():
    with running_server() as (base, proc):
        yield base


def test_health_and_the_page(server):
    with urllib.request.urlopen(server + "/api/health") as r:
        health = json.loads(r.read())
    assert health["status"] == "ok" and health["limits"]["time_seconds"] == 3.0
    with urllib.request.urlopen(server + "/") as r:
        page = r.read().decode()
        assert "default-src 'self'" in r.headers["content-security-policy"]
    # every asset the page names is served from the package: it works offline
    for asset in ["static/app.js", "static/app.css", "static/vendor/katex/katex.min.js",
                  "static/vendor/katex/katex.min.css", "static/vendor/katex/fonts/KaTeX_Main-Regular.woff2"]:
        assert asset in page or asset.startswith("static/vendor/katex/fonts")
        with urllib.request.urlopen(f"{server}/{asset}") as r:
            assert r.status == 200 and len(r.read()) > 1000


def test_derive_over_http(server):
    status, out = post(server, {"command": "grad", "expr": "x'*A*x", "wrt": ["x"], "check": True})
    assert status == 200 and out["results"]["x"]["text"] == "(A + A')*x" and out["check"]["ok"] is True
    status, out = post(server, {"command": "grad", "expr": "tarce(X)", "wrt": ["X"]})
    assert status == 400 and out["error"]["line"] == 1 and out["error"]["column"] == 1


def test_body_limits_and_types(server):
    status, out = post(server, None, raw=b"x" * (300 * 1024))
    assert status == 413 and "limit" in out["error"]["kind"]
    assert post(server, None, raw=b"{oops")[0] == 400
    assert post(server, None, raw=json.dumps({"expr": "x'*x", "wrt": ["x"]}).encode(),
                content_type="text/plain")[0] == 415


def test_a_foreign_host_name_is_refused(server):
    request = urllib.request.Request(server + "/api/health", headers={"host": "attacker.example"})
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(request, timeout=5)
    assert exc.value.code == 400


def test_a_runaway_derivation_is_stopped_while_others_are_answered(server):
    import concurrent.futures
    with concurrent.futures.ThreadPoolExecutor(4) as threads:
        runaway = threads.submit(post, server, RUNAWAY)
        time.sleep(0.1)
        start = time.monotonic()
        quick = [threads.submit(post, server, {"expr": "x'*A*x", "wrt": ["x"]}) for _ in range(5)]
        assert all(f.result()[0] == 200 for f in quick)
        quick_seconds = time.monotonic() - start
        status, out = runaway.result()
    assert status == 400 and out["error"]["kind"] == "limit exceeded" and "3 s" in out["error"]["message"]
    assert quick_seconds < 3.0          # answered by the other worker, not after the runaway
    # the killed worker was replaced: the pool still answers
    assert post(server, {"expr": "logdet(X)", "wrt": ["X"]})[0] == 200


# ---- matcalc site, without a browser (test_web_browser.py runs it in one) -----------

def test_the_static_site_holds_the_page_and_a_python_payload_that_runs_alone(tmp_path):
    from matcalc.web import site
    fake = tmp_path / "pyodide-package" / "package"         # stands in for the npm package's files
    fake.mkdir(parents=True)
    for name in site.PYODIDE_FILES:
        (fake / name).write_text("{}" if name.endswith(".json") else "stand-in")
    run = subprocess.run([sys.executable, "-m", "matcalc", "site", str(tmp_path / "out"), "--pyodide",
                          str(fake.parent)], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    out = tmp_path / "out"
    page = (out / "index.html").read_text()
    assert '<meta name="matcalc-backend" content="pyodide">' in page and (out / "static/worker.js").exists()
    assert sorted(p.name for p in (out / "pyodide").iterdir()) == sorted([*site.PYODIDE_FILES, "NOTICE"])
    manifest = json.loads((out / "python/manifest.json").read_text())
    # the zips alone (no installed matcalc, no NumPy, no SymPy) answer a request, as the worker does
    unpacked = tmp_path / "site-packages"
    import zipfile
    for name in manifest["archives"]:
        zipfile.ZipFile(out / "python" / name).extractall(unpacked)
    assert (unpacked / "lark/LICENSE").exists() and (unpacked / "matcalc/grammar/matcalc.lark").exists()
    probe = ("import sys; sys.path[:0] = [sys.argv[1]]; sys.modules['numpy'] = sys.modules['sympy'] = None\n"
             "import matcalc; assert matcalc.__file__.startswith(sys.argv[1]), matcalc.__file__\n"
             "from matcalc.web import service\n"
             "print(service.answer_text('{\"expr\": \"logdet(X)\", \"wrt\": [\"X\"], \"check\": true}'))")
    reply = subprocess.run([sys.executable, "-S", "-c", probe, str(unpacked)], capture_output=True, text=True,
                           cwd=tmp_path)
    assert reply.returncode == 0, reply.stderr
    body = json.loads(reply.stdout)["body"]
    assert body["results"]["X"]["text"] == "inv(X)'" and body["check"]["ok"] is None


def test_the_static_site_says_what_is_missing_from_pyodide(tmp_path):
    (tmp_path / "empty").mkdir()
    run = subprocess.run([sys.executable, "-m", "matcalc", "site", str(tmp_path / "out"), "--pyodide",
                          str(tmp_path / "empty")], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 2 and run.stderr.startswith("error: Pyodide's package lacks pyodide.mjs")
