#include "kernels/mlp.h"

#include "kernels/gelu.h"
#include "kernels/gemm.h"

namespace tinygpt {

void mlp_forward(float* y, float* h_pre, float* h, const float* x, const MlpWeights& w, int rows,
                 int C, int M) {
    if (rows <= 0) return;
    gemm(false, true, rows, M, C, 1.0f, x, C, w.w_in, C, 0.0f, h_pre, M);
    bias_gelu_forward(h, h_pre, w.b_in, rows, M);
    linear_forward(y, h, w.w_out, w.b_out, rows, M, C);
}

void mlp_backward(float* dx, const MlpGrads& grads, float* dh, const float* dy, const float* x,
                  const float* h_pre, const float* h, const MlpWeights& w, int rows, int C, int M) {
    if (rows <= 0) return;
    linear_backward(dh, grads.w_out, grads.b_out, dy, h, w.w_out, rows, M, C);
    bias_gelu_backward(dh, h_pre, grads.b_in, rows, M);
    linear_backward(dx, grads.w_in, nullptr, dh, x, w.w_in, rows, C, M);
}

}  // namespace tinygpt
