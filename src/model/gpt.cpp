#include "model/gpt.h"

#include <omp.h>

#include <algorithm>
#include <cstring>

#include "kernels/cross_entropy.h"
#include "kernels/embedding.h"
#include "kernels/gemm.h"
#include "kernels/layernorm.h"
#include "kernels/mlp.h"
#include "util/error.h"
#include "util/parallel.h"

namespace tinygpt {

struct GptModel::Activations {
    struct Layer {
        float *ln1, *ln1_mean, *ln1_rstd;
        float* qkv;        // [N, 3C]
        float* att_probs;  // [B, H, T, T]
        float* att_out;    // [N, C] before o_proj
        float* mid;        // [N, C] residual after attention (input of ln2)
        float *ln2, *ln2_mean, *ln2_rstd;
        float *mlp_h_pre, *mlp_h;  // dense blocks: [N, M]
        MoeActivations moe;        // MoE blocks
    };
    std::vector<float*> resid;  // L + 1 residual streams [N, C]
    std::vector<Layer> layers;
    float *lnf, *lnf_mean, *lnf_rstd;
    float* logits;  // [N, V]; probabilities, then their gradient, during training
    float* losses;  // [N]
    int *tokens, *targets;
    float* ffn_out;  // [N, C]
    // Backward scratch, shared by all layers.
    float *d_resid, *d_ln, *d_qkv, *d_att, *d_mlp_h;
    MoeScratch moe_scratch;

    void layout(Arena& a, const ModelConfig& cfg, int B, int T) {
        const size_t N = static_cast<size_t>(B) * T, C = cfg.d_model, M = cfg.d_mlp;
        const MoeShape moe_shape{static_cast<int>(N), cfg.d_model, cfg.d_mlp, cfg.experts,
                                 cfg.topk};
        resid.assign(cfg.layers + 1, nullptr);
        for (auto& r : resid) r = a.take<float>(N * C);
        layers.assign(cfg.layers, Layer{});
        for (auto& l : layers) {
            l.ln1 = a.take<float>(N * C);
            l.ln1_mean = a.take<float>(N);
            l.ln1_rstd = a.take<float>(N);
            l.qkv = a.take<float>(N * 3 * C);
            l.att_probs = a.take<float>(static_cast<size_t>(B) * cfg.heads * T * T);
            l.att_out = a.take<float>(N * C);
            l.mid = a.take<float>(N * C);
            l.ln2 = a.take<float>(N * C);
            l.ln2_mean = a.take<float>(N);
            l.ln2_rstd = a.take<float>(N);
            if (cfg.is_moe()) {
                l.moe.layout(a, moe_shape, cfg.dispatch);
            } else {
                l.mlp_h_pre = a.take<float>(N * M);
                l.mlp_h = a.take<float>(N * M);
            }
        }
        lnf = a.take<float>(N * C);
        lnf_mean = a.take<float>(N);
        lnf_rstd = a.take<float>(N);
        logits = a.take<float>(N * cfg.vocab);
        losses = a.take<float>(N);
        tokens = a.take<int>(N);
        targets = a.take<int>(N);
        ffn_out = a.take<float>(N * C);
        d_resid = a.take<float>(N * C);
        d_ln = a.take<float>(N * C);
        d_qkv = a.take<float>(N * 3 * C);
        d_att = a.take<float>(N * C);
        if (cfg.is_moe()) {
            moe_scratch.layout(a, moe_shape, cfg.dispatch);
        } else {
            d_mlp_h = a.take<float>(N * M);
        }
    }
};

namespace {

MoeParams moe_params(const BlockTensors<const float>& b) {
    return {b.router, b.experts};
}
MoeGrads moe_grads(const BlockTensors<float>& b) {
    return {b.router, b.experts};
}

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

GptModel::GptModel(const ModelConfig& cfg, bool with_grads)
    : cfg_(cfg), layout_((cfg.validate(), cfg)), params_(layout_.total(), 0.0f) {
    weights_ = params_.data();
    w_ = bind_tensors(layout_, cfg_, weights_);
    if (with_grads) {
        grads_.assign(layout_.total(), 0.0f);
        g_ = bind_tensors(layout_, cfg_, grads_.data());
    }
}

GptModel::GptModel(const ModelConfig& cfg, const float* external_weights)
    : cfg_(cfg), layout_((cfg.validate(), cfg)), weights_(external_weights) {
    w_ = bind_tensors(layout_, cfg_, weights_);
}

GptModel::~GptModel() = default;

void GptModel::zero_grads() {
    std::fill(grads_.begin(), grads_.end(), 0.0f);
}

void GptModel::init(uint64_t seed) {
    init_parameters(layout_, params_.data(), seed);
}

void GptModel::reserve(int B, int T) {
    if (B < 1 || T < 1) throw Error("batch and sequence length must be at least 1");
    if (T > cfg_.ctx)
        throw Error("sequence length " + std::to_string(T) + " exceeds the model's context " +
                    std::to_string(cfg_.ctx));
    if (B <= max_B_ && T <= max_T_) return;
    B = std::max(B, max_B_);
    T = std::max(T, max_T_);
    act_ = std::make_unique<Activations>();
    Arena measure;
    act_->layout(measure, cfg_, B, T);
    arena_ = aligned_alloc_bytes(measure.bytes());
    Arena real(arena_.get());
    act_->layout(real, cfg_, B, T);
    max_B_ = B;
    max_T_ = T;
}

ForwardResult GptModel::forward(const int* tokens, const int* targets, int B, int T) {
    reserve(B, T);
    const int N = B * T, C = cfg_.d_model, M = cfg_.d_mlp, V = cfg_.vocab;
    Activations& a = *act_;
    for (int i = 0; i < N; ++i) {
        if (tokens[i] < 0 || tokens[i] >= V || (targets && (targets[i] < 0 || targets[i] >= V)))
            throw Error("token id out of range [0, " + std::to_string(V) + ")");
    }
    std::memcpy(a.tokens, tokens, sizeof(int) * N);
    if (targets) std::memcpy(a.targets, targets, sizeof(int) * N);
    B_ = B;
    T_ = T;
    have_targets_ = targets != nullptr;

    ForwardResult result;
    result.aux_per_block.assign(cfg_.is_moe() ? cfg_.layers : 0, 0.0f);
    embedding_forward(a.resid[0], a.tokens, w_.wte, w_.wpe, B, T, C);
    const AttentionShape att{B, T, C, cfg_.heads};
    const MoeShape moe_shape{N, C, M, cfg_.experts, cfg_.topk};
    for (int l = 0; l < cfg_.layers; ++l) {
        const auto& w = w_.blocks[l];
        auto& L = a.layers[l];
        const float* x = a.resid[l];
        float* out = a.resid[l + 1];
        layernorm_forward(L.ln1, L.ln1_mean, L.ln1_rstd, x, w.ln1_w, w.ln1_b, N, C);
        linear_forward(L.qkv, L.ln1, w.qkv_w, w.qkv_b, N, C, 3 * C);
        attention_forward(L.att_out, L.att_probs, L.qkv, att);
        linear_forward(L.mid, L.att_out, w.o_w, w.o_b, N, C, C);
        add(L.mid, L.mid, x, static_cast<size_t>(N) * C);
        layernorm_forward(L.ln2, L.ln2_mean, L.ln2_rstd, L.mid, w.ln2_w, w.ln2_b, N, C);
        if (cfg_.is_moe()) {
            moe_forward(a.ffn_out, L.moe, L.ln2, moe_params(w), moe_shape, cfg_.dispatch);
            result.aux_per_block[l] = L.moe.aux;
            result.aux += L.moe.aux;
        } else {
            mlp_forward(a.ffn_out, L.mlp_h_pre, L.mlp_h, L.ln2, w.mlp, N, C, M);
        }
        add(out, L.mid, a.ffn_out, static_cast<size_t>(N) * C);
    }
    layernorm_forward(a.lnf, a.lnf_mean, a.lnf_rstd, a.resid[cfg_.layers], w_.lnf_w, w_.lnf_b, N,
                      C);
    linear_forward(a.logits, a.lnf, w_.wte, nullptr, N, C, V);
    if (targets) {
        softmax_cross_entropy_forward(a.logits, a.losses, a.logits, a.targets, N, V);
        double sum = 0.0;
        for (int i = 0; i < N; ++i) sum += a.losses[i];
        result.ce = sum / N;
    }
    result.loss = result.ce + cfg_.aux_weight * result.aux;
    return result;
}

void GptModel::backward(float loss_scale) {
    if (!have_targets_)
        throw Error("backward() needs a forward() with targets (one backward per forward)");
    have_targets_ =
        false;  // the cross-entropy backward turns the saved probabilities into gradients
    if (grads_.empty()) throw Error("this model was built without gradients");
    const int B = B_, T = T_, N = B * T, C = cfg_.d_model, M = cfg_.d_mlp, V = cfg_.vocab;
    Activations& a = *act_;
    const size_t NC = static_cast<size_t>(N) * C;

    // Head: logits = lnf · wteᵀ (tied embedding).
    softmax_cross_entropy_backward(a.logits, a.logits, a.targets, N, V, loss_scale / N);
    gemm(false, false, N, C, V, 1.0f, a.logits, V, w_.wte, C, 0.0f, a.d_ln, C);
    gemm(true, false, V, C, N, 1.0f, a.logits, V, a.lnf, C, 1.0f, g_.wte, C);
    std::fill(a.d_resid, a.d_resid + NC, 0.0f);
    layernorm_backward(a.d_resid, g_.lnf_w, g_.lnf_b, a.d_ln, a.resid[cfg_.layers], a.lnf_mean,
                       a.lnf_rstd, w_.lnf_w, N, C);

    const AttentionShape att{B, T, C, cfg_.heads};
    const MoeShape moe_shape{N, C, M, cfg_.experts, cfg_.topk};
    for (int l = cfg_.layers - 1; l >= 0; --l) {
        const auto& w = w_.blocks[l];
        const auto& g = g_.blocks[l];
        auto& L = a.layers[l];
        // Feed-forward: d_resid is ∂L/∂(block output).
        if (cfg_.is_moe()) {
            moe_backward(a.d_ln, moe_grads(g), a.moe_scratch, a.d_resid, L.ln2, L.moe,
                         moe_params(w), moe_shape, cfg_.dispatch, cfg_.aux_weight * loss_scale);
        } else {
            mlp_backward(a.d_ln, g.mlp, a.d_mlp_h, a.d_resid, L.ln2, L.mlp_h_pre, L.mlp_h, w.mlp, N,
                         C, M);
        }
        layernorm_backward(a.d_resid, g.ln2_w, g.ln2_b, a.d_ln, L.mid, L.ln2_mean, L.ln2_rstd,
                           w.ln2_w, N, C);
        // Attention.
        linear_backward(a.d_att, g.o_w, g.o_b, a.d_resid, L.att_out, w.o_w, N, C, C);
        attention_backward(a.d_qkv, a.d_att, L.qkv, L.att_probs, att);
        linear_backward(a.d_ln, g.qkv_w, g.qkv_b, a.d_qkv, L.ln1, w.qkv_w, N, C, 3 * C);
        layernorm_backward(a.d_resid, g.ln1_w, g.ln1_b, a.d_ln, a.resid[l], L.ln1_mean, L.ln1_rstd,
                           w.ln1_w, N, C);
    }
    embedding_backward(g_.wte, g_.wpe, a.d_resid, a.tokens, B, T, C);
}

const float* GptModel::logits() const {
    if (!act_) throw Error("logits() before any forward()");
    return act_->logits;
}

const float* GptModel::router_probs(int block) const {
    if (!cfg_.is_moe() || !act_ || block < 0 || block >= cfg_.layers) return nullptr;
    return act_->layers[block].moe.probs;
}

std::vector<float> GptModel::expert_load(int block) const {
    if (!cfg_.is_moe() || !act_ || block < 0 || block >= cfg_.layers) return {};
    const int* counts = act_->layers[block].moe.counts;
    const double pairs = static_cast<double>(B_) * T_ * cfg_.topk;
    std::vector<float> load(cfg_.experts);
    for (int e = 0; e < cfg_.experts; ++e) load[e] = static_cast<float>(counts[e] / pairs);
    return load;
}

}  // namespace tinygpt
