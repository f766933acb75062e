#include "kernels/gelu.h"

#include "kernels/fast_math.h"
#include "util/parallel.h"

namespace tinygpt {

namespace {

constexpr float kInvSqrt2 = 0.70710678118654752f;
constexpr float kInvSqrt2Pi = 0.39894228040143268f;
// The element loops live in their own functions over a contiguous range so that the compiler
// vectorises them; the OpenMP layer only hands out chunks.
void gelu_forward_range(float* __restrict out, const float* __restrict in, long n) {
#pragma omp simd
    for (long i = 0; i < n; ++i) {
        const float z = in[i];
        out[i] = 0.5f * z * (1.0f + fast_erf(z * kInvSqrt2));
    }
}

void gelu_backward_range(float* d_in, const float* in, const float* d_out, long n) {
#pragma omp simd
    for (long i = 0; i < n; ++i) {
        const float z = in[i];
        const float cdf = 0.5f * (1.0f + fast_erf(z * kInvSqrt2));
        const float pdf = kInvSqrt2Pi * fast_exp(-0.5f * z * z);
        d_in[i] = d_out[i] * (cdf + z * pdf);
    }
}

}  // namespace

void gelu_forward(float* out, const float* in, size_t n) {
    parallel_for_chunks(static_cast<long>(n), [&](long begin, long count) { gelu_forward_range(out + begin, in + begin, count); });
}

void gelu_backward(float* d_in, const float* in, const float* d_out, size_t n) {
    parallel_for_chunks(static_cast<long>(n), [&](long begin, long count) {
        gelu_backward_range(d_in + begin, in + begin, d_out + begin, count);
    });
}

}  // namespace tinygpt
