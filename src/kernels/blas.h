// The one place that includes the platform's CBLAS header, and the one matrix product the engine
// asks of a BLAS. A build without one (TINYGPT_NO_BLAS: WebAssembly) uses kernels/portable_sgemm.
#pragma once
#if defined(TINYGPT_NO_BLAS)
#include "kernels/portable_sgemm.h"
#elif defined(TINYGPT_ACCELERATE)
#include <Accelerate/Accelerate.h>
#else
#include <cblas.h>
#if defined(TINYGPT_OPENBLAS) && defined(_OPENMP)
#include <omp.h>
#endif
#endif

namespace tinygpt {

// C[m,n] = alpha · op(A) · op(B) + beta · C, row-major.
inline void blas_sgemm(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a,
                       int lda, const float* b, int ldb, float beta, float* c, int ldc) {
#if defined(TINYGPT_NO_BLAS)
    portable_sgemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
#else
#if defined(TINYGPT_OPENBLAS)
    // The engine splits products over its own threads (kernels/gemm.cpp), each call one fixed
    // block on one thread, so that the bits never depend on the thread count. OpenBLAS must not
    // add threads of its own: its pthreads build takes a global count; its OpenMP build starts a
    // team of omp_get_max_threads() threads from any thread outside an OpenMP region (as the
    // engine's pool threads are), and that count is a per-thread setting.
    static const bool one_blas_thread = [] {
        openblas_set_num_threads(1);
        return true;
    }();
#if defined(_OPENMP)
    thread_local const bool one_openmp_thread = [] {
        omp_set_num_threads(1);
        return true;
    }();
    (void)one_openmp_thread;
#endif
    (void)one_blas_thread;
#endif
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
#endif
}

}  // namespace tinygpt
