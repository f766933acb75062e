// Which llama.cpp architecture computes exactly our model's function, and how our model is laid
// out in it: the metadata keys, and every tensor's GGUF name and shape derived from our tensor
// roles (one table for export and import). docs/GGUF.md gives the mapping and what is refused.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "io/gguf_file.h"
#include "model/config.h"
#include "model/tensor_role.h"

namespace tinygpt::gguf {

enum class GgufArch { Gpt2, Llama, Qwen2, Qwen3, Qwen2Moe, Qwen3Moe, Olmoe };
const char* gguf_arch_name(GgufArch arch);  // general.architecture: "gpt2", "qwen2moe", ...
// Throws Error naming the architectures tinygpt reads.
GgufArch parse_gguf_arch(const std::string& name);

// How a model is written: the architecture, and the model as the file describes it. A model
// whose blocks mix dense and MoE feed-forwards is written with every block MoE (the MoE
// architectures have no dense blocks): each dense block becomes E copies of its MLP under a zero
// router, padded with zeros to the expert width, so the gated sum is the dense output (the down
// projection scaled by E/K on the architectures that do not renormalise the gates). A dense
// model with OLMoE's q/k norms is written as olmoe with two such copies.
struct ExportPlan {
    GgufArch arch = GgufArch::Llama;
    ModelConfig file_config;           // every block MoE, or every block dense
    std::vector<char> emulated_dense;  // per layer: a dense block written as MoE
    bool untied_head_copy = false;     // the architecture requires `output`: the embedding
};

// The plan for `cfg`, or an Error saying why no llama.cpp architecture computes the same
// function and which flags would give an exportable model.
ExportPlan plan_export(const ModelConfig& cfg);

// One GGUF tensor and where its values live in our layout: the concatenation of `parts` (whole
// tensors of ours, row-major [out, in], stacked along the outermost dimension: q|k|v for GPT-2's
// fused attn_qkv, the experts of a 3-D expert tensor). `permute_heads` > 0: rows are permuted
// within each of that many heads from HF's rotate-half order to llama.cpp's adjacent-pair RoPE.
struct GgufTensorSpec {
    std::string name;
    std::vector<int64_t> ne;  // innermost first
    std::vector<TensorId> parts;
    int permute_heads = 0;
};

// Every tensor of a `arch` file for a model of `file_cfg` (from plan_export or read from a file),
// in llama.cpp's order.
std::vector<GgufTensorSpec> gguf_tensor_specs(GgufArch arch, const ModelConfig& file_cfg);

// Whether llama.cpp's `arch` renormalises the K selected gates to sum to 1.
bool renormalises_gates(GgufArch arch);

// The `<arch>.*` hyper-parameter keys (context, widths, heads, RoPE, norm eps, experts).
std::vector<std::pair<std::string, io::GgufValue>> arch_metadata(GgufArch arch,
                                                                 const ModelConfig& file_cfg);

// The model a file describes, from its keys and which optional tensors it holds (biases, a
// separate output head). Throws Error "<path>: ..." naming the key for what we do not compute
// (RoPE scaling, partial rotary dimensions, soft-capping, other gating functions, ...).
ModelConfig config_from_gguf(const io::GgufFile& file, GgufArch arch);

// llama.cpp's adjacent-pair RoPE order ↔ HF's rotate-half order, on the rows of `heads` heads
// of `head_dim` rows of `cols` values each (cols = 1 for a bias).
void permute_rows_for_llama(const float* src, float* dst, int heads, int head_dim, int64_t cols);
void unpermute_rows_from_llama(const float* src, float* dst, int heads, int head_dim, int64_t cols);
// The source row of row `row` of the result of permute_rows_for_llama (to_llama) or of
// unpermute_rows_from_llama: whole rows move, so this serves rows of any type (a Q8_0 row moves
// as its blocks).
int64_t llama_rope_source_row(int64_t row, int head_dim, bool to_llama);

}  // namespace tinygpt::gguf
