// What the web checks share: arguments, ok/FAIL lines, the native CLI, the fixture models, a
// static file server on 127.0.0.1 and headless Chromium. Only Node's standard library here;
// puppeteer-core is imported by the browser scripts alone.
import { spawnSync } from "node:child_process";
import { createReadStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, extname, join, normalize, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";

export const repo = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");

// ---------------------------------------------------------------------------------------------
// Arguments: SCRIPT BUILD_WEB_DIR NATIVE_TINYGPT [--flag value]...

// The command line split into positional arguments and `--flag value` options (`has` for a
// flag alone).
export function splitArgs(args = process.argv.slice(2)) {
  const positional = args.filter((a, i) => !a.startsWith("--") && !(i > 0 && args[i - 1].startsWith("--")));
  const option = (name, fallback) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : fallback;
  };
  return { positional, option, has: (name) => args.includes(name) };
}

export function parseArgs(usage) {
  const { positional, option, has } = splitArgs();
  const [buildDir, native] = positional;
  if (!buildDir || !native) {
    console.error(`usage: ${usage}`);
    process.exit(2);
  }
  for (const [what, path] of [["BUILD_WEB_DIR/tinygpt.js", join(buildDir, "tinygpt.js")], ["NATIVE_TINYGPT", native]]) {
    if (!existsSync(path)) {
      console.error(`${what}: ${path} does not exist`);
      process.exit(2);
    }
  }
  return { buildDir: resolve(buildDir), native: resolve(native), option, has };
}

// ---------------------------------------------------------------------------------------------
// ok / FAIL lines, and the exit code at the end

export function checker() {
  const failures = [];
  let passed = 0;
  const check = (ok, what) => {
    if (ok) ++passed;
    else failures.push(what);
    console.log(`${ok ? "ok  " : "FAIL"} ${what}`);
    return ok;
  };
  const finish = () => {
    // The plain closing line that CI reads.
    console.log(`${passed} passed, ${failures.length} failed`);
    process.exit(failures.length ? 1 : 0);
  };
  return { check, finish, failures };
}

// A scratch directory removed at exit unless --keep DIR names one to keep.
export function workDir(keep, prefix) {
  if (keep) return mkdirSync(resolve(keep), { recursive: true }) ?? resolve(keep);
  const dir = mkdtempSync(join(tmpdir(), prefix));
  process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

// ---------------------------------------------------------------------------------------------
// The native CLI

// Runs a command; stdout as text, or an exception with its stderr.
export function run(command, argv, { timeout = 120000, encoding = "utf8", env = {} } = {}) {
  const r = spawnSync(command, argv, { encoding, maxBuffer: 1 << 28, timeout, env: { ...process.env, ...env } });
  if (r.status !== 0) {
    const why = r.error ? String(r.error) : r.signal ? `signal ${r.signal}` : `exit ${r.status}`;
    throw new Error(`${command} ${argv.join(" ")} failed (${why}):\n${r.stderr}`);
  }
  return { stdout: r.stdout, stderr: r.stderr };
}

// The reference runs of the native CLI multiply as the WebAssembly build does: bf16 weights
// widened against f32 activations. On AVX512_BF16 CPUs the native default rounds the activations
// to bf16 (vdpbf16ps), which moves bf16 log-probs by ~3e-3; the AVX2 path widens (and its q8_0
// products are the documented ones, as every path's). Where AVX2 is missing the variable is
// ignored and the CPU's best path runs.
export const REFERENCE_ENV = { TINYGPT_WEIGHT_ISA: "avx2" };

// Greedy text after the prompt: `sample` prints the prompt, the text, then a newline.
export function nativeSample(native, model, prompt, tokens, extra = []) {
  const { stdout, stderr } = run(native, ["sample", model, "--prompt", prompt, "--tokens", String(tokens),
    "--temperature", "0", "--threads", "1", ...extra], { env: REFERENCE_ENV });
  if (!stdout.startsWith(prompt)) throw new Error(`native sample did not echo the prompt: ${stdout.slice(0, 80)}`);
  const decode = /decode ([\d.]+) tok\/s/.exec(stderr);
  return { text: stdout.slice(prompt.length).replace(/\n$/, ""), decodeTokPerS: decode ? Number(decode[1]) : NaN };
}

// Per-token log-probabilities of a text file (it must fit the model's context).
export function nativeLogprobs(native, model, textFile) {
  return JSON.parse(run(native, ["eval", model, "--corpus", textFile, "--json", "--per-token", "--threads", "1"],
    { env: REFERENCE_ENV }).stdout);
}

export const nativeInspect = (native, model) => JSON.parse(run(native, ["inspect", model, "--json"]).stdout);

// ---------------------------------------------------------------------------------------------
// Fixtures: small models trained natively in a few seconds each (enough steps that greedy text is not one repeated byte) on a slice of data/shakespeare.txt, and
// their conversions. Each is {name, file, family, moe, note}.

export const PROMPT = "ROMEO:";
const SMALL = ["--layers", "2", "--d-model", "64", "--heads", "4", "--d-mlp", "128", "--ctx", "64",
  "--batch", "8", "--steps", "400", "--max-lr", "1e-2", "--sample-tokens", "0", "--threads", "1"];

export function corpusSlice(work, bytes = 60000) {
  const file = join(work, "corpus.txt");
  writeFileSync(file, readFileSync(join(repo, "data", "shakespeare.txt")).subarray(0, bytes));
  return file;
}

// A text of fewer bytes than the fixtures' context (64), from outside the training slice.
export function evalText(work) {
  const text = readFileSync(join(repo, "data", "shakespeare.txt"), "latin1").slice(200000, 200400);
  const start = text.indexOf("\n") + 1;
  const file = join(work, "eval.txt");
  writeFileSync(file, text.slice(start, start + 60), "latin1");
  return file;
}

// `which`: "all" (every format), or "browser" (what the page test opens).
export function makeFixtures(native, work, which = "all") {
  const corpus = corpusSlice(work);
  const out = [];
  const train = (name, flags) => {
    const file = join(work, `${name}.tinygpt`);
    run(native, ["train", "--corpus", corpus, ...SMALL, ...flags, "--out", file], { timeout: 300000 });
    return file;
  };
  const convert = (from, name, flags) => {
    const file = join(work, name);
    run(native, ["convert", from, file, ...flags]);
    return file;
  };
  const gptMoe = train("gpt-moe", ["--arch", "gpt", "--moe-experts", "4", "--moe-topk", "2"]);
  out.push({ name: "gpt-moe.tinygpt", file: gptMoe, family: "gpt", moe: true, note: "gpt MoE E4 K2, f32 v3" });
  const llamaMoe = train("llama-moe", ["--arch", "llama", "--kv-heads", "2", "--moe-experts", "4", "--moe-topk", "2"]);
  const llamaGguf = convert(llamaMoe, "llama-moe.gguf", []);
  out.push({ name: "llama-moe.gguf", file: llamaGguf, family: "llama", moe: true, note: "llama MoE E4 K2, GGUF f32" });
  if (which === "browser") return out;
  out.push({ name: "llama-moe.tinygpt", file: llamaMoe, family: "llama", moe: true, note: "llama MoE E4 K2 GQA, f32 v3" });
  for (const dtype of ["bf16", "f16", "q8_0"])
    out.push({ name: `gpt-moe-${dtype}.tinygpt`, file: convert(gptMoe, `gpt-moe-${dtype}.tinygpt`, ["--dtype", dtype]),
      family: "gpt", moe: true, note: `gpt MoE, ${dtype} v3` });
  out.push({ name: "llama-moe-q8_0.gguf", file: convert(llamaMoe, "llama-moe-q8_0.gguf", ["--dtype", "q8_0"]),
    family: "llama", moe: true, note: "llama MoE, GGUF q8_0" });
  const dense = train("gpt-dense", ["--arch", "gpt", "--moe-experts", "1"]);
  out.push({ name: "gpt-dense.tinygpt", file: dense, family: "gpt", moe: false, note: "gpt dense, f32 v3" });
  out.push({ name: "gpt-dense-v2.tinygpt", file: convert(dense, "gpt-dense-v2.tinygpt", ["--format", "v2"]),
    family: "gpt", moe: false, note: "gpt dense, the original's v2" });
  out.push({ name: "gpt-dense.gguf", file: convert(dense, "gpt-dense.gguf", []), family: "gpt", moe: false,
    note: "gpt dense, GGUF (gpt2)" });
  return out;
}

// ---------------------------------------------------------------------------------------------
// Routing: one entry per MoE layer, K distinct experts in [0, E) each, gates in (0, 1].
// Returns "" when it holds, else what is wrong.

export function routingProblem(layers, moeLayers, experts, topk) {
  if (!Array.isArray(layers)) return "no layers array";
  if (layers.length !== moeLayers) return `${layers.length} layer entries, expected ${moeLayers}`;
  for (const [i, pairs] of layers.entries()) {
    if (!Array.isArray(pairs) || pairs.length !== topk) return `layer ${i}: ${pairs && pairs.length} experts, expected ${topk}`;
    const seen = new Set();
    for (const pair of pairs) {
      const [e, g] = pair;
      if (!Number.isInteger(e) || e < 0 || e >= experts) return `layer ${i}: expert ${e} outside 0..${experts - 1}`;
      if (seen.has(e)) return `layer ${i}: expert ${e} chosen twice`;
      seen.add(e);
      if (!(g > 0 && g <= 1 + 1e-6)) return `layer ${i}: gate ${g} outside (0, 1]`;
    }
  }
  return "";
}

// Largest absolute difference of two arrays, or Infinity when their lengths differ.
export function maxAbsDiff(a, b) {
  if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return Infinity;
  return a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i])), 0);
}

export const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : NaN;
};

// ---------------------------------------------------------------------------------------------
// The module in Node

// `name`: "tinygpt" (one thread) or "tinygpt-threads" (WebAssembly threads: Node's worker_threads,
// as many as the cores; they keep the process alive, so scripts end with process.exit).
export async function loadModule(buildDir, name = "tinygpt") {
  const require = createRequire(import.meta.url);
  const script = join(buildDir, `${name}.js`);
  const createTinygpt = require(script);
  // The wasm's bytes are handed over: emscripten 3.1.6 would fetch() a file path when Node has a
  // global fetch (Node >= 18), which fails. The thread workers load `script` themselves.
  return createTinygpt({ wasmBinary: readFileSync(join(buildDir, `${name}.wasm`)), locateFile: (f) => join(buildDir, f),
    mainScriptUrlOrBlob: script, print: () => {}, printErr: () => {} });
}

// ---------------------------------------------------------------------------------------------
// A static server for the page: URL prefixes mapped to directories, on 127.0.0.1 and a port the
// system picks (or `port`). `isolated` adds the two headers that make a page cross-origin isolated (what
// WASM threads need).

const TYPES = { ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".wasm": "application/wasm",
  ".json": "application/json", ".txt": "text/plain; charset=utf-8", ".svg": "image/svg+xml" };

export function serve(mounts, { isolated = false, port = 0 } = {}) {
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url, "http://x").pathname);
    const prefix = Object.keys(mounts).sort((a, b) => b.length - a.length).find((p) => path.startsWith(p));
    let file = prefix && normalize(join(mounts[prefix], path.slice(prefix.length)));
    // Never outside the mounted directory.
    if (file && !(file + sep).startsWith(resolve(mounts[prefix]) + sep) && file !== resolve(mounts[prefix])) file = null;
    if (file && existsSync(file) && statSync(file).isDirectory()) file = join(file, "index.html");
    if (!file || !existsSync(file)) {
      res.writeHead(404, { "content-type": "text/plain" });
      res.end("not found");
      return;
    }
    const headers = { "content-type": TYPES[extname(file)] || "application/octet-stream",
      "content-length": statSync(file).size, "cache-control": "no-store" };
    if (isolated) {
      headers["cross-origin-opener-policy"] = "same-origin";
      headers["cross-origin-embedder-policy"] = "require-corp";
    }
    res.writeHead(200, headers);
    createReadStream(file).pipe(res);
  });
  return new Promise((resolveServer) => {
    server.listen(port, "127.0.0.1", () => {
      const { port } = server.address();
      resolveServer({ origin: `http://127.0.0.1:${port}`, close: () => new Promise((r) => server.close(r)) });
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Headless Chromium through puppeteer-core, with a fresh profile, and nothing that reaches out
// (no component updates, no sync, no QUIC probes). `--firefox PATH` in the scripts runs Firefox
// instead (Debian's firefox-esr, driven over WebDriver BiDi).

export async function launchBrowser(args, work) {
  const firefox = args.option("--firefox", "");
  if (!firefox) return launchChromium(args.option("--chromium", "/usr/bin/chromium"), work);
  const { default: puppeteer } = await import("puppeteer-core");
  return puppeteer.launch({ browser: "firefox", executablePath: firefox, headless: true,
    userDataDir: mkdtempSync(join(work, "profile-")) });
}

export async function launchChromium(chromium, work) {
  const { default: puppeteer } = await import("puppeteer-core");
  return puppeteer.launch({
    executablePath: chromium,
    headless: true,
    userDataDir: mkdtempSync(join(work, "profile-")),
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}

// Opens a URL of the page and waits for body[data-state] to be done or error; returns the state,
// #output, the JSON of #routing and #training, the engine's threads, whether the page is
// cross-origin isolated, the console and every URL the page requested.
export async function runPage(browser, url, timeoutMs = 60000) {
  const page = await browser.newPage();
  const console = [], requests = [];
  page.on("console", (m) => console.push(`${m.type()}: ${m.text()}`));
  page.on("request", (r) => requests.push(r.url()));
  page.on("pageerror", (e) => console.push(`pageerror: ${e.message}`));
  try {
    await page.goto(url, { waitUntil: "load" });
    await page.waitForFunction(() => ["done", "error"].includes(document.body.dataset.state), { timeout: timeoutMs, polling: 100 });
    const out = await page.evaluate(() => ({
      state: document.body.dataset.state,
      output: document.getElementById("output").textContent,
      routing: document.getElementById("routing").textContent,
      training: document.getElementById("training").textContent,
      threads: Number(document.body.dataset.threads),
      isolated: self.crossOriginIsolated === true,
    }));
    const parse = (text) => {
      try { return JSON.parse(text); } catch { return null; }
    };
    return { ...out, routing: parse(out.routing), training: parse(out.training), console, requests, page };
  } catch (e) {
    await page.close();
    throw new Error(`${url}: ${e.message}\n${console.join("\n")}`);
  }
}
