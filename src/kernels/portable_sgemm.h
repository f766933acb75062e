// A CBLAS-free single-precision GEMM for builds without a BLAS (WebAssembly: scripts/build-web.sh).
// Native builds use the platform's CBLAS (kernels/blas.h) and test this one against a double
// reference (tests/test_portable_sgemm.cpp), so the browser's path is checked on every run.
#pragma once

namespace tinygpt {

// C[m,n] = alpha · op(A) · op(B) + beta · C, row-major; op(A) is [m,k], op(B) is [k,n]. Like
// BLAS, beta = 0 overwrites C without reading it (NaN in C does not propagate).
void portable_sgemm(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a,
                    int lda, const float* b, int ldb, float beta, float* c, int ldc);

}  // namespace tinygpt
