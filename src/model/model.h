// The model of either family (docs/MODEL.md): the original TinyGPT's GPT or the Llama/Qwen
// block, each block dense or MoE. No autograd: forward() saves what backward() needs in one
// activation arena; weights and gradients live in one contiguous buffer each, laid out by
// ParameterLayout.
#pragma once
#include <memory>
#include <vector>

#include "kernels/attention.h"
#include "kernels/rope.h"
#include "model/config.h"
#include "model/params.h"
#include "moe/moe_layer.h"
#include "util/arena.h"

namespace tinygpt {

class Communicator;

struct ForwardResult {
    double ce = 0.0;                   // mean cross-entropy (0 without targets)
    double aux = 0.0;                  // Σ over MoE blocks of the load-balance loss (unweighted)
    double z = 0.0;                    // Σ over MoE blocks of the router z-loss (unweighted)
    std::vector<float> aux_per_block;  // [layers] for MoE models (0 for dense blocks), else empty
    std::vector<float> z_per_block;
    long dropped = 0;   // (token, slot) pairs dropped by the capacity factor (training only;
                        // this rank's tokens' pairs under expert parallelism)
    double loss = 0.0;  // ce + aux_weight · aux + z_loss_weight · z: what is optimised
};

class Model {
  public:
    // with_grads = false builds an inference-only model (no gradient buffer).
    explicit Model(const ModelConfig& cfg, bool with_grads = true);
    // Inference-only model over weights it does not own (e.g. a memory-mapped file), laid out
    // by ParameterLayout(cfg); they must outlive the model. params() is then null.
    Model(const ModelConfig& cfg, const float* external_weights);
    // Expert parallelism over `expert_group` (moe/expert_parallel.h; null or a group of one:
    // the model above). The layout holds this rank's experts only (ParameterLayout(cfg,
    // expert_shard(E, P, rank))) and every rank of the group must call forward / backward
    // together with the same B and T: the group then computes what one process computes on the
    // P·B sequences concatenated in rank order. forward() reports this rank's ce and z and the
    // group's aux; backward(s) accumulates s·∂(ce_r + z_w·z_r + P·aux_w·aux)/∂θ through this
    // rank's tokens: summed over the group, P·s times the single-process gradient (the owner's
    // expert gradients already hold every rank's tokens). Throws for dense dispatch or when P
    // does not divide the expert count. (Pass a Communicator* variable: a literal nullptr is
    // ambiguous with the constructor above.)
    Model(const ModelConfig& cfg, Communicator* expert_group, bool with_grads = true);
    ~Model();
    Model(const Model&) = delete;
    Model& operator=(const Model&) = delete;

    const ModelConfig& config() const { return cfg_; }
    const ParameterLayout& layout() const { return layout_; }
    size_t num_params() const { return layout_.count(); }
    size_t buffer_floats() const { return layout_.total(); }  // params()/grads() length
    float* params() { return params_.empty() ? nullptr : params_.data(); }
    const float* weights() const { return weights_; }
    float* grads() { return grads_.data(); }
    const float* grads() const { return grads_.data(); }
    void zero_grads();

    void init(uint64_t seed);

    // Allocates activations for micro-batches of up to B sequences of up to T ≤ ctx tokens.
    void reserve(int B, int T);
    int reserved_batch() const { return max_B_; }
    int reserved_seq() const { return max_T_; }
    // Bytes of the activation arena reserve() allocated (what model/memory_estimate.h predicts).
    size_t activation_bytes() const { return activation_bytes_; }

    // Training forwards apply the config's training-only MoE behaviour (router jitter drawn from
    // noise_seed, capacity dropping); the default, inference, is deterministic and dropless.
    void set_training(bool training, uint64_t noise_seed = 0);
    bool training() const { return training_; }

    // tokens/targets are [B, T]. Without targets only the logits are computed.
    ForwardResult forward(const int* tokens, const int* targets, int B, int T);
    // Accumulates ∂(loss_scale · loss)/∂params into grads(); needs a forward with targets, and
    // one backward per forward.
    void backward(float loss_scale = 1.0f);
    // A loss on the logits computed outside the model (distillation, train/distillation.h):
    // after a forward without targets, the caller overwrites logit_buffer() (the raw logits)
    // with ∂loss/∂logits, already scaled, and calls backward_from_logits; loss_scale weighs the
    // MoE aux and z losses, as in backward(). One backward per forward.
    float* logit_buffer();
    void backward_from_logits(float loss_scale = 1.0f);

    // [B·T, V]: raw logits after a forward without targets.
    const float* logits() const;
    // Fraction of the (token, slot) pairs routed to each expert in `block` by the last forward
    // (over the whole group under expert parallelism).
    std::vector<float> expert_load(int block) const;
    // Router probabilities [B·T, E] of `block` from the last forward (nullptr for dense models).
    const float* router_probs(int block) const;

    // The expert-parallel group (null without expert parallelism).
    Communicator* expert_group() const { return expert_group_; }

  private:
    struct Activations;
    struct ExpertParallelism;
    void backward_through_head(float loss_scale);  // from the logits' gradient in the arena
    ModelConfig cfg_;
    ParameterLayout layout_;
    std::vector<float> params_, grads_;
    const float* weights_ = nullptr;  // params_.data() or external weights
    ModelTensors<const float> w_;
    ModelTensors<float> g_;
    RopeTable rope_;                        // Llama family
    Communicator* expert_group_ = nullptr;  // null, or a group of at least two ranks
    std::unique_ptr<ExpertParallelism> expert_parallel_;
    std::unique_ptr<Activations> act_;
    AlignedBuffer arena_;
    size_t activation_bytes_ = 0;
    int max_B_ = 0, max_T_ = 0;
    int B_ = 0, T_ = 0;          // shape of the last forward
    bool have_targets_ = false;  // the last forward computed the loss
    bool have_logits_ = false;   // the last forward kept raw logits for backward_from_logits
    bool training_ = false;
    uint64_t noise_seed_ = 0;
};

}  // namespace tinygpt
