#include "kernels/gelu.h"

#include <omp.h>

#include "kernels/fast_math.h"

namespace tinygpt {

namespace {
constexpr float kInvSqrt2 = 0.70710678118654752f;
constexpr float kInvSqrt2Pi = 0.39894228040143268f;
}  // namespace

void gelu_forward(float* out, const float* in, size_t n) {
    const long count = static_cast<long>(n);
#pragma omp parallel for simd if (count >= 32768 && !omp_in_parallel())
    for (long i = 0; i < count; ++i) {
        const float z = in[i];
        out[i] = 0.5f * z * (1.0f + fast_erf(z * kInvSqrt2));
    }
}

void gelu_backward(float* d_in, const float* in, const float* d_out, size_t n) {
    const long count = static_cast<long>(n);
#pragma omp parallel for simd if (count >= 32768 && !omp_in_parallel())
    for (long i = 0; i < count; ++i) {
        const float z = in[i];
        const float cdf = 0.5f * (1.0f + fast_erf(z * kInvSqrt2));
        const float pdf = kInvSqrt2Pi * fast_exp(-0.5f * z * z);
        d_in[i] = d_out[i] * (cdf + z * pdf);
    }
}

}  // namespace tinygpt
