#include "train/adamw.h"

#include <cmath>

#include "util/error.h"
#include "util/parallel.h"

namespace tinygpt {

double global_norm(const float* g, size_t n) {
    constexpr long kChunks = 256;
    double partial[kChunks];
    const size_t chunk = (n + kChunks - 1) / kChunks;
    parallel_for(kChunks, true, [&](long c) {
        const size_t begin = c * chunk, end = begin + chunk < n ? begin + chunk : n;
        double sum = 0.0;
        // float partials over short runs keep the loop vectorised; double across runs.
        for (size_t i = begin; i < end; i += 4096) {
            const size_t stop = i + 4096 < end ? i + 4096 : end;
            float s = 0.0f;
#pragma omp simd reduction(+ : s)
            for (size_t j = i; j < stop; ++j) s += g[j] * g[j];
            sum += s;
        }
        partial[c] = begin < n ? sum : 0.0;
    });
    double total = 0.0;
    for (long c = 0; c < kChunks; ++c) total += partial[c];
    return std::sqrt(total);
}

AdamW::AdamW(size_t num_params, size_t decay_count, AdamWConfig cfg)
    : cfg_(cfg),
      n_(num_params),
      decay_count_(decay_count),
      m_(num_params, 0.0f),
      v_(num_params, 0.0f) {}

double AdamW::step(float* params, float* grads, float lr, float grad_clip) {
    const double norm = global_norm(grads, n_);
    step_with_norm(params, grads, lr, grad_clip, norm);
    return norm;
}

void AdamW::step_with_norm(float* params, float* grads, float lr, float grad_clip, double norm) {
    if (!std::isfinite(norm))
        throw Error("gradient norm is not finite (" + std::to_string(norm) + ")");
    const float clip_scale =
        grad_clip > 0.0f && norm > grad_clip ? static_cast<float>(grad_clip / (norm + 1e-6)) : 1.0f;
    ++t_;
    const float b1 = cfg_.beta1, b2 = cfg_.beta2, eps = cfg_.eps;
    const float bc1 =
        1.0f - static_cast<float>(std::pow(static_cast<double>(b1), static_cast<double>(t_)));
    const float bc2 =
        1.0f - static_cast<float>(std::pow(static_cast<double>(b2), static_cast<double>(t_)));
    const float step_size = lr / bc1;
    const float inv_sqrt_bc2 = 1.0f / std::sqrt(bc2);
    float* m = m_.data();
    float* v = v_.data();
    auto update = [&](size_t first, size_t last, float decay) {
        parallel_for_chunks(static_cast<long>(last - first), [&](long begin, long count) {
            const size_t o = first + static_cast<size_t>(begin);
            float* __restrict p = params + o;
            float* __restrict g = grads + o;
            float* __restrict mo = m + o;
            float* __restrict ve = v + o;
#pragma omp simd
            for (long i = 0; i < count; ++i) {
                const float gi = g[i] * clip_scale;
                const float mi = b1 * mo[i] + (1.0f - b1) * gi;
                const float vi = b2 * ve[i] + (1.0f - b2) * gi * gi;
                mo[i] = mi;
                ve[i] = vi;
                p[i] = p[i] * decay - step_size * mi / (std::sqrt(vi) * inv_sqrt_bc2 + eps);
                g[i] = 0.0f;
            }
        });
    };
    update(0, decay_count_, 1.0f - lr * cfg_.weight_decay);
    update(decay_count_, n_, 1.0f);
}

}  // namespace tinygpt
