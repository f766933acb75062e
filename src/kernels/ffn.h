// The two feed-forward kinds behind one interface, so that a dense block, an MoE expert and the
// shared expert run either: the GPT family's GELU MLP with biases, and the Llama family's
// bias-free SwiGLU MLP (MlpTensors::w_in is then the [2M, C] gate|up matrix, w_out the down
// projection, and the biases are null).
#pragma once
#include "kernels/mlp.h"

namespace tinygpt {

enum class FfnKind { Gelu, SwiGlu };

// Columns of the saved pre-activation (and of the backward scratch) per row: M or 2M.
inline int ffn_pre_width(FfnKind kind, int M) {
    return kind == FfnKind::SwiGlu ? 2 * M : M;
}

// y [rows, C]; saves pre [rows, ffn_pre_width] and h [rows, M] for the backward.
void ffn_forward(FfnKind kind, float* y, float* pre, float* h, const float* x, const MlpWeights& w,
                 int rows, int C, int M);

// dx [rows, C] is overwritten; gradients accumulate; scratch is [rows, ffn_pre_width].
void ffn_backward(FfnKind kind, float* dx, const MlpGrads& grads, float* scratch, const float* dy,
                  const float* x, const float* pre, const float* h, const MlpWeights& w, int rows,
                  int C, int M);

}  // namespace tinygpt
