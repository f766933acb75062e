// A model as a GGUF file for llama.cpp (and Ollama, LM Studio) in and out: the architecture that
// computes our function (gguf_arch.h), the weights in F32/F16/BF16/Q8_0, the tokenizer
// (gguf_vocab.h). docs/GGUF.md describes the mapping and what is refused.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "gguf/gguf_arch.h"
#include "model/config.h"
#include "tokenizer/tokenizer.h"

namespace tinygpt::gguf {

// True for a regular file that starts with the GGUF magic.
bool is_gguf_file(const std::string& path);

struct GgufModel {
    GgufArch arch = GgufArch::Llama;
    ModelConfig config;
    std::vector<float> weights;  // ParameterLayout(config) order
    Tokenizer tokenizer = Tokenizer::bytes();
    uint32_t version = 3;
    std::string types;  // the tensor types present: "F32+Q8_0"
    int tensors = 0;
    uint64_t file_bytes = 0;
};

// Reads and validates a GGUF file of an architecture tinygpt computes; converts tensor by tensor
// into one f32 buffer (Q8_0 as ggml dequantises it, llama's q/k rows back to rotate-half order).
// Throws Error "<path>: ..." naming the key or tensor at fault.
GgufModel load_gguf_model(const std::string& path);

enum class GgufDtype { F32, F16, BF16, Q8_0 };
GgufDtype parse_gguf_dtype(const std::string& name);  // "f32", "f16", "bf16", "q8_0"
const char* gguf_dtype_name(GgufDtype dtype);

struct GgufExport {
    GgufArch arch = GgufArch::Llama;
    // How llama.cpp's tokenization will differ from ours (tokenizer_gguf_caveats): e.g. no NFC
    // normalisation. Empty when it is exact.
    std::vector<std::string> tokenizer_caveats;
    int emulated_dense_layers = 0;  // dense blocks written as copies of their MLP
    int tensors = 0;
    uint64_t file_bytes = 0;
};

// Writes `path` crash-safely for llama.cpp's architecture that computes the same function
// (plan_export; Error saying why when none does). The matrices take `dtype` as llama.cpp's own
// tools would store them (norms, biases, the router and position table stay F32; a Q8_0 matrix
// whose rows are not a multiple of 32 long is F16, as llama-quantize does). Refuses to replace
// an existing file that is not a GGUF file. A tokenizer llama.cpp reproduces except in the ways
// tokenizer_gguf_caveats lists is written, with those ways returned for the caller to show.
GgufExport save_gguf_model(const std::string& path, const ModelConfig& cfg, const float* weights,
                           const Tokenizer& tokenizer, GgufDtype dtype, const std::string& name);

}  // namespace tinygpt::gguf
