#include "moe/shared_expert.h"

#include <cmath>
#include <cstddef>

#include "kernels/gemm.h"
#include "kernels/swiglu.h"
#include "util/parallel.h"

namespace tinygpt {

void SharedExpertActivations::layout(Arena& arena, int tokens, int C, int S) {
    const size_t N = tokens;
    gu = arena.take<float>(N * 2 * S);
    h = arena.take<float>(N * S);
    y = arena.take<float>(N * C);
    gate = arena.take<float>(N);
}

void SharedExpertScratch::layout(Arena& arena, int tokens, int C, int S) {
    const size_t N = tokens;
    dgu = arena.take<float>(N * 2 * S);
    dy = arena.take<float>(N * C);
    dx = arena.take<float>(N * C);
    d_gate = arena.take<float>(N);
}

void shared_expert_forward(float* out, SharedExpertActivations& act, const float* x,
                           const SharedExpertTensors<const float>& w, int N, int C, int S) {
    swiglu_mlp_forward(act.y, act.gu, act.h, x, w.mlp.w_in, w.mlp.w_out, N, C, S);
    linear_forward(act.gate, x, w.gate, nullptr, N, C, 1);
    parallel_for(N, N >= 128, [&](long t) {
        const float g = 1.0f / (1.0f + std::exp(-act.gate[t]));
        act.gate[t] = g;
        const float* y = act.y + static_cast<size_t>(t) * C;
        float* o = out + static_cast<size_t>(t) * C;
#pragma omp simd
        for (int c = 0; c < C; ++c) o[c] += g * y[c];
    });
}

void shared_expert_backward(float* dx, const SharedExpertTensors<float>& grads,
                            SharedExpertScratch& sc, const float* dout, const float* x,
                            const SharedExpertActivations& act,
                            const SharedExpertTensors<const float>& w, int N, int C, int S) {
    // out = g·y with g = σ(a): ∂L/∂y = g·dout, ∂L/∂a = ⟨dout, y⟩·g·(1 − g).
    parallel_for(N, N >= 128, [&](long t) {
        const float g = act.gate[t];
        const float* d = dout + static_cast<size_t>(t) * C;
        const float* y = act.y + static_cast<size_t>(t) * C;
        float* dy = sc.dy + static_cast<size_t>(t) * C;
        float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
        for (int c = 0; c < C; ++c) {
            dot += d[c] * y[c];
            dy[c] = g * d[c];
        }
        sc.d_gate[t] = dot * g * (1.0f - g);
    });
    swiglu_mlp_backward(sc.dx, grads.mlp.w_in, grads.mlp.w_out, sc.dgu, sc.dy, x, act.gu, act.h,
                        w.mlp.w_in, w.mlp.w_out, N, C, S);
    // Gate Linear (C → 1): dW += d_gateᵀ·x, dx += d_gate ⊗ w_gate, plus the MLP's dx.
    gemm(true, false, 1, C, N, 1.0f, sc.d_gate, 1, x, C, 1.0f, grads.gate, C);
    parallel_for(N, N >= 128, [&](long t) {
        const float a = sc.d_gate[t];
        const float* m = sc.dx + static_cast<size_t>(t) * C;
        float* o = dx + static_cast<size_t>(t) * C;
#pragma omp simd
        for (int c = 0; c < C; ++c) o[c] += m[c] + a * w.gate[c];
    });
}

}  // namespace tinygpt
