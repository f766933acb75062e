#include "infer/session.h"

#include <cstring>

#include "kernels/attention.h"
#include "kernels/embedding.h"
#include "kernels/gemm.h"
#include "kernels/layernorm.h"
#include "kernels/mlp.h"
#include "util/error.h"

namespace tinygpt {

InferenceSession::InferenceSession(const ModelConfig& cfg, const float* weights)
    : cfg_(cfg), layout_((cfg.validate(), cfg)), w_(bind_tensors(layout_, cfg_, weights)) {
    const size_t T = cfg.ctx, C = cfg.d_model, M = cfg.d_mlp;
    k_cache_.assign(static_cast<size_t>(cfg.layers) * T * C, 0.0f);
    v_cache_.assign(k_cache_.size(), 0.0f);
    x_.resize(T * C);
    ln_.resize(T * C);
    mean_.resize(T);
    rstd_.resize(T);
    qkv_.resize(T * 3 * C);
    att_.resize(T * C);
    tmp_.resize(T * C);
    logits_.resize(T * cfg.vocab);
    tokens_.resize(T);
    if (cfg.is_moe()) {
        moe_ = std::make_unique<MoeWorkspace>(
            MoeShape{cfg.ctx, cfg.d_model, cfg.d_mlp, cfg.experts, cfg.topk}, DispatchMode::Sparse);
    } else {
        h_pre_.resize(T * M);
        h_.resize(T * M);
    }
}

const float* InferenceSession::forward(const int* tokens, int n, bool all_logits) {
    const int C = cfg_.d_model, M = cfg_.d_mlp, V = cfg_.vocab, p0 = length_;
    if (n < 1) throw Error("forward() needs at least one token");
    if (p0 + n > cfg_.ctx)
        throw Error("context full: " + std::to_string(p0 + n) + " positions exceed ctx " +
                    std::to_string(cfg_.ctx));
    for (int i = 0; i < n; ++i) {
        if (tokens[i] < 0 || tokens[i] >= V)
            throw Error("token id out of range [0, " + std::to_string(V) + ")");
        tokens_[i] = tokens[i];
    }
    // Positions p0.. are rows p0.. of the position table: embed as a batch of one sequence.
    embedding_forward(x_.data(), tokens_.data(), w_.wte, w_.wpe + static_cast<size_t>(p0) * C, 1, n,
                      C);
    const MoeShape moe_shape{n, C, M, cfg_.experts, cfg_.topk};
    const size_t layer_cache = static_cast<size_t>(cfg_.ctx) * C;
    for (int l = 0; l < cfg_.layers; ++l) {
        const auto& w = w_.blocks[l];
        float* kc = k_cache_.data() + l * layer_cache;
        float* vc = v_cache_.data() + l * layer_cache;
        layernorm_forward(ln_.data(), mean_.data(), rstd_.data(), x_.data(), w.ln1_w, w.ln1_b, n,
                          C);
        linear_forward(qkv_.data(), ln_.data(), w.qkv_w, w.qkv_b, n, C, 3 * C);
        for (int i = 0; i < n; ++i) {
            const float* row = qkv_.data() + static_cast<size_t>(i) * 3 * C;
            std::memcpy(kc + static_cast<size_t>(p0 + i) * C, row + C, sizeof(float) * C);
            std::memcpy(vc + static_cast<size_t>(p0 + i) * C, row + 2 * C, sizeof(float) * C);
        }
        attention_forward_cached(att_.data(), qkv_.data(), 3 * C, kc, vc, n, p0, C, cfg_.heads);
        linear_forward(tmp_.data(), att_.data(), w.o_w, w.o_b, n, C, C);
        for (size_t i = 0; i < static_cast<size_t>(n) * C; ++i) x_[i] += tmp_[i];
        layernorm_forward(ln_.data(), mean_.data(), rstd_.data(), x_.data(), w.ln2_w, w.ln2_b, n,
                          C);
        if (cfg_.is_moe()) {
            moe_forward(tmp_.data(), moe_->act, ln_.data(), MoeParams{w.router, w.experts},
                        moe_shape, DispatchMode::Sparse);
        } else {
            mlp_forward(tmp_.data(), h_pre_.data(), h_.data(), ln_.data(), w.mlp, n, C, M);
        }
        for (size_t i = 0; i < static_cast<size_t>(n) * C; ++i) x_[i] += tmp_[i];
    }
    length_ += n;
    // Only the rows whose logits are wanted go through the final norm and the output head.
    const int first = all_logits ? 0 : n - 1, rows = n - first;
    const float* xs = x_.data() + static_cast<size_t>(first) * C;
    layernorm_forward(ln_.data(), mean_.data(), rstd_.data(), xs, w_.lnf_w, w_.lnf_b, rows, C);
    linear_forward(logits_.data(), ln_.data(), w_.wte, nullptr, rows, C, V);
    return logits_.data() + static_cast<size_t>(rows - 1) * V;
}

}  // namespace tinygpt
