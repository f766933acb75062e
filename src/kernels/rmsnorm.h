// RMSNorm (Llama/Qwen): out = x · rstd · weight with rstd = 1/√(mean(x²) + eps), no mean
// subtraction and no bias. The per-head form normalises each head vector of q and k inside the
// fused qkv rows (Qwen3 / OLMoE q_norm and k_norm, weights shared by all heads).
#pragma once

namespace tinygpt {

// Contiguous rows of C. Saves rstd [rows] for the backward.
void rmsnorm_forward(float* out, float* rstd, const float* x, const float* weight, int rows, int C,
                     float eps);

// dx += ∂L/∂x (accumulates, like layernorm_backward, so it can add into a residual gradient);
// d_weight += its gradient (per-thread partials summed in thread order: deterministic for a
// fixed thread count).
void rmsnorm_backward(float* dx, float* d_weight, const float* dout, const float* x,
                      const float* rstd, const float* weight, int rows, int C);

// Per-head form: `heads` vectors of hd floats per token, the vector (t, h) at x + t·ld + h·hd,
// for t < tokens. out has the same layout (out == x is allowed); rstd is [tokens, heads].
void head_rmsnorm_forward(float* out, float* rstd, const float* x, const float* weight, int tokens,
                          int heads, int hd, int ld, float eps);

// dx is overwritten (dx == dout is allowed); d_weight [hd] accumulates.
void head_rmsnorm_backward(float* dx, float* d_weight, const float* dout, const float* x,
                           const float* rstd, const float* weight, int tokens, int heads, int hd,
                           int ld);

}  // namespace tinygpt
