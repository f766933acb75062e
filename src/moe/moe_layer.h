// The MoE feed-forward layer: router → dispatch → one GEMM pair per expert → weighted combine,
// forward and backward. `DispatchMode::Dense` is the original TinyGPT's reference path (every
// expert on every token, unselected experts weighted by zero), kept for parity tests and
// benchmarks.
#pragma once
#include <vector>

#include "kernels/mlp.h"
#include "moe/dispatch.h"
#include "moe/router.h"
#include "util/arena.h"

namespace tinygpt {

enum class DispatchMode { Sparse, Dense };

struct MoeShape {
    int tokens;   // N = B·T
    int C;        // model width
    int M;        // expert hidden width
    int experts;  // E
    int topk;     // K
    RouterShape router() const { return {tokens, C, experts, topk}; }
    // Rows the experts process: N·K when sparse, E·N when every expert sees every token.
    long expert_rows(DispatchMode mode) const {
        return mode == DispatchMode::Sparse ? static_cast<long>(tokens) * topk
                                            : static_cast<long>(experts) * tokens;
    }
};

// What the forward saves for the backward (one per MoE block).
struct MoeActivations {
    float* probs = nullptr;  // [N, E]
    int* topk = nullptr;     // [N, K]
    float* gates = nullptr;  // [N, K]
    int* counts = nullptr;   // [E]
    DispatchPlan plan{};     // offsets [E+1], row_token / pair_row [N·K]
    float* xg = nullptr;     // sparse: gathered inputs [N·K, C]
    float* h_pre = nullptr;  // [rows, M]
    float* h = nullptr;      // [rows, M]
    float* y = nullptr;      // [rows, C]
    float aux = 0.0f;        // this block's load-balance loss

    void layout(Arena& arena, const MoeShape& shape, DispatchMode mode);
};

// Backward scratch, shared by all MoE blocks.
struct MoeScratch {
    float* d_gates = nullptr;   // [N, K]
    float* d_logits = nullptr;  // [N, E]
    float* dy = nullptr;        // [rows, C]
    float* dh = nullptr;        // [rows, M]
    float* dxg = nullptr;       // [rows, C]

    void layout(Arena& arena, const MoeShape& shape, DispatchMode mode);
};

// The activations and scratch of one MoE layer in an allocation of their own (tests, benchmarks;
// the model lays them out inside its activation arena instead).
struct MoeWorkspace {
    MoeActivations act;
    MoeScratch scratch;
    AlignedBuffer buffer;

    MoeWorkspace(const MoeShape& shape, DispatchMode mode);
};

struct MoeParams {
    const float* router = nullptr;  // [E, C]
    std::vector<MlpWeights> experts;
};
struct MoeGrads {
    float* router = nullptr;
    std::vector<MlpGrads> experts;
};

// out[N, C] = Σ_s gate·Expert(x); fills `act` (including act.aux).
void moe_forward(float* out, MoeActivations& act, const float* x, const MoeParams& params,
                 const MoeShape& shape, DispatchMode mode);

// dx[N, C] is overwritten with ∂L/∂x; parameter gradients accumulate. The load-balance loss
// enters with weight aux_weight (already multiplied by any loss scale).
void moe_backward(float* dx, const MoeGrads& grads, MoeScratch& scratch, const float* dout,
                  const float* x, const MoeActivations& act, const MoeParams& params,
                  const MoeShape& shape, DispatchMode mode, float aux_weight);

}  // namespace tinygpt
