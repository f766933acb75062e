#include "infer/session.h"

#include <algorithm>
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
    if (cfg.is_llama()) rope_ = RopeTable(cfg.ctx, cfg.head_dim(), cfg.rope_theta);
    k_cache_.resize(cfg.layers);
    v_cache_.resize(cfg.layers);
    cfg_.dispatch = DispatchMode::Sparse;  // inference always dispatches sparsely
}

size_t InferenceSession::cache_bytes() const {
    size_t floats = 0;
    for (int l = 0; l < cfg_.layers; ++l) floats += k_cache_[l].size() + v_cache_[l].size();
    return sizeof(float) * floats;
}

void InferenceSession::reserve_positions(int positions) {
    if (positions <= cache_rows_) return;
    // Doubling keeps the copies amortised O(1) per position; never past the context.
    const int rows = std::min(cfg_.ctx, std::max({positions, 2 * cache_rows_, 64}));
    const size_t kv = static_cast<size_t>(cfg_.kv_width());
    for (int l = 0; l < cfg_.layers; ++l) {  // [positions, kv]: growing keeps the rows in place
        k_cache_[l].resize(static_cast<size_t>(rows) * kv);
        v_cache_[l].resize(static_cast<size_t>(rows) * kv);
    }
    cache_rows_ = rows;
}

void InferenceSession::reserve_chunk(int tokens) {
    if (tokens <= chunk_) return;
    const size_t T = tokens, C = cfg_.d_model, W = cfg_.qkv_width();
    x_.resize(T * C);
    ln_.resize(T * C);
    mean_.resize(T);
    rstd_.resize(T);
    if (cfg_.is_llama() && cfg_.qk_norm != QkNorm::None) {
        qkv_raw_.resize(T * W);
        q_rstd_.resize(T * cfg_.heads);
        k_rstd_.resize(T * cfg_.kv_head_count());
    }
    qkv_.resize(T * W);
    att_.resize(T * cfg_.q_width());
    tmp_.resize(T * C);
    tokens_.resize(T);
    const int dense_layer = first_layer(cfg_, false), moe_layer = first_layer(cfg_, true);
    auto lay = [&](Arena& a) {
        if (dense_layer >= 0) dense_ffn_.layout(a, cfg_, dense_layer, tokens);
        if (moe_layer >= 0) moe_ffn_.layout(a, cfg_, moe_layer, tokens);
    };
    Arena measure;
    lay(measure);
    ffn_buffer_ = aligned_alloc_bytes(measure.bytes());
    Arena real(ffn_buffer_.get());
    lay(real);
    chunk_ = tokens;
}

const float* InferenceSession::forward(const int* tokens, int n, bool all_logits) {
    const int C = cfg_.d_model, V = cfg_.vocab, W = cfg_.qkv_width(), p0 = length_;
    const int Q = cfg_.q_width(), kv = cfg_.kv_width();
    if (n < 1) throw Error("forward() needs at least one token");
    if (p0 + n > cfg_.ctx)
        throw Error("context full: " + std::to_string(p0 + n) + " positions exceed ctx " +
                    std::to_string(cfg_.ctx));
    reserve_chunk(n);
    reserve_positions(p0 + n);
    for (int i = 0; i < n; ++i) {
        if (tokens[i] < 0 || tokens[i] >= V)
            throw Error("token id out of range [0, " + std::to_string(V) + ")");
        tokens_[i] = tokens[i];
    }
    // GPT: positions p0.. are rows p0.. of the position table, so embed as one sequence.
    const float* positions = w_.wpe ? w_.wpe + static_cast<size_t>(p0) * C : nullptr;
    embedding_forward(x_.data(), tokens_.data(), w_.wte, positions, 1, n, C);
    const MoeOptions inference;  // no jitter, dropless
    for (int l = 0; l < cfg_.layers; ++l) {
        const auto& w = w_.blocks[l];
        float* kc = k_cache_[l].data();
        float* vc = v_cache_[l].data();
        norm_forward(cfg_, ln_.data(), mean_.data(), rstd_.data(), x_.data(), w.ln1_w, w.ln1_b, n);
        qkv_forward(cfg_, qkv_.data(), qkv_raw_.data(), q_rstd_.data(), k_rstd_.data(), ln_.data(),
                    w, 1, n, p0, rope_);
        for (int i = 0; i < n; ++i) {
            const float* row = qkv_.data() + static_cast<size_t>(i) * W;
            std::memcpy(kc + static_cast<size_t>(p0 + i) * kv, row + Q, sizeof(float) * kv);
            std::memcpy(vc + static_cast<size_t>(p0 + i) * kv, row + Q + kv, sizeof(float) * kv);
        }
        attention_forward_cached(att_.data(), qkv_.data(), W, kc, vc, n, p0, Q, cfg_.heads,
                                 cfg_.kv_head_count());
        linear_forward(tmp_.data(), att_.data(), w.o_w, w.o_b, n, Q, C);
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
    logits_.resize(static_cast<size_t>(rows) * V);
    linear_forward(logits_.data(), ln_.data(), w_.head, nullptr, rows, C, V);
    return logits_.data() + static_cast<size_t>(rows - 1) * V;
}

}  // namespace tinygpt
