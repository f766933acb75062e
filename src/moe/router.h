// The MoE router: a bias-free Linear(C → E), a softmax over all E experts, top-K selection and
// the gate weights (the K probabilities, renormalised to sum to 1 or not: Mixtral / Qwen3 do,
// Switch / Qwen2-MoE / OLMoE do not), plus the Switch load-balance loss E·Σ_e f_e·P_e and the
// ST-MoE router z-loss mean_t(logsumexp(logits_t)²).
#pragma once

namespace tinygpt {

struct RouterShape {
    int tokens;               // N = B·T
    int C;                    // model width
    int experts;              // E
    int topk;                 // K
    bool renormalize = true;  // gates = p / Σ_selected p (else gates = p)
    // Expert parallelism: the counts router_backward is given are summed over `group` ranks of
    // `tokens` tokens each (the load-balance statistics of the whole group).
    int group = 1;
};

// probs[N, E] = softmax(x·W_routerᵀ); topk[N, K] expert ids by descending probability (ties go
// to the lower expert id); gates[N, K]; counts[E] = (token, slot) pairs routed to each expert;
// lse[N] = logsumexp of each token's logits (for the z-loss).
void router_forward(float* probs, int* topk, float* gates, int* counts, float* lse, const float* x,
                    const float* w_router, RouterShape shape);
// The part of router_forward after the product: probs holds the router logits [N, E] on entry
// (however they were computed: inference multiplies by weights in their stored type).
void router_select(float* probs, int* topk, float* gates, int* counts, float* lse,
                   RouterShape shape);

// z = mean_t lse[t]².
float router_z_loss(const float* lse, int tokens);

// aux = E · Σ_e f_e · P_e with f_e = counts[e] / (N·K), P_e = mean_t probs[t, e].
float load_balance_loss(const float* probs, const int* counts, RouterShape shape);
// The same from its sums (which expert parallelism adds up over a group): prob_sums[e] =
// Σ_t probs[t, e] and counts[e] over `tokens` tokens.
float load_balance_loss_from_sums(const double* prob_sums, const int* counts, long tokens, int topk,
                                  int experts);
// prob_sums[e] = Σ_t probs[t, e] (in double).
void router_prob_sums(double* prob_sums, const float* probs, int tokens, int experts);

// Gradient of (Σ gates·d_gates + aux_weight·aux + z_weight·z) with respect to the router logits,
// written to d_logits[N, E]. f_e is a constant (no gradient through the routing decision). With
// shape.group = P > 1, counts are the group's and the aux term is P·∂aux_group/∂logits of this
// rank's tokens (so that summing over the group gives P times the single-process gradient).
void router_backward(float* d_logits, const float* probs, const int* topk, const float* gates,
                     const float* d_gates, const int* counts, const float* lse, float aux_weight,
                     float z_weight, RouterShape shape);

}  // namespace tinygpt
