#include "model/feed_forward.h"

namespace tinygpt {

namespace {

bool any_dense_layer(const ModelConfig& cfg) {
    return cfg.moe_layer_count() < cfg.layers;
}

MoeParams moe_params(const BlockTensors<const float>& b) {
    return {b.router, b.experts};
}
MoeGrads moe_grads(const BlockTensors<float>& b) {
    return {b.router, b.experts};
}

MoeShape moe_layout_shape(const ModelConfig& cfg, int tokens, bool remote_experts) {
    MoeShape shape = cfg.moe_shape(tokens);
    shape.remote_experts = remote_experts;
    return shape;
}

}  // namespace

FfnKind ffn_kind(const ModelConfig& cfg) {
    return cfg.is_llama() ? FfnKind::SwiGlu : FfnKind::Gelu;
}

void FeedForwardActivations::layout(Arena& arena, const ModelConfig& cfg, int layer, int tokens,
                                    bool remote_experts) {
    const size_t N = tokens;
    if (!cfg.is_moe_layer(layer)) {
        pre = arena.take<float>(N * ffn_pre_width(ffn_kind(cfg), cfg.d_mlp));
        h = arena.take<float>(N * cfg.d_mlp);
        return;
    }
    moe.layout(arena, moe_layout_shape(cfg, tokens, remote_experts), cfg.dispatch);
    if (cfg.shared_ffn > 0) shared.layout(arena, tokens, cfg.d_model, cfg.shared_ffn);
}

void FeedForwardScratch::layout(Arena& arena, const ModelConfig& cfg, int tokens,
                                bool remote_experts) {
    if (any_dense_layer(cfg))
        d_pre = arena.take<float>(static_cast<size_t>(tokens) *
                                  ffn_pre_width(ffn_kind(cfg), cfg.d_mlp));
    if (cfg.is_moe())
        moe.layout(arena, moe_layout_shape(cfg, tokens, remote_experts), cfg.dispatch);
    if (cfg.is_moe() && cfg.shared_ffn > 0)
        shared.layout(arena, tokens, cfg.d_model, cfg.shared_ffn);
}

void feed_forward_forward(float* out, FeedForwardActivations& act, const float* x,
                          const BlockTensors<const float>& w, const ModelConfig& cfg, int N,
                          const MoeOptions& options) {
    const int C = cfg.d_model;
    if (!w.moe) {
        ffn_forward(ffn_kind(cfg), out, act.pre, act.h, x, w.mlp, N, C, cfg.d_mlp);
        return;
    }
    if (act.expert_parallel)
        act.expert_parallel->forward(out, act.moe, x, moe_params(w), cfg.moe_shape(N), options);
    else
        moe_forward(out, act.moe, x, moe_params(w), cfg.moe_shape(N), cfg.dispatch, options);
    if (cfg.shared_ffn > 0)
        shared_expert_forward(out, act.shared, x, w.shared, N, C, cfg.shared_ffn);
}

void feed_forward_backward(float* dx, const BlockTensors<float>& g, FeedForwardScratch& sc,
                           const float* dout, const float* x, const FeedForwardActivations& act,
                           const BlockTensors<const float>& w, const ModelConfig& cfg, int N,
                           float aux_weight, float z_weight) {
    const int C = cfg.d_model;
    if (!w.moe) {
        ffn_backward(ffn_kind(cfg), dx, g.mlp, sc.d_pre, dout, x, act.pre, act.h, w.mlp, N, C,
                     cfg.d_mlp);
        return;
    }
    if (act.expert_parallel)
        act.expert_parallel->backward(dx, moe_grads(g), sc.moe, dout, x, act.moe, moe_params(w),
                                      cfg.moe_shape(N), aux_weight, z_weight);
    else
        moe_backward(dx, moe_grads(g), sc.moe, dout, x, act.moe, moe_params(w), cfg.moe_shape(N),
                     cfg.dispatch, aux_weight, z_weight);
    if (cfg.shared_ffn > 0)
        shared_expert_backward(dx, g.shared, sc.shared, dout, x, act.shared, w.shared, N, C,
                               cfg.shared_ffn);
}

}  // namespace tinygpt
