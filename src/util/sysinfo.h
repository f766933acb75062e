// What the engine runs on: which BLAS, how many threads, which SIMD level. Printed by
// `tinygpt info` and in every training banner, because a slow BLAS is the most common trap.
#pragma once
#include <cstddef>
#include <string>

namespace tinygpt {

// Sets the engine's thread count (n <= 0 keeps the default). The BLAS runs each call on the
// thread that makes it (kernels/blas.h).
void set_num_threads(int n);
int num_threads();

std::string blas_description();  // e.g. "OpenBLAS 0.3.21 (openmp, Haswell)"
std::string simd_description();  // e.g. "AVX2+FMA"
double peak_rss_mb();            // peak resident set size of this process
std::string system_summary();    // one line: BLAS, threads, SIMD

}  // namespace tinygpt
