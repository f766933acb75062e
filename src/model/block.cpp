#include "model/block.h"

#include <cstring>

#include "kernels/gemm.h"
#include "kernels/layernorm.h"
#include "kernels/rmsnorm.h"
#include "util/parallel.h"

namespace tinygpt {

namespace {

// out = a + b (out may alias a).
void add(float* out, const float* a, const float* b, size_t n) {
    parallel_for_chunks(static_cast<long>(n), [=](long begin, long count) {
        float* o = out + begin;
        const float *x = a + begin, *y = b + begin;
#pragma omp simd
        for (long i = 0; i < count; ++i) o[i] = x[i] + y[i];
    });
}

}  // namespace

AttentionShape attention_shape(const ModelConfig& cfg, int B, int T) {
    return AttentionShape{B, T, cfg.q_width(), cfg.heads, cfg.kv_head_count()};
}

void BlockActivations::layout(Arena& a, const ModelConfig& cfg, int layer, int B, int T,
                              bool remote_experts) {
    const size_t N = static_cast<size_t>(B) * T, C = cfg.d_model, W = cfg.qkv_width();
    const bool gpt = !cfg.is_llama();
    ln1 = a.take<float>(N * C);
    ln1_mean = gpt ? a.take<float>(N) : nullptr;
    ln1_rstd = a.take<float>(N);
    if (cfg.is_llama() && cfg.qk_norm != QkNorm::None) {
        qkv_raw = a.take<float>(N * W);
        q_rstd = a.take<float>(N * cfg.heads);
        k_rstd = a.take<float>(N * cfg.kv_head_count());
    }
    qkv = a.take<float>(N * W);
    att_probs = a.take<float>(static_cast<size_t>(B) * cfg.heads * T * T);
    att_out = a.take<float>(N * cfg.q_width());
    mid = a.take<float>(N * C);
    ln2 = a.take<float>(N * C);
    ln2_mean = gpt ? a.take<float>(N) : nullptr;
    ln2_rstd = a.take<float>(N);
    ffn.layout(a, cfg, layer, static_cast<int>(N), remote_experts);
}

void BlockScratch::layout(Arena& a, const ModelConfig& cfg, int B, int T, bool remote_experts) {
    const size_t N = static_cast<size_t>(B) * T, C = cfg.d_model;
    d_ln = a.take<float>(N * C);
    d_qkv = a.take<float>(N * cfg.qkv_width());
    d_att = a.take<float>(N * cfg.q_width());
    ffn_out = a.take<float>(N * C);
    ffn.layout(a, cfg, static_cast<int>(N), remote_experts);
}

void norm_forward(const ModelConfig& cfg, float* out, float* mean, float* rstd, const float* x,
                  const float* w, const float* b, int rows) {
    if (cfg.is_llama())
        rmsnorm_forward(out, rstd, x, w, rows, cfg.d_model, cfg.norm_eps);
    else
        layernorm_forward(out, mean, rstd, x, w, b, rows, cfg.d_model);
}

void norm_backward(const ModelConfig& cfg, float* dx, float* dw, float* db, const float* dout,
                   const float* x, const float* mean, const float* rstd, const float* w, int rows) {
    if (cfg.is_llama())
        rmsnorm_backward(dx, dw, dout, x, rstd, w, rows, cfg.d_model);
    else
        layernorm_backward(dx, dw, db, dout, x, mean, rstd, w, rows, cfg.d_model);
}

namespace {

// The q/k norm runs per head (groups of head_dim) or over the whole q / k projection (one group
// of H·hd / KVH·hd): the same kernel with other group counts.
struct QkNormGroups {
    int q_groups, k_groups, q_size, k_size;
};
QkNormGroups qk_norm_groups(const ModelConfig& cfg) {
    if (cfg.qk_norm == QkNorm::Full) return {1, 1, cfg.q_width(), cfg.kv_width()};
    return {cfg.heads, cfg.kv_head_count(), cfg.head_dim(), cfg.head_dim()};
}

}  // namespace

void qkv_forward(const ModelConfig& cfg, float* qkv, float* qkv_raw, float* q_rstd, float* k_rstd,
                 const float* xn, const BlockTensors<const float>& w, int B, int T, int pos0,
                 const RopeTable& rope) {
    const int N = B * T, C = cfg.d_model, W = cfg.qkv_width();
    const bool normed = cfg.is_llama() && w.q_norm;
    linear_forward(normed ? qkv_raw : qkv, xn, w.qkv_w, w.qkv_b, N, C, W);
    qkv_finish(cfg, qkv, qkv_raw, q_rstd, k_rstd, w.q_norm, w.k_norm, B, T, pos0, rope);
}

void qkv_finish(const ModelConfig& cfg, float* qkv, const float* qkv_raw, float* q_rstd,
                float* k_rstd, const float* q_norm, const float* k_norm, int B, int T, int pos0,
                const RopeTable& rope) {
    if (!cfg.is_llama()) return;
    const int N = B * T, W = cfg.qkv_width(), Q = cfg.q_width();
    const int H = cfg.heads, KVH = cfg.kv_head_count();
    if (q_norm) {
        const QkNormGroups g = qk_norm_groups(cfg);
        std::memcpy(qkv, qkv_raw, sizeof(float) * static_cast<size_t>(N) * W);
        head_rmsnorm_forward(qkv, q_rstd, qkv_raw, q_norm, N, g.q_groups, g.q_size, W,
                             cfg.norm_eps);
        head_rmsnorm_forward(qkv + Q, k_rstd, qkv_raw + Q, k_norm, N, g.k_groups, g.k_size, W,
                             cfg.norm_eps);
    }
    rope_forward(qkv, W, B, T, H, pos0, rope);
    rope_forward(qkv + Q, W, B, T, KVH, pos0, rope);
}

void block_forward(float* out, BlockActivations& a, BlockScratch& sc, const float* x,
                   const BlockTensors<const float>& w, const ModelConfig& cfg,
                   const RopeTable& rope, int B, int T, const MoeOptions& options) {
    const int N = B * T, C = cfg.d_model;
    const size_t NC = static_cast<size_t>(N) * C;
    norm_forward(cfg, a.ln1, a.ln1_mean, a.ln1_rstd, x, w.ln1_w, w.ln1_b, N);
    qkv_forward(cfg, a.qkv, a.qkv_raw, a.q_rstd, a.k_rstd, a.ln1, w, B, T, 0, rope);
    attention_forward(a.att_out, a.att_probs, a.qkv, attention_shape(cfg, B, T));
    linear_forward(a.mid, a.att_out, w.o_w, w.o_b, N, cfg.q_width(), C);
    add(a.mid, a.mid, x, NC);
    norm_forward(cfg, a.ln2, a.ln2_mean, a.ln2_rstd, a.mid, w.ln2_w, w.ln2_b, N);
    feed_forward_forward(sc.ffn_out, a.ffn, a.ln2, w, cfg, N, options);
    add(out, a.mid, sc.ffn_out, NC);
}

void block_backward(float* d_resid, const BlockTensors<float>& g, BlockScratch& sc, const float* x,
                    const BlockActivations& a, const BlockTensors<const float>& w,
                    const ModelConfig& cfg, const RopeTable& rope, int B, int T, float aux_weight,
                    float z_weight) {
    const int N = B * T, C = cfg.d_model, W = cfg.qkv_width(), Q = cfg.q_width();
    // Feed-forward: d_resid is ∂L/∂(block output).
    feed_forward_backward(sc.d_ln, g, sc.ffn, d_resid, a.ln2, a.ffn, w, cfg, N, aux_weight,
                          z_weight);
    norm_backward(cfg, d_resid, g.ln2_w, g.ln2_b, sc.d_ln, a.mid, a.ln2_mean, a.ln2_rstd, w.ln2_w,
                  N);
    // Attention.
    linear_backward(sc.d_att, g.o_w, g.o_b, d_resid, a.att_out, w.o_w, N, Q, C);
    attention_backward(sc.d_qkv, sc.d_att, a.qkv, a.att_probs, attention_shape(cfg, B, T));
    if (cfg.is_llama()) {
        const int H = cfg.heads, KVH = cfg.kv_head_count();
        rope_backward(sc.d_qkv, W, B, T, H, 0, rope);
        rope_backward(sc.d_qkv + Q, W, B, T, KVH, 0, rope);
        if (w.q_norm) {
            const QkNormGroups n = qk_norm_groups(cfg);
            head_rmsnorm_backward(sc.d_qkv, g.q_norm, sc.d_qkv, a.qkv_raw, a.q_rstd, w.q_norm, N,
                                  n.q_groups, n.q_size, W);
            head_rmsnorm_backward(sc.d_qkv + Q, g.k_norm, sc.d_qkv + Q, a.qkv_raw + Q, a.k_rstd,
                                  w.k_norm, N, n.k_groups, n.k_size, W);
        }
    }
    linear_backward(sc.d_ln, g.qkv_w, g.qkv_b, sc.d_qkv, a.ln1, w.qkv_w, N, C, W);
    norm_backward(cfg, d_resid, g.ln1_w, g.ln1_b, sc.d_ln, x, a.ln1_mean, a.ln1_rstd, w.ln1_w, N);
}

}  // namespace tinygpt
