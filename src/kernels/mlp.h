// The GELU MLP on a contiguous block of rows: y = GELU(x·W_inᵀ + b_in)·W_outᵀ + b_out. The dense
// block runs it on all B·T rows; the MoE runs it once per expert on that expert's gathered rows.
#pragma once

namespace tinygpt {

template <typename F>
struct MlpTensors {
    F* w_in = nullptr;   // [M, C]
    F* b_in = nullptr;   // [M]
    F* w_out = nullptr;  // [C, M]
    F* b_out = nullptr;  // [C]
};
using MlpWeights = MlpTensors<const float>;
using MlpGrads = MlpTensors<float>;

// Saves h_pre and h ([rows, M]) for the backward.
void mlp_forward(float* y, float* h_pre, float* h, const float* x, const MlpWeights& w, int rows,
                 int C, int M);

// dx [rows, C] is overwritten; grads accumulate; dh [rows, M] is scratch.
void mlp_backward(float* dx, const MlpGrads& grads, float* dh, const float* dy, const float* x,
                  const float* h_pre, const float* h, const MlpWeights& w, int rows, int C, int M);

}  // namespace tinygpt
