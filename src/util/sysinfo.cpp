#include "util/sysinfo.h"

#include <sys/resource.h>

#include <cstdio>
#include <string>

#include "kernels/blas.h"
#include "util/parallel.h"

namespace tinygpt {

void set_num_threads(int n) {
    if (n <= 0) return;
    set_parallel_threads(n);
}

int num_threads() {
    return parallel_threads();
}

std::string blas_description() {
#if defined(TINYGPT_ACCELERATE)
    return "Apple Accelerate";
#elif defined(TINYGPT_OPENBLAS)
    std::string config = openblas_get_config();
    const int mode = openblas_get_parallel();  // 0 sequential, 1 pthreads, 2 OpenMP
    const char* mode_name = mode == 2 ? "openmp" : mode == 1 ? "pthreads" : "sequential";
    std::string result =
        "OpenBLAS (" + std::string(mode_name) + ", " + openblas_get_corename() + ")";
    (void)config;
    return result;
#elif defined(TINYGPT_NO_BLAS)
    return "none (the portable sgemm of kernels/portable_sgemm.cpp)";
#else
    return "unknown CBLAS";
#endif
}

std::string simd_description() {
#if defined(__AVX512F__)
    return "AVX-512";
#elif defined(__AVX2__) && defined(__FMA__)
    return "AVX2+FMA";
#elif defined(__AVX__)
    return "AVX";
#elif defined(__ARM_NEON)
    return "NEON";
#elif defined(__SSE2__)
    return "SSE2";
#else
    return "scalar";
#endif
}

double peak_rss_mb() {
    struct rusage usage {};
    getrusage(RUSAGE_SELF, &usage);
#ifdef __APPLE__
    return static_cast<double>(usage.ru_maxrss) / (1024.0 * 1024.0);  // bytes on macOS
#else
    return static_cast<double>(usage.ru_maxrss) / 1024.0;  // KiB on Linux
#endif
}

std::string system_summary() {
    char buf[256];
    std::snprintf(buf, sizeof buf, "%s · %d threads · %s", blas_description().c_str(),
                  num_threads(), simd_description().c_str());
    return buf;
}

}  // namespace tinygpt
