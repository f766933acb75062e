// The Qwen2-MoE shared expert: an always-on SwiGLU MLP of its own width S whose output is
// scaled per token by sigmoid(x·w_gate) (a Linear C → 1 without bias) and added to the routed
// experts' output. Every token pays for it, so it adds S-wide dense compute to the MoE block.
#pragma once
#include "kernels/mlp.h"
#include "util/arena.h"

namespace tinygpt {

template <typename F>
struct SharedExpertTensors {
    MlpTensors<F> mlp;  // SwiGLU: w_in = gate|up [2S, C], w_out = down [C, S]
    F* gate = nullptr;  // [1, C]
};

struct SharedExpertActivations {
    float* gu = nullptr;    // [N, 2S]
    float* h = nullptr;     // [N, S]
    float* y = nullptr;     // [N, C] before the gate
    float* gate = nullptr;  // [N] sigmoid(x·w_gate)
    void layout(Arena& arena, int tokens, int C, int S);
};

// Backward scratch, shared by all blocks.
struct SharedExpertScratch {
    float* dgu = nullptr;     // [N, 2S]
    float* dy = nullptr;      // [N, C]
    float* dx = nullptr;      // [N, C]
    float* d_gate = nullptr;  // [N] ∂L/∂(gate logit)
    void layout(Arena& arena, int tokens, int C, int S);
};

// out[N, C] += sigmoid(x·w_gate) · SwiGLU(x).
void shared_expert_forward(float* out, SharedExpertActivations& act, const float* x,
                           const SharedExpertTensors<const float>& w, int tokens, int C, int S);

// dx[N, C] += ∂L/∂x through the shared expert; gradients accumulate.
void shared_expert_backward(float* dx, const SharedExpertTensors<float>& grads,
                            SharedExpertScratch& scratch, const float* dout, const float* x,
                            const SharedExpertActivations& act,
                            const SharedExpertTensors<const float>& w, int tokens, int C, int S);

}  // namespace tinygpt
