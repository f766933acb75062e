// A tokenizer in GGUF's tokenizer.ggml.* metadata, both ways, so that llama.cpp tokenizes and
// detokenizes text exactly as tinygpt does (checked by tools/llama-reference against the real
// llama.cpp). docs/GGUF.md lists the mapping.
//
// "Exactly" means: llama_tokenize(text, add_special = false, parse_special = true) gives
// Tokenizer::encode(text), and llama_detokenize(ids, remove_special = false,
// unparse_special = true) gives Tokenizer::decode(ids).
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "io/gguf_file.h"
#include "tokenizer/tokenizer.h"

namespace tinygpt::gguf {

// The tokenizer.ggml.* keys for `tok`, padded to `vocab` entries (a model's vocabulary may be
// larger than its tokenizer; the extra ids are written as unused tokens "[PAD<id>]"):
// - bytes: model "gpt2", the 256 byte characters of GPT-2's byte-to-unicode map in byte order,
//   empty merges, a pre-tokenizer that does not clean up spaces; bos/eos set on purpose and
//   add_bos false.
// - byte-level BPE: model "gpt2", tokens spelled as in tokenizer.json, merges "a b", token types
//   (normal / control for special added tokens / user-defined for the other added tokens), and
//   the tokenizer.ggml.pre name whose regex in llama.cpp is the tokenizer's pre-tokenizer.
// Throws Error saying why when llama.cpp cannot reproduce the tokenizer (a pre-tokenizer it has
// no name for, lstrip/rstrip added tokens, ...). A tokenizer that llama.cpp reproduces except in
// the ways tokenizer_gguf_caveats lists (an NFC normaliser it does not apply, a space clean-up
// in llama_detokenize) is refused too, unless `accept_caveats`.
std::vector<std::pair<std::string, io::GgufValue>> tokenizer_metadata(const Tokenizer& tok,
                                                                      int vocab,
                                                                      bool accept_caveats = false);

// What llama.cpp would do differently from `tok` once exported, one sentence each; empty when it
// reproduces `tok` exactly. Throws the Error tokenizer_metadata throws when it cannot be exported.
std::vector<std::string> tokenizer_gguf_caveats(const Tokenizer& tok);

// The tokenizer a GGUF file embeds, as ours (the byte vocabulary above becomes
// Tokenizer::bytes()). Throws Error "<path>: ..." naming the key for what tinygpt cannot
// represent (a SentencePiece "llama" vocabulary, an unknown pre-tokenizer name, ...).
Tokenizer tokenizer_from_gguf(const io::GgufFile& file);

// The same from metadata key/value pairs; `source` prefixes the errors.
Tokenizer tokenizer_from_gguf_metadata(
    const std::vector<std::pair<std::string, io::GgufValue>>& metadata, const std::string& source);

}  // namespace tinygpt::gguf
