#include "kernels/swiglu.h"

#include <cstddef>

#include "kernels/fast_math.h"
#include "kernels/gemm.h"
#include "util/parallel.h"

namespace tinygpt {

namespace {

constexpr long kSwigluRowsPerBlock = 32;

// fast_exp keeps the loop vectorised (libm's expf is a scalar call); its clamp at ±87 only
// matters where σ is already 0 or 1 to float precision.
#pragma omp declare simd
inline float sigmoid(float z) {
    return 1.0f / (1.0f + fast_exp(-z));
}

void swiglu_row(float* __restrict h, const float* __restrict g, const float* __restrict u, int n) {
#pragma omp simd
    for (int i = 0; i < n; ++i) {
        const float sg = sigmoid(g[i]);
        h[i] = g[i] * sg * u[i];
    }
}

// dh may be du (the in-place case): each dh[i] is read before du[i] is written, and no other
// element overlaps, so the iterations stay independent.
void swiglu_backward_row(float* __restrict dg, float* du, const float* dh,
                         const float* __restrict g, const float* __restrict u, int n) {
#pragma omp simd
    for (int i = 0; i < n; ++i) {
        const float d = dh[i], sg = sigmoid(g[i]);
        dg[i] = d * u[i] * sg * (1.0f + g[i] * (1.0f - sg));
        du[i] = d * g[i] * sg;
    }
}

}  // namespace

void swiglu_forward(float* h, const float* gu, int rows, int M) {
    parallel_for_chunks(
        rows,
        [&](long r0, long count) {
            for (long r = r0; r < r0 + count; ++r) {
                const float* g = gu + static_cast<size_t>(r) * 2 * M;
                swiglu_row(h + static_cast<size_t>(r) * M, g, g + M, M);
            }
        },
        kSwigluRowsPerBlock);
}

void swiglu_backward(float* dgu, const float* dh, int ld_dh, const float* gu, int rows, int M) {
    parallel_for_chunks(
        rows,
        [&](long r0, long count) {
            for (long r = r0; r < r0 + count; ++r) {
                const size_t o = static_cast<size_t>(r) * 2 * M;
                swiglu_backward_row(dgu + o, dgu + o + M, dh + static_cast<size_t>(r) * ld_dh,
                                    gu + o, gu + o + M, M);
            }
        },
        kSwigluRowsPerBlock);
}

void swiglu_mlp_forward(float* y, float* gu, float* h, const float* x, const float* w_gate_up,
                        const float* w_down, int rows, int C, int M) {
    if (rows <= 0) return;
    linear_forward(gu, x, w_gate_up, nullptr, rows, C, 2 * M);
    swiglu_forward(h, gu, rows, M);
    linear_forward(y, h, w_down, nullptr, rows, M, C);
}

void swiglu_mlp_backward(float* dx, float* dw_gate_up, float* dw_down, float* dgu, const float* dy,
                         const float* x, const float* gu, const float* h, const float* w_gate_up,
                         const float* w_down, int rows, int C, int M) {
    if (rows <= 0) return;
    // dW_down += dyᵀ·h, and dh = dy·W_down written straight into the up half of dgu, which
    // swiglu_backward then converts in place: no separate dh buffer.
    gemm(true, false, C, M, rows, 1.0f, dy, C, h, M, 1.0f, dw_down, M);
    gemm(false, false, rows, M, C, 1.0f, dy, C, w_down, M, 0.0f, dgu + M, 2 * M);
    swiglu_backward(dgu, dgu + M, 2 * M, gu, rows, M);
    linear_backward(dx, dw_gate_up, nullptr, dgu, x, w_gate_up, rows, C, 2 * M);
}

}  // namespace tinygpt
