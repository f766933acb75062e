// Batch-1 inference with a KV cache: prefill a prompt, then decode one token at a time. Each
// block keeps the keys and values of every position seen (KVH·hd floats per position: grouped-
// query attention shrinks the cache by H/KVH); RoPE is applied at the cache position. An MoE
// block at decode runs only the K experts its router picks for the new token (the same sparse
// dispatch as training). Every buffer is sized by what has been processed, not by the model's
// maximum context: the cache grows (doubling) with the positions seen, the scratch with the
// largest chunk, and the logits with the rows asked for, so a 32k-context, 152k-vocabulary model
// costs little to sample a hundred tokens from. Weights are read in their stored type (f32, bf16,
// f16, Q8_0: model/model_weights.h); activations and the cache are f32.
#pragma once
#include <functional>
#include <memory>
#include <utility>
#include <vector>

#include "infer/inference_ffn.h"
#include "infer/inference_tensors.h"
#include "kernels/rope.h"
#include "model/config.h"
#include "model/model_weights.h"

namespace tinygpt {

// Called by InferenceSession::forward after the router of MoE block `layer` has routed the rows
// of that forward, layer by layer in order. The decisions live in workspace that the next MoE
// block overwrites, so an observer must take what it needs before it returns.
using RouterObserver = std::function<void(int layer, const RouterDecisions& decisions)>;

class InferenceSession {
  public:
    // The session keeps a copy of `weights` (views; an owned buffer stays alive through it),
    // in InferenceTensors.
    explicit InferenceSession(const ModelWeights& weights);
    // f32 weights in ParameterLayout(cfg) order, which must outlive the session.
    InferenceSession(const ModelConfig& cfg, const float* weights);

    // Runs `n` new tokens at positions length() .. length()+n-1 through the model, appending to
    // the cache, and returns the logits of the last one ([V]). With all_logits, logits() then
    // holds [n, V]. Throws if the context would overflow.
    const float* forward(const int* tokens, int n, bool all_logits = false);
    const float* logits() const { return logits_.data(); }

    int length() const { return length_; }  // positions in the cache
    int capacity() const { return cfg_.ctx; }
    void reset() { length_ = 0; }
    // Bytes the KV cache holds now (it grows with the positions seen).
    size_t cache_bytes() const;
    const ModelConfig& config() const { return cfg_; }
    // True when this session runs `weights`: the same tensors in memory, not only the same
    // shapes (a session handed to generate() must be one of its weights).
    bool runs(const ModelWeights& weights) const;
    // Every later forward reports its routing to `observer` (an empty function: to nobody).
    void observe_routing(RouterObserver observer) { observer_ = std::move(observer); }

  private:
    void reserve_positions(int positions);  // KV cache rows
    void reserve_chunk(int tokens);         // scratch for `tokens` new tokens at once

    ModelConfig cfg_;
    std::vector<const void*> source_tensors_;  // the data of each view it was built from
    InferenceTensors w_;
    RopeTable rope_;
    int length_ = 0;
    int cache_rows_ = 0;                                 // positions the caches can hold
    std::vector<std::vector<float>> k_cache_, v_cache_;  // per layer [cache_rows_, KVH·hd]
    int chunk_ = 0;                                      // tokens the scratch can hold
    std::vector<float> x_, ln_, mean_, rstd_, qkv_raw_, q_rstd_, k_rstd_, qkv_, att_, tmp_, logits_;
    std::vector<int> tokens_;
    InferenceFfn ffn_;
    RouterObserver observer_;
};

}  // namespace tinygpt
