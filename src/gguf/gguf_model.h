// A model as a GGUF file for llama.cpp (and Ollama, LM Studio) in and out: the architecture that
// computes our function (gguf_arch.h), the weights in F32/F16/BF16/Q8_0, the tokenizer
// (gguf_vocab.h). docs/GGUF.md describes the mapping and what is refused.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "gguf/gguf_arch.h"
#include "model/config.h"
#include "model/model_weights.h"
#include "tokenizer/tokenizer.h"

namespace tinygpt::gguf {

// True for a regular file that starts with the GGUF magic.
bool is_gguf_file(const std::string& path);

struct GgufModel {
    GgufArch arch = GgufArch::Llama;
    ModelConfig config;
    ModelWeights weights;  // in the file's types, one owned buffer in our layout
    Tokenizer tokenizer = Tokenizer::bytes();
    uint32_t version = 3;
    std::string types;  // the tensor types present: "F32+Q8_0"
    int tensors = 0;
    uint64_t file_bytes = 0;
};

// Reads and validates a GGUF file of an architecture tinygpt computes, and copies its tensors,
// keeping their types (F32, F16, BF16, Q8_0), into one buffer in our layout (ParameterLayout
// order, each group on 64 bytes; llama's q/k rows moved back to rotate-half order as whole rows,
// so Q8_0 rows move as their blocks). Exceptions, each converted exactly to f32: tensors
// inference reads as f32 (norms, biases, the router, the position table; always_f32) stored in
// another type, and a group we read as one matrix (q|k|v, gate|up) whose GGUF tensors differ in
// type. The file is read tensor by tensor and its pages dropped as they are copied, so peak
// memory is about the stored bytes. Throws Error "<path>: ..." naming the key or tensor at fault.
GgufModel load_gguf_model(const std::string& path);

// The GGUF export dtypes are our weight types (model/weight_dtype.h).
using GgufDtype = WeightDtype;
GgufDtype parse_gguf_dtype(const std::string& name);  // "f32", "f16", "bf16", "q8_0"
const char* gguf_dtype_name(GgufDtype dtype);
// The ggml tensor type of a weight type and back (the four types both sides know).
io::GgmlType ggml_type_of(WeightDtype dtype);
WeightDtype weight_dtype_of(io::GgmlType type);

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
// (plan_export; Error saying why when none does). Each tensor takes the type stored_tensor_dtype
// gives it for `dtype`, as llama.cpp's own tools would store it (norms, biases, the router and
// position table stay F32; a Q8_0 matrix whose rows are not a multiple of 32 long is F16, as
// llama-quantize does). A tensor whose parts are already in that type is copied bit for bit
// (a Q8_0 model exported as Q8_0 is not requantised; llama's q/k rows move as whole rows); the
// others are converted from f32 (as are dense blocks written as scaled or padded experts).
// Refuses to replace an existing file that is not a GGUF file. A tokenizer llama.cpp reproduces
// except in the ways tokenizer_gguf_caveats lists is written, with those ways returned for the
// caller to show.
GgufExport save_gguf_model(const std::string& path, const ModelWeights& weights,
                           const Tokenizer& tokenizer, GgufDtype dtype, const std::string& name);
// The same for f32 weights in ParameterLayout(cfg) order.
GgufExport save_gguf_model(const std::string& path, const ModelConfig& cfg, const float* weights,
                           const Tokenizer& tokenizer, GgufDtype dtype, const std::string& name);

}  // namespace tinygpt::gguf
