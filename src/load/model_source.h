// Any model the tool can run, whatever its form: a .tinygpt file (v1, v2, v3), a Hugging Face
// model directory or a GGUF file. Commands open models through here, so each accepts every form.
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "io/model_file.h"
#include "model/config.h"
#include "model/weight_check.h"
#include "tokenizer/tokenizer.h"

namespace tinygpt {

struct OpenedModel {
    std::string path;
    std::string format;  // "tinygpt v3 (f32)", "Hugging Face qwen3_moe (bf16, 2 files)"
    ModelConfig config;
    Tokenizer tokenizer = Tokenizer::bytes();
    const float* weights = nullptr;  // ParameterLayout(config) order; lives as long as this
    // .tinygpt files: the file (weights may point into its memory map). Null for HF directories.
    std::unique_ptr<ModelFile> file;
    std::vector<float> owned_weights;  // HF directories and GGUF files: the converted weights
    bool is_hf = false;
    double load_ms = 0;
    // Tensors holding NaN or ±inf (only with NonFinite::Report; otherwise such a model is refused).
    std::vector<NonFiniteTensor> non_finite;
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
