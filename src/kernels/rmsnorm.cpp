#include "kernels/rmsnorm.h"

#include <cmath>
#include <cstddef>
#include <vector>

#include "util/parallel.h"

namespace tinygpt {

namespace {

// One vector of n floats; out may alias x (every x[c] is read by the reduction first).
float rmsnorm_vector(float* out, const float* x, const float* weight, int n, float eps) {
    float ss = 0.0f;
#pragma omp simd reduction(+ : ss)
    for (int c = 0; c < n; ++c) ss += x[c] * x[c];
    const float s = 1.0f / std::sqrt(ss / n + eps);
#pragma omp simd
    for (int c = 0; c < n; ++c) out[c] = x[c] * s * weight[c];
    return s;
}

// With g = dout ⊙ weight: dx = rstd·(g − x·rstd²·mean(g ⊙ x)); dw += dout ⊙ x · rstd. The
// reduction reads the whole of dout before any dx is written, so dx may alias dout.
template <bool kAccumulate>
void rmsnorm_vector_backward(float* dx, float* dw, const float* dout, const float* x, float s,
                             const float* weight, int n) {
    float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
    for (int c = 0; c < n; ++c) {
        dot += dout[c] * weight[c] * x[c];
        dw[c] += dout[c] * x[c] * s;
    }
    const float k = s * s * dot / n;
#pragma omp simd
    for (int c = 0; c < n; ++c) {
        const float d = s * (dout[c] * weight[c] - x[c] * k);
        dx[c] = kAccumulate ? dx[c] + d : d;
    }
}

}  // namespace

void rmsnorm_forward(float* out, float* rstd, const float* x, const float* weight, int rows, int C,
                     float eps) {
    parallel_for(rows, rows >= 64, [&](long r) {
        const size_t o = static_cast<size_t>(r) * C;
        rstd[r] = rmsnorm_vector(out + o, x + o, weight, C, eps);
    });
}

void rmsnorm_backward(float* dx, float* d_weight, const float* dout, const float* x,
                      const float* rstd, const float* weight, int rows, int C) {
    const int threads = threads_for_region(rows >= 64);
    std::vector<float> partial(static_cast<size_t>(threads) * C, 0.0f);
    parallel_for_per_thread(rows, threads, [&](int thread, long r) {
        float* dw = partial.data() + static_cast<size_t>(thread) * C;
        const size_t o = static_cast<size_t>(r) * C;
        rmsnorm_vector_backward<true>(dx + o, dw, dout + o, x + o, rstd[r], weight, C);
    });
    for (int t = 0; t < threads; ++t) {
        const float* dw = partial.data() + static_cast<size_t>(t) * C;
        for (int c = 0; c < C; ++c) d_weight[c] += dw[c];
    }
}

void head_rmsnorm_forward(float* out, float* rstd, const float* x, const float* weight, int tokens,
                          int heads, int hd, int ld, float eps) {
    parallel_for(tokens, static_cast<long>(tokens) * heads >= 256, [&](long t) {
        for (int h = 0; h < heads; ++h) {
            const size_t o = static_cast<size_t>(t) * ld + static_cast<size_t>(h) * hd;
            rstd[static_cast<size_t>(t) * heads + h] =
                rmsnorm_vector(out + o, x + o, weight, hd, eps);
        }
    });
}

void head_rmsnorm_backward(float* dx, float* d_weight, const float* dout, const float* x,
                           const float* rstd, const float* weight, int tokens, int heads, int hd,
                           int ld) {
    const int threads = threads_for_region(static_cast<long>(tokens) * heads >= 256);
    std::vector<float> partial(static_cast<size_t>(threads) * hd, 0.0f);
    parallel_for_per_thread(tokens, threads, [&](int thread, long t) {
        float* dw = partial.data() + static_cast<size_t>(thread) * hd;
        for (int h = 0; h < heads; ++h) {
            const size_t o = static_cast<size_t>(t) * ld + static_cast<size_t>(h) * hd;
            rmsnorm_vector_backward<false>(dx + o, dw, dout + o, x + o,
                                           rstd[static_cast<size_t>(t) * heads + h], weight, hd);
        }
    });
    for (int t = 0; t < threads; ++t) {
        const float* dw = partial.data() + static_cast<size_t>(t) * hd;
        for (int c = 0; c < hd; ++c) d_weight[c] += dw[c];
    }
}

}  // namespace tinygpt
