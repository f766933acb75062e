#include "kernels/gemm.h"

#include <algorithm>
#include <vector>

#include "kernels/blas.h"
#include "kernels/gemv.h"
#include "util/parallel.h"
#include "util/timer.h"

namespace tinygpt {

#if !defined(TINYGPT_NO_BLAS)
namespace {

// Products of at least this many multiply-adds (m·n·k) are split over the threads here, where
// OpenBLAS would start its own threads (its threshold: 4 · 65536).
constexpr double kSplitMultiplyAdds = 4.0 * 65536;
// Block edges of the split, in rows or columns of C: whole vector registers for the BLAS.
constexpr int kSplitAlign = 16;

// C = alpha · op(A) · op(B) + beta · C with each of `threads` threads computing one block of C's
// columns (or rows, when C has more rows than columns) in one single-threaded BLAS call. The
// threads then meet once per product. OpenBLAS's own threaded sgemm makes its threads wait for
// each other several times within a call (they share packed panels); when other processes
// share the cores, each of those waits lasts until the kernel runs the descheduled thread
// again. bench/under_load.py, with another process on every core: training keeps 0.47 of its
// idle step rate instead of 0.22, at the same idle speed (BENCHMARKS.md).
void split_gemm(int threads, bool trans_a, bool trans_b, int m, int n, int k, float alpha,
                const float* a, int lda, const float* b, int ldb, float beta, float* c, int ldc) {
    const bool by_columns = n >= m;
    const int extent = by_columns ? n : m;
    const long blocks = (extent + kSplitAlign - 1) / kSplitAlign;
    parallel_for(threads, true, [&](long thread) {
        const IndexRange share = static_share(blocks, static_cast<int>(thread), threads);
        const int begin = static_cast<int>(share.begin) * kSplitAlign;
        const int end = std::min(extent, static_cast<int>(share.end) * kSplitAlign);
        if (end <= begin) return;
        const size_t first = static_cast<size_t>(begin);
        if (by_columns) {  // C[:, begin:end] from op(B)[:, begin:end]
            const float* b_part = trans_b ? b + first * ldb : b + first;
            blas_sgemm(trans_a, trans_b, m, end - begin, k, alpha, a, lda, b_part, ldb, beta,
                       c + first, ldc);
        } else {  // C[begin:end, :] from op(A)[begin:end, :]
            const float* a_part = trans_a ? a + first : a + first * lda;
            blas_sgemm(trans_a, trans_b, end - begin, n, k, alpha, a_part, lda, b, ldb, beta,
                       c + first * ldc, ldc);
        }
    });
}

}  // namespace
#endif

void gemm(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a, int lda,
          const float* b, int ldb, float beta, float* c, int ldc) {
    if (m <= 0 || n <= 0) return;
    if (k <= 0) {  // BLAS leaves C untouched for k = 0 only when beta = 1; make it explicit.
        for (int i = 0; i < m; ++i)
            for (int j = 0; j < n; ++j) c[static_cast<size_t>(i) * ldc + j] *= beta;
        return;
    }
    if (m == 1 && !trans_a) {
        // One row (a decode step): our matrix-vector kernels, whose bits do not depend on the
        // thread count (kernels/gemv.h).
        if (trans_b)
            gemv_rows(c, b, ldb, a, n, k, alpha, beta);
        else
            gemv_columns(c, a, b, ldb, k, n, alpha, beta);
        return;
    }
#if !defined(TINYGPT_NO_BLAS)  // the portable sgemm (WebAssembly) splits its work itself
    const double multiply_adds = static_cast<double>(m) * n * k;
    const int threads = threads_for_region(multiply_adds >= kSplitMultiplyAdds &&
                                           std::max(m, n) >= 2 * kSplitAlign);
    if (threads > 1) {
        split_gemm(threads, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return;
    }
#endif
    blas_sgemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void linear_forward(float* out, const float* in, const float* weight, const float* bias, int rows,
                    int in_dim, int out_dim) {
    float beta = 0.0f;
    if (bias) {
        parallel_for(rows, rows >= 256, [&](long r) {
            float* o = out + static_cast<size_t>(r) * out_dim;
            for (int j = 0; j < out_dim; ++j) o[j] = bias[j];
        });
        beta = 1.0f;
    }
    gemm(false, true, rows, out_dim, in_dim, 1.0f, in, in_dim, weight, in_dim, beta, out, out_dim);
}

void linear_backward(float* d_in, float* d_weight, float* d_bias, const float* d_out,
                     const float* in, const float* weight, int rows, int in_dim, int out_dim) {
    if (d_in)
        gemm(false, false, rows, in_dim, out_dim, 1.0f, d_out, out_dim, weight, in_dim, 0.0f, d_in,
             in_dim);
    // d_weight[out, in] += d_outᵀ · in
    gemm(true, false, out_dim, in_dim, rows, 1.0f, d_out, out_dim, in, in_dim, 1.0f, d_weight,
         in_dim);
    if (d_bias) bias_backward(d_bias, d_out, rows, out_dim);
}

void bias_backward(float* d_bias, const float* d_out, int rows, int cols) {
    // Threads split the columns, so each sum runs over the rows in order: deterministic.
    constexpr int kBlock = 64;
    const int blocks = (cols + kBlock - 1) / kBlock;
    parallel_for(blocks, blocks > 1 && static_cast<long>(rows) * cols >= 65536, [&](long blk) {
        const int c0 = static_cast<int>(blk) * kBlock;
        const int c1 = c0 + kBlock < cols ? c0 + kBlock : cols;
        float acc[kBlock] = {};
        for (int r = 0; r < rows; ++r) {
            const float* row = d_out + static_cast<size_t>(r) * cols;
#pragma omp simd
            for (int c = c0; c < c1; ++c) acc[c - c0] += row[c];
        }
        for (int c = c0; c < c1; ++c) d_bias[c] += acc[c - c0];
    });
}

double measure_sgemm_peak_gflops(int reps) {
    double best = 0.0;
    for (int n : {512, 1024, 2048}) {
        std::vector<float> a(static_cast<size_t>(n) * n, 0.5f), b(a.size(), 0.25f),
            c(a.size(), 0.0f);
        for (int r = 0; r < reps + 1; ++r) {  // the first run warms up threads and caches
            Timer t;
            gemm(false, false, n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n);
            const double gflops = 2.0 * n * n * static_cast<double>(n) / t.seconds() / 1e9;
            if (r > 0) best = std::max(best, gflops);
        }
    }
    return best;
}

}  // namespace tinygpt
