#include "moe/dispatch.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <vector>

#include "util/parallel.h"

namespace tinygpt {

namespace {

// limit(e): the most pairs expert e keeps.
template <typename Limit>
int build_plan(DispatchPlan& plan, const int* topk, int tokens, int K, int experts, Limit&& limit) {
    const int pairs = tokens * K;
    for (int e = 0; e <= experts; ++e) plan.offsets[e] = 0;
    for (int i = 0; i < pairs; ++i) ++plan.offsets[topk[i] + 1];
    for (int e = 0; e < experts; ++e) plan.offsets[e + 1] = std::min(plan.offsets[e + 1], limit(e));
    for (int e = 0; e < experts; ++e) plan.offsets[e + 1] += plan.offsets[e];
    // Serial placement keeps the sort stable; it is O(N·K) integer work, far below the GEMMs.
    // The next free row of each expert; on the stack for the usual expert counts (this runs per
    // MoE layer per decoded token, too).
    int stack_cursor[257];
    std::vector<int> heap_cursor;
    int* cursor = stack_cursor;
    if (experts + 1 > 257) {
        heap_cursor.resize(experts + 1);
        cursor = heap_cursor.data();
    }
    std::memcpy(cursor, plan.offsets, sizeof(int) * (experts + 1));
    for (int i = 0; i < pairs; ++i) {
        const int e = topk[i];
        if (cursor[e] == plan.offsets[e + 1]) {  // expert full: the pair is dropped
            plan.pair_row[i] = -1;
            continue;
        }
        const int row = cursor[e]++;
        plan.row_token[row] = i / K;
        plan.pair_row[i] = row;
    }
    return plan.offsets[experts];
}

}  // namespace

int dispatch_plan_build(DispatchPlan& plan, const int* topk, int tokens, int K, int experts,
                        int capacity) {
    const int unlimited = tokens * K;
    return build_plan(plan, topk, tokens, K, experts,
                      [&](int) { return capacity > 0 ? capacity : unlimited; });
}

int dispatch_plan_build(DispatchPlan& plan, const int* topk, int tokens, int K, int experts,
                        const int* limits) {
    return build_plan(plan, topk, tokens, K, experts, [&](int e) { return limits[e]; });
}

int expert_capacity(float factor, int tokens, int K, int experts) {
    const double cap = std::ceil(static_cast<double>(factor) * tokens * K / experts);
    return static_cast<int>(std::clamp(cap, 1.0, static_cast<double>(tokens) * K));
}

void dispatch_gather(float* xg, const float* x, const DispatchPlan& plan, int rows, int C) {
    parallel_for(rows, rows >= 256, [&](long r) {
        std::memcpy(xg + static_cast<size_t>(r) * C, x + static_cast<size_t>(plan.row_token[r]) * C,
                    sizeof(float) * C);
    });
}

void dispatch_gather_backward(float* dx, const float* dxg, const DispatchPlan& plan, int tokens,
                              int K, int C) {
    parallel_for(tokens, tokens >= 128, [&](long t) {
        float* d = dx + static_cast<size_t>(t) * C;
        for (int s = 0; s < K; ++s) {
            if (plan.pair_row[t * K + s] < 0) continue;
            const float* src = dxg + static_cast<size_t>(plan.pair_row[t * K + s]) * C;
#pragma omp simd
            for (int c = 0; c < C; ++c) d[c] += src[c];
        }
    });
}

void dispatch_combine(float* out, const float* y, const float* gates, const DispatchPlan& plan,
                      int tokens, int K, int C) {
    parallel_for(tokens, tokens >= 128, [&](long t) {
        float* o = out + static_cast<size_t>(t) * C;
        for (int c = 0; c < C; ++c) o[c] = 0.0f;
        for (int s = 0; s < K; ++s) {
            if (plan.pair_row[t * K + s] < 0) continue;
            const float g = gates[t * K + s];
            const float* src = y + static_cast<size_t>(plan.pair_row[t * K + s]) * C;
#pragma omp simd
            for (int c = 0; c < C; ++c) o[c] += g * src[c];
        }
    });
}

void dispatch_combine_backward(float* dy, float* d_gates, const float* dout, const float* y,
                               const float* gates, const DispatchPlan& plan, int tokens, int K,
                               int C) {
    parallel_for(tokens, tokens >= 128, [&](long t) {
        const float* g_out = dout + static_cast<size_t>(t) * C;
        for (int s = 0; s < K; ++s) {
            if (plan.pair_row[t * K + s] < 0) {
                d_gates[t * K + s] = 0.0f;
                continue;
            }
            const size_t row = static_cast<size_t>(plan.pair_row[t * K + s]);
            const float* yr = y + row * C;
            float* dyr = dy + row * C;
            const float g = gates[t * K + s];
            float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
            for (int c = 0; c < C; ++c) {
                dot += yr[c] * g_out[c];
                dyr[c] = g * g_out[c];
            }
            d_gates[t * K + s] = dot;
        }
    });
}

}  // namespace tinygpt
