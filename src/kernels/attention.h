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

// Inference with a KV cache (batch 1): n new queries at positions p0 .. p0+n-1 attend to the
// cached keys/values of positions 0 .. p0+i (causal). q rows have stride ldq; the caches are
// [positions, C] with the new rows already written. out is [n, C].
void attention_forward_cached(float* out, const float* q, int ldq, const float* k_cache,
                              const float* v_cache, int n, int p0, int C, int H);

}  // namespace tinygpt
