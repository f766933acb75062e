// The MoE feed-forward layer: router → dispatch → one GEMM pair per expert → weighted combine,
// forward and backward. Experts are GELU MLPs (GPT family) or SwiGLU MLPs (Llama family).
// `DispatchMode::Dense` is the original TinyGPT's reference path (every expert on every token,
// unselected experts weighted by zero), kept for parity tests and benchmarks.
#pragma once
#include <cstdint>
#include <vector>

#include "kernels/ffn.h"
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
    FfnKind ffn = FfnKind::Gelu;
    bool renormalize = true;   // the K gates sum to 1 (RouterShape::renormalize)
    bool with_jitter = false;  // lay out the buffers router jitter needs
    // Expert parallelism: the experts run on their owners, which keep their hidden activations
    // (moe/expert_parallel.h), so this rank lays out no h_pre / h / dh.
    bool remote_experts = false;
    RouterShape router() const { return {tokens, C, experts, topk, renormalize}; }
    int pre_width() const { return ffn_pre_width(ffn, M); }
    // Rows the experts process: N·K when sparse, E·N when every expert sees every token.
    long expert_rows(DispatchMode mode) const {
        return mode == DispatchMode::Sparse ? static_cast<long>(tokens) * topk
                                            : static_cast<long>(experts) * tokens;
    }
};

// Per-forward behaviour. The model passes the training-only parts (jitter, capacity) only to
// training forwards; inference is always dropless and noise-free.
struct MoeOptions {
    float jitter = 0.0f;       // > 0: the router sees x ⊙ U(1 − ε, 1 + ε) (needs with_jitter)
    uint64_t jitter_seed = 0;  // the noise is a pure function of (seed, token, column)
    float capacity_factor = 0.0f;  // > 0: drop pairs over expert_capacity(...) per expert
};

// What the forward saves for the backward (one per MoE block).
struct MoeActivations {
    float* probs = nullptr;      // [N, E]
    float* lse = nullptr;        // [N] logsumexp of the router logits
    int* topk = nullptr;         // [N, K]
    float* gates = nullptr;      // [N, K]
    int* counts = nullptr;       // [E] (the group's with expert parallelism)
    DispatchPlan plan{};         // offsets [E+1], row_token / pair_row [N·K]
    float* xg = nullptr;         // sparse: gathered inputs [N·K, C]
    float* h_pre = nullptr;      // [rows, pre_width]
    float* h = nullptr;          // [rows, M]
    float* y = nullptr;          // [rows, C]
    float* noise = nullptr;      // with_jitter: the multipliers [N, C] (all 1 when off)
    float* router_in = nullptr;  // with_jitter: x ⊙ noise [N, C]
    bool jittered = false;       // the last forward applied jitter
    float aux = 0.0f;            // this block's load-balance loss
    float z = 0.0f;              // this block's router z-loss
    int dropped = 0;             // (token, slot) pairs dropped by the capacity

    void layout(Arena& arena, const MoeShape& shape, DispatchMode mode);
};

// Backward scratch, shared by all MoE blocks.
struct MoeScratch {
    float* d_gates = nullptr;   // [N, K]
    float* d_logits = nullptr;  // [N, E]
    float* dy = nullptr;        // [rows, C]
    float* dh = nullptr;        // [rows, pre_width]
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
    const float* router = nullptr;    // [E, C]
    std::vector<MlpWeights> experts;  // SwiGLU: w_in = gate|up [2M, C], w_out = down, no biases
};
struct MoeGrads {
    float* router = nullptr;
    std::vector<MlpGrads> experts;
};

// The pieces both the single-process layer and expert parallelism (moe/expert_parallel.h) run.
//
// Routes the N tokens: router (with jitter, drawn for the tokens first_token + t of the whole
// batch, so a rank of a group draws what a single process draws for the same tokens), softmax,
// top-K, gates, this batch's counts and the z-loss (act.z). Not the load-balance loss nor the plan.
void moe_route(MoeActivations& act, const float* x, const float* w_router, const MoeShape& shape,
               const MoeOptions& options, long first_token);
// The experts on rows grouped by expert: expert i of `weights` owns rows [offsets[i],
// offsets[i + 1]) of y, h_pre and h; its input rows are x's same rows (ExpertInput::Grouped) or
// all of x (ExpertInput::EveryToken: dense mode).
enum class ExpertInput { Grouped, EveryToken };
void experts_forward(float* y, float* h_pre, float* h, const float* x, const int* offsets,
                     const std::vector<MlpWeights>& weights, const MoeShape& shape,
                     ExpertInput input = ExpertInput::Grouped);
// Its backward: dx rows are overwritten, the experts' gradients accumulate, dh is scratch.
void experts_backward(float* dx, const std::vector<MlpGrads>& grads, float* dh, const float* dy,
                      const float* x, const float* h_pre, const float* h, const int* offsets,
                      const std::vector<MlpWeights>& weights, const MoeShape& shape,
                      ExpertInput input = ExpertInput::Grouped);
// ∂L/∂x through the router (dx is overwritten) from scratch.d_gates: the router's softmax and
// losses (router_backward with `router`'s group), its Linear and the jitter.
void moe_router_backward(float* dx, float* d_router, MoeScratch& scratch, const float* x,
                         const MoeActivations& act, const float* w_router, RouterShape router,
                         float aux_weight, float z_weight);

// out[N, C] = Σ_s gate·Expert(x); fills `act` (including act.aux, act.z and act.dropped).
void moe_forward(float* out, MoeActivations& act, const float* x, const MoeParams& params,
                 const MoeShape& shape, DispatchMode mode, const MoeOptions& options = {});

// dx[N, C] is overwritten with ∂L/∂x; parameter gradients accumulate. The load-balance loss and
// the z-loss enter with weights aux_weight and z_weight (already multiplied by any loss scale).
void moe_backward(float* dx, const MoeGrads& grads, MoeScratch& scratch, const float* dout,
                  const float* x, const MoeActivations& act, const MoeParams& params,
                  const MoeShape& shape, DispatchMode mode, float aux_weight,
                  float z_weight = 0.0f);

}  // namespace tinygpt
