// The page: opens models, streams generations with the routing of every token, trains small
// models with a live loss curve. The engine lives in worker.js; this file only talks to it by
// messages and draws. Plain DOM, no library, no request beyond this site.
//
// URL mode (for scripts and tests), `run=1`:
//   ?model=URL&prompt=TEXT&tokens=N&temperature=T&top_k=K&top_p=P&seed=S&run=1
//   ?train=URL_OF_TEXT&steps=N&experts=E&topk=K&arch=gpt|llama&d_model=..&layers=..&heads=..
//          &ctx=..&batch=..&lr=..&seed=..&run=1   (&prompt=TEXT also samples the trained model)
// write the generated text to <pre id="output">, the routing to <script id="routing">, the
// per-step losses to <script id="training">, then set body[data-state] to "done", or to "error"
// with the message in #output.
"use strict";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const urlMode = params.get("run") === "1";

// ---------------------------------------------------------------------------------------------
// Formatting

const fmtInt = (n) => Number(n).toLocaleString("en-US");
function fmtBytes(n) {
  n = Number(n);
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} GB`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} MB`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} kB`;
  return `${n} B`;
}
const fmtNum = (x, digits = 1) => (Number.isFinite(x) ? x.toFixed(digits) : "–");

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "style") Object.assign(node.style, v);
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

// JSON for a <script type="application/json">: "<" escaped so that no token text can close the
// element when the DOM is serialised (chromium --dump-dom); still valid JSON.
const scriptJson = (value) => JSON.stringify(value).replace(/</g, "\\u003c");

// ---------------------------------------------------------------------------------------------
// Status lines and errors

function status(text) {
  $("engine-status").textContent = text;
}
function showError(message) {
  const alert = $("alert");
  alert.textContent = message;
  alert.hidden = !message;
}

// ---------------------------------------------------------------------------------------------
// The engine: a worker and a promise per request. Stopping a generation ends the worker (a
// synchronous loop inside it cannot hear a message) and starts a new one.

class Stopped extends Error {}

class Engine {
  constructor() {
    this.nextId = 1;
    this.start();
  }

  start() {
    this.pending = new Map();
    this.threads = 1;
    this.isolated = false;
    // ?threads=N in the page's URL reaches the worker (the number of engine threads).
    this.worker = new Worker(params.has("threads") ? `worker.js?threads=${encodeURIComponent(params.get("threads"))}` : "worker.js");
    this.ready = new Promise((resolve, reject) => {
      this.readyResolve = resolve;
      this.readyReject = reject;
    });
    this.ready.catch(() => {});  // reported by whoever awaits it
    this.worker.onmessage = ({ data }) => this.receive(data);
    // A worker script that does not load (tinygpt.js missing, a syntax error) only says so here.
    this.worker.onerror = (event) => {
      event.preventDefault();
      this.fail(`the engine's worker failed: ${event.message || "could not load worker.js / tinygpt.js"}`);
    };
  }

  fail(message) {
    this.readyReject(new Error(message));
    for (const p of this.pending.values()) p.reject(new Error(message));
    this.pending.clear();
  }

  receive(data) {
    if (data.type === "ready") {
      this.threads = data.threads;
      this.isolated = data.isolated;
      document.body.dataset.threads = String(data.threads);
      this.readyResolve();
      return;
    }
    if (data.type === "fatal") return this.fail(data.message);
    if (data.type === "log") return console.log(`[tinygpt] ${data.text}`);
    const p = this.pending.get(data.id);
    if (!p) return;
    if (data.type === "token") return p.onToken && p.onToken(data.token);
    this.pending.delete(data.id);
    if (data.type === "result") p.resolve(data.result);
    else {
      const error = new Error(data.message);
      error.broken = data.broken;
      p.reject(error);
    }
  }

  async call(cmd, args = {}, onToken = null) {
    await this.ready;
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, onToken });
      // Blobs are passed by reference: a model file is never copied here.
      this.worker.postMessage({ id, cmd, ...args });
    });
  }

  restart() {
    this.worker.terminate();
    for (const p of this.pending.values()) p.reject(new Stopped("stopped"));
    this.pending.clear();
    this.start();
  }
}

// ---------------------------------------------------------------------------------------------
// Page state

const engine = new Engine();
let source = null;     // {blob, name, label}: the current model's bytes, to reopen after a restart
let info = null;       // the current model's info (open_model / model_info)
let busy = null;       // "opening" | "generating" | "training" | "saving" | null
let restarting = false; // after Stop: until the new worker has reopened the model
let started = false;   // the engine has answered once (body[data-state] stays "loading" till then)

// Enables what can be done now; body[data-state] is "ready" when idle (tests wait for it).
function setBusy(what) {
  busy = what;
  const idle = busy === null && !restarting;
  $("generate").disabled = !idle || !info;
  $("stop").disabled = busy !== "generating" || restarting;
  $("train").disabled = !idle;
  $("train-stop").disabled = busy !== "training";
  $("download").disabled = !idle || !source || !source.trained;
  $("sample-trained").disabled = !idle || !source || !source.trained || !info;
  $("model-file").disabled = !idle;
  $("model-url-open").disabled = !idle;
  if (!urlMode && started) document.body.dataset.state = idle ? "ready" : "busy";
}

// ---------------------------------------------------------------------------------------------
// Opening a model

// A URL's bytes as a Blob, with progress when the server gives a length.
async function fetchBlob(url, what) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status} ${response.statusText}`);
  const total = Number(response.headers.get("content-length")) || 0;
  if (!response.body || !total) return response.blob();
  const reader = response.body.getReader();
  const chunks = [];
  let got = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    got += value.length;
    $("model-progress").textContent =
      `Downloading ${what}: ${fmtBytes(got)} of ${fmtBytes(total)} (${Math.round((100 * got) / total)}%)`;
  }
  return new Blob(chunks);
}

const baseName = (url) => decodeURIComponent(new URL(url, location.href).pathname.split("/").pop() || "model");

// wasm32 addresses 4 GiB at most: a larger file cannot be in the engine's memory.
const WASM_MEMORY_LIMIT = 4 * 1024 ** 3;

async function openModel(blob, name, label, trained = false) {
  if (blob.size >= WASM_MEMORY_LIMIT)
    throw new Error(`${label} is ${fmtBytes(blob.size)}: WebAssembly can address at most 4 GB, ` +
      "so this page cannot hold it. Open a smaller model, or a bf16 / q8_0 copy of it (tinygpt convert --dtype).");
  setBusy("opening");
  $("model-progress").textContent = `Opening ${label} (${fmtBytes(blob.size)})…`;
  try {
    const opened = await engine.call("open", { blob, name });
    source = { blob, name, label, trained };
    showInfo(opened, label);
    $("model-progress").textContent =
      `Opened ${label} in ${fmtNum(opened.load_ms ?? NaN)} ms.`;
    showError("");
  } catch (e) {
    $("model-progress").textContent = "";
    // The engine's message starts with the file's name already.
    const why = e.message.startsWith(`${name}: `) ? e.message.slice(name.length + 2) : e.message;
    throw new Error(`Could not open ${label}: ${why}`);
  } finally {
    setBusy(null);
  }
}

async function openModelUrl(url) {
  const name = baseName(url);
  setBusy("opening");
  let blob;
  try {
    blob = await fetchBlob(url, name);
  } finally {
    setBusy(null);
  }
  await openModel(blob, name, name);
}

function showInfo(modelInfo, label) {
  info = modelInfo;
  const c = info.config || {};
  const moe = info.moe_layers || [];
  const facts = [
    ["Model", label],
    ["Format", info.format],
    ["Family", info.family],
    ["Parameters", fmtInt(info.params)],
    ["Active per token", `${fmtInt(info.active_params)}${info.params ? ` (${fmtNum((100 * info.active_params) / info.params)}%)` : ""}`],
    ["Weights", fmtBytes(info.weight_bytes)],
    ["Tokenizer", info.tokenizer],
    ["MoE", moe.length ? `${moe.length} of ${c.layers} layers (${moe.join(", ")}): ${c.experts} experts, top-${c.topk}` : "dense (no MoE layer)"],
  ];
  fillFacts($("model-facts"), facts);
  fillFacts($("model-config"), Object.entries(c).map(([k, v]) => [k, typeof v === "object" ? JSON.stringify(v) : String(v)]));
  const body = $("model-tensors").querySelector("tbody");
  body.replaceChildren(...(info.tensors || []).map((t) =>
    el("tr", {}, el("td", { text: t.name }), el("td", { text: t.dtype }),
      el("td", { text: (t.shape || []).join(" × ") }))));
  $("tensor-count").textContent = fmtInt((info.tensors || []).length);
  $("model-info").hidden = false;
  resetRouting();
  setBusy(busy);
}

function fillFacts(dl, pairs) {
  dl.replaceChildren(...pairs.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: v })]));
}

// ---------------------------------------------------------------------------------------------
// Expert colours: a fixed palette (distinct, colour-blind-aware first eight), then hues spread
// by the golden angle for models with more experts.

const PALETTE = ["#4477aa", "#ee6677", "#228833", "#ccbb44", "#66ccee", "#aa3377", "#bbbbbb",
  "#ee8866", "#332288", "#117733", "#882255", "#44aa99", "#999933", "#cc6677", "#ddcc77",
  "#88ccee"];

function expertRgb(e) {
  if (e < PALETTE.length) {
    const h = PALETTE[e];
    return [1, 3, 5].map((i) => parseInt(h.slice(i, i + 2), 16));
  }
  // HSL (golden-angle hue, 60% saturation, 50% lightness) to RGB.
  const hue = (e * 137.508) % 360, s = 0.6, l = 0.5;
  const f = (n) => {
    const k = (n + hue / 30) % 12;
    return Math.round(255 * (l - s * Math.min(l, 1 - l) * Math.max(-1, Math.min(k - 3, 9 - k, 1))));
  };
  return [f(0), f(8), f(4)];
}
const expertColour = (e) => `rgb(${expertRgb(e).join(",")})`;

// A chip's background: the expert's colour, more opaque for a larger gate; its text dark or
// light by the blended luminance so it stays readable.
function chipStyle(e, gate) {
  const [r, g, b] = expertRgb(e);
  const alpha = 0.2 + 0.8 * Math.max(0, Math.min(1, gate));
  const lum = (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255;
  const blended = alpha * lum + (1 - alpha);
  return { background: `rgba(${r},${g},${b},${alpha.toFixed(3)})`, color: blended > 0.55 ? "#111" : "#fff" };
}

// ---------------------------------------------------------------------------------------------
// Routing: the grid (a row per token, a column per MoE layer) and each layer's expert load

let routing = [];      // [{token, id, layers}] of the current generation
let load = [];         // load[layer][expert]: how many times the router chose it
let queued = [];       // tokens not drawn yet (drawn once per animation frame)
let flushScheduled = false;

function moeShape() {
  const c = (info && info.config) || {};
  return { layers: (info && info.moe_layers) || [], experts: Number(c.experts) || 0 };
}

function resetRouting() {
  const { layers, experts } = moeShape();
  routing = [];
  queued = [];
  load = layers.map(() => new Array(experts).fill(0));
  $("routing").textContent = "[]";
  const grid = $("routing-grid");
  grid.tHead.replaceChildren(el("tr", {},
    el("th", { scope: "col", text: "#" }), el("th", { scope: "col", text: "token" }),
    ...layers.map((l) => el("th", { scope: "col", text: `layer ${l}` }))));
  grid.tBodies[0].replaceChildren();
  $("experts-note").hidden = false;
  $("experts-section").classList.toggle("dense", layers.length === 0);
  if (info && layers.length === 0) $("experts-note").textContent = "This model is dense: it has no router to show.";
  drawLegend(experts);
  drawLoad();
}

function drawLegend(experts) {
  $("legend").replaceChildren(...Array.from({ length: experts }, (_, e) =>
    el("span", { class: "legend-item" },
      el("span", { class: "swatch", style: { background: expertColour(e) }, "aria-hidden": "true" }),
      `expert ${e}`)));
}

function drawLoad() {
  drawLoadCharts($("load"), moeShape().layers, load, "chosen", (n) => `${n} times`);
}

// One small bar chart per MoE layer: a bar per expert, as tall as its share of the load.
function drawLoadCharts(container, layers, loads, verb, amount) {
  container.replaceChildren(...layers.map((layer, i) => {
    const counts = loads[i] || [];
    const total = counts.reduce((a, b) => a + b, 0);
    const max = Math.max(1e-9, ...counts);
    // Narrower bars for many experts, so that a layer's chart stays about 160 px wide.
    const width = `${counts.length > 16 ? Math.max(2, Math.floor(160 / counts.length)) : 10}px`;
    const bars = counts.map((n, e) => {
      const share = total ? (100 * n) / total : 0;
      return el("span", {
        class: "bar", title: `expert ${e}: ${verb} ${amount(n)} (${share.toFixed(1)}%)`,
        style: { height: `${(100 * n) / max}%`, width, background: expertColour(e) },
      });
    });
    return el("figure", { class: "load-layer" },
      el("div", { class: "bars", role: "img",
        "aria-label": `layer ${layer}: ${counts.map((n, e) => `expert ${e} ${n}`).join(", ")}` }, ...bars),
      el("figcaption", { text: `layer ${layer}` }));
  }));
}

function addToken(token) {
  const record = { token: token.text, id: token.id, layers: token.layers || [] };
  routing.push(record);
  record.layers.forEach((pairs, i) => {
    for (const [e] of pairs) if (load[i] && e >= 0 && e < load[i].length) load[i][e] += 1;
  });
  queued.push(record);
  if (!flushScheduled) {
    flushScheduled = true;
    requestAnimationFrame(flushTokens);
  }
}

// Draws the queued rows and the load bars: per frame, not per token, so a fast model does not
// spend its time in layout.
function flushTokens() {
  flushScheduled = false;
  if (!queued.length) return;
  const showGates = $("show-gates").checked;
  // The queued records are always the last ones of `routing`.
  const firstIndex = routing.length - queued.length;
  const rows = queued.map((record, i) => {
    const index = firstIndex + i;
    return el("tr", {},
      el("td", { class: "index", text: String(index + 1) }),
      el("th", { scope: "row", class: "piece", title: `token id ${record.id}`, text: visible(record.token) }),
      ...record.layers.map((pairs) => el("td", {}, ...pairs.map(([e, g]) =>
        el("span", { class: "chip", style: chipStyle(e, g), title: `expert ${e}, gate ${Number(g).toFixed(3)}` },
          showGates ? `${e}·${Number(g).toFixed(2)}` : String(e))))));
  });
  queued = [];
  $("routing-grid").tBodies[0].append(...rows);
  drawLoad();
}

// A token's text as a label: whitespace made visible.
const visible = (text) => (text === "" ? "…" : text.replace(/\n/g, "⏎").replace(/\t/g, "⇥").replace(/ /g, "␣"));

// ---------------------------------------------------------------------------------------------
// Generating

function generationOptions(get) {
  const options = {};
  const number = (key, value) => {
    if (value !== null && value !== "" && Number.isFinite(Number(value))) options[key] = Number(value);
  };
  number("tokens", get("tokens"));
  number("temperature", get("temperature"));
  number("top_k", get("top_k"));
  number("top_p", get("top_p"));
  number("seed", get("seed"));
  return options;
}

async function generate(prompt, options) {
  if (!info) throw new Error("Open or train a model first.");
  resetRouting();
  $("prompt-echo").textContent = prompt;
  $("output").textContent = "";
  $("routing").textContent = "[]";
  setBusy("generating");
  const t0 = performance.now();
  let first = 0, count = 0;
  const live = () => {
    const decodeS = (performance.now() - first) / 1000;
    $("gen-stats").textContent = `${count} tokens · ${count > 1 && decodeS > 0 ? fmtNum((count - 1) / decodeS) : "–"} tok/s`;
  };
  try {
    const stats = await engine.call("generate", { prompt, options }, (tokenJson) => {
      const token = JSON.parse(tokenJson);
      if (!count) first = performance.now();
      count += 1;
      $("output").append(token.text);
      addToken(token);
      live();
    });
    flushTokens();
    if (typeof stats.text === "string") $("output").textContent = stats.text;
    $("routing").textContent = scriptJson(routing);
    $("gen-stats").textContent =
      `${stats.generated} tokens after a ${stats.prompt_tokens}-token prompt · first token ${fmtNum(stats.ttft_ms)} ms · ` +
      `prefill ${fmtNum(stats.prefill_tok_per_s, 0)} tok/s · decode ${fmtNum(stats.decode_tok_per_s)} tok/s`;
    return stats;
  } catch (e) {
    flushTokens();
    $("routing").textContent = scriptJson(routing);
    if (e instanceof Stopped) {
      $("gen-stats").textContent = `stopped after ${count} tokens (${fmtNum((performance.now() - t0) / 1000, 2)} s)`;
      return null;
    }
    throw e;
  } finally {
    setBusy(null);
  }
}

// Stop: end the worker, start another, and reopen the same model in it.
async function stopGeneration() {
  restarting = true;
  setBusy(busy);
  $("model-progress").textContent = "Restarting the engine after Stop…";
  engine.restart();
  try {
    await engine.ready;
    if (source) await openModel(source.blob, source.name, source.label, source.trained);
  } finally {
    restarting = false;
    setBusy(busy);
  }
}

// The engine answered with a trap (out of memory...): a new worker, the model reopened.
async function recover(e) {
  if (!e || !e.broken) return;
  engine.restart();
  await engine.ready;
  if (source) await openModel(source.blob, source.name, source.label, source.trained).catch(() => {});
}

// ---------------------------------------------------------------------------------------------
// Training

let losses = [];       // [{step, loss, ce, aux, val_loss, ms_per_step, tokens_per_s}]
let trainLoad = [];    // the last step's expert load, one array per MoE layer
let stopTraining = false;

// SwiGLU's customary width for a model width: 8/3 of it, rounded up to a multiple of 32 (as
// the engine's llama presets).
const swigluWidth = (d) => Math.ceil(Math.floor((8 * d + 2) / 3) / 32) * 32;

function trainOptions(get) {
  const options = {};
  for (const key of ["arch", "preset"]) if (get(key)) options[key] = get(key);
  for (const key of ["d_model", "d_mlp", "layers", "heads", "kv_heads", "ctx", "experts", "topk", "steps",
    "batch", "lr", "val_split", "val_every", "seed"]) {
    const v = get(key);
    if (v !== null && v !== "" && Number.isFinite(Number(v))) options[key] = Number(v);
  }
  // With a validation share, about 20 validation points along the curve.
  if (options.val_split > 0 && options.val_every === undefined)
    options.val_every = Math.max(1, Math.round((options.steps ?? 200) / 20));
  if (options.experts === 1) delete options.topk;
  // The MLP follows a width chosen here (the preset's own is for its own width): 4× for gpt,
  // the SwiGLU width for llama.
  if (options.d_model && !options.d_mlp)
    options.d_mlp = options.arch === "llama" ? swigluWidth(options.d_model) : 4 * options.d_model;
  return options;
}

async function train(bytes, options) {
  if (!bytes.length) throw new Error("The training text is empty.");
  losses = [];
  trainLoad = [];
  stopTraining = false;
  drawCurve();
  drawTrainLoad();
  $("training").textContent = "[]";
  setBusy("training");
  try {
    $("train-stats").textContent = `Building the model on ${fmtBytes(bytes.length)} of text…`;
    const started = await engine.call("trainStart", { options, text: bytes });
    // The engine's model is now the one being trained: show what it is.
    source = null;
    showInfo(await engine.call("info"), "the model being trained");
    const total = started.steps ?? options.steps;
    $("train-stats").textContent = `${fmtInt(started.params)} parameters · ${total} steps`;
    for (;;) {
      const s = await engine.call("trainStep", { n: 1 });
      losses.push({ step: s.step, loss: s.loss, ce: s.ce ?? null, aux: s.aux, val_loss: s.val_loss ?? null,
        ms_per_step: s.ms_per_step, tokens_per_s: s.tokens_per_s });
      trainLoad = s.expert_load || [];
      $("train-stats").textContent =
        `step ${s.step} of ${s.steps} · loss ${fmtNum(s.loss, 4)}` +
        (s.val_loss != null ? ` · validation ${fmtNum(s.val_loss, 4)}` : "") +
        ` · ${fmtNum(s.ms_per_step)} ms/step · ${fmtInt(Math.round(s.tokens_per_s || 0))} tok/s`;
      scheduleCurve();
      if (s.done || stopTraining) break;
    }
    $("training").textContent = scriptJson(losses);
    drawCurve();
    drawTrainLoad();
    // The trained model is now the engine's model: show it, and keep its bytes so that it can
    // be downloaded and reopened after a Stop.
    const trainedInfo = await engine.call("info");
    const saved = await engine.call("save", { options: {} });
    source = { blob: new Blob([saved.bytes], { type: "application/octet-stream" }),
      name: "trained.tinygpt", label: "the model trained here", trained: true };
    showInfo(trainedInfo, source.label);
    $("model-progress").textContent = `Trained here: ${fmtBytes(saved.size)} as .tinygpt.`;
    return losses;
  } finally {
    setBusy(null);
  }
}

let curveScheduled = false;
function scheduleCurve() {
  if (curveScheduled) return;
  curveScheduled = true;
  requestAnimationFrame(() => {
    curveScheduled = false;
    drawCurve();
    drawTrainLoad();
  });
}

// The loss curve: axes, min/max labels, a polyline for training, dots for validation.
function drawCurve() {
  const svg = $("loss-curve");
  const ns = "http://www.w3.org/2000/svg";
  const node = (tag, attrs, text) => {
    const n = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v);
    if (text !== undefined) n.textContent = text;
    return n;
  };
  const W = 640, H = 240, left = 48, right = 12, top = 12, bottom = 28;
  const title = svg.querySelector("title");
  svg.replaceChildren(title);
  svg.append(node("rect", { x: 0, y: 0, width: "100%", height: "100%", class: "bg" }));
  const pts = losses.filter((p) => Number.isFinite(p.loss));
  const val = losses.filter((p) => Number.isFinite(p.val_loss));
  if (!pts.length) {
    svg.append(node("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "empty" }, "no training yet"));
    return;
  }
  const ys = [...pts.map((p) => p.loss), ...val.map((p) => p.val_loss)];
  let lo = Math.min(...ys), hi = Math.max(...ys);
  if (hi - lo < 1e-6) { lo -= 0.5; hi += 0.5; }
  const x0 = pts[0].step, x1 = Math.max(pts[pts.length - 1].step, x0 + 1);
  const X = (s) => left + ((s - x0) / (x1 - x0)) * (W - left - right);
  const Y = (v) => top + ((hi - v) / (hi - lo)) * (H - top - bottom);
  svg.append(node("line", { x1: left, y1: H - bottom, x2: W - right, y2: H - bottom, class: "axis" }));
  svg.append(node("line", { x1: left, y1: top, x2: left, y2: H - bottom, class: "axis" }));
  svg.append(node("text", { x: left - 6, y: Y(hi) + 4, "text-anchor": "end" }, hi.toFixed(2)));
  svg.append(node("text", { x: left - 6, y: Y(lo) + 4, "text-anchor": "end" }, lo.toFixed(2)));
  svg.append(node("text", { x: left, y: H - 8, "text-anchor": "start" }, `step ${x0}`));
  svg.append(node("text", { x: W - right, y: H - 8, "text-anchor": "end" }, `step ${x1}`));
  // At most ~600 points in the line: every n-th step, and always the last.
  const every = Math.max(1, Math.ceil(pts.length / 600));
  const line = pts.filter((_, i) => i % every === 0 || i === pts.length - 1);
  svg.append(node("polyline", { class: "train", points: line.map((p) => `${X(p.step).toFixed(1)},${Y(p.loss).toFixed(1)}`).join(" ") }));
  for (const p of val) svg.append(node("circle", { class: "val", cx: X(p.step), cy: Y(p.val_loss), r: 3 }));
}

// The training batch's expert load at the last step, per MoE layer (the MoE layers are the
// ones with a load array).
function drawTrainLoad() {
  const moe = (info && info.moe_layers) || [];
  const layers = trainLoad.map((_, i) => (i < moe.length ? moe[i] : i));
  $("train-load-h").hidden = layers.length === 0;
  drawLoadCharts($("train-load"), layers, trainLoad, "got", (x) => `${(100 * x).toFixed(1)}% of the batch`);
}

// The trained model as a file: the bytes kept at the end of training (f32 with the optimizer's
// state), or a copy the engine writes in the chosen type.
async function download() {
  if (!source || !source.trained) return;
  const as = $("save-as").value;
  let blob = source.blob, name = "trained.tinygpt";
  if (as !== "resumable") {
    setBusy("saving");
    try {
      const saved = await engine.call("save", { options: { dtype: as, optimizer: false } });
      blob = new Blob([saved.bytes], { type: "application/octet-stream" });
      name = `trained-${as}.tinygpt`;
    } finally {
      setBusy(null);
    }
  }
  $("model-progress").textContent = `Saved ${name}: ${fmtBytes(blob.size)}.`;
  const url = URL.createObjectURL(blob);
  const a = el("a", { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

// ---------------------------------------------------------------------------------------------
// Wiring the controls

function report(e) {
  if (e instanceof Stopped) return;
  showError(e.message || String(e));
  recover(e);
}

const engineReadyText = () =>
  `Engine ready (WebAssembly, ${engine.threads} thread${engine.threads === 1 ? "" : "s"}` +
  (engine.isolated ? ")." : "; threads need a cross-origin isolated page, see docs/WEB.md).");

function readFileBlob(file) {
  openModel(file, file.name, file.name).catch(report);
}

function wireControls() {
  $("model-file").addEventListener("change", (e) => {
    const file = e.target.files[0];
    if (file) readFileBlob(file);
  });
  $("model-url-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const url = $("model-url").value.trim();
    if (url) openModelUrl(url).catch(report);
  });
  dropZone($("drop-model"), (file) => busy === null && readFileBlob(file));
  dropZone($("drop-text"), (file) => loadTrainFile(file));
  $("train-file").addEventListener("change", (e) => e.target.files[0] && loadTrainFile(e.target.files[0]));
  $("train-text").addEventListener("input", updateTextSize);

  $("generate-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const form = { tokens: $("tokens").value, temperature: $("temperature").value,
      top_k: $("top-k").value, top_p: $("top-p").value, seed: $("seed").value };
    showError("");
    generate($("prompt").value, generationOptions((k) => form[k])).catch(report);
  });
  $("stop").addEventListener("click", () => stopGeneration().catch(report));
  // After training: the same as Generate, with the form's settings, shown where Generate is.
  $("sample-trained").addEventListener("click", () => {
    $("generate-section").scrollIntoView({ behavior: "smooth" });
    $("generate-form").requestSubmit ? $("generate-form").requestSubmit() : $("generate").click();
  });
  $("show-gates").addEventListener("change", () => {
    // Redraw the whole grid with or without the numbers.
    $("routing-grid").tBodies[0].replaceChildren();
    queued = routing.slice();
    flushTokens();
  });

  $("train-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const form = { arch: $("arch").value, experts: $("experts").value, topk: $("topk").value,
      steps: $("steps").value, d_model: $("d-model").value, layers: $("layers").value,
      heads: $("heads").value, ctx: $("ctx").value, batch: $("batch").value, lr: $("lr").value,
      val_split: $("val-split").value, seed: $("train-seed").value };
    showError("");
    train(new TextEncoder().encode($("train-text").value), trainOptions((k) => form[k])).catch(report);
  });
  $("train-stop").addEventListener("click", () => { stopTraining = true; });
  $("download").addEventListener("click", () => download().catch(report));
}

// Drag-and-drop of one file onto an element.
function dropZone(zone, onFile) {
  zone.addEventListener("dragover", (e) => {
    e.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    const file = e.dataTransfer.files[0];
    if (file) onFile(file);
  });
}

async function loadTrainFile(file) {
  $("train-text").value = await file.text();
  updateTextSize();
}

function updateTextSize() {
  const n = new TextEncoder().encode($("train-text").value).length;
  $("train-text-size").textContent = n ? `${fmtBytes(n)} of text` : "";
}

// ---------------------------------------------------------------------------------------------
// URL mode

// Fills the form from the URL so that a link shows what it ran.
function fillFromUrl() {
  const set = (id, key) => params.has(key) && ($(id).value = params.get(key));
  set("prompt", "prompt");
  set("tokens", "tokens");
  set("temperature", "temperature");
  set("top-k", "top_k");
  set("top-p", "top_p");
  set("seed", "seed");
  set("model-url", "model");
  set("arch", "arch");
  set("experts", "experts");
  set("topk", "topk");
  set("steps", "steps");
  set("d-model", "d_model");
  set("layers", "layers");
  set("heads", "heads");
  set("ctx", "ctx");
  set("batch", "batch");
  set("lr", "lr");
  set("val-split", "val_split");
}

async function runFromUrl() {
  const get = (k) => params.get(k);
  if (params.has("model")) {
    await openModelUrl(get("model"));
    if (urlMode) await generate(get("prompt") ?? $("prompt").value, generationOptions(get));
  } else if (params.has("train") && urlMode) {
    const response = await fetch(get("train"));
    if (!response.ok) throw new Error(`${get("train")}: HTTP ${response.status} ${response.statusText}`);
    const bytes = new Uint8Array(await response.arrayBuffer());
    $("train-text").value = new TextDecoder().decode(bytes);
    updateTextSize();
    await train(bytes, trainOptions(get));
    $("output").textContent = "";
    if (params.has("prompt")) await generate(get("prompt"), generationOptions(get));
  }
}

async function main() {
  wireControls();
  fillFromUrl();
  drawCurve();
  resetRouting();
  setBusy(null);
  if (location.protocol === "file:")
    showError("This page needs a web server (browsers do not run workers from file:// pages): " +
      "for example `python3 -m http.server -d build-web`, then open http://localhost:8000/.");
  try {
    await engine.ready;
    started = true;
    setBusy(busy);
    status(engineReadyText());
    await runFromUrl();
    if (urlMode) document.body.dataset.state = "done";
  } catch (e) {
    const message = e.message || String(e);
    if ($("engine-status").textContent.startsWith("Starting")) status("The engine did not start.");
    showError(message);
    if (urlMode) {
      $("output").textContent = message;
      document.body.dataset.state = "error";
    }
  }
}

main();
