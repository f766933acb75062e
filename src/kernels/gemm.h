// Matrix products through CBLAS. All matrices are row-major. A Linear layer stores its weight
// [out, in] (PyTorch's convention) and computes y = x·Wᵀ + b.
#pragma once
#include <cstddef>

namespace tinygpt {

// C[m,n] = alpha · op(A) · op(B) + beta · C, where op(A) is [m,k] and op(B) is [k,n].
void gemm(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a, int lda,
          const float* b, int ldb, float beta, float* c, int ldc);

// out[rows, out_dim] = in[rows, in_dim] · weightᵀ + bias (bias may be null).
void linear_forward(float* out, const float* in, const float* weight, const float* bias, int rows,
                    int in_dim, int out_dim);

// Backward of linear_forward. d_in is overwritten (skipped if null); d_weight and d_bias are
// accumulated into (d_bias skipped if null).
void linear_backward(float* d_in, float* d_weight, float* d_bias, const float* d_out,
                     const float* in, const float* weight, int rows, int in_dim, int out_dim);

// d_bias[cols] += Σ_rows d_out[rows, cols], in a fixed order (deterministic).
void bias_backward(float* d_bias, const float* d_out, int rows, int cols);

// Best sgemm (blas_sgemm) GFLOP/s over `reps` runs each of n×n×n products for n = 512, 1024, 2048 on
// the current thread count: the denominator of the MFU figures.
double measure_sgemm_peak_gflops(int reps = 4);

}  // namespace tinygpt
