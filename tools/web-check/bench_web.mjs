// Speed of the page in headless Chromium against the native CLI on the same models and the same
// work: decode tok/s (a 64-token prompt, 64 greedy tokens, as `tinygpt bench --prompt-tokens 64
// --gen-tokens 64`) and training ms/step (as `tinygpt bench-train`), medians of a few runs,
// printed as a table with the browser/native ratios. The page is driven through its own engine
// object (the worker, postMessage per token included), so this is what a user of the page gets.
// Each workload runs on the page served plainly (the one-thread build) and cross-origin isolated
// (the threaded build, every core), against native on 1 thread and on every core.
//   node tools/web-check/bench_web.mjs BUILD_WEB_DIR NATIVE_TINYGPT [--chromium PATH | --firefox PATH] [--runs 3]
//        [--quick] [--json FILE] [--keep DIR]
// --quick: one decode model and one training run (a smoke test of this script).
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { corpusSlice, launchBrowser, median, parseArgs, run, serve, workDir } from "./lib.mjs";

const args = parseArgs("node bench_web.mjs BUILD_WEB_DIR NATIVE_TINYGPT [--chromium PATH] [--runs 3] [--quick] [--json FILE] [--keep DIR]");
const runs = Number(args.option("--runs", "3"));
const quick = args.has("--quick");
const work = workDir(args.option("--keep", ""), "tinygpt-web-bench-");
const corpus = corpusSlice(work, 200000);
const PROMPT_TOKENS = 64, GEN_TOKENS = 64;

// The models: the tiny preset (4 layers, d_model 128, ctx 128) dense and MoE of both families, a
// few steps trained (speed does not depend on what the weights learnt), and a bf16 copy.
const decodeModels = [
  { name: "gpt dense (tiny)", file: "gpt-dense.tinygpt", flags: ["--arch", "gpt", "--moe-experts", "1"] },
  { name: "gpt MoE E4 K2 (tiny)", file: "gpt-moe.tinygpt", flags: ["--arch", "gpt", "--moe-experts", "4", "--moe-topk", "2"] },
  { name: "llama MoE E8 K2 (tiny)", file: "llama-moe.tinygpt", flags: ["--arch", "llama", "--kv-heads", "2", "--moe-experts", "8", "--moe-topk", "2"] },
].slice(0, quick ? 2 : 3);
// Training: the original's "medium" comparison (0.84 M parameters, batch 16, ctx 96: our tiny
// preset), dense and MoE.
const trainRuns = [
  { name: "gpt dense (tiny) b16 ctx96", options: { arch: "gpt", preset: "tiny", ctx: 96, batch: 16, experts: 1 } },
  { name: "gpt MoE E4 K2 (tiny) b16 ctx96", options: { arch: "gpt", preset: "tiny", ctx: 96, batch: 16, experts: 4, topk: 2 } },
].slice(0, quick ? 1 : 2);
const TRAIN_STEPS = quick ? 4 : 10, TRAIN_WARMUP = 2;

function trainFlags(o) {
  const flags = ["--arch", o.arch, "--preset", o.preset, "--ctx", String(o.ctx), "--batch", String(o.batch),
    "--moe-experts", String(o.experts)];
  if (o.topk) flags.push("--moe-topk", String(o.topk));
  return flags;
}

function makeModels() {
  for (const m of decodeModels) {
    m.path = join(work, m.file);
    run(args.native, ["train", "--corpus", corpus, "--preset", "tiny", "--steps", "5", "--sample-tokens", "0",
      "--threads", "1", ...m.flags, "--out", m.path], { timeout: 300000 });
  }
  if (!quick) {
    const bf16 = { name: "gpt MoE E4 K2 (tiny) bf16", file: "gpt-moe-bf16.tinygpt" };
    bf16.path = join(work, bf16.file);
    run(args.native, ["convert", decodeModels[1].path, bf16.path, "--dtype", "bf16"]);
    decodeModels.push(bf16);
  }
}

// ---------------------------------------------------------------------------------------------
// Native

function nativeDecode(model, threads) {
  const out = JSON.parse(run(args.native, ["bench", model.path, "--prompt-tokens", String(PROMPT_TOKENS),
    "--gen-tokens", String(GEN_TOKENS), "--runs", String(runs), "--warmup", "1", "--threads", String(threads), "--json"]).stdout);
  return { tokPerS: out.decode_tok_per_s, threads: out.threads };
}

function nativeTrain(t, threads) {
  const out = JSON.parse(run(args.native, ["bench-train", "--corpus", corpus, ...trainFlags(t.options),
    "--steps", String(TRAIN_STEPS), "--warmup", String(TRAIN_WARMUP), "--threads", String(threads), "--json", "--no-peak"],
  { timeout: 600000 }).stdout);
  return { msPerStep: out.ms_per_step_median, threads: out.threads };
}

// ---------------------------------------------------------------------------------------------
// The page

async function openPage(browser, origin, query = "") {
  const page = await browser.newPage();
  await page.goto(`${origin}/index.html${query}`, { waitUntil: "load" });
  await page.waitForFunction(() => document.body.dataset.state === "ready", { timeout: 60000, polling: 100 });
  return page;
}

// The prompt `tinygpt bench` uses: its filler text repeated to the prompt's length (bytes).
function benchPrompt() {
  const filler = "The quick brown fox jumps over the lazy dog. ";
  return filler.repeat(Math.ceil(PROMPT_TOKENS / filler.length)).slice(0, PROMPT_TOKENS);
}

async function webDecode(browser, origin, model) {
  const page = await openPage(browser, origin, `?model=/files/${model.file}`);
  await page.waitForFunction(() => document.body.dataset.state === "ready" && info !== null, { timeout: 60000, polling: 100 });
  const rates = await page.evaluate(async (prompt, tokens, count) => {
    const out = [];
    for (let r = 0; r < count + 1; ++r) {  // one warm-up run, as native
      const stats = await engine.call("generate", { prompt, options: { tokens, temperature: 0 } }, () => {});
      if (r > 0) out.push(stats.decode_tok_per_s);
    }
    return out;
  }, benchPrompt(), GEN_TOKENS, runs);
  const threads = await page.evaluate(() => engine.threads);
  await page.close();
  return { tokPerS: median(rates), threads };
}

async function webTrain(browser, origin, t) {
  const page = await openPage(browser, origin);
  const text = readFileSync(corpus);
  const ms = await page.evaluate(async (options, bytes, steps) => {
    await engine.call("trainStart", { options: { ...options, steps }, text: new Uint8Array(bytes) });
    const out = [];
    for (let s = 0; s < steps; ++s) out.push((await engine.call("trainStep", { n: 1 })).ms_per_step);
    return out;
  }, t.options, [...text.subarray(0, 100000)], TRAIN_WARMUP + TRAIN_STEPS);
  const threads = await page.evaluate(() => engine.threads);
  await page.close();
  return { msPerStep: median(ms.slice(TRAIN_WARMUP)), threads };
}

// ---------------------------------------------------------------------------------------------

makeModels();
const rows = [];
// The same files twice: plainly (the one-thread build) and cross-origin isolated (the threaded
// build on every core), interleaved per workload.
const mounts = { "/": args.buildDir, "/files/": work };
const plain = await serve(mounts), isolated = await serve(mounts, { isolated: true });
const browser = await launchBrowser(args, work);
const browserVersion = await browser.version();
try {
  for (const m of decodeModels) {
    const one = nativeDecode(m, 1), all = nativeDecode(m, 0);
    const web1 = await webDecode(browser, plain.origin, m), webN = await webDecode(browser, isolated.origin, m);
    rows.push({ what: `decode tok/s  ${m.name}`, native1: one.tokPerS, nativeN: all.tokPerS, nativeThreads: all.threads,
      web1: web1.tokPerS, webN: webN.tokPerS, webThreads: webN.threads, higherIsBetter: true });
  }
  for (const t of trainRuns) {
    const one = nativeTrain(t, 1), all = nativeTrain(t, 0);
    const web1 = await webTrain(browser, plain.origin, t), webN = await webTrain(browser, isolated.origin, t);
    rows.push({ what: `train ms/step ${t.name}`, native1: one.msPerStep, nativeN: all.msPerStep, nativeThreads: all.threads,
      web1: web1.msPerStep, webN: webN.msPerStep, webThreads: webN.threads, higherIsBetter: false });
  }
} finally {
  await browser.close();
  await plain.close();
  await isolated.close();
}

// Slowdown of the browser against native (> 1: the browser is slower), on one thread and on
// all threads; and what the browser's threads bring (> 1: faster with threads).
const slower = (r, web, native) => (r.higherIsBetter ? native / web : web / native);
const slowdown1 = (r) => slower(r, r.web1, r.native1), slowdownN = (r) => slower(r, r.webN, r.nativeN);
const threadGain = (r) => (r.higherIsBetter ? r.webN / r.web1 : r.web1 / r.webN);
const pad = (s, n) => String(s).padEnd(n);
const num = (x) => (x >= 100 ? x.toFixed(0) : x.toFixed(1));
console.log(`${pad("workload", 40)}${pad("native 1t", 11)}${pad("browser 1t", 12)}${pad("slowdown", 10)}` +
  `${pad("native Nt", 14)}${pad("browser Nt", 14)}${pad("slowdown", 10)}browser Nt ÷ 1t`);
for (const r of rows)
  console.log(`${pad(r.what, 40)}${pad(num(r.native1), 11)}${pad(num(r.web1), 12)}${pad(`${slowdown1(r).toFixed(2)}×`, 10)}` +
    `${pad(`${num(r.nativeN)} (${r.nativeThreads}t)`, 14)}${pad(`${num(r.webN)} (${r.webThreads}t)`, 14)}` +
    `${pad(`${slowdownN(r).toFixed(2)}×`, 10)}${threadGain(r).toFixed(2)}×`);
console.log(`medians of ${runs} decode runs (${PROMPT_TOKENS}-token prompt, ${GEN_TOKENS} tokens, greedy) and of ` +
  `${TRAIN_STEPS} training steps after ${TRAIN_WARMUP} warm-up; ${browserVersion}`);
const jsonOut = args.option("--json", "");
if (jsonOut)
  writeFileSync(jsonOut, JSON.stringify(rows.map((r) => ({ ...r, slowdown1: slowdown1(r), slowdownN: slowdownN(r),
    threadGain: threadGain(r) })), null, 1));
