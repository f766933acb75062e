// The Hugging Face model types that tinygpt reads and writes, and how each maps to our model
// description: the config.json fields (hf_config.cpp) and the checkpoint's tensor names, derived
// from the tensor roles (hf_tensors.cpp). docs/HF.md describes the mapping.
#pragma once
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "model/config.h"
#include "model/tensor_role.h"

namespace tinygpt::hf {

enum class ModelType { Llama, Mistral, Qwen2, Qwen3, Mixtral, Qwen2Moe, Qwen3Moe, Olmoe, Gpt2 };

const char* model_type_name(ModelType type);    // config.json "model_type": "qwen3_moe", ...
const char* architecture_name(ModelType type);  // "Qwen3MoeForCausalLM", ...
// Throws Error naming the known types for any other model_type.
ModelType parse_model_type(const std::string& name);
bool is_moe_type(ModelType type);

// How a checkpoint stores its routed experts: one module per expert (`experts.3.gate_proj`, or
// Mixtral's `block_sparse_moe.experts.3.w1`), or the fused 3-D tensors of transformers v5
// (`experts.gate_up_proj` [E, 2·I, H] with gate rows first, `experts.down_proj` [E, H, I]).
enum class ExpertLayout { PerExpert, Fused };

// config.json read into our description. Everything that would change the function computed and
// that we do not implement is refused with an Error naming the field.
struct ImportedConfig {
    ModelType type = ModelType::Llama;
    ModelConfig model;  // bos/eos come from the tokenizer files, not from here
};
ImportedConfig config_from_hf(const nlohmann::json& config);

// The HF type that computes exactly our model's function, or an Error saying why none does and
// which flags would give an exportable model.
ModelType export_type_for(const ModelConfig& cfg);
// config.json for `type` (from export_type_for); torch_dtype is "float32", "bfloat16", ...
nlohmann::json config_to_hf(const ModelConfig& cfg, ModelType type, const std::string& torch_dtype,
                            std::optional<int> bos_token_id, std::optional<int> eos_token_id);

// One tensor of a checkpoint and where its values live in our layout: the concatenation of
// `parts` (whole tensors of ours, in this order along the first dimension), stored transposed
// for GPT-2's Conv1D weights. On export, a part that our model lacks (a bias the HF type always
// has) is written as zeros: a zero bias computes the same function as none.
struct TensorSpec {
    std::string name;
    std::vector<int64_t> shape;  // as stored in the checkpoint
    std::vector<TensorId> parts;
    bool transposed = false;
};

// Every tensor of `type`'s checkpoint for a model of `cfg`, in HF order. Mixtral's per-expert
// checkpoints use its hub names (block_sparse_moe, w1/w2/w3), its fused ones v5's (mlp.).
std::vector<TensorSpec> tensor_specs(ModelType type, const ModelConfig& cfg, ExpertLayout layout);

// The config as the HF type sees it: the biases that the type always has (qwen2's q/k/v,
// attention_bias's q/k/v/o) switched on. Export writes tensor_specs of this config.
ModelConfig hf_view(const ModelConfig& cfg, ModelType type);

// Tensors some checkpoints carry that hold no weights of their own: GPT-2's causal-mask buffers
// and a tied head's copy.
bool is_ignored_tensor(ModelType type, const ModelConfig& cfg, const std::string& name);

}  // namespace tinygpt::hf
