// Encodes tests/data/tokenizer/texts.json with the reference tokenizers and prints the ids as
// JSON, or writes the fixtures that tests/test_tokenizer_reference.cpp compares with:
//   node tools/tokenizer-reference/reference_ids.mjs --write tests/data/tokenizer/
//   node tools/tokenizer-reference/reference_ids.mjs [--tokenizer qwen3|llama3|gpt2|FILE.json]
// Each fixture also holds random id sequences with their reference decode (special tokens kept,
// no space clean-up); the text is what a JavaScript string holds, so invalid UTF-8 is U+FFFD.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { decode, encode, loadReference, texts } from "./reference.mjs";

const args = process.argv.slice(2);
const writeDir = args.includes("--write") ? args[args.indexOf("--write") + 1] : null;
const only = args.includes("--tokenizer") ? args[args.indexOf("--tokenizer") + 1] : null;

// A fixed linear congruential generator: the same sequences on every run.
function* randomIds(seed, vocabSize, count) {
  let state = BigInt(seed);
  const next = () => {
    state = (state * 6364136223846793005n + 1442695040888963407n) & ((1n << 64n) - 1n);
    return Number(state >> 33n);
  };
  for (let i = 0; i < count; ++i) {
    const length = 1 + (next() % 24);
    yield Array.from({ length }, () => next() % vocabSize);
  }
}

function fixture(name) {
  const tok = loadReference(name);
  const encoded = {};
  for (const [key, text] of Object.entries(texts())) encoded[key] = encode(tok, text);
  // Ids the reference knows: the model vocab plus the added tokens.
  const vocabSize = tok.model.vocab.length;
  const decoded = [];
  for (const ids of randomIds(name.length * 7919 + 17, vocabSize, 200)) decoded.push({ ids, text: decode(tok, ids) });
  return { tokenizer: name, encode: encoded, decode: decoded };
}

const names = only ? [only] : ["qwen3", "llama3", "gpt2"];
for (const name of names) {
  const result = fixture(name);
  if (writeDir) {
    mkdirSync(writeDir, { recursive: true });
    const path = join(writeDir, `${name}.reference.json`);
    writeFileSync(path, JSON.stringify(result) + "\n");
    console.error(`wrote ${path}`);
  } else {
    console.log(JSON.stringify(result));
  }
}
