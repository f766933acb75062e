#include "infer/inference_ffn.h"

#include <algorithm>
#include <cmath>

#include "kernels/swiglu.h"
#include "model/feed_forward.h"
#include "moe/router.h"

namespace tinygpt {

namespace {

// y[rows, C] = MLP(x) with the weights as stored; pre [rows, pre width] and h [rows, M] scratch.
// GELU runs inside the first product, on each chunk of its output while that is in cache.
void mlp_forward_stored(FfnKind kind, float* y, float* pre, float* h, const float* x,
                        const InferenceMlp& w, int rows, int M) {
    if (kind == FfnKind::SwiGlu) {
        weight_matmul(pre, x, rows, *w.w_in, f32_values(w.b_in));
        swiglu_forward(h, pre, rows, M);
    } else {
        weight_matmul(h, x, rows, *w.w_in, f32_values(w.b_in), Activation::Gelu);
    }
    weight_matmul(y, h, rows, *w.w_out, f32_values(w.b_out));
}

}  // namespace

void InferenceFfn::reserve(const ModelConfig& cfg, int tokens) {
    if (tokens <= rows_) return;
    const size_t N = tokens, C = cfg.d_model;
    const FfnKind kind = ffn_kind(cfg);
    // The widest MLP any block runs on a row: dense, expert (K rows per token) or shared.
    const size_t expert_rows = cfg.is_moe() ? N * cfg.topk : 0;
    const size_t rows = std::max(N, expert_rows);
    const size_t width = static_cast<size_t>(
        std::max({cfg.d_mlp, cfg.is_moe() ? cfg.expert_width() : 0, std::max(cfg.shared_ffn, 0)}));
    pre_.resize(rows * ffn_pre_width(kind, static_cast<int>(width)));
    h_.resize(rows * width);
    if (cfg.is_moe()) {
        const size_t E = cfg.experts, K = cfg.topk;
        y_.resize(N * K * C);
        xg_.resize(N * K * C);
        probs_.resize(N * E);
        lse_.resize(N);
        gates_.resize(N * K);
        topk_.resize(N * K);
        counts_.resize(E);
        offsets_.resize(E + 1);
        row_token_.resize(N * K);
        pair_row_.resize(N * K);
        if (cfg.shared_ffn > 0) {
            shared_out_.resize(N * C);
            shared_gate_.resize(N);
        }
    }
    rows_ = tokens;
}

void InferenceFfn::forward(float* out, const float* x, const InferenceBlock& w,
                           const ModelConfig& cfg, int n) {
    const int C = cfg.d_model;
    const FfnKind kind = ffn_kind(cfg);
    if (!w.moe) {
        mlp_forward_stored(kind, out, pre_.data(), h_.data(), x, w.mlp, n, cfg.d_mlp);
        return;
    }
    const MoeShape shape = cfg.moe_shape(n);
    const int E = shape.experts, K = shape.topk, M = shape.M, P = shape.pre_width();
    weight_matmul(probs_.data(), x, n, *w.router);
    router_select(probs_.data(), topk_.data(), gates_.data(), counts_.data(), lse_.data(),
                  shape.router());
    DispatchPlan plan{offsets_.data(), row_token_.data(), pair_row_.data()};
    const int rows = dispatch_plan_build(plan, topk_.data(), n, K, E);
    dispatch_gather(xg_.data(), x, plan, rows, C);
    for (int e = 0; e < E; ++e) {
        const int r0 = offsets_[e], count = offsets_[e + 1] - r0;
        if (count == 0) continue;
        const size_t o = static_cast<size_t>(r0);
        mlp_forward_stored(kind, y_.data() + o * C, pre_.data() + o * P, h_.data() + o * M,
                           xg_.data() + o * C, w.experts[e], count, M);
    }
    dispatch_combine(out, y_.data(), gates_.data(), plan, n, K, C);
    decisions_ = RouterDecisions{
        n, E, K, topk_.data(), gates_.data(), probs_.data(), lse_.data(), counts_.data()};
    if (cfg.shared_ffn <= 0) return;
    // out += sigmoid(x·w_gate) · SwiGLU(x), as moe/shared_expert.cpp.
    const int S = cfg.shared_ffn;
    mlp_forward_stored(FfnKind::SwiGlu, shared_out_.data(), pre_.data(), h_.data(), x, w.shared.mlp,
                       n, S);
    weight_matmul(shared_gate_.data(), x, n, *w.shared.gate);
    for (int t = 0; t < n; ++t) {
        const float g = 1.0f / (1.0f + std::exp(-shared_gate_[t]));
        const float* y = shared_out_.data() + static_cast<size_t>(t) * C;
        float* o = out + static_cast<size_t>(t) * C;
        for (int c = 0; c < C; ++c) o[c] += g * y[c];
    }
}

}  // namespace tinygpt
