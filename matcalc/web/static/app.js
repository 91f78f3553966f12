// The matcalc page: one state (what the command line's options say), sent as
// JSON to a backend that answers with the `--format json` object or an error.
// Backends: "server" (POST api/derive, `matcalc serve`) or "pyodide" (matcalc
// running in a module Web Worker, `matcalc site`).  No other code runs: the answer's
// text goes into the page as text, its LaTeX through KaTeX (trust: false).
"use strict";

const $ = (id) => document.getElementById(id);
const FORMATS = {            // tab -> [file name suffix, MIME type]
  "text": [".txt", "text/plain"], "latex": [".tex", "application/x-tex"], "numpy": ["_numpy.py", "text/x-python"],
  "jax": ["_jax.py", "text/x-python"], "torch": ["_torch.py", "text/x-python"],
  "array-api": ["_array_api.py", "text/x-python"],
};
const SIZED = { vector: 1, matrix: 2, symmetric: 1, spd: 1 };   // kind -> how many dimensions it takes
const TIME_LIMIT_MS = 30000;  // the Pyodide backend's per-derivation limit (the server has its own)

const state = {
  expr: "f: function\na = W*h + b\nL = f(a)", command: "grad", wrt: ["W"], let: {},
  layout: "denominator", steps: false, check: false, claim: "", tab: "text",
};
let answer = null;            // the last successful answer
let caps = { commands: ["grad", "jacobian", "hessian"], kinds: ["scalar", "vector", "matrix", "symmetric", "function"], claim: false };
let sequence = 0;             // answers to older requests are dropped

// ---- backends ---------------------------------------------------------------

const serverBackend = {
  async capabilities() {
    const r = await fetch("api/health");
    return r.json();
  },
  async derive(body) {
    const r = await fetch("api/derive", {
      method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body),
    });
    return { status: r.status, body: await r.json() };
  },
};

function pyodideBackend() {
  let worker = null, ready = null, next = 0;
  const pending = new Map();
  function start() {
    worker = new Worker("static/worker.js", { type: "module" });
    worker.onmessage = (e) => {
      const { id, reply } = e.data;
      if (id === "status") { setStatus(reply); return; }
      const p = pending.get(id);
      if (p) { pending.delete(id); clearTimeout(p.timer); p.resolve(reply); }
    };
    ready = call({ op: "capabilities" }, 180000);
  }
  function call(message, limit) {
    const id = ++next;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {           // a runaway derivation: stop Python, start afresh
        pending.delete(id);
        worker.terminate();
        for (const p of pending.values()) { clearTimeout(p.timer); p.resolve(limitReply(limit)); }
        pending.clear();
        start();
        resolve(limitReply(limit));
      }, limit);
      pending.set(id, { resolve, timer });
      worker.postMessage({ id, ...message });
    });
  }
  function limitReply(limit) {
    const message = `the derivation took longer than the ${limit / 1000} s limit and was stopped`;
    return { status: 400, body: { error: { kind: "limit exceeded", message, rendered: "limit exceeded: " + message } } };
  }
  start();
  return {
    async capabilities() { return (await ready).body; },
    async derive(body) { await ready; return call({ op: "derive", body }, TIME_LIMIT_MS); },
  };
}

const backend = document.querySelector('meta[name="matcalc-backend"]').content === "pyodide"
  ? pyodideBackend() : serverBackend;

// ---- the state in the URL fragment (share links) ------------------------------

function encodeState() {
  const bytes = new TextEncoder().encode(JSON.stringify(state));
  let binary = "";
  bytes.forEach((b) => { binary += String.fromCharCode(b); });
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function decodeState(text) {
  try {
    const binary = atob(text.replace(/-/g, "+").replace(/_/g, "/"));
    const saved = JSON.parse(new TextDecoder().decode(Uint8Array.from(binary, (c) => c.charCodeAt(0))));
    for (const key of Object.keys(state)) {
      if (key in saved && typeof saved[key] === typeof state[key] && Array.isArray(saved[key]) === Array.isArray(state[key])) {
        state[key] = saved[key];
      }
    }
    return true;
  } catch (e) {
    return false;
  }
}

// ---- state <-> controls -------------------------------------------------------

function showState() {
  $("expr").value = state.expr;
  $("command").value = state.command;
  $("layout").value = state.layout;
  $("steps").checked = state.steps;
  $("check").checked = state.check;
  $("claim").value = state.claim;
  selectTab(state.tab, false);
  showLets();
}

function requestBody() {
  const body = {
    command: state.command, expr: state.expr, wrt: state.wrt, layout: state.layout,
    let: Object.entries(state.let).map(([name, kind]) => `${name}: ${kind}`),
    steps: state.steps, check: state.check,
  };
  if (state.claim.trim()) body.claim = state.claim;
  return body;
}

let timer = null;
function deriveSoon(delay = 400) {
  clearTimeout(timer);
  timer = setTimeout(derive, delay);
}

async function derive(retried = false) {
  clearTimeout(timer);
  const mine = ++sequence;
  setStatus("deriving…");
  let reply;
  try {
    reply = await backend.derive(requestBody());
  } catch (e) {
    reply = { status: 0, body: { error: { kind: "error", message: String(e), rendered: "cannot reach matcalc: " + e } } };
  }
  if (mine !== sequence) return;
  setStatus("");
  const { status, body } = reply;
  if (status === 200) {
    showAnswer(body);
    return;
  }
  // a claim that does not parse (or no longer fits the expression): derive without it, say why beside it
  if (body.error && body.error.origin === "--claim") {
    const plain = requestBody();
    delete plain.claim;
    const again = await backend.derive(plain);
    if (mine !== sequence) return;
    if (again.status === 200) {
      showAnswer(again.body);
      showClaimError(body.error);
      return;
    }
  }
  // --wrt names that the expression no longer has: keep those it has, or take its first input
  if (body.inputs && !retried) {
    const names = Object.keys(body.inputs);
    const kept = state.wrt.filter((n) => names.includes(n));
    const wrt = kept.length ? kept : names.slice(0, 1);
    if (wrt.length && wrt.join() !== state.wrt.join()) {
      state.wrt = wrt;
      derive(true);
      return;
    }
  }
  if (body.inputs) showInputs(body.inputs, [], null);
  showError(body.error || { rendered: `error: status ${status}` });
}

// ---- answers ------------------------------------------------------------------

function showAnswer(out) {
  answer = out;
  $("error-box").hidden = true;
  document.body.classList.remove("has-error");
  renderMath($("result"), out.formats.latex);
  showInputs(out.inputs, out.functions || [], out.assumed);
  showFormat();
  const verdict = $("check-verdict");
  verdict.className = "";
  if (out.check) {
    verdict.className = out.check.ok === true ? "ok" : out.check.ok === false ? "bad" : "muted";
    const head = out.check.ok === true ? "✓ " : out.check.ok === false ? "✗ " : "";
    verdict.textContent = head + (out.check.ok === null ? "check unavailable: " : "") + out.check.message;
  } else {
    verdict.textContent = "";
  }
  showClaim(out.claim);
  saveHash();
}

function showClaim(claim) {
  const box = $("claim-verdict");
  box.className = "";
  if (!claim) { box.textContent = ""; return; }
  if (claim.supported === false) {
    box.className = "muted";
    box.textContent = "Your answer cannot be checked here: " + claim.message + ".";
    return;
  }
  box.className = claim.agrees === true ? "ok" : claim.agrees === false ? "bad" : "muted";
  box.textContent = (claim.agrees === true ? "✓ " : claim.agrees === false ? "✗ " : "") + (claim.message || "");
}

function showClaimError(error) {
  const box = $("claim-verdict");
  box.className = "bad";
  box.textContent = error.rendered;
}

function showError(error) {
  $("error").textContent = error.rendered;
  $("error-box").hidden = false;
  document.body.classList.add("has-error");
  $("result").textContent = "";
  $("check-verdict").textContent = "";
  saveHash();
}

function renderMath(element, latex) {
  element.textContent = "";
  if (!window.katex) { element.textContent = latex; return; }
  try {
    window.katex.render(latex, element, { displayMode: true, throwOnError: true, trust: false, output: "htmlAndMathml" });
  } catch (e) {
    element.textContent = latex;
  }
}

function showFormat() {
  $("format-output").textContent = answer ? answer.formats[state.tab] : "";
}

// ---- the inputs table -----------------------------------------------------------

function dimsText(kind, shape) {
  const base = kind.replace(/^positive /, "");
  return SIZED[base] ? shape.slice(0, SIZED[base]).join(", ") : "";
}

function kindText(kind, dims) {
  const base = kind.replace(/^positive /, "");
  if (!SIZED[base]) return kind;
  return `${kind}(${dims.trim() || "n"})`;
}

function showInputs(inputs, functions, assumed) {
  // every undeclared name (its kind came from the name or from its use), and the
  // defaults the derivation reported
  const assumedNames = new Set([
    ...(assumed ? (Array.isArray(assumed) ? assumed.map((a) => (typeof a === "string" ? a : a.name)) : Object.keys(assumed)) : []),
    ...Object.entries(inputs).filter(([, s]) => s.declared === false).map(([n]) => n)]);
  const body = $("inputs").tBodies[0];
  body.textContent = "";
  const rows = [...Object.entries(inputs), ...functions.map((f) => [f, { kind: "function", shape: [] }])];
  for (const [name, info] of rows) {
    const row = body.insertRow();
    row.dataset.name = name;
    const nameCell = row.insertCell();
    nameCell.textContent = name;
    if (assumedNames.has(name)) {
      const mark = document.createElement("span");
      mark.className = "assumed-mark";
      mark.textContent = "*";
      mark.title = "kind taken by default (from the name); choose one to declare it";
      nameCell.append(" ", mark);
      row.classList.add("assumed");
    }
    const kind = document.createElement("select");
    kind.setAttribute("aria-label", `kind of ${name}`);
    for (const k of new Set([...caps.kinds, info.kind])) kind.add(new Option(k, k, false, k === info.kind));
    row.insertCell().append(kind);
    const dims = document.createElement("input");
    dims.type = "text";
    dims.size = 8;
    dims.setAttribute("aria-label", `shape of ${name}`);
    dims.value = dimsText(info.kind, info.shape);
    dims.disabled = !SIZED[info.kind.replace(/^positive /, "")];
    row.insertCell().append(dims);
    const reset = document.createElement("button");
    reset.type = "button";
    reset.textContent = "×";
    reset.title = `forget --let for ${name}`;
    reset.setAttribute("aria-label", `forget the declaration of ${name}`);
    reset.hidden = !(name in state.let);
    row.insertCell().append(reset);
    const declare = () => {
      state.let[name] = kindText(kind.value, dims.value);
      showLets();
      derive();
    };
    kind.addEventListener("change", () => {
      const base = kind.value.replace(/^positive /, "");
      dims.disabled = !SIZED[base];
      if (SIZED[base] === 1) dims.value = String(info.shape[0] ?? "n");
      else if (SIZED[base] === 2) dims.value = info.shape.length ? info.shape.join(", ") : "m, n";
      else dims.value = "";
      declare();
    });
    dims.addEventListener("change", declare);
    reset.addEventListener("click", () => { delete state.let[name]; showLets(); derive(); });
  }
  showWrt(Object.keys(inputs));
}

function showLets() {
  const lets = Object.entries(state.let).map(([n, k]) => `--let '${n}: ${k}'`);
  $("lets").textContent = lets.length ? lets.join(" ") : "";
}

function showWrt(names) {
  const box = $("wrt");
  box.textContent = "";
  for (const name of names) {
    const label = document.createElement("label");
    label.className = "check";
    const input = document.createElement("input");
    input.type = "checkbox";
    input.value = name;
    input.checked = state.wrt.includes(name);
    input.addEventListener("change", () => {
      state.wrt = names.filter((n) => (n === name ? input.checked : state.wrt.includes(n)));
      derive();
    });
    label.append(input, " " + name);
    box.append(label);
  }
}

// ---- tabs, copy, download ---------------------------------------------------------

function tabs() { return [...$("tabs").querySelectorAll('[role="tab"]')]; }

function selectTab(format, focus) {
  state.tab = FORMATS[format] ? format : "text";
  for (const tab of tabs()) {
    const on = tab.dataset.format === state.tab;
    tab.setAttribute("aria-selected", String(on));
    tab.tabIndex = on ? 0 : -1;
    if (on && focus) tab.focus();
  }
  $("tab-panel").setAttribute("aria-labelledby", "tab-" + state.tab);
  showFormat();
}

async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch (e) {                       // no clipboard API (an insecure origin): the old way
    const area = document.createElement("textarea");
    area.value = text;
    document.body.append(area);
    area.select();
    const ok = document.execCommand("copy");
    area.remove();
    return ok;
  }
}

function download() {
  if (!answer) return;
  const [suffix, type] = FORMATS[state.tab];
  const blob = new Blob([answer.formats[state.tab] + "\n"], { type });
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = `matcalc_${state.command}${suffix}`;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
}

function flash(element, text) {
  element.textContent = text;
  setTimeout(() => { if (element.textContent === text) element.textContent = ""; }, 2500);
}

function setStatus(text) { $("backend-status").textContent = text; }

function saveHash() { history.replaceState(null, "", "#s=" + encodeState()); }

// ---- gallery -------------------------------------------------------------------

async function showGallery() {
  let examples = [];
  try { examples = await (await fetch("static/examples.json")).json(); } catch (e) { return; }
  const list = $("gallery");
  for (const ex of examples) {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "example";
    const title = document.createElement("span");
    title.textContent = ex.title;
    const code = document.createElement("code");
    code.textContent = `${ex.command} ${ex.expr.replace(/\n/g, "; ")}`;
    button.append(title, code);
    button.addEventListener("click", () => {
      Object.assign(state, { expr: ex.expr, command: ex.command, wrt: ex.wrt.slice(), claim: "" });
      state.let = Object.fromEntries(ex.let.map((d) => [d.split(":")[0].trim(), d.split(":").slice(1).join(":").trim()]));
      showState();
      derive();
      $("expr").focus();
    });
    item.append(button);
    list.append(item);
  }
}

// ---- start -------------------------------------------------------------------------

function wire() {
  $("expr").addEventListener("input", () => { state.expr = $("expr").value; deriveSoon(); });
  $("expr").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); derive(); }
  });
  $("command").addEventListener("change", () => { state.command = $("command").value; derive(); });
  $("layout").addEventListener("change", () => { state.layout = $("layout").value; derive(); });
  $("steps").addEventListener("change", () => { state.steps = $("steps").checked; derive(); });
  $("check").addEventListener("change", () => { state.check = $("check").checked; derive(); });
  $("derive").addEventListener("click", () => derive());
  $("claim").addEventListener("keydown", (e) => { if (e.key === "Enter") { e.preventDefault(); $("claim-go").click(); } });
  $("claim-go").addEventListener("click", () => { state.claim = $("claim").value; derive(); });
  for (const tab of tabs()) tab.addEventListener("click", () => { selectTab(tab.dataset.format, false); saveHash(); });
  $("tabs").addEventListener("keydown", (e) => {        // arrow keys move between tabs
    const all = tabs();
    const at = all.findIndex((t) => t.dataset.format === state.tab);
    const step = { ArrowRight: 1, ArrowLeft: -1, Home: -at, End: all.length - 1 - at }[e.key];
    if (step === undefined) return;
    e.preventDefault();
    selectTab(all[(at + step + all.length) % all.length].dataset.format, true);
  });
  $("copy").addEventListener("click", async () => {
    if (answer) flash($("copy-status"), (await copyText(answer.formats[state.tab])) ? "Copied" : "Copy failed");
  });
  $("download").addEventListener("click", download);
  $("share").addEventListener("click", async () => {
    saveHash();
    flash($("copy-status"), (await copyText(location.href)) ? "Share link copied" : "Copy the address bar");
  });
  window.addEventListener("hashchange", () => {
    if (location.hash.startsWith("#s=") && location.hash.slice(3) !== encodeState() && decodeState(location.hash.slice(3))) {
      showState();
      derive();
    }
  });
}

async function main() {
  if (location.hash.startsWith("#s=")) decodeState(location.hash.slice(3));
  showState();
  wire();
  showGallery();
  try {
    caps = await backend.capabilities();
    $("version").textContent = caps.version || "";
    for (const c of caps.commands) {
      if (![...$("command").options].some((o) => o.value === c)) $("command").add(new Option(c, c));
    }
    $("command").value = state.command;
    $("claim-box").classList.toggle("unsupported", !caps.claim);
  } catch (e) {
    setStatus("cannot reach matcalc");
  }
  derive();
}

document.addEventListener("DOMContentLoaded", main);
