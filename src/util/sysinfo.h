// What the engine runs on: which BLAS, how many threads, which SIMD level. Printed by
// `tinygpt info` and in every training banner, because a slow BLAS is the most common trap.
#pragma once
#include <cstddef>
#include <string>

namespace tinygpt {

// Sets the thread count for both OpenMP regions and the BLAS (n <= 0 keeps the default).
void set_num_threads(int n);
int num_threads();

// Cores of this process's CPU set that other work is not using, measured over ~40 ms (Linux:
// per-CPU busy time in /proc/stat; elsewhere: all cores). At least 1.
int cores_free_of_other_work();

std::string blas_description();  // e.g. "OpenBLAS 0.3.21 (openmp, Haswell)"
std::string simd_description();  // e.g. "AVX2+FMA"
double peak_rss_mb();            // peak resident set size of this process
std::string system_summary();    // one line: BLAS, threads, SIMD

}  // namespace tinygpt
