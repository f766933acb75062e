// A block's feed-forward sublayer at inference, on weights in their stored type: the dense MLP
// (GELU or SwiGLU), or the MoE layer (route every row, group the rows by expert, one product per
// expert over its rows, gate-weighted combine) plus the optional shared expert. The same
// arithmetic as model/feed_forward.cpp's dropless, noise-free forward, without what only the
// backward needs.
#pragma once
#include <vector>

#include "infer/inference_tensors.h"
#include "model/config.h"
#include "moe/dispatch.h"

namespace tinygpt {

// The router's decisions for the rows of one MoE forward (eval's statistics, `tinygpt experts`).
// The pointers are into the InferenceFfn's workspace: valid until its next forward.
struct RouterDecisions {
    int rows = 0;                  // n
    int experts = 0;               // E
    int k = 0;                     // K: experts per row
    const int* topk = nullptr;     // [n, K]
    const float* gates = nullptr;  // [n, K]
    const float* probs = nullptr;  // [n, E]
    const float* lse = nullptr;    // [n] logsumexp of the router logits
    const int* counts = nullptr;   // [E] (row, slot) pairs per expert
};

class InferenceFfn {
  public:
    // Workspace for up to `tokens` rows of any block of `cfg`.
    void reserve(const ModelConfig& cfg, int tokens);

    // out[n, C] = FFN(x) (out is overwritten). For an MoE block, decisions() then describes the
    // routing.
    void forward(float* out, const float* x, const InferenceBlock& w, const ModelConfig& cfg,
                 int n);
    const RouterDecisions& decisions() const { return decisions_; }

  private:
    int rows_ = 0;
    std::vector<float> pre_, h_, y_, xg_, probs_, lse_, gates_, shared_out_, shared_gate_;
    std::vector<int> topk_, counts_, offsets_, row_token_, pair_row_;
    RouterDecisions decisions_;
};

}  // namespace tinygpt
