// A block's feed-forward sublayer, the same for both families: a dense MLP (GELU or SwiGLU), or
// an MoE layer plus, optionally, the always-on shared expert. The model and the KV-cache session
// both run it.
#pragma once
#include "model/config.h"
#include "model/params.h"
#include "moe/expert_parallel.h"
#include "moe/moe_layer.h"
#include "moe/shared_expert.h"
#include "util/arena.h"

namespace tinygpt {

struct FeedForwardActivations {
    float* pre = nullptr;  // dense: [N, pre_width]
    float* h = nullptr;    // dense: [N, d_mlp]
    MoeActivations moe;    // MoE layers
    SharedExpertActivations shared;
    // Expert parallelism: the layer's exchange with the group (set by the model; null otherwise).
    ExpertParallelLayer* expert_parallel = nullptr;
    // remote_experts: expert parallelism, the expert hidden activations live on their owners.
    void layout(Arena& arena, const ModelConfig& cfg, int layer, int tokens,
                bool remote_experts = false);
};

// Backward scratch, shared by all layers (sized for the largest).
struct FeedForwardScratch {
    float* d_pre = nullptr;  // dense: [N, pre_width]
    MoeScratch moe;
    SharedExpertScratch shared;
    void layout(Arena& arena, const ModelConfig& cfg, int tokens, bool remote_experts = false);
};

FfnKind ffn_kind(const ModelConfig& cfg);

// out[N, C] = FFN(x). MoE layers also fill act.moe.aux / z / dropped.
void feed_forward_forward(float* out, FeedForwardActivations& act, const float* x,
                          const BlockTensors<const float>& w, const ModelConfig& cfg, int tokens,
                          const MoeOptions& options);

// dx[N, C] is overwritten; gradients accumulate. aux_weight / z_weight already include the loss
// scale.
void feed_forward_backward(float* dx, const BlockTensors<float>& grads, FeedForwardScratch& scratch,
                           const float* dout, const float* x, const FeedForwardActivations& act,
                           const BlockTensors<const float>& w, const ModelConfig& cfg, int tokens,
                           float aux_weight, float z_weight);

}  // namespace tinygpt
