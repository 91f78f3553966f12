"""`matcalc site DIR`: the page as a static site, with matcalc running in the
browser under Pyodide (static/worker.js), for any static host.

Imports only the standard library (and finds matcalc's and lark's files, which
it zips for the browser).  DIR gets:
    index.html, static/      the page (its backend meta tag says "pyodide")
    python/*.zip             matcalc and lark (pure Python), unpacked by the worker
    pyodide/                 the few files of Pyodide's npm package that start Python
Pyodide comes from its npm package (`npm pack`, from npm's cache or registry),
or from --pyodide PATH (the .tgz, or its unpacked folder), never from git.
"""
from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import shutil
import subprocess
import tarfile
import tempfile
import zipfile
from pathlib import Path

PYODIDE_VERSION = "314.0.8"
# what loadPyodide fetches to start Python (NumPy, for the check, is not in the npm package)
PYODIDE_FILES = ("pyodide.mjs", "pyodide.asm.mjs", "pyodide.asm.wasm", "python_stdlib.zip", "pyodide-lock.json")
HERE = Path(__file__).parent
STATIC = HERE / "static"


class SiteError(Exception):
    """The site cannot be written (no Pyodide to be had, a file missing)."""


def build(directory: str, pyodide: str | None = None) -> str:
    """Write the static site into `directory`; returns a one-line summary."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    shutil.copytree(STATIC, out / "static", dirs_exist_ok=True, ignore=shutil.ignore_patterns("index.html"))
    page = (STATIC / "index.html").read_text(encoding="utf-8")
    marker = '<meta name="matcalc-backend" content="server">'
    if marker not in page:
        raise SiteError("static/index.html has lost its backend meta tag")
    (out / "index.html").write_text(page.replace(marker, marker.replace("server", "pyodide")), encoding="utf-8")
    (out / "python").mkdir(exist_ok=True)
    archives = {"matcalc.zip": _matcalc_files(), "lark.zip": _lark_files()}
    for name, files in archives.items():
        _write_zip(out / "python" / name, files)
    (out / "python" / "manifest.json").write_text(json.dumps({"archives": list(archives)}), encoding="utf-8")
    pyodide_bytes = _copy_pyodide(pyodide, out / "pyodide")
    total = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    return (f"wrote {out}: serve it with any static server, e.g. python -m http.server -d {out} "
            f"({total / 1e6:.1f} MB, of which Pyodide {pyodide_bytes / 1e6:.1f} MB)")


def _package_files(root: Path, prefix: str, suffixes: tuple[str, ...], skip: tuple[str, ...] = ()) -> dict:
    files = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if (path.is_file() and path.suffix in suffixes and "__pycache__" not in relative.parts
                and not any(relative.parts[:len(s.split("/"))] == tuple(s.split("/")) for s in skip)):
            files[f"{prefix}/{relative.as_posix()}"] = path.read_bytes()
    return files


def _matcalc_files() -> dict:
    package = HERE.parent
    files = _package_files(package, "matcalc", (".py",), skip=("web/static", "grammar"))
    # the grammar ships as the package matcalc.grammar (from grammar/ in a source tree)
    grammar = Path(importlib.util.find_spec("matcalc.grammar").origin).parent
    files.update(_package_files(grammar, "matcalc/grammar", (".py", ".lark")))
    return files


def _lark_files() -> dict:
    spec = importlib.util.find_spec("lark")
    if spec is None or not spec.submodule_search_locations:
        raise SiteError("lark is not installed (it is one of matcalc's dependencies)")
    files = _package_files(Path(spec.submodule_search_locations[0]), "lark", (".py", ".lark"))
    for f in importlib.metadata.distribution("lark").files or []:
        if Path(f.name).stem.upper() in ("LICENSE", "LICENCE", "COPYING"):
            files["lark/LICENSE"] = Path(f.locate()).read_bytes()
    return files


def _write_zip(path: Path, files: dict) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            z.writestr(zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0)), data)   # the same bytes every build


def _copy_pyodide(source: str | None, target: Path) -> int:
    target.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(source) if source else _npm_pack(Path(tmp))
        if path.is_dir():
            root = path / "package" if (path / "package" / "pyodide.mjs").exists() else path
            contents = {name: (root / name).read_bytes() for name in PYODIDE_FILES if (root / name).exists()}
        else:
            try:
                with tarfile.open(path) as tgz:
                    contents = {}
                    for name in PYODIDE_FILES:
                        try:
                            contents[name] = tgz.extractfile(f"package/{name}").read()
                        except KeyError:
                            pass
            except (OSError, tarfile.TarError) as exc:
                raise SiteError(f"cannot read Pyodide from {path}: {exc}") from None
    missing = [n for n in PYODIDE_FILES if n not in contents]
    if missing:
        raise SiteError(f"Pyodide's package lacks {', '.join(missing)} (matcalc site expects pyodide@{PYODIDE_VERSION})")
    for name, data in contents.items():
        (target / name).write_bytes(data)
    version = json.loads(contents["pyodide-lock.json"]).get("info", {}).get("version", PYODIDE_VERSION)
    (target / "NOTICE").write_text(f"Pyodide {version} (https://pyodide.org), Mozilla Public License 2.0: "
                                   "the files in this folder are from its npm package, unmodified.\n")
    return sum(len(d) for d in contents.values())


def _npm_pack(tmp: Path) -> Path:
    npm = shutil.which("npm")
    if npm is None:
        raise SiteError("npm is needed to fetch Pyodide (or give --pyodide PATH to its npm package .tgz)")
    try:
        done = subprocess.run([npm, "pack", f"pyodide@{PYODIDE_VERSION}", "--silent", "--pack-destination", str(tmp)],
                              capture_output=True, text=True, timeout=600, cwd=tmp)
    except subprocess.TimeoutExpired:
        raise SiteError("npm pack pyodide took longer than 10 minutes") from None
    packed = sorted(tmp.glob("pyodide-*.tgz"))
    if done.returncode != 0 or not packed:
        raise SiteError(f"npm pack pyodide@{PYODIDE_VERSION} failed: {done.stderr.strip()[:500]}")
    return packed[0]
