// The one place that includes the platform's CBLAS header, and the one matrix product the engine
// asks of a BLAS. A build without one (TINYGPT_NO_BLAS: WebAssembly) uses kernels/portable_sgemm.
#pragma once
#if defined(TINYGPT_NO_BLAS)
#include "kernels/portable_sgemm.h"
#elif defined(TINYGPT_ACCELERATE)
#include <Accelerate/Accelerate.h>
#else
#include <cblas.h>
#endif

namespace tinygpt {

// C[m,n] = alpha · op(A) · op(B) + beta · C, row-major.
inline void blas_sgemm(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a,
                       int lda, const float* b, int ldb, float beta, float* c, int ldc) {
#if defined(TINYGPT_NO_BLAS)
    portable_sgemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
#else
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
#endif
}

}  // namespace tinygpt
