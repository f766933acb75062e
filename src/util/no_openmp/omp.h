// The OpenMP calls of the engine for a build without OpenMP (WebAssembly: scripts/build-web.sh
// puts this folder on the include path instead of the compiler's <omp.h>). The `#pragma omp`
// lines are then ignored and every parallel region runs on the calling thread, so these answer
// as a one-thread OpenMP runtime would.
#pragma once

inline int omp_get_max_threads() {
    return 1;
}
inline int omp_get_num_threads() {
    return 1;
}
inline int omp_get_thread_num() {
    return 0;
}
inline int omp_get_num_procs() {
    return 1;
}
inline int omp_in_parallel() {
    return 0;
}
inline void omp_set_num_threads(int) {}
