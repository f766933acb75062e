// The engine's worker: the page never calls the WebAssembly module itself, so a long generation
// or training step never freezes it. A classic worker (importScripts) rather than a module
// worker: Firefox and Safari run classic workers everywhere.
//
// Protocol. The page posts {id, cmd, ...args}; the worker answers {id, type: "result", result}
// or {id, type: "error", message}, and while a command runs it may post {id, type: "token",
// token} (generate). Unprompted: {type: "ready", threads, isolated}, {type: "fatal", message} when the
// module does not load, {type: "log", text} for what the engine prints.
//
// Every engine function returns a JSON string and never throws; {"error": ...} becomes an
// "error" answer here.
"use strict";

// Two builds of the engine: tinygpt-threads.js runs on WebAssembly threads, which need shared
// memory, which browsers give only to cross-origin isolated pages (the two headers of
// docs/WEB.md); tinygpt.js runs on this one thread anywhere. worker.js?threads=N asks for N
// threads (1: the one-thread build even where threads are possible).
const wantThreads = Number(new URLSearchParams(self.location.search).get("threads")) || 0;
const threaded = self.crossOriginIsolated === true && wantThreads !== 1;
const script = threaded ? "tinygpt-threads.js" : "tinygpt.js";
importScripts(script);

let engine = null;
const log = (text) => postMessage({ type: "log", text: String(text) });
// mainScriptUrlOrBlob: the script the engine's own thread workers load (by default they would
// load the script that created them, this file).
const ready = createTinygpt({ locateFile: (f) => f, mainScriptUrlOrBlob: script, print: log, printErr: log }).then(
  (m) => {
    engine = m;
    if (wantThreads > 0) m.set_threads(wantThreads);
    const threads = typeof m.threads === "function" ? Number(m.threads()) || 1 : 1;
    postMessage({ type: "ready", threads, isolated: self.crossOriginIsolated === true });
  },
  (e) => postMessage({ type: "fatal", message: `the engine did not load: ${e && e.message || e}` }));

class EngineError extends Error {}

// One engine call: its JSON parsed, an {"error"} answer turned into an exception.
function call(name, ...args) {
  if (typeof engine[name] !== "function") throw new EngineError(`this build has no ${name}()`);
  const text = engine[name](...args);
  let out;
  try {
    out = JSON.parse(text);
  } catch (e) {
    throw new EngineError(`${name}() answered something that is not JSON: ${String(text).slice(0, 200)}`);
  }
  if (out && typeof out === "object" && "error" in out) throw new EngineError(String(out.error));
  return out;
}

// A file name the in-memory file system accepts, keeping the extension (the engine may look at
// it to tell GGUF from .tinygpt).
function safeName(name) {
  const clean = String(name || "model").split(/[\\/]/).pop().replace(/[^A-Za-z0-9._-]/g, "_");
  return clean && clean !== "." && clean !== ".." ? clean : "model";
}

// The model's file stays mounted while the model is open: WORKERFS reads the Blob's bytes on
// demand (FileReaderSync) instead of copying the whole file into the wasm heap first. Each file
// gets its own mount point, and the previous one is unmounted only once the new model has
// opened: the engine keeps its old model when a file does not open.
let mounted = null, mounts = 0;
function mountBlob(blob, name) {
  const FS = engine.FS;
  // emscripten keeps WORKERFS in FS.filesystems unless the build exports it by name.
  const WORKERFS = engine.WORKERFS || (FS.filesystems && FS.filesystems.WORKERFS);
  if (!WORKERFS) throw new EngineError("this build has no WORKERFS (link with -lworkerfs.js)");
  const dir = `/in${++mounts}`;
  FS.mkdir(dir);
  FS.mount(WORKERFS, { blobs: [{ name, data: blob }] }, dir);
  return dir;
}
function unmount(dir) {
  try {
    engine.FS.unmount(dir);
    engine.FS.rmdir(dir);
  } catch (e) { /* already gone */ }
}

const handlers = {
  open({ blob, name }) {
    const file = safeName(name);
    const dir = mountBlob(blob, file);
    let info;
    try {
      info = call("open_model", `${dir}/${file}`);
    } catch (e) {
      unmount(dir);
      // The message names the file as the user knows it, not by its mount point.
      if (e instanceof EngineError) e.message = e.message.split(`${dir}/`).join("");
      throw e;
    }
    if (mounted) unmount(mounted);
    mounted = dir;
    return info;
  },

  info() {
    return call("model_info");
  },

  // Tokens stream to the page as they come: postMessage from inside the synchronous loop is
  // delivered to the page at once. The page stops a generation by ending this worker.
  generate({ id, prompt, options }) {
    return call("generate", prompt, JSON.stringify(options), (tokenJson) => {
      postMessage({ id, type: "token", token: tokenJson });
      return true;
    });
  },

  trainStart({ options, text }) {
    const corpus = "/corpus.txt";
    engine.FS.writeFile(corpus, text);
    return call("train_start", JSON.stringify(options), corpus);
  },

  // The page calls this once per step and awaits it, so a "stop" between two steps is heard.
  trainStep({ n }) {
    return call("train_step", n || 1);
  },

  // The current model as .tinygpt bytes, handed over (transferred) to the page. options:
  // {"dtype": "f32"|"bf16"|"f16"|"q8_0", "optimizer": bool}; {} = the engine's defaults.
  save({ options }) {
    const path = "/out.tinygpt";
    const saved = call("save_model", path, JSON.stringify(options || {}));
    const bytes = engine.FS.readFile(path);
    engine.FS.unlink(path);
    return { transfer: [bytes.buffer], value: { bytes, size: saved.bytes ?? bytes.length } };
  },

  evalText({ text }) {
    return call("eval_text", text);
  },
};

onmessage = async ({ data }) => {
  const { id, cmd } = data;
  await ready;
  if (!engine) {
    postMessage({ id, type: "error", message: "the engine did not load" });
    return;
  }
  try {
    if (!(cmd in handlers)) throw new EngineError(`unknown command ${cmd}`);
    const out = handlers[cmd](data);
    if (out && out.transfer) postMessage({ id, type: "result", result: out.value }, out.transfer);
    else postMessage({ id, type: "result", result: out });
  } catch (e) {
    // An engine that aborted (out of memory, a trap) throws a RuntimeError; say so plainly.
    // The module is not usable after that: "broken" tells the page to start a new worker.
    const broken = !(e instanceof EngineError);
    const message = broken ? `the engine failed: ${e && e.message || e}` : e.message;
    postMessage({ id, type: "error", message, broken });
  }
};
