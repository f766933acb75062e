#pragma once
#include <cmath>

#include "kernels/fast_math.h"

namespace tinygpt {

// out[0, n) = softmax(in[0, n)) (out may alias in); returns log Σ exp(in), the log-sum-exp.
inline float softmax_row(float* out, const float* in, int n) {
    float max = in[0];
#pragma omp simd reduction(max : max)
    for (int j = 0; j < n; ++j) max = in[j] > max ? in[j] : max;
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int j = 0; j < n; ++j) {
        out[j] = fast_exp(in[j] - max);
        sum += out[j];
    }
    const float inv = 1.0f / sum;
#pragma omp simd
    for (int j = 0; j < n; ++j) out[j] *= inv;
    return max + std::log(sum);
}

}  // namespace tinygpt
