// One transformer block of either family, forward and backward:
//   GPT:   x + Attn(LayerNorm(x)) → mid;  mid + FFN(LayerNorm(mid))      (biases everywhere)
//   Llama: x + Attn(RMSNorm(x))  → mid;  mid + FFN(RMSNorm(mid))        (RoPE, GQA, optional
//          q/k bias and per-head q/k RMSNorm, no other biases)
// The attention input stage (norm → fused qkv → q/k norm → RoPE) is shared with the KV-cache
// session, which only replaces the attention itself.
#pragma once
#include "kernels/attention.h"
#include "kernels/rope.h"
#include "model/config.h"
#include "model/feed_forward.h"
#include "model/params.h"
#include "util/arena.h"

namespace tinygpt {

struct BlockActivations {
    float *ln1, *ln1_mean, *ln1_rstd;            // ln1_mean: GPT family only
    float* qkv_raw = nullptr;                    // q/k norm: the projection before it [N, W]
    float *q_rstd = nullptr, *k_rstd = nullptr;  // q/k norm: [N, H], [N, KVH]
    float* qkv;                                  // [N, W] as attention sees it (normed, rotated)
    float* att_probs;                            // [B, H, T, T]
    float* att_out;                              // [N, C] before o_proj
    float* mid;                                  // [N, C] residual after attention
    float *ln2, *ln2_mean, *ln2_rstd;
    FeedForwardActivations ffn;
    void layout(Arena& arena, const ModelConfig& cfg, int layer, int B, int T,
                bool remote_experts = false);
};

// Scratch shared by all blocks: the feed-forward output of the forward, and the backward's
// gradient buffers.
struct BlockScratch {
    float *d_ln, *d_qkv, *d_att, *ffn_out;
    FeedForwardScratch ffn;
    void layout(Arena& arena, const ModelConfig& cfg, int B, int T, bool remote_experts = false);
};

AttentionShape attention_shape(const ModelConfig& cfg, int B, int T);

// LayerNorm (GPT; mean is saved) or RMSNorm (Llama; mean and b unused).
void norm_forward(const ModelConfig& cfg, float* out, float* mean, float* rstd, const float* x,
                  const float* w, const float* b, int rows);
// dx += ∂L/∂x; dw, db accumulate.
void norm_backward(const ModelConfig& cfg, float* dx, float* dw, float* db, const float* dout,
                   const float* x, const float* mean, const float* rstd, const float* w, int rows);

// qkv[N, W] from the normed input xn: the fused projection, then (Llama) the per-head q/k norm
// and RoPE at positions pos0 + t of each of the B sequences. qkv_raw / q_rstd / k_rstd are
// needed (and filled) only with q/k norm.
void qkv_forward(const ModelConfig& cfg, float* qkv, float* qkv_raw, float* q_rstd, float* k_rstd,
                 const float* xn, const BlockTensors<const float>& w, int B, int T, int pos0,
                 const RopeTable& rope);
// What follows the projection (Llama family; nothing for GPT): with q/k norm, qkv_raw holds the
// projection and qkv receives it normed, else qkv holds it; then RoPE on q and k in place.
void qkv_finish(const ModelConfig& cfg, float* qkv, const float* qkv_raw, float* q_rstd,
                float* k_rstd, const float* q_norm, const float* k_norm, int B, int T, int pos0,
                const RopeTable& rope);

// out = x + Attn + FFN as above; `options` carries the training-only MoE behaviour.
void block_forward(float* out, BlockActivations& act, BlockScratch& scratch, const float* x,
                   const BlockTensors<const float>& w, const ModelConfig& cfg,
                   const RopeTable& rope, int B, int T, const MoeOptions& options);

// d_resid: ∂L/∂out on entry, ∂L/∂x on exit. Gradients accumulate.
void block_backward(float* d_resid, const BlockTensors<float>& grads, BlockScratch& scratch,
                    const float* x, const BlockActivations& act, const BlockTensors<const float>& w,
                    const ModelConfig& cfg, const RopeTable& rope, int B, int T, float aux_weight,
                    float z_weight);

}  // namespace tinygpt
