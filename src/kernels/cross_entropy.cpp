#include "kernels/cross_entropy.h"

#include <cmath>
#include <cstddef>

#include "kernels/softmax.h"
#include "util/parallel.h"

namespace tinygpt {

void softmax_cross_entropy_forward(float* probs, float* losses, const float* logits,
                                   const int* targets, int rows, int V) {
    parallel_for(rows, rows >= 32, [&](long r) {
        const float* z = logits + static_cast<size_t>(r) * V;
        float* p = probs + static_cast<size_t>(r) * V;
        const float z_target = targets ? z[targets[r]] : 0.0f;  // read before p overwrites z
        const float log_sum_exp = softmax_row(p, z, V);
        // log-sum-exp form: exact even when the target's probability underflows.
        if (targets) losses[r] = log_sum_exp - z_target;
    });
}

void softmax_cross_entropy_backward(float* d_logits, const float* probs, const int* targets,
                                    int rows, int V, float scale) {
    parallel_for(rows, rows >= 32, [&](long r) {
        const float* p = probs + static_cast<size_t>(r) * V;
        float* d = d_logits + static_cast<size_t>(r) * V;
#pragma omp simd
        for (int v = 0; v < V; ++v) d[v] = p[v] * scale;
        d[targets[r]] -= scale;
    });
}

}  // namespace tinygpt
