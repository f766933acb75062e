// The SwiGLU MLP of Llama/Qwen/Mixtral experts, y = (silu(x·W_gateᵀ) ⊙ x·W_upᵀ)·W_downᵀ, no
// biases. W_gate [M, C] and W_up [M, C] are stored back to back as one [2M, C] matrix, so one
// GEMM computes both: gu [rows, 2M] holds the gate pre-activations in columns [0, M) and the up
// projections in [M, 2M).
#pragma once

namespace tinygpt {

// h [rows, M] = silu(gu[:, :M]) ⊙ gu[:, M:].
void swiglu_forward(float* h, const float* gu, int rows, int M);

// dgu [rows, 2M] from dh [rows, M]. In place is allowed when dh is the up half of dgu
// (dh == dgu + M with row stride 2M; see swiglu_mlp_backward).
void swiglu_backward(float* dgu, const float* dh, int ld_dh, const float* gu, int rows, int M);

// Saves gu [rows, 2M] and h [rows, M] for the backward.
void swiglu_mlp_forward(float* y, float* gu, float* h, const float* x, const float* w_gate_up,
                        const float* w_down, int rows, int C, int M);

// dx [rows, C] is overwritten; dw_gate_up [2M, C] and dw_down [C, M] accumulate; dgu [rows, 2M]
// is scratch.
void swiglu_mlp_backward(float* dx, float* dw_gate_up, float* dw_down, float* dgu, const float* dy,
                         const float* x, const float* gu, const float* h, const float* w_gate_up,
                         const float* w_down, int rows, int C, int M);

}  // namespace tinygpt
