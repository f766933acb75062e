// Live exactness check (a ctest test): encodes tests/data/tokenizer/texts.json with the reference
// encoder and with `BINARY tokenizer encode ... --json`, for Qwen3, Llama 3, GPT-2, and a BPE that
// BINARY trains on a slice of data/shakespeare.txt (its tokenizer.json must load in the reference
// and encode identically). The texts are joined by an end-of-text special token, which isolates
// them (added tokens are split out before anything else), so each tokenizer is run once.
//   node tools/tokenizer-reference/compare.mjs path/to/tinygpt
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { encode, here, loadReference, texts, tokenizerPaths } from "./reference.mjs";

const binary = process.argv[2];
if (!binary) {
  console.error("usage: node compare.mjs path/to/tinygpt");
  process.exit(2);
}
const work = mkdtempSync(join(tmpdir(), "tinygpt-tok-compare-"));
let failures = 0;

function ours(tokenizerPath, text) {
  const file = join(work, "text.txt");
  writeFileSync(file, text);
  const out = execFileSync(binary, ["tokenizer", "encode", tokenizerPath, "--file", file, "--json"], { maxBuffer: 1 << 28 });
  return JSON.parse(out.toString()).ids;
}

function compare(label, tokenizerPath, reference, separator) {
  const all = Object.values(texts());
  const joined = all.join(separator);
  const expected = encode(reference, joined);
  const got = ours(tokenizerPath, joined);
  if (JSON.stringify(expected) === JSON.stringify(got)) {
    console.log(`ok   ${label}: ${got.length} ids over ${all.length} texts`);
    return;
  }
  ++failures;
  let at = 0;
  while (at < expected.length && expected[at] === got[at]) ++at;
  console.log(`FAIL ${label}: first difference at id ${at}: expected ${JSON.stringify(expected.slice(at, at + 8))}, got ${JSON.stringify(got.slice(at, at + 8))}`);
}

try {
  compare("qwen3", tokenizerPaths.qwen3, loadReference("qwen3"), "<|endoftext|>");
  compare("llama3", tokenizerPaths.llama3, loadReference("llama3"), "<|end_of_text|>");
  compare("gpt2", tokenizerPaths.gpt2, loadReference("gpt2"), "<|endoftext|>");
  const corpus = join(work, "corpus.txt");
  writeFileSync(corpus, readFileSync(join(here, "../../data/shakespeare.txt")).subarray(0, 300000));
  const trained = join(work, "trained.json");
  execFileSync(binary, ["tokenizer", "train", "--corpus", corpus, "--vocab", "600", "--special", "<|endoftext|>", "--out", trained], { stdio: "ignore" });
  compare("trained (vocab 600)", trained, loadReference(trained), "<|endoftext|>");
} finally {
  rmSync(work, { recursive: true, force: true });
}
if (failures) {
  console.log(`${failures} tokenizer(s) differ from the reference`);
  process.exit(1);
}
