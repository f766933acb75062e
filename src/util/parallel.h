// Splits [0, n) into fixed chunks handed to OpenMP threads. Element loops should live in the
// callee over a contiguous range: GCC does not vectorise the body of `parallel for simd` loops
// with an `if` clause reliably, but it does vectorise a plain `omp simd` loop over a range.
// Fixed chunk boundaries also keep per-chunk reductions identical for any thread count.
#pragma once
#include <omp.h>

namespace tinygpt {

constexpr long kParallelChunk = 16384;

template <typename Fn>
void parallel_for_chunks(long n, Fn&& fn, long chunk = kParallelChunk) {
    const long chunks = (n + chunk - 1) / chunk;
#pragma omp parallel for schedule(static) if (chunks > 1 && !omp_in_parallel())
    for (long c = 0; c < chunks; ++c) {
        const long begin = c * chunk;
        fn(begin, (begin + chunk < n ? begin + chunk : n) - begin);
    }
}

}  // namespace tinygpt
