"""The web page: `matcalc serve` and `matcalc site DIR` (docs/web.md).

Layer above the API: modules here import only matcalc.api (and, in server.py,
Starlette and uvicorn, the optional extra `web`).  service.py answers one
request with the --format json object; pool.py runs it in worker processes
under a time limit; server.py is the HTTP side; site.py writes the static site
that runs service.py in the browser under Pyodide; static/ is the page.
"""
