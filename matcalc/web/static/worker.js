// The static site's backend: matcalc running under Pyodide in this Web Worker,
// answering the page's requests with matcalc.web.service (the code the server
// runs).  `matcalc site` puts Pyodide in pyodide/ and matcalc with lark in
// python/*.zip beside this page.  The page stops this worker past its time limit.
import { loadPyodide } from "../pyodide/pyodide.mjs";

const SITE_PACKAGES = "/home/pyodide/matcalc-site";
let numpy = null;             // a promise: whether Pyodide's NumPy package could be loaded (for the check)

const python = (async () => {
  postMessage({ id: "status", reply: "loading Python…" });
  const py = await loadPyodide({ indexURL: new URL("../pyodide/", self.location).href });
  const manifest = await (await fetch("../python/manifest.json")).json();
  for (const name of manifest.archives) {
    const data = await (await fetch("../python/" + name)).arrayBuffer();
    py.unpackArchive(data, "zip", { extractDir: SITE_PACKAGES });
  }
  py.runPython(`import sys; sys.path.insert(0, "${SITE_PACKAGES}")\nfrom matcalc.web import service`);
  postMessage({ id: "status", reply: "" });
  return py;
})();

function loadNumpy(py) {
  if (!numpy) {
    numpy = py.loadPackage("numpy", { messageCallback: () => {}, errorCallback: () => {} })
      .then(() => true, () => false);
  }
  return numpy;
}

onmessage = async (event) => {
  const { id, op, body } = event.data;
  let reply;
  try {
    const py = await python;
    if (op === "capabilities") {
      const caps = JSON.parse(py.runPython("import json; json.dumps(service.capabilities())"));
      caps.version = py.runPython("import matcalc; matcalc.__version__");
      reply = { status: 200, body: caps };
    } else {
      if (body.check || body.claim) await loadNumpy(py);   // without it they answer "unavailable"
      py.globals.set("request_text", JSON.stringify(body));
      reply = JSON.parse(py.runPython("service.answer_text(request_text)"));
    }
  } catch (e) {
    const message = "matcalc could not run in this browser: " + e;
    reply = { status: 500, body: { error: { kind: "internal error", message, rendered: message } } };
  }
  postMessage({ id, reply });
};
