#include "kernels/cross_entropy.h"

#include <omp.h>

#include <cmath>
#include <cstddef>

#include "kernels/fast_math.h"

namespace tinygpt {

void softmax_cross_entropy_forward(float* probs, float* losses, const float* logits,
                                   const int* targets, int rows, int V) {
#pragma omp parallel for if (rows >= 32 && !omp_in_parallel())
    for (int r = 0; r < rows; ++r) {
        const float* z = logits + static_cast<size_t>(r) * V;
        float* p = probs + static_cast<size_t>(r) * V;
        float max = z[0];
        for (int v = 1; v < V; ++v) max = z[v] > max ? z[v] : max;
        const float z_target = targets ? z[targets[r]] : 0.0f;  // read before p overwrites z
        float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
        for (int v = 0; v < V; ++v) {
            p[v] = fast_exp(z[v] - max);
            sum += p[v];
        }
        const float inv = 1.0f / sum;
        if (targets) {
            // log-sum-exp form: exact even when the target's probability underflows.
            losses[r] = std::log(sum) + max - z_target;
        }
#pragma omp simd
        for (int v = 0; v < V; ++v) p[v] *= inv;
    }
}

void softmax_cross_entropy_backward(float* d_logits, const float* probs, const int* targets,
                                    int rows, int V, float scale) {
#pragma omp parallel for if (rows >= 32 && !omp_in_parallel())
    for (int r = 0; r < rows; ++r) {
        const float* p = probs + static_cast<size_t>(r) * V;
        float* d = d_logits + static_cast<size_t>(r) * V;
#pragma omp simd
        for (int v = 0; v < V; ++v) d[v] = p[v] * scale;
        d[targets[r]] -= scale;
    }
}

}  // namespace tinygpt
