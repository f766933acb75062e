// Both WebAssembly modules (build-web/tinygpt.js, one thread, and tinygpt-threads.js, on as many
// threads as the cores) in Node against the native CLI, on small models trained natively here in
// seconds and converted to every format the page opens:
//  - open_model: the facts of `tinygpt inspect --json` (params, active params, MoE layers, K, E);
//  - eval_text: per-token log-probabilities equal `eval --json --per-token` within 1e-4 (the SIMD
//    kernels differ from the native ones, so the last bits may);
//  - generate at temperature 0: the same text as `sample --temperature 0`, and K experts with
//    gates in (0, 1] per MoE layer per token;
//  - a corrupt or truncated file gives {"error"} and the module still works afterwards;
//  - train_start/train_step lower the loss in 20 steps; save_model writes a .tinygpt that the
//    native `inspect` and `sample` open, and that samples the same greedy text as the module.
//   node tools/web-check/test_node.mjs BUILD_WEB_DIR NATIVE_TINYGPT [--keep DIR] [--tol 1e-4]
import { readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { PROMPT, checker, corpusSlice, evalText, loadModule, makeFixtures, maxAbsDiff, nativeInspect,
  nativeLogprobs, nativeSample, parseArgs, routingProblem, workDir } from "./lib.mjs";

const args = parseArgs("node test_node.mjs BUILD_WEB_DIR NATIVE_TINYGPT [--keep DIR] [--tol 1e-4]");
const tol = Number(args.option("--tol", "1e-4"));
const TOKENS = 40;
const work = workDir(args.option("--keep", ""), "tinygpt-web-node-");
const { check: checkAny, finish } = checker();
let variant = "";  // the module under test, named in every line
const check = (ok, message) => checkAny(ok, `[${variant}] ${message}`);

// Every engine call answers JSON; this parses it (a string that is not JSON is a failure too).
function call(M, name, ...a) {
  const text = M[name](...a);
  try {
    return JSON.parse(text);
  } catch {
    return { error: `${name}() answered non-JSON: ${String(text).slice(0, 200)}` };
  }
}

// The module's file system holds each fixture's bytes (Node has no WORKERFS).
function put(M, name, file) {
  const path = `/fixtures/${name}`;
  try { M.FS.mkdir("/fixtures"); } catch { /* exists */ }
  M.FS.writeFile(path, readFileSync(file));
  return path;
}

// Runs generate at temperature 0 and collects the streamed tokens.
function greedy(M, prompt, tokens) {
  const streamed = [];
  const stats = call(M, "generate", prompt, JSON.stringify({ tokens, temperature: 0 }), (t) => {
    streamed.push(JSON.parse(t));
    return true;
  });
  return { stats, streamed };
}

function checkModel(M, fixture, evalFile) {
  const { name, file } = fixture;
  const inspect = nativeInspect(args.native, file);
  const info = call(M, "open_model", put(M, name, file));
  if (!check(!info.error, `${name} (${fixture.note}): open_model ${info.error ?? `${info.format}, ${info.family}`}`)) return;
  const nativeMoe = (inspect.config.moe?.layers ?? []).flatMap((kind, i) => (kind === "moe" ? [i] : []));
  check(info.params === inspect.params_total && info.active_params === inspect.params_active,
    `${name}: params ${info.params} / active ${info.active_params} (native ${inspect.params_total} / ${inspect.params_active})`);
  check(JSON.stringify(info.moe_layers) === JSON.stringify(nativeMoe),
    `${name}: MoE layers [${info.moe_layers}] (native [${nativeMoe}])`);
  check(info.family === fixture.family, `${name}: family ${info.family}`);

  const native = nativeLogprobs(args.native, file, evalFile);
  // As UTF-8: embind encodes the JS string back to the file's bytes.
  const mine = call(M, "eval_text", readFileSync(evalFile, "utf8"));
  const diff = maxAbsDiff(mine.logprobs, native.logprobs);
  check(!mine.error && diff <= tol,
    `${name}: eval_text logprobs of ${native.logprobs.length} tokens within ${tol} of native (max |diff| ${mine.error ?? diff.toExponential(2)})`);

  const expected = nativeSample(args.native, file, PROMPT, TOKENS).text;
  const { stats, streamed } = greedy(M, PROMPT, TOKENS);
  check(!stats.error && stats.text === expected,
    `${name}: greedy ${TOKENS} tokens equal native sample: ${JSON.stringify(stats.error ?? stats.text)}` +
    (stats.text === expected ? "" : ` vs ${JSON.stringify(expected)}`));
  check(streamed.length === stats.generated && streamed.map((t) => t.text).join("") === stats.text,
    `${name}: ${streamed.length} tokens streamed, their pieces make the text`);
  const problems = streamed.map((t) => routingProblem(t.layers, nativeMoe.length, inspect.config.experts,
    inspect.config.topk)).filter(Boolean);
  check(problems.length === 0, `${name}: routing of every token: ${nativeMoe.length} MoE layers × ` +
    `top-${inspect.config.topk} of ${inspect.config.experts}${problems.length ? ` — ${problems[0]}` : ""}`);
}

// Bad input gives an error answer, and the module goes on working.
function checkCorrupt(M, tinygpt, gguf) {
  const cases = {
    "garbage.tinygpt": Buffer.from("this is not a model file at all, only some text".repeat(20)),
    "truncated.tinygpt": readFileSync(tinygpt.file).subarray(0, 3000),
    "truncated.gguf": readFileSync(gguf.file).subarray(0, 1000),
    "empty.gguf": Buffer.alloc(0),
  };
  for (const [name, bytes] of Object.entries(cases)) {
    const file = join(work, name);
    writeFileSync(file, bytes);
    let answer;
    try {
      answer = call(M, "open_model", put(M, name, file));
    } catch (e) {
      answer = { thrown: String(e) };
    }
    check(typeof answer.error === "string" && answer.error.length > 0,
      `${name}: open_model answers an error: ${JSON.stringify(answer).slice(0, 160)}`);
  }
  const missing = call(M, "open_model", "/no/such/file.tinygpt");
  check(typeof missing.error === "string", `a missing file: ${JSON.stringify(missing).slice(0, 120)}`);
  const info = call(M, "open_model", put(M, "again.tinygpt", tinygpt.file));
  check(!info.error, `after the errors the module opens a model again: ${info.error ?? "ok"}`);
}

function checkTraining(M) {
  const corpus = corpusSlice(work, 30000);
  M.FS.writeFile("/corpus.txt", readFileSync(corpus));
  const options = { arch: "gpt", d_model: 64, layers: 2, heads: 4, ctx: 64, experts: 4, topk: 2,
    steps: 20, batch: 4, lr: 3e-3, seed: 1 };
  const started = call(M, "train_start", JSON.stringify(options), "/corpus.txt");
  if (!check(!started.error && started.params > 0, `train_start: ${JSON.stringify(started).slice(0, 160)}`)) return;
  const losses = [];
  let last = null;
  for (let i = 0; i < 20; ++i) {
    last = call(M, "train_step", 1);
    if (last.error) break;
    losses.push(last.loss);
  }
  check(!last.error && losses.length === 20 && last.step === 20 && last.done === true,
    `train_step × 20: step ${last.step}, done ${last.done}${last.error ? `, ${last.error}` : ""}`);
  // The mean of the last five against the first: one noisy step does not decide.
  const tail = losses.slice(-5).reduce((a, b) => a + b, 0) / 5;
  check(losses.length === 20 && tail < losses[0] - 0.2,
    `training lowers the loss: ${losses[0]?.toFixed(3)} → ${tail.toFixed(3)} (mean of the last 5)`);
  const info = call(M, "model_info");
  check(!info.error && info.moe_layers?.length === 2, `model_info after training: ${info.error ?? `${info.params} params, MoE layers [${info.moe_layers}]`}`);

  const saved = call(M, "save_model", "/trained.tinygpt", "");
  if (!check(!saved.error && saved.bytes > 0, `save_model: ${JSON.stringify(saved)}`)) return;
  const file = join(work, "trained.tinygpt");
  writeFileSync(file, M.FS.readFile("/trained.tinygpt"));
  let inspect = null;
  try {
    inspect = nativeInspect(args.native, file);
  } catch (e) {
    check(false, `native inspect opens the saved model: ${e.message.split("\n").slice(0, 3).join(" ")}`);
    return;
  }
  check(inspect.params_total === info.params && inspect.config.experts === 4 && inspect.config.topk === 2,
    `native inspect opens the saved model: ${inspect.format}, ${inspect.params_total} params, E${inspect.config.experts} K${inspect.config.topk}`);
  check(inspect.step === 20, `the saved model keeps its training state: step ${inspect.step}`);
  const expected = nativeSample(args.native, file, PROMPT, 20).text;
  const { stats } = greedy(M, PROMPT, 20);
  check(stats.text === expected, `the saved model samples natively what the module samples: ${JSON.stringify(expected)}` +
    (stats.text === expected ? "" : ` vs ${JSON.stringify(stats.text)}`));
  // A typed inference copy (the page's "Download as bf16 / q8_0").
  for (const dtype of ["bf16", "q8_0"]) {
    const typed = call(M, "save_model", `/trained-${dtype}.tinygpt`, JSON.stringify({ dtype, optimizer: false }));
    const out = join(work, `trained-${dtype}.tinygpt`);
    let facts = typed.error ?? "";
    if (!typed.error) {
      writeFileSync(out, M.FS.readFile(`/trained-${dtype}.tinygpt`));
      try {
        facts = nativeInspect(args.native, out).format;
      } catch (e) {
        facts = e.message.split("\n")[0];
      }
    }
    check(!typed.error && facts.includes(dtype), `save_model as ${dtype}: ${typed.bytes ?? ""} bytes, native inspect: ${facts}`);
  }
}

const t0 = Date.now();
const fixtures = makeFixtures(args.native, work, "all");
const evalFile = evalText(work);
console.log(`fixtures: ${fixtures.length} models in ${((Date.now() - t0) / 1000).toFixed(1)} s (${work})`);
for (variant of ["tinygpt", "tinygpt-threads"]) {
  const M = await loadModule(args.buildDir, variant);
  check(typeof M.open_model === "function" && typeof M.generate === "function", "the module loads in Node");
  const threads = M.threads(), cores = os.availableParallelism?.() ?? os.cpus().length;
  // The threaded module runs on every core (at most 16); the other on one.
  check(variant === "tinygpt" ? threads === 1 : threads === Math.min(16, cores),
    `threads: ${threads} (cores: ${cores})`);
  for (const f of fixtures) checkModel(M, f, evalFile);
  checkCorrupt(M, fixtures.find((f) => f.name === "gpt-moe.tinygpt"), fixtures.find((f) => f.name === "llama-moe.gguf"));
  checkTraining(M);
}
console.log(`in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
finish();
