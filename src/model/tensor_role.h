// What each tensor of a model is: its role (token embedding, q projection, expert e's gate, ...)
// with its layer and expert index. Every table of tensors (the parameter layout, the .tinygpt
// names, the Hugging Face names of each model type) is derived from these ids, so code that
// walks the tensors (binding, export, upcycling, expert sharding) never parses a name.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "model/config.h"

namespace tinygpt {

enum class TensorRole : uint8_t {
    TokenEmbedding,     // [V, C]
    PositionEmbedding,  // [ctx, C] (GPT family)
    FinalNorm,          // [C]
    FinalNormBias,      // [C] (LayerNorm)
    OutputHead,         // [V, C] (absent when tied)
    AttnNorm,
    AttnNormBias,
    AttnQ,  // [H·hd, C]
    AttnK,  // [KVH·hd, C]
    AttnV,
    AttnO,  // [C, H·hd]
    AttnQBias,
    AttnKBias,
    AttnVBias,
    AttnOBias,
    AttnQNorm,  // [hd] per head, or [H·hd] over the whole projection
    AttnKNorm,
    FfnNorm,
    FfnNormBias,
    // A feed-forward network's matrices; TensorId::expert says whose: the dense MLP, routed
    // expert e, or the shared expert.
    FfnGate,  // SwiGLU (Llama family) [W, C]
    FfnUp,    // [W, C]
    FfnDown,  // [C, W]
    FfnIn,    // GELU MLP (GPT family) [W, C] + bias
    FfnInBias,
    FfnOut,  // [C, W] + bias
    FfnOutBias,
    Router,            // [E, C]
    SharedExpertGate,  // [1, C]: sigmoid gate of the shared expert
};

// TensorId::expert for the feed-forward tensors that belong to no routed expert.
inline constexpr int kDenseFfn = -1;
inline constexpr int kSharedExpert = -2;

struct TensorId {
    TensorRole role = TensorRole::TokenEmbedding;
    int layer = -1;          // -1 for model-level tensors
    int expert = kDenseFfn;  // routed expert index, kDenseFfn or kSharedExpert
    bool operator==(const TensorId&) const = default;
    bool is_routed_expert() const { return expert >= 0; }
};

struct TensorIdHash {
    size_t operator()(const TensorId& id) const {
        return (static_cast<size_t>(id.role) * 0x9E3779B1u) ^
               (static_cast<size_t>(id.layer + 2) << 8) ^
               (static_cast<size_t>(id.expert + 3) << 28);
    }
};

const char* tensor_role_name(TensorRole role);  // "attn_q", "ffn_gate", ... for messages
// "layer 3 expert 5 ffn_gate" and the like, for messages.
std::string describe_tensor(const TensorId& id);

// The tensor's name in .tinygpt files: the original's manifest names for the GPT family, HF
// Qwen2-MoE's names for the Llama family.
std::string tinygpt_tensor_name(Arch arch, const TensorId& id);

// Sort key of the family's canonical (manifest / HF) order: embeddings, then each layer's
// attention, norms and feed-forward (router, experts in order, shared expert), then the head.
uint64_t canonical_order_key(Arch arch, const TensorId& id);

}  // namespace tinygpt
