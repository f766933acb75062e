// Exact GELU, 0.5·z·(1 + erf(z/√2)) (not the tanh approximation), as in the original, fused with
// the bias of the Linear layer before it: the MLP's first GEMM runs with beta = 0 and the bias
// add, the activation and (backward) the bias gradient each cost no extra pass over [rows, M].
#pragma once

namespace tinygpt {

// pre[r, :] += bias (skipped if null); out = GELU(pre). pre keeps the biased pre-activation.
void bias_gelu_forward(float* out, float* pre, const float* bias, int rows, int cols);

// v[i] = GELU(v[i]) for i < n: the same bits as bias_gelu_forward's out for the same values
// (inference applies it to each chunk of a product's output while that is still in cache).
void gelu_in_place(float* v, int n);

// d[r, c] *= GELU'(pre[r, c]) in place; d_bias[c] += Σ_r d[r, c] if d_bias is non-null (summed
// in fixed row blocks, so deterministic for any thread count).
void bias_gelu_backward(float* d, const float* pre, float* d_bias, int rows, int cols);

}  // namespace tinygpt
