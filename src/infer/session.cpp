#include "infer/session.h"

#include <cstring>

#include "kernels/attention.h"
#include "kernels/embedding.h"
#include "kernels/gemm.h"
#include "model/block.h"
#include "util/error.h"

namespace tinygpt {

namespace {

// The first layer that is (moe = true) or is not an MoE layer, or -1.
int first_layer(const ModelConfig& cfg, bool moe) {
    for (int l = 0; l < cfg.layers; ++l)
        if (cfg.is_moe_layer(l) == moe) return l;
    return -1;
}

}  // namespace

InferenceSession::InferenceSession(const ModelConfig& cfg, const float* weights)
    : cfg_(cfg), layout_((cfg.validate(), cfg)), w_(bind_tensors(layout_, cfg_, weights)) {
    const size_t T = cfg.ctx, C = cfg.d_model, W = cfg.qkv_width();
    const size_t kv = static_cast<size_t>(cfg.kv_head_count()) * cfg.head_dim();
    if (cfg.is_llama()) rope_ = RopeTable(cfg.ctx, cfg.head_dim(), cfg.rope_theta);
    k_cache_.assign(static_cast<size_t>(cfg.layers) * T * kv, 0.0f);
    v_cache_.assign(k_cache_.size(), 0.0f);
    x_.resize(T * C);
    ln_.resize(T * C);
    mean_.resize(T);
    rstd_.resize(T);
    if (cfg.is_llama() && cfg.qk_norm) {
        qkv_raw_.resize(T * W);
        q_rstd_.resize(T * cfg.heads);
        k_rstd_.resize(T * cfg.kv_head_count());
    }
    qkv_.resize(T * W);
    att_.resize(T * C);
    tmp_.resize(T * C);
    logits_.resize(T * cfg.vocab);
    tokens_.resize(T);
    cfg_.dispatch = DispatchMode::Sparse;  // inference always dispatches sparsely
    const int dense_layer = first_layer(cfg_, false), moe_layer = first_layer(cfg_, true);
    auto lay = [&](Arena& a) {
        if (dense_layer >= 0) dense_ffn_.layout(a, cfg_, dense_layer, cfg_.ctx);
        if (moe_layer >= 0) moe_ffn_.layout(a, cfg_, moe_layer, cfg_.ctx);
    };
    Arena measure;
    lay(measure);
    ffn_buffer_ = aligned_alloc_bytes(measure.bytes());
    Arena real(ffn_buffer_.get());
    lay(real);
}

const float* InferenceSession::forward(const int* tokens, int n, bool all_logits) {
    const int C = cfg_.d_model, V = cfg_.vocab, W = cfg_.qkv_width(), p0 = length_;
    const int kv = cfg_.kv_head_count() * cfg_.head_dim();
    if (n < 1) throw Error("forward() needs at least one token");
    if (p0 + n > cfg_.ctx)
        throw Error("context full: " + std::to_string(p0 + n) + " positions exceed ctx " +
                    std::to_string(cfg_.ctx));
    for (int i = 0; i < n; ++i) {
        if (tokens[i] < 0 || tokens[i] >= V)
            throw Error("token id out of range [0, " + std::to_string(V) + ")");
        tokens_[i] = tokens[i];
    }
    // GPT: positions p0.. are rows p0.. of the position table, so embed as one sequence.
    const float* positions = w_.wpe ? w_.wpe + static_cast<size_t>(p0) * C : nullptr;
    embedding_forward(x_.data(), tokens_.data(), w_.wte, positions, 1, n, C);
    const size_t layer_cache = static_cast<size_t>(cfg_.ctx) * kv;
    const MoeOptions inference;  // no jitter, dropless
    for (int l = 0; l < cfg_.layers; ++l) {
        const auto& w = w_.blocks[l];
        float* kc = k_cache_.data() + l * layer_cache;
        float* vc = v_cache_.data() + l * layer_cache;
        norm_forward(cfg_, ln_.data(), mean_.data(), rstd_.data(), x_.data(), w.ln1_w, w.ln1_b, n);
        qkv_forward(cfg_, qkv_.data(), qkv_raw_.data(), q_rstd_.data(), k_rstd_.data(), ln_.data(),
                    w, 1, n, p0, rope_);
        for (int i = 0; i < n; ++i) {
            const float* row = qkv_.data() + static_cast<size_t>(i) * W;
            std::memcpy(kc + static_cast<size_t>(p0 + i) * kv, row + C, sizeof(float) * kv);
            std::memcpy(vc + static_cast<size_t>(p0 + i) * kv, row + C + kv, sizeof(float) * kv);
        }
        attention_forward_cached(att_.data(), qkv_.data(), W, kc, vc, n, p0, C, cfg_.heads,
                                 cfg_.kv_head_count());
        linear_forward(tmp_.data(), att_.data(), w.o_w, w.o_b, n, C, C);
        for (size_t i = 0; i < static_cast<size_t>(n) * C; ++i) x_[i] += tmp_[i];
        norm_forward(cfg_, ln_.data(), mean_.data(), rstd_.data(), x_.data(), w.ln2_w, w.ln2_b, n);
        feed_forward_forward(tmp_.data(), w.moe ? moe_ffn_ : dense_ffn_, ln_.data(), w, cfg_, n,
                             inference);
        for (size_t i = 0; i < static_cast<size_t>(n) * C; ++i) x_[i] += tmp_[i];
    }
    length_ += n;
    // Only the rows whose logits are wanted go through the final norm and the output head.
    const int first = all_logits ? 0 : n - 1, rows = n - first;
    const float* xs = x_.data() + static_cast<size_t>(first) * C;
    norm_forward(cfg_, ln_.data(), mean_.data(), rstd_.data(), xs, w_.lnf_w, w_.lnf_b, rows);
    linear_forward(logits_.data(), ln_.data(), w_.head, nullptr, rows, C, V);
    return logits_.data() + static_cast<size_t>(rows - 1) * V;
}

}  // namespace tinygpt
