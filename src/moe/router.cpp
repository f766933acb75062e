#include "moe/router.h"

#include <cstddef>
#include <vector>

#include "kernels/gemm.h"
#include "kernels/softmax.h"
#include "util/parallel.h"

namespace tinygpt {

void router_forward(float* probs, int* topk, float* gates, int* counts, float* lse, const float* x,
                    const float* w_router, RouterShape s) {
    linear_forward(probs, x, w_router, nullptr, s.tokens, s.C, s.experts);
    router_select(probs, topk, gates, counts, lse, s);
}

void router_select(float* probs, int* topk, float* gates, int* counts, float* lse, RouterShape s) {
    const int N = s.tokens, E = s.experts, K = s.topk;
    parallel_for(N, N >= 64, [&](long t) {
        float* p = probs + static_cast<size_t>(t) * E;
        lse[t] = softmax_row(p, p, E);
        // Insertion into a sorted list of K: E and K are small. Strict '>' keeps the lower id
        // first on ties.
        int* idx = topk + static_cast<size_t>(t) * K;
        int filled = 0;
        for (int e = 0; e < E; ++e) {
            int pos = filled;
            while (pos > 0 && p[e] > p[idx[pos - 1]]) --pos;
            if (pos >= K) continue;
            const int last = filled < K ? filled : K - 1;
            for (int j = last; j > pos; --j) idx[j] = idx[j - 1];
            idx[pos] = e;
            if (filled < K) ++filled;
        }
        float* g = gates + static_cast<size_t>(t) * K;
        if (!s.renormalize) {
            for (int j = 0; j < K; ++j) g[j] = p[idx[j]];
        } else {
            float selected = 0.0f;
            for (int j = 0; j < K; ++j) selected += p[idx[j]];
            for (int j = 0; j < K; ++j) g[j] = p[idx[j]] / selected;
        }
    });
    for (int e = 0; e < E; ++e) counts[e] = 0;
    for (size_t i = 0; i < static_cast<size_t>(N) * K; ++i) ++counts[topk[i]];
}

float router_z_loss(const float* lse, int tokens) {
    double sum = 0.0;
    for (int t = 0; t < tokens; ++t) sum += static_cast<double>(lse[t]) * lse[t];
    return static_cast<float>(sum / tokens);
}

void router_prob_sums(double* prob_sums, const float* probs, int tokens, int experts) {
    for (int e = 0; e < experts; ++e) prob_sums[e] = 0.0;
    for (int t = 0; t < tokens; ++t)
        for (int e = 0; e < experts; ++e)
            prob_sums[e] += probs[static_cast<size_t>(t) * experts + e];
}

float load_balance_loss_from_sums(const double* prob_sums, const int* counts, long tokens, int topk,
                                  int experts) {
    double aux = 0.0;
    for (int e = 0; e < experts; ++e) {
        const double f = static_cast<double>(counts[e]) / (static_cast<double>(tokens) * topk);
        aux += f * prob_sums[e] / tokens;
    }
    return static_cast<float>(experts * aux);
}

float load_balance_loss(const float* probs, const int* counts, RouterShape s) {
    std::vector<double> prob_sums(s.experts);
    router_prob_sums(prob_sums.data(), probs, s.tokens, s.experts);
    return load_balance_loss_from_sums(prob_sums.data(), counts, s.tokens, s.topk, s.experts);
}

void router_backward(float* d_logits, const float* probs, const int* topk, const float* gates,
                     const float* d_gates, const int* counts, const float* lse, float aux_weight,
                     float z_weight, RouterShape s) {
    const int N = s.tokens, E = s.experts, K = s.topk;
    // ∂(aux_weight·aux)/∂p[t, e] = aux_weight · E · f_e / N, the same for every token. Over a
    // group, f_e = counts[e] / (P·N·K) and P·∂aux/∂p = aux_weight · E · f_e / N again.
    std::vector<float> d_prob_aux(E);
    for (int e = 0; e < E; ++e)
        d_prob_aux[e] = aux_weight * E *
                        (static_cast<float>(counts[e]) / (static_cast<float>(N) * K * s.group)) / N;
    parallel_for(N, N >= 64, [&](long t) {
        const float* p = probs + static_cast<size_t>(t) * E;
        const int* idx = topk + static_cast<size_t>(t) * K;
        const float* g = gates + static_cast<size_t>(t) * K;
        const float* dg = d_gates + static_cast<size_t>(t) * K;
        float* dz = d_logits + static_cast<size_t>(t) * E;
        for (int e = 0; e < E; ++e) dz[e] = d_prob_aux[e];  // dz holds ∂L/∂p for now
        if (!s.renormalize) {
            for (int j = 0; j < K; ++j) dz[idx[j]] += dg[j];
        } else {
            // g_j = p_j / S over the chosen set: ∂L/∂p_j = (dg_j − Σ_i dg_i·g_i) / S.
            float selected = 0.0f, weighted = 0.0f;
            for (int j = 0; j < K; ++j) {
                selected += p[idx[j]];
                weighted += dg[j] * g[j];
            }
            for (int j = 0; j < K; ++j) dz[idx[j]] += (dg[j] - weighted) / selected;
        }
        // Softmax backward: ∂L/∂z_e = p_e · (∂L/∂p_e − Σ_i p_i·∂L/∂p_i).
        float dot = 0.0f;
        for (int e = 0; e < E; ++e) dot += p[e] * dz[e];
        // z-loss: ∂(z_weight · mean_t lse²)/∂z_e = z_weight · 2·lse·p_e / N.
        const float dz_lse = z_weight * 2.0f * lse[t] / N;
        for (int e = 0; e < E; ++e) dz[e] = p[e] * (dz[e] - dot + dz_lse);
    });
}

}  // namespace tinygpt
