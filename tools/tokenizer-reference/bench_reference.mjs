// The reference encoder's speed, for bench/bench_tokenizer: encodes FILE with the Qwen3 tokenizer
// (transformers.js's tokenizers) RUNS times and prints `MB/s <median>` on the last line.
//   node tools/tokenizer-reference/bench_reference.mjs FILE [RUNS]
import { readFileSync } from "node:fs";
import { encode, loadReference } from "./reference.mjs";

const [file, runsArg] = process.argv.slice(2);
const text = readFileSync(file, "utf8");
const bytes = Buffer.byteLength(text, "utf8");
const tok = loadReference("qwen3");
const runs = Number(runsArg ?? 3);
const rates = [];
let ids = 0;
for (let i = 0; i < runs; ++i) {
  tok.model.clear_cache?.();
  const start = process.hrtime.bigint();
  ids = encode(tok, text).length;
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  rates.push(bytes / 1e6 / seconds);
}
rates.sort((a, b) => a - b);
console.log(`ids ${ids}`);
console.log(`MB/s ${rates[Math.floor(rates.length / 2)].toFixed(3)}`);
