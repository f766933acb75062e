#include "kernels/gelu.h"

#include <cstddef>
#include <vector>

#include "kernels/fast_math.h"
#include "util/parallel.h"

namespace tinygpt {

namespace {

constexpr float kInvSqrt2 = 0.70710678118654752f;
constexpr float kInvSqrt2Pi = 0.39894228040143268f;
constexpr int kRowsPerBlock = 32;

#pragma omp declare simd
inline float gelu(float z) {
    return 0.5f * z * (1.0f + fast_erf(z * kInvSqrt2));
}

// The element loops live in their own functions over one row so that the compiler vectorises
// them; the OpenMP layer only hands out row blocks.
void bias_gelu_row(float* __restrict out, float* __restrict pre, const float* __restrict bias,
                   int n) {
#pragma omp simd
    for (int i = 0; i < n; ++i) {
        const float z = pre[i] + (bias ? bias[i] : 0.0f);
        pre[i] = z;
        out[i] = gelu(z);
    }
}

void gelu_backward_row(float* __restrict d, const float* __restrict pre, float* __restrict acc,
                       int n) {
#pragma omp simd
    for (int i = 0; i < n; ++i) {
        const float z = pre[i];
        const float gauss = fast_exp(-0.5f * z * z);  // exp(-(z/√2)²): shared by Φ and φ
        const float cdf = 0.5f * (1.0f + fast_erf_from_gauss(z * kInvSqrt2, gauss));
        const float pdf = kInvSqrt2Pi * gauss;
        d[i] *= cdf + z * pdf;
        acc[i] += d[i];
    }
}

}  // namespace

void bias_gelu_forward(float* out, float* pre, const float* bias, int rows, int cols) {
    parallel_for_chunks(
        rows,
        [&](long r0, long count) {
            for (long r = r0; r < r0 + count; ++r) {
                const size_t o = static_cast<size_t>(r) * cols;
                bias_gelu_row(out + o, pre + o, bias, cols);
            }
        },
        kRowsPerBlock);
}

void gelu_in_place(float* v, int n) {
#pragma omp simd
    for (int i = 0; i < n; ++i) v[i] = gelu(v[i]);
}

void bias_gelu_backward(float* d, const float* pre, float* d_bias, int rows, int cols) {
    const long blocks = (rows + kRowsPerBlock - 1) / kRowsPerBlock;
    std::vector<float> partial(static_cast<size_t>(blocks) * cols, 0.0f);
    parallel_for_chunks(
        rows,
        [&](long r0, long count) {
            float* acc = partial.data() + static_cast<size_t>(r0 / kRowsPerBlock) * cols;
            for (long r = r0; r < r0 + count; ++r) {
                const size_t o = static_cast<size_t>(r) * cols;
                gelu_backward_row(d + o, pre + o, acc, cols);
            }
        },
        kRowsPerBlock);
    if (!d_bias) return;
    for (long b = 0; b < blocks; ++b) {
        const float* acc = partial.data() + static_cast<size_t>(b) * cols;
#pragma omp simd
        for (int c = 0; c < cols; ++c) d_bias[c] += acc[c];
    }
}

}  // namespace tinygpt
