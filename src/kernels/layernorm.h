#pragma once

namespace tinygpt {

constexpr float kLayerNormEps = 1e-5f;

// out = (x - mean) * rstd * weight + bias per row of C; saves mean and rstd for the backward.
void layernorm_forward(float* out, float* mean, float* rstd, const float* x, const float* weight,
                       const float* bias, int rows, int C);

// dx += ∂L/∂x; d_weight, d_bias += their gradients (per-thread partials summed in thread order,
// so the result is deterministic for a fixed thread count).
void layernorm_backward(float* dx, float* d_weight, float* d_bias, const float* dout,
                        const float* x, const float* mean, const float* rstd, const float* weight,
                        int rows, int C);

}  // namespace tinygpt
