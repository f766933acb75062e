// Live check of the tokenizer.ggml.* mapping (src/gguf/gguf_vocab.cpp) against the real llama.cpp
// (node-llama-cpp's prebuilt CPU build). Reads the files that the gtest GgufVocab.DumpForLlamaCpp
// writes (vocab-only GGUFs with the metadata tinygpt exports for bytes, a trained BPE, GPT-2,
// Llama 3, Qwen3 and, when installed, DeepSeek-V3, and tinygpt's ids and text for a set of
// texts; and GPT-2's vocabulary under each other tokenizer.ggml.pre family tinygpt reads), loads
// each GGUF in llama.cpp and checks that
//   - llama_tokenize(text, add_special = false, parse_special = true) gives the ids of the
//     tokenizer that tokenizer_from_gguf reads back (always), and tinygpt's own ids (except where
//     a caveat accepted on export says otherwise: NFC, markers llama.cpp makes special);
//   - llama_detokenize(ids, remove_special = false, unparse_special = true) gives tinygpt's text
//     (except, for the names that have it, llama.cpp's space clean-up, which is then checked to
//     be exactly that clean-up);
//   - every token whose bytes are UTF-8 detokenizes alone to those bytes (same exception).
//   node tools/llama-reference/check_vocab.mjs --tests build/tests/tinygpt_tests   (a ctest test)
// or, with the files written beforehand:
//   TINYGPT_GGUF_VOCAB_DUMP=DIR build/tests/tinygpt_tests --gtest_filter=GgufVocab.DumpForLlamaCpp
//   node tools/llama-reference/check_vocab.mjs DIR
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { getLlama, LlamaLogLevel } from "node-llama-cpp";

const args = process.argv.slice(2);
let dir = args[0];
let cleanup = false;
if (args[0] === "--tests" && args[1]) {
  dir = mkdtempSync(join(tmpdir(), "tinygpt-gguf-vocab-"));
  cleanup = true;
  execFileSync(args[1], ["--gtest_filter=GgufVocab.DumpForLlamaCpp"], {
    env: { ...process.env, TINYGPT_GGUF_VOCAB_DUMP: dir }, stdio: ["ignore", "ignore", "inherit"] });
}
if (!dir) {
  console.error("usage: node check_vocab.mjs DIR | --tests path/to/tinygpt_tests");
  process.exit(2);
}

// llama_vocab::impl::detokenize's clean_spaces passes, ported as they are (in place; only ASCII
// characters take part, so code points stand in for bytes).
function cleanSpaces(s) {
  const text = Array.from(s);
  let total = text.length;
  const total1 = total;
  total = total ? 1 : 0;
  for (let i = 1; i < total1; ++i) {
    const x = text[i];
    if (text[i - 1] === " " && "?!.,".includes(x)) total--;
    text[total++] = x;
  }
  const total2 = total;
  total = total ? 1 : 0;
  for (let i = 1; i < total2; ++i) {
    const x = text[i];
    if (x === "'" && i + 1 < total2 && text[i - 1] === " " && text[i + 1] === " ") {
      total--;
      text[++i] = "\0";
    }
    text[total++] = x;
  }
  const total3 = total;
  total = total ? 1 : 0;
  for (let i = 1; i < total3; ++i) {
    const x = text[i];
    if (text[i - 1] === " " && x === "'" && i + 1 < total3) {
      const x1 = text[i + 1];
      if (x1 === "s" || x1 === "m") total--;
      else if (i + 2 < total3 && ((x1 === "r" && text[i + 2] === "e") || (x1 === "v" && text[i + 2] === "e"))) total--;
    }
    text[total++] = x;
  }
  return text.slice(0, total).join("");
}

const llama = await getLlama({ gpu: false, build: "never", skipDownload: true, logLevel: LlamaLogLevel.error });
let failures = 0;
for (const file of readdirSync(dir).filter((f) => f.endsWith(".json")).sort()) {
  const doc = JSON.parse(readFileSync(join(dir, file), "utf8"));
  const path = join(dir, doc.gguf);
  const model = await llama.loadModel({ modelPath: path, vocabOnly: true });
  let bad = 0, caveated = 0;
  const report = (what) => { if (bad++ < 5) console.log(`  ${doc.name}: ${what}`); };
  const cleanUp = doc.detokenize_cleans_spaces;
  const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
  const clip = (x, n) => JSON.stringify(x).slice(0, n);
  // Text tinygpt decodes vs what llama.cpp detokenizes: equal, or (caveat) its space clean-up.
  const checkText = (what, llamaText, ours) => {
    if (llamaText === ours) return;
    if (cleanUp && llamaText === cleanSpaces(ours)) ++caveated;
    else report(`${what}: llama.cpp ${clip(llamaText, 80)} vs tinygpt ${clip(ours, 80)}`);
  };
  doc.texts.forEach((text, i) => {
    const ids = Array.from(model.tokenize(text, true));
    if (!same(ids, doc.imported_ids[i]))
      report(`tokenize ${clip(text, 60)}: llama.cpp ${clip(ids, 120)} vs imported ${clip(doc.imported_ids[i], 120)}`);
    if (!same(ids, doc.ids[i])) {
      if (doc.caveats.length) ++caveated;
      else report(`tokenize ${clip(text, 60)}: llama.cpp ${clip(ids, 120)} vs tinygpt ${clip(doc.ids[i], 120)}`);
    }
    checkText(`detokenize ${clip(text, 60)}`, model.detokenize(doc.ids[i], true), doc.decoded[i]);
  });
  let pieces = 0;
  for (const [id, bytes] of doc.pieces) {
    checkText(`token ${id}`, model.detokenize([id], true), bytes);
    ++pieces;
  }
  await model.dispose();
  const cleaned = !doc.caveats.length && caveated ? ` (${caveated} space clean-ups by llama_detokenize)` : "";
  const caveats = doc.caveats.length
    ? ` (${doc.caveats.length} caveat${doc.caveats.length > 1 ? "s" : ""}: ${caveated} difference${caveated === 1 ? "" : "s"}, as documented)` : "";
  console.log(`${bad ? "FAIL" : "ok  "} ${doc.name}: pre "${doc.pre}", ` +
    `${doc.texts.length} texts, ${pieces} tokens${caveats}${cleaned}${bad ? `, ${bad} mismatches` : ""}`);
  failures += bad;
}
if (cleanup) rmSync(dir, { recursive: true, force: true });
process.exit(failures ? 1 : 0);
