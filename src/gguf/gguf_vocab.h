// A tokenizer in GGUF's tokenizer.ggml.* metadata, both ways, so that llama.cpp tokenizes and
// detokenizes text exactly as tinygpt does (checked by tools/llama-reference against the real
// llama.cpp). docs/GGUF.md lists the mapping.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "io/gguf_file.h"
#include "tokenizer/tokenizer.h"

namespace tinygpt::gguf {

// The tokenizer.ggml.* keys for `tok`, padded to `vocab` entries (a model's vocabulary may be
// larger than its tokenizer; the extra ids are written as unused control tokens):
// - bytes: model "gpt2", the 256 byte characters of GPT-2's byte-to-unicode map in byte order,
//   empty merges, a pre-tokenizer that does not clean up spaces; bos/eos set on purpose and
//   add_bos false.
// - byte-level BPE: model "gpt2", tokens spelled as in tokenizer.json, merges "a b", token types
//   (normal / control for special added tokens / user-defined for the other added tokens), and
//   the tokenizer.ggml.pre name whose regex in llama.cpp is the tokenizer's pre-tokenizer.
// Throws Error saying why when llama.cpp cannot reproduce the tokenizer (a pre-tokenizer it has
// no name for, a normaliser it does not apply, ...).
std::vector<std::pair<std::string, io::GgufValue>> tokenizer_metadata(const Tokenizer& tok,
                                                                      int vocab);

// The tokenizer a GGUF file embeds, as ours (the byte vocabulary above becomes
// Tokenizer::bytes()). Throws Error "<path>: ..." naming the key for what tinygpt cannot
// represent (a SentencePiece "llama" vocabulary, an unknown pre-tokenizer name, ...).
Tokenizer tokenizer_from_gguf(const io::GgufFile& file);

}  // namespace tinygpt::gguf
