// The MoE router: a bias-free Linear(C → E), a softmax over all E experts, top-K selection and
// the gate weights (Switch for K = 1, Mixtral-style renormalisation for K ≥ 2), plus the
// Switch load-balance loss E·Σ_e f_e·P_e.
#pragma once

namespace tinygpt {

struct RouterShape {
    int tokens;   // N = B·T
    int C;        // model width
    int experts;  // E
    int topk;     // K
};

// probs[N, E] = softmax(x·W_routerᵀ); topk[N, K] expert ids by descending probability (ties go
// to the lower expert id); gates[N, K]; counts[E] = (token, slot) pairs routed to each expert.
void router_forward(float* probs, int* topk, float* gates, int* counts, const float* x,
                    const float* w_router, RouterShape shape);

// aux = E · Σ_e f_e · P_e with f_e = counts[e] / (N·K), P_e = mean_t probs[t, e].
float load_balance_loss(const float* probs, const int* counts, RouterShape shape);

// Gradient of (Σ gates·d_gates + aux_weight·aux) with respect to the router logits, written to
// d_logits[N, E]. f_e is a constant (no gradient through the routing decision).
void router_backward(float* d_logits, const float* probs, const int* topk, const float* gates,
                     const float* d_gates, const int* counts, float aux_weight, RouterShape shape);

}  // namespace tinygpt
