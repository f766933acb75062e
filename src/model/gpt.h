// The GPT model of the original TinyGPT (docs/MODEL.md) with dense or MoE blocks. No autograd:
// forward() saves what backward() needs in one activation arena; weights and gradients live in
// one contiguous buffer each, laid out by ParameterLayout.
#pragma once
#include <memory>
#include <vector>

#include "kernels/attention.h"
#include "model/config.h"
#include "model/params.h"
#include "moe/moe_layer.h"
#include "util/arena.h"

namespace tinygpt {

struct ForwardResult {
    double ce = 0.0;   // mean cross-entropy (0 without targets)
    double aux = 0.0;  // Σ over blocks of the load-balance loss (unweighted)
    std::vector<float> aux_per_block;
    double loss = 0.0;  // ce + aux_weight · aux: what is optimised
};

class GptModel {
  public:
    // with_grads = false builds an inference-only model (no gradient buffer).
    explicit GptModel(const ModelConfig& cfg, bool with_grads = true);
    // Inference-only model over weights it does not own (e.g. a memory-mapped file), laid out
    // by ParameterLayout(cfg); they must outlive the model. params() is then null.
    GptModel(const ModelConfig& cfg, const float* external_weights);
    ~GptModel();
    GptModel(const GptModel&) = delete;
    GptModel& operator=(const GptModel&) = delete;

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

    // tokens/targets are [B, T]. Without targets only the logits are computed.
    ForwardResult forward(const int* tokens, const int* targets, int B, int T);
    // Accumulates ∂(loss_scale · loss)/∂params into grads(); needs a forward with targets, and
    // one backward per forward.
    void backward(float loss_scale = 1.0f);

    // [B·T, V]: raw logits after a forward without targets.
    const float* logits() const;
    // Fraction of the (token, slot) pairs routed to each expert in `block` by the last forward.
    std::vector<float> expert_load(int block) const;
    // Router probabilities [B·T, E] of `block` from the last forward (nullptr for dense models).
    const float* router_probs(int block) const;

  private:
    struct Activations;
    ModelConfig cfg_;
    ParameterLayout layout_;
    std::vector<float> params_, grads_;
    const float* weights_ = nullptr;  // params_.data() or external weights
    ModelTensors<const float> w_;
    ModelTensors<float> g_;
    std::unique_ptr<Activations> act_;
    AlignedBuffer arena_;
    int max_B_ = 0, max_T_ = 0;
    int B_ = 0, T_ = 0;          // shape of the last forward
    bool have_targets_ = false;  // the last forward computed the loss
};

}  // namespace tinygpt
