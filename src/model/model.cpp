#include "model/model.h"

#include <algorithm>
#include <cstring>

#include "dist/communicator.h"
#include "kernels/cross_entropy.h"
#include "kernels/embedding.h"
#include "kernels/gemm.h"
#include "model/block.h"
#include "moe/expert_parallel.h"
#include "util/error.h"

namespace tinygpt {

struct Model::Activations {
    std::vector<float*> resid;  // L + 1 residual streams [N, C]
    std::vector<BlockActivations> layers;
    float *lnf, *lnf_mean, *lnf_rstd;
    float* logits;  // [N, V]; probabilities, then their gradient, during training
    float* losses;  // [N]
    int *tokens, *targets;
    float* d_resid;  // [N, C]
    BlockScratch scratch;

    void layout(Arena& a, const ModelConfig& cfg, int B, int T, bool remote_experts) {
        const size_t N = static_cast<size_t>(B) * T, C = cfg.d_model;
        resid.assign(cfg.layers + 1, nullptr);
        for (auto& r : resid) r = a.take<float>(N * C);
        layers.assign(cfg.layers, BlockActivations{});
        for (int l = 0; l < cfg.layers; ++l) layers[l].layout(a, cfg, l, B, T, remote_experts);
        lnf = a.take<float>(N * C);
        lnf_mean = a.take<float>(N);
        lnf_rstd = a.take<float>(N);
        logits = a.take<float>(N * cfg.vocab);
        losses = a.take<float>(N);
        tokens = a.take<int>(N);
        targets = a.take<int>(N);
        d_resid = a.take<float>(N * C);
        scratch.layout(a, cfg, B, T, remote_experts);
    }
};

// Each MoE layer's exchange with the expert group, and the scratch they share.
struct Model::ExpertParallelism {
    ExpertParallelScratch scratch;
    std::vector<std::unique_ptr<ExpertParallelLayer>> layers;  // [layers], null for dense ones
};

namespace {

// Jitter noise differs per training forward (noise_seed) and per layer.
uint64_t layer_seed(uint64_t noise_seed, int layer) {
    return noise_seed * 0x9E3779B97F4A7C15ull +
           static_cast<uint64_t>(layer) * 0xD1B54A32D192ED03ull;
}

// A group of one is no group: the single-process path, without exchanges.
Communicator* effective_group(Communicator* group) {
    return group && group->size() > 1 ? group : nullptr;
}

ExpertShard model_expert_shard(const ModelConfig& cfg, Communicator* group) {
    if (!group) return {};
    require(cfg.dispatch == DispatchMode::Sparse,
            "expert parallelism needs sparse dispatch (the dense reference runs every expert on "
            "every token)");
    return expert_shard(cfg.experts, group->size(), group->rank());
}

RopeTable make_rope(const ModelConfig& cfg) {
    return cfg.is_llama() ? RopeTable(cfg.ctx, cfg.head_dim(), cfg.rope_theta) : RopeTable();
}

}  // namespace

Model::Model(const ModelConfig& cfg, bool with_grads)
    : Model(cfg, static_cast<Communicator*>(nullptr), with_grads) {}

Model::Model(const ModelConfig& cfg, Communicator* expert_group, bool with_grads)
    : cfg_(cfg),
      layout_((cfg.validate(), cfg), model_expert_shard(cfg, effective_group(expert_group))),
      params_(layout_.total(), 0.0f),
      expert_group_(effective_group(expert_group)) {
    weights_ = params_.data();
    if (expert_group_) {
        expert_parallel_ = std::make_unique<ExpertParallelism>();
        expert_parallel_->layers.resize(cfg_.layers);
        for (int l = 0; l < cfg_.layers; ++l)
            if (cfg_.is_moe_layer(l))
                expert_parallel_->layers[l] = std::make_unique<ExpertParallelLayer>(
                    *expert_group_, cfg_.experts, expert_parallel_->scratch);
    }
    w_ = bind_tensors(layout_, cfg_, weights_);
    if (with_grads) {
        grads_.assign(layout_.total(), 0.0f);
        g_ = bind_tensors(layout_, cfg_, grads_.data());
    }
    rope_ = make_rope(cfg_);
}

Model::Model(const ModelConfig& cfg, const float* external_weights)
    : cfg_(cfg), layout_((cfg.validate(), cfg)), weights_(external_weights) {
    w_ = bind_tensors(layout_, cfg_, weights_);
    rope_ = make_rope(cfg_);
}

Model::~Model() = default;

void Model::zero_grads() {
    std::fill(grads_.begin(), grads_.end(), 0.0f);
}

void Model::init(uint64_t seed) {
    init_parameters(layout_, params_.data(), seed);
}

void Model::set_training(bool training, uint64_t noise_seed) {
    training_ = training;
    noise_seed_ = noise_seed;
}

void Model::reserve(int B, int T) {
    if (B < 1 || T < 1) throw Error("batch and sequence length must be at least 1");
    if (T > cfg_.ctx)
        throw Error("sequence length " + std::to_string(T) + " exceeds the model's context " +
                    std::to_string(cfg_.ctx));
    if (B <= max_B_ && T <= max_T_) return;
    B = std::max(B, max_B_);
    T = std::max(T, max_T_);
    act_ = std::make_unique<Activations>();
    const bool remote_experts = expert_group_ != nullptr;
    Arena measure;
    act_->layout(measure, cfg_, B, T, remote_experts);
    activation_bytes_ = measure.bytes();
    arena_ = aligned_alloc_bytes(activation_bytes_);
    Arena real(arena_.get());
    act_->layout(real, cfg_, B, T, remote_experts);
    if (expert_parallel_)
        for (int l = 0; l < cfg_.layers; ++l)
            act_->layers[l].ffn.expert_parallel = expert_parallel_->layers[l].get();
    max_B_ = B;
    max_T_ = T;
}

ForwardResult Model::forward(const int* tokens, const int* targets, int B, int T) {
    reserve(B, T);
    const int N = B * T, C = cfg_.d_model, V = cfg_.vocab;
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
    have_logits_ = targets == nullptr;

    ForwardResult result;
    result.aux_per_block.assign(cfg_.is_moe() ? cfg_.layers : 0, 0.0f);
    result.z_per_block.assign(result.aux_per_block.size(), 0.0f);
    embedding_forward(a.resid[0], a.tokens, w_.wte, w_.wpe, B, T, C);
    for (int l = 0; l < cfg_.layers; ++l) {
        MoeOptions options;
        if (training_) {
            options = cfg_.moe_options();
            options.jitter_seed = layer_seed(noise_seed_, l);
        }
        BlockActivations& L = a.layers[l];
        block_forward(a.resid[l + 1], L, a.scratch, a.resid[l], w_.blocks[l], cfg_, rope_, B, T,
                      options);
        if (cfg_.is_moe_layer(l)) {
            result.aux_per_block[l] = L.ffn.moe.aux;
            result.z_per_block[l] = L.ffn.moe.z;
            result.aux += L.ffn.moe.aux;
            result.z += L.ffn.moe.z;
            result.dropped += L.ffn.moe.dropped;
        }
    }
    norm_forward(cfg_, a.lnf, a.lnf_mean, a.lnf_rstd, a.resid[cfg_.layers], w_.lnf_w, w_.lnf_b, N);
    linear_forward(a.logits, a.lnf, w_.head, nullptr, N, C, V);
    if (targets) {
        softmax_cross_entropy_forward(a.logits, a.losses, a.logits, a.targets, N, V);
        double sum = 0.0;
        for (int i = 0; i < N; ++i) sum += a.losses[i];
        result.ce = sum / N;
    }
    result.loss = result.ce + cfg_.aux_weight * result.aux + cfg_.z_loss_weight * result.z;
    return result;
}

void Model::backward(float loss_scale) {
    if (!have_targets_)
        throw Error("backward() needs a forward() with targets (one backward per forward)");
    // The cross-entropy backward turns the saved probabilities into gradients.
    have_targets_ = false;
    if (grads_.empty()) throw Error("this model was built without gradients");
    const int N = B_ * T_;
    softmax_cross_entropy_backward(act_->logits, act_->logits, act_->targets, N, cfg_.vocab,
                                   loss_scale / N);
    backward_through_head(loss_scale);
}

float* Model::logit_buffer() {
    if (!act_) throw Error("logit_buffer() before any forward()");
    return act_->logits;
}

void Model::backward_from_logits(float loss_scale) {
    if (!have_logits_)
        throw Error(
            "backward_from_logits() needs a forward() without targets (one backward per forward)");
    have_logits_ = false;
    if (grads_.empty()) throw Error("this model was built without gradients");
    backward_through_head(loss_scale);
}

void Model::backward_through_head(float loss_scale) {
    const int B = B_, T = T_, N = B * T, C = cfg_.d_model, V = cfg_.vocab;
    Activations& a = *act_;
    const size_t NC = static_cast<size_t>(N) * C;

    // Head: logits = lnf · headᵀ (the token embedding when tied); a.logits holds their gradient.
    float* d_lnf = a.scratch.d_ln;
    gemm(false, false, N, C, V, 1.0f, a.logits, V, w_.head, C, 0.0f, d_lnf, C);
    gemm(true, false, V, C, N, 1.0f, a.logits, V, a.lnf, C, 1.0f, g_.head, C);
    std::fill(a.d_resid, a.d_resid + NC, 0.0f);
    norm_backward(cfg_, a.d_resid, g_.lnf_w, g_.lnf_b, d_lnf, a.resid[cfg_.layers], a.lnf_mean,
                  a.lnf_rstd, w_.lnf_w, N);
    for (int l = cfg_.layers - 1; l >= 0; --l)
        block_backward(a.d_resid, g_.blocks[l], a.scratch, a.resid[l], a.layers[l], w_.blocks[l],
                       cfg_, rope_, B, T, cfg_.aux_weight * loss_scale,
                       cfg_.z_loss_weight * loss_scale);
    embedding_backward(g_.wte, g_.wpe, a.d_resid, a.tokens, B, T, C);
}

const float* Model::logits() const {
    if (!act_) throw Error("logits() before any forward()");
    return act_->logits;
}

const float* Model::router_probs(int block) const {
    if (!act_ || block < 0 || block >= cfg_.layers || !cfg_.is_moe_layer(block)) return nullptr;
    return act_->layers[block].ffn.moe.probs;
}

std::vector<float> Model::expert_load(int block) const {
    if (!act_ || block < 0 || block >= cfg_.layers || !cfg_.is_moe_layer(block)) return {};
    const int* counts = act_->layers[block].ffn.moe.counts;
    const int group = expert_group_ ? expert_group_->size() : 1;  // counts are the group's
    const double pairs = static_cast<double>(B_) * T_ * cfg_.topk * group;
    std::vector<float> load(cfg_.experts);
    for (int e = 0; e < cfg_.experts; ++e) load[e] = static_cast<float>(counts[e] / pairs);
    return load;
}

}  // namespace tinygpt
