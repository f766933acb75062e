// Sparse dispatch: the N·K (token, slot) pairs are grouped by expert with a counting sort, each
// expert's input rows are gathered into one contiguous segment (so one GEMM per expert covers
// exactly its tokens), and the expert outputs are combined back per token, weighted by the gates.
// No one-hot tensors and no padding. Dropless by default; with a capacity, the pairs beyond it
// (in token order) are dropped: they get no row, contribute nothing and receive no gradient.
#pragma once

namespace tinygpt {

struct DispatchPlan {
    int* offsets;    // [E + 1]: expert e owns grouped rows [offsets[e], offsets[e+1])
    int* row_token;  // [N·K]: the token each grouped row came from
    int* pair_row;   // [N·K]: the grouped row of pair (t, s) = t·K + s; −1 if dropped
};

// Stable counting sort of the pairs by expert (rows of one expert stay in token order). With
// capacity > 0 each expert keeps at most `capacity` pairs (the earliest tokens). Returns the
// number of rows kept (offsets[E]); the other N·K − rows pairs were dropped.
int dispatch_plan_build(DispatchPlan& plan, const int* topk, int tokens, int K, int experts,
                        int capacity = 0);
// The same with a limit per expert: expert e keeps its first limits[e] pairs (expert
// parallelism: what is left of the capacity after the tokens of the ranks before this one).
int dispatch_plan_build(DispatchPlan& plan, const int* topk, int tokens, int K, int experts,
                        const int* limits);

// ⌈factor · N·K / E⌉, at least 1: the per-expert capacity of a capacity factor.
int expert_capacity(float factor, int tokens, int K, int experts);

// xg[r] = x[row_token[r]] for the N·K grouped rows.
void dispatch_gather(float* xg, const float* x, const DispatchPlan& plan, int rows, int C);

// dx[t] += Σ_s dxg[pair_row[t·K + s]] (backward of the gather).
void dispatch_gather_backward(float* dx, const float* dxg, const DispatchPlan& plan, int tokens,
                              int K, int C);

// out[t] = Σ_s gates[t, s] · y[pair_row[t·K + s]] (out is overwritten).
void dispatch_combine(float* out, const float* y, const float* gates, const DispatchPlan& plan,
                      int tokens, int K, int C);

// Backward of the combine: d_gates[t, s] = ⟨y[row], dout[t]⟩ and dy[row] = gates[t, s]·dout[t].
void dispatch_combine_backward(float* dy, float* d_gates, const float* dout, const float* y,
                               const float* gates, const DispatchPlan& plan, int tokens, int K,
                               int C);

}  // namespace tinygpt
