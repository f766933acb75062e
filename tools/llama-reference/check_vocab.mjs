// Live check of the tokenizer.ggml.* mapping (src/gguf/gguf_vocab.cpp) against the real llama.cpp
// (node-llama-cpp's prebuilt CPU build). Reads the files that the gtest GgufVocab.DumpForLlamaCpp
// writes (the metadata tinygpt exports for bytes, a trained BPE, GPT-2, Llama 3, Qwen3 and, when
// installed, DeepSeek-V3, with tinygpt's ids and text for a set of texts), writes each as a
// vocab-only GGUF, loads it in llama.cpp and checks that
//   - llama_tokenize(text, add_special = false, parse_special = true) gives the ids of the
//     tokenizer that tokenizer_from_gguf reads back (always), and tinygpt's own ids (except where
//     a caveat accepted on export says otherwise: NFC, markers llama.cpp makes special);
//   - llama_detokenize(ids, remove_special = false, unparse_special = true) gives tinygpt's text
//     (except for the caveat of llama.cpp's space clean-up, which is then checked to be exactly
//     that clean-up);
//   - every token whose bytes are UTF-8 detokenizes alone to those bytes (same exception).
//   TINYGPT_GGUF_VOCAB_DUMP=DIR build/tests/tinygpt_tests --gtest_filter=GgufVocab.DumpForLlamaCpp
//   node tools/llama-reference/check_vocab.mjs DIR
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { getLlama, LlamaLogLevel } from "node-llama-cpp";

const dir = process.argv[2];
if (!dir) {
  console.error("usage: node check_vocab.mjs DIR (written by GgufVocab.DumpForLlamaCpp)");
  process.exit(2);
}

// GGUF v3 with metadata only (no tensors).
function writeGguf(path, kv) {
  const parts = [];
  const u32 = (v) => { const b = Buffer.alloc(4); b.writeUInt32LE(v); parts.push(b); };
  const i32 = (v) => { const b = Buffer.alloc(4); b.writeInt32LE(v); parts.push(b); };
  const u64 = (v) => { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(v)); parts.push(b); };
  const f32 = (v) => { const b = Buffer.alloc(4); b.writeFloatLE(v); parts.push(b); };
  const str = (s) => { const b = Buffer.from(s, "utf8"); u64(b.length); parts.push(b); };
  const T = { u32: 4, i32: 5, f32: 6, bool: 7, string: 8, array: 9 };
  parts.push(Buffer.from("GGUF"));
  u32(3);
  u64(0);
  u64(kv.length);
  for (const [key, type, value] of kv) {
    str(key);
    if (type === "string_array" || type === "i32_array") {
      u32(T.array);
      u32(type === "string_array" ? T.string : T.i32);
      u64(value.length);
      for (const x of value) (type === "string_array" ? str : i32)(x);
    } else {
      u32(T[type]);
      if (type === "string") str(value);
      else if (type === "u32") u32(value);
      else if (type === "f32") f32(value);
      else if (type === "bool") parts.push(Buffer.from([value ? 1 : 0]));
    }
  }
  const total = parts.reduce((n, b) => n + b.length, 0);
  parts.push(Buffer.alloc((32 - (total % 32)) % 32));
  writeFileSync(path, Buffer.concat(parts));
}

// llama_vocab::impl::detokenize's clean_spaces passes (only ASCII characters take part).
function cleanSpaces(text) {
  let t = Array.from(text);
  let out = t.length ? [t[0]] : [];
  for (let i = 1; i < t.length; ++i) {
    if (t[i - 1] === " " && "?!.,".includes(t[i])) out.pop();
    out.push(t[i]);
  }
  t = out;
  out = t.length ? [t[0]] : [];
  for (let i = 1; i < t.length; ++i) {
    const x = t[i];
    if (x === "'" && i + 1 < t.length && t[i - 1] === " " && t[i + 1] === " ") {
      out.pop();
      ++i;
    }
    out.push(x);
  }
  t = out;
  out = t.length ? [t[0]] : [];
  for (let i = 1; i < t.length; ++i) {
    const x = t[i];
    if (t[i - 1] === " " && x === "'" && i + 1 < t.length) {
      const x1 = t[i + 1];
      if (x1 === "s" || x1 === "m") out.pop();
      else if (i + 2 < t.length && ((x1 === "r" && t[i + 2] === "e") || (x1 === "v" && t[i + 2] === "e"))) out.pop();
    }
    out.push(x);
  }
  return out.join("");
}

const llama = await getLlama({ gpu: false, build: "never", skipDownload: true, logLevel: LlamaLogLevel.error });
let failures = 0;
for (const file of readdirSync(dir).filter((f) => f.endsWith(".json")).sort()) {
  const doc = JSON.parse(readFileSync(join(dir, file), "utf8"));
  // A minimal gpt2 architecture: llama.cpp reads the hyper-parameters even for vocab_only.
  const kv = [
    ["general.architecture", "string", "gpt2"],
    ["general.name", "string", `tinygpt-vocab-${doc.name}`],
    ["gpt2.context_length", "u32", 64],
    ["gpt2.embedding_length", "u32", 64],
    ["gpt2.feed_forward_length", "u32", 256],
    ["gpt2.block_count", "u32", 1],
    ["gpt2.attention.head_count", "u32", 4],
    ["gpt2.attention.layer_norm_epsilon", "f32", 1e-5],
  ];
  for (const [key, { type, value }] of Object.entries(doc.metadata)) kv.push([key, type, value]);
  const path = join(dir, `${doc.name}.gguf`);
  writeGguf(path, kv);
  const model = await llama.loadModel({ modelPath: path, vocabOnly: true });
  let bad = 0, caveated = 0;
  const report = (what) => { if (bad++ < 5) console.log(`  ${doc.name}: ${what}`); };
  const cleanUp = doc.caveats.some((c) => c.includes("llama_detokenize"));
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
  const caveats = doc.caveats.length
    ? ` (${doc.caveats.length} caveat${doc.caveats.length > 1 ? "s" : ""}: ${caveated} differences as documented)` : "";
  console.log(`${bad ? "FAIL" : "ok  "} ${doc.name}: pre "${doc.metadata["tokenizer.ggml.pre"].value}", ` +
    `${doc.texts.length} texts, ${pieces} tokens${caveats}${bad ? `, ${bad} mismatches` : ""}`);
  failures += bad;
}
process.exit(failures ? 1 : 0);
