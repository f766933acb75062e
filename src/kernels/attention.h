// Causal multi-head self-attention on a fused qkv buffer [B, T, 3C] (q | k | v per token, heads
// contiguous inside each). Each (batch, head) is a pair of small GEMMs; rows are processed in
// blocks so that the causal upper triangle is (mostly) never computed.
#pragma once

namespace tinygpt {

struct AttentionShape {
    int B, T, C, H;
    int head_dim() const { return C / H; }
};

// out[B, T, C] = softmax(q·kᵀ/√hd, causal)·v; probs [B, H, T, T] are saved for the backward.
void attention_forward(float* out, float* probs, const float* qkv, AttentionShape shape);

// dqkv[B, T, 3C] (overwritten) from dout[B, T, C].
void attention_backward(float* dqkv, const float* dout, const float* qkv, const float* probs,
                        AttentionShape shape);

}  // namespace tinygpt
