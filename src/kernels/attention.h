// Causal multi-head self-attention on a fused qkv buffer [B, T, W]: per token q (H heads), then
// k and v (KVH heads each), heads of hd = Q/H floats contiguous inside each, W = Q + 2·KVH·hd,
// where Q = H·hd is the query width (d_model, unless the model sets head_dim apart).
// Grouped-query attention: query head h reads kv head h / (H/KVH) (HF's repeat_kv order); KVH = H
// is ordinary multi-head attention (the GPT family). Each (batch, head) is a pair of small GEMMs;
// rows are processed in blocks so that the causal upper triangle is (mostly) never computed.
#pragma once

namespace tinygpt {

struct AttentionShape {
    int B, T, Q, H;  // Q: query width H·hd
    int KVH = 0;     // kv heads; 0 means H
    int head_dim() const { return Q / H; }
    int kv_heads() const { return KVH > 0 ? KVH : H; }
    int kv_width() const { return kv_heads() * head_dim(); }
    int qkv_width() const { return Q + 2 * kv_width(); }
};

// out[B, T, Q] = softmax(q·kᵀ/√hd, causal)·v; probs [B, H, T, T] are saved for the backward.
void attention_forward(float* out, float* probs, const float* qkv, AttentionShape shape);

// dqkv[B, T, W] (overwritten) from dout[B, T, Q].
void attention_backward(float* dqkv, const float* dout, const float* qkv, const float* probs,
                        AttentionShape shape);

// Inference with a KV cache (batch 1): n new queries at positions p0 .. p0+n-1 attend to the
// cached keys/values of positions 0 .. p0+i (causal). q rows have stride ldq; the caches are
// [positions, KVH·hd] with the new rows already written. out is [n, Q] (Q = H·hd).
void attention_forward_cached(float* out, const float* q, int ldq, const float* k_cache,
                              const float* v_cache, int n, int p0, int Q, int H, int KVH = 0);

}  // namespace tinygpt
