// The parameter table: every tensor's id (role, layer, expert; model/tensor_role.h), its .tinygpt
// name (derived from the id), shape, place in the one contiguous buffer, and whether weight decay
// applies. The same layout serves the weights, the gradients and both AdamW moments.
//
// Memory order is ours, not the manifest's: all decayed (2-D) tensors come first so the
// optimizer makes two straight passes, q/k/v of a block sit next to each other so one GEMM
// computes all three projections, and so do the gate and up projections of a SwiGLU MLP. Every
// tensor (q/k/v as one group) starts on a 64-byte boundary, so the buffer, written to disk as is,
// can be memory-mapped and used in place.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "kernels/mlp.h"
#include "model/config.h"
#include "model/tensor_role.h"
#include "moe/expert_shard.h"
#include "moe/shared_expert.h"

namespace tinygpt {

class Rng;

struct ParamInfo {
    TensorId id;
    std::string name;            // tinygpt_tensor_name(arch, id)
    std::vector<int64_t> shape;  // [out, in] for Linear weights
    size_t offset = 0;           // in floats
    size_t numel = 0;
    bool decay = false;  // 2-D tensors get weight decay
    float init_std = 0;  // > 0: N(0, init_std); == 0: zeros; < 0: ones
    // Stored right after the previous entry, with no padding, because one product or kernel
    // reads both as one tensor: k and v after q (one fused q|k|v projection), up after gate.
    bool joins_previous = false;
};

class ParameterLayout {
  public:
    explicit ParameterLayout(const ModelConfig& cfg);
    // Expert parallelism: only the routed experts of `shard` (in every MoE layer); the others'
    // tensors are absent (find() gives nullptr), TensorId::expert stays the global index, and
    // the remaining tensors keep their order. A full shard gives ParameterLayout(cfg) exactly.
    ParameterLayout(const ModelConfig& cfg, ExpertShard shard);

    const std::vector<ParamInfo>& entries() const { return entries_; }
    size_t total() const { return total_; }  // buffer length in floats, padding included
    size_t count() const { return count_; }  // parameters (no padding)
    size_t decay_count() const { return decay_count_; }  // floats [0, decay_count) are decayed
    const ParamInfo& at(const std::string& name) const;  // throws Error if unknown
    bool contains(const std::string& name) const { return index_.count(name) != 0; }
    const ParamInfo* find(const TensorId& id) const;  // nullptr if the model has no such tensor
    const ParamInfo& at(const TensorId& id) const;    // throws Error if absent
    // Names in the family's canonical order: the original's manifest order for the GPT family,
    // HF's for the Llama family (for files and `inspect`).
    std::vector<std::string> manifest_order() const;
    const ModelConfig& config() const { return cfg_; }
    const ExpertShard& shard() const { return shard_; }

  private:
    // aligned = false continues the previous tensor without padding (k and v after q).
    void add(TensorRole role, int layer, int expert, std::vector<int64_t> shape, float init_std,
             bool aligned = true);
    ModelConfig cfg_;
    ExpertShard shard_;
    std::vector<ParamInfo> entries_;
    std::unordered_map<std::string, size_t> index_;
    std::unordered_map<TensorId, size_t, TensorIdHash> id_index_;
    size_t total_ = 0;
    size_t count_ = 0;
    size_t decay_count_ = 0;
};

// A block's tensors; null where the family or the options have none (biases and LayerNorm
// shifts in the Llama family, q/k norms unless enabled, ...).
template <typename F>
struct BlockTensors {
    F *ln1_w = nullptr, *ln1_b = nullptr;    // attention norm (LayerNorm or RMSNorm)
    F *qkv_w = nullptr, *qkv_b = nullptr;    // [W, C] fused q|k|v
    F *q_norm = nullptr, *k_norm = nullptr;  // [head_dim], or [H·hd] / [KVH·hd] (full)
    F *o_w = nullptr, *o_b = nullptr;
    F *ln2_w = nullptr, *ln2_b = nullptr;  // feed-forward norm
    bool moe = false;
    MlpTensors<F> mlp;                   // dense blocks (SwiGLU: w_in = gate|up, w_out = down)
    F* router = nullptr;                 // MoE blocks
    std::vector<MlpTensors<F>> experts;  // MoE blocks
    SharedExpertTensors<F> shared;       // MoE blocks with a shared expert
    // experts[i] is global expert shard.first + i (all of them unless the layout is sharded).
};

template <typename F>
struct ModelTensors {
    F *wte = nullptr, *wpe = nullptr;      // wpe: GPT family only
    F *lnf_w = nullptr, *lnf_b = nullptr;  // final norm
    F* head = nullptr;                     // output head [V, C]: wte when tied
    std::vector<BlockTensors<F>> blocks;
};

ModelTensors<float> bind_tensors(const ParameterLayout& layout, const ModelConfig& cfg,
                                 float* base);
ModelTensors<const float> bind_tensors(const ParameterLayout& layout, const ModelConfig& cfg,
                                       const float* base);

// GPT-2 init for both families (docs/MODEL.md): deterministic for a seed. A sharded layout gets
// the values the full layout gets for the tensors it holds.
void init_parameters(const ParameterLayout& layout, float* params, uint64_t seed);
// One tensor's share of it: info.numel values at dst, drawn from `rng` as init_parameters does.
void init_tensor(const ParamInfo& info, float* dst, Rng& rng);

}  // namespace tinygpt
