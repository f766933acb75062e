#include "kernels/layernorm.h"

#include <cmath>
#include <cstddef>
#include <vector>

#include "util/parallel.h"

namespace tinygpt {

void layernorm_forward(float* out, float* mean, float* rstd, const float* x, const float* weight,
                       const float* bias, int rows, int C) {
    parallel_for(rows, rows >= 64, [&](long r) {
        const float* xr = x + static_cast<size_t>(r) * C;
        float* o = out + static_cast<size_t>(r) * C;
        float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
        for (int c = 0; c < C; ++c) sum += xr[c];
        const float m = sum / C;
        float var = 0.0f;
#pragma omp simd reduction(+ : var)
        for (int c = 0; c < C; ++c) var += (xr[c] - m) * (xr[c] - m);
        const float s = 1.0f / std::sqrt(var / C + kLayerNormEps);
#pragma omp simd
        for (int c = 0; c < C; ++c) o[c] = (xr[c] - m) * s * weight[c] + bias[c];
        mean[r] = m;
        rstd[r] = s;
    });
}

void layernorm_backward(float* dx, float* d_weight, float* d_bias, const float* dout,
                        const float* x, const float* mean, const float* rstd, const float* weight,
                        int rows, int C) {
    const int threads = threads_for_region(rows >= 64);
    std::vector<float> partial(static_cast<size_t>(threads) * 2 * C, 0.0f);
    parallel_for_per_thread(rows, threads, [&](int thread, long r) {
        float* dw = partial.data() + static_cast<size_t>(thread) * 2 * C;
        float* db = dw + C;
        const float* xr = x + static_cast<size_t>(r) * C;
        const float* g = dout + static_cast<size_t>(r) * C;
        float* dxr = dx + static_cast<size_t>(r) * C;
        const float m = mean[r], s = rstd[r];
        float sum_dn = 0.0f, sum_dn_xhat = 0.0f;
#pragma omp simd reduction(+ : sum_dn, sum_dn_xhat)
        for (int c = 0; c < C; ++c) {
            const float xhat = (xr[c] - m) * s;
            const float dn = g[c] * weight[c];
            sum_dn += dn;
            sum_dn_xhat += dn * xhat;
            dw[c] += g[c] * xhat;
            db[c] += g[c];
        }
        const float mean_dn = sum_dn / C, mean_dn_xhat = sum_dn_xhat / C;
#pragma omp simd
        for (int c = 0; c < C; ++c) {
            const float xhat = (xr[c] - m) * s;
            dxr[c] += s * (g[c] * weight[c] - mean_dn - xhat * mean_dn_xhat);
        }
    });
    for (int t = 0; t < threads; ++t) {
        const float* dw = partial.data() + static_cast<size_t>(t) * 2 * C;
        for (int c = 0; c < C; ++c) {
            d_weight[c] += dw[c];
            d_bias[c] += dw[C + c];
        }
    }
}

}  // namespace tinygpt
