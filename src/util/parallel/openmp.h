// util/parallel.h's backend for native builds: OpenMP (libgomp with GCC, libomp with Clang;
// Homebrew's libomp on macOS). The BLAS shares this runtime (OpenBLAS's OpenMP build).
#pragma once
#include <omp.h>

namespace tinygpt {

inline int parallel_threads() {
    return omp_get_max_threads();
}
inline void set_parallel_threads(int threads) {
    omp_set_num_threads(threads);
}
inline bool in_parallel() {
    return omp_in_parallel() != 0;
}
inline int processor_count() {
    return omp_get_num_procs();
}

// Runs body(thread, threads) once on each of up to `threads` threads (fewer if the runtime
// gives fewer; `threads` is then what it gave) and returns when all have finished.
template <typename Body>
void parallel_region(int threads, Body&& body) {
    if (threads <= 1 || omp_in_parallel()) {
        body(0, 1);
        return;
    }
#pragma omp parallel num_threads(threads)
    body(omp_get_thread_num(), omp_get_num_threads());
}

}  // namespace tinygpt
