// A Hugging Face model directory in and out: config.json, model.safetensors (or shards with
// model.safetensors.index.json), tokenizer.json + tokenizer_config.json, generation_config.json.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "hf/hf_model_type.h"
#include "model/config.h"

namespace tinygpt::hf {

// True for a directory with a config.json (what every command accepts in place of a model file).
bool is_hf_model_dir(const std::string& path);

struct HfModel {
    ModelType type = ModelType::Llama;
    ExpertLayout expert_layout = ExpertLayout::PerExpert;
    ModelConfig config;
    std::vector<float> weights;  // ParameterLayout(config) order
    // The tokenizer files' text; tokenizer_json is never empty (a directory without one is
    // refused: its ids would mean nothing).
    std::string tokenizer_json, tokenizer_config_json;
    std::string dtypes;  // "bf16", "f32+bf16", ...
    int files = 1;       // safetensors files read
    uint64_t checkpoint_bytes = 0;
};

// Reads and validates the directory; converts tensor by tensor from the memory map into one f32
// buffer (peak ≈ that buffer plus one tensor's pages). Throws Error "<dir>: ..." naming the file,
// field or tensor at fault.
HfModel load_hf_model(const std::string& dir);

enum class HfDtype { F32, BF16, F16 };
HfDtype parse_hf_dtype(const std::string& name);  // "f32", "bf16", "f16"

struct HfExport {
    ModelType type;
    std::vector<std::string> files;  // written, relative to the directory
};

// Writes a directory that transformers loads, with the HF type that computes the same function
// (export_type_for). `dir` must not exist, or be a directory holding only such an export (it is
// replaced whole: the new one is built beside it and renamed into place). tokenizer_json must be
// the model's tokenizer (for byte models: Tokenizer::bytes().to_hf_json()).
HfExport save_hf_model(const std::string& dir, const ModelConfig& cfg, const float* weights,
                       const std::string& tokenizer_json, const std::string& tokenizer_config_json,
                       std::optional<int> bos_token_id, std::optional<int> eos_token_id,
                       HfDtype dtype);

}  // namespace tinygpt::hf
