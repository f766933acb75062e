#include "infer/session.h"

#include <algorithm>
#include <cstring>

#include "kernels/attention.h"
#include "kernels/weight_matmul.h"
#include "model/block.h"
#include "util/error.h"

namespace tinygpt {

InferenceSession::InferenceSession(const ModelWeights& weights)
    : cfg_((weights.config().validate(), weights.config())), w_(weights) {
    for (const TensorView& view : weights.views()) source_tensors_.push_back(view.data);
    if (cfg_.is_llama()) rope_ = RopeTable(cfg_.ctx, cfg_.head_dim(), cfg_.rope_theta);
    k_cache_.resize(cfg_.layers);
    v_cache_.resize(cfg_.layers);
    cfg_.dispatch = DispatchMode::Sparse;  // inference always dispatches sparsely
}

InferenceSession::InferenceSession(const ModelConfig& cfg, const float* weights)
    : InferenceSession(((void)cfg.validate(), ModelWeights::from_f32(cfg, weights))) {}

bool InferenceSession::runs(const ModelWeights& weights) const {
    if (weights.views().size() != source_tensors_.size()) return false;
    for (size_t i = 0; i < source_tensors_.size(); ++i)
        if (weights.view(i).data != source_tensors_[i]) return false;
    return true;
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
    ffn_.reserve(cfg_, tokens);
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
    const auto& t = *w_;
    for (int i = 0; i < n; ++i) {
        float* row = x_.data() + static_cast<size_t>(i) * C;
        weight_rows_to_f32(row, *t.wte, tokens_[i], 1);
        if (!t.wpe) continue;  // GPT: plus row p0 + i of the position table
        float* pos = tmp_.data();
        weight_rows_to_f32(pos, *t.wpe, p0 + i, 1);
        for (int c = 0; c < C; ++c) row[c] += pos[c];
    }
    const bool qk_normed = cfg_.is_llama() && cfg_.qk_norm != QkNorm::None;
    for (int l = 0; l < cfg_.layers; ++l) {
        const InferenceBlock& w = t.blocks[l];
        float* kc = k_cache_[l].data();
        float* vc = v_cache_[l].data();
        norm_forward(cfg_, ln_.data(), mean_.data(), rstd_.data(), x_.data(), f32_values(w.ln1_w),
                     f32_values(w.ln1_b), n);
        weight_matmul(qk_normed ? qkv_raw_.data() : qkv_.data(), ln_.data(), n, *w.qkv_w,
                      f32_values(w.qkv_b));
        qkv_finish(cfg_, qkv_.data(), qkv_raw_.data(), q_rstd_.data(), k_rstd_.data(),
                   f32_values(w.q_norm), f32_values(w.k_norm), 1, n, p0, rope_);
        for (int i = 0; i < n; ++i) {
            const float* row = qkv_.data() + static_cast<size_t>(i) * W;
            std::memcpy(kc + static_cast<size_t>(p0 + i) * kv, row + Q, sizeof(float) * kv);
            std::memcpy(vc + static_cast<size_t>(p0 + i) * kv, row + Q + kv, sizeof(float) * kv);
        }
        attention_forward_cached(att_.data(), qkv_.data(), W, kc, vc, n, p0, Q, cfg_.heads,
                                 cfg_.kv_head_count());
        weight_matmul(tmp_.data(), att_.data(), n, *w.o_w, f32_values(w.o_b));
        for (size_t i = 0; i < static_cast<size_t>(n) * C; ++i) x_[i] += tmp_[i];
        norm_forward(cfg_, ln_.data(), mean_.data(), rstd_.data(), x_.data(), f32_values(w.ln2_w),
                     f32_values(w.ln2_b), n);
        ffn_.forward(tmp_.data(), ln_.data(), w, cfg_, n);
        if (w.moe && observer_) observer_(l, ffn_.decisions());
        for (size_t i = 0; i < static_cast<size_t>(n) * C; ++i) x_[i] += tmp_[i];
    }
    length_ += n;
    // Only the rows whose logits are wanted go through the final norm and the output head.
    const int first = all_logits ? 0 : n - 1, rows = n - first;
    const float* xs = x_.data() + static_cast<size_t>(first) * C;
    norm_forward(cfg_, ln_.data(), mean_.data(), rstd_.data(), xs, f32_values(w_->lnf_w),
                 f32_values(w_->lnf_b), rows);
    logits_.resize(static_cast<size_t>(rows) * V);
    weight_matmul(logits_.data(), ln_.data(), rows, *w_->head);
    return logits_.data() + static_cast<size_t>(rows - 1) * V;
}

}  // namespace tinygpt
