// Any model the tool can run, whatever its form: a .tinygpt file (v1, v2, v3), a Hugging Face
// model directory or a GGUF file. Commands open models through here, so each accepts every form.
#pragma once
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "io/model_file.h"
#include "model/config.h"
#include "model/model_weights.h"
#include "model/weight_check.h"
#include "tokenizer/tokenizer.h"

namespace tinygpt {

struct OpenedModel {
    std::string path;
    // "tinygpt v3 (q8_0+f32)", "GGUF v3 llama (F32+Q8_0, 21 tensors)",
    // "Hugging Face qwen3_moe (bf16, 2 files)"
    std::string format;
    ModelConfig config;
    Tokenizer tokenizer = Tokenizer::bytes();
    // The weights in their stored types: views into the memory map of a .tinygpt v3 file, one
    // owned buffer for GGUF files, f32 for v1/v2 files and HF directories (converted on load).
    // Copies keep their memory alive.
    ModelWeights weights;
    // .tinygpt files: the file (the weights point into its memory map). Null otherwise.
    std::unique_ptr<ModelFile> file;
    bool is_hf = false;
    double load_ms = 0;
    // Tensors holding NaN or ±inf (only with NonFinite::Report; otherwise such a model is refused).
    std::vector<NonFiniteTensor> non_finite;

    // The weights as f32 in ParameterLayout(config) order, for code that computes in f32: the
    // stored buffer when it is f32, else converted on the first call (thread-safe; owned by this
    // object or its file, and costs nothing until called). Lives as long as this object.
    const float* f32_weights() const;

  private:
    struct F32Copy {
        std::once_flag once;
        std::vector<float> values;
    };
    std::shared_ptr<F32Copy> f32_copy_ = std::make_shared<F32Copy>();
};

// What open_model does with NaN/inf weights: refuse the model (every command that computes with
// it), or report them in OpenedModel::non_finite (`inspect`).
enum class NonFinite { Refuse, Report };

// Opens a .tinygpt file, an HF directory (one with a config.json) or a GGUF file (by its
// magic). Throws Error naming the path. The tokenizer is checked against the model (its ids must
// fit the vocabulary), and the weights for NaN/inf (NonFinite).
OpenedModel open_model(const std::string& path, const ReadOptions& options = {},
                       NonFinite non_finite = NonFinite::Refuse);

// A tokenizer named on the command line: "bytes", a tokenizer.json, an HF directory, GPT-2's
// encoder.json + vocab.bpe, or a .tinygpt or GGUF model file (its stored tokenizer).
Tokenizer load_tokenizer(const std::string& spec);

// The tokenizer texts to store with a model (empty for bytes, as SaveOptions expects).
void set_tokenizer(SaveOptions& options, const Tokenizer& tokenizer);

}  // namespace tinygpt
