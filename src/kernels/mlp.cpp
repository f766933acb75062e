#include "kernels/mlp.h"

#include <cstddef>

#include "kernels/gelu.h"
#include "kernels/gemm.h"

namespace tinygpt {

void mlp_forward(float* y, float* h_pre, float* h, const float* x, const MlpWeights& w, int rows,
                 int C, int M) {
    if (rows <= 0) return;
    linear_forward(h_pre, x, w.w_in, w.b_in, rows, C, M);
    gelu_forward(h, h_pre, static_cast<size_t>(rows) * M);
    linear_forward(y, h, w.w_out, w.b_out, rows, M, C);
}

void mlp_backward(float* dx, const MlpGrads& grads, float* dh, const float* dy, const float* x,
                  const float* h_pre, const float* h, const MlpWeights& w, int rows, int C, int M) {
    if (rows <= 0) return;
    linear_backward(dh, grads.w_out, grads.b_out, dy, h, w.w_out, rows, M, C);
    gelu_backward(dh, h_pre, dh, static_cast<size_t>(rows) * M);
    linear_backward(dx, grads.w_in, grads.b_in, dh, x, w.w_in, rows, C, M);
}

}  // namespace tinygpt
