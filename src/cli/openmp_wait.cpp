#include "cli/openmp_wait.h"

#include <omp.h>
#include <unistd.h>

#include <cstdlib>

namespace tinygpt::cli {

namespace {
// Spin iterations before a waiting libgomp thread sleeps (its default: 300,000), and the
// equivalent for libomp in milliseconds. Chosen by bench/under_load.py (BENCHMARKS.md).
#if defined(__clang__)
constexpr int kLibompBlocktimeMs = 1;
#elif defined(__GNUC__) && defined(__linux__)
constexpr const char* kGompSpinCount = "10000";
#endif
}  // namespace

std::string openmp_wait_description() {
    for (const char* name : {"OMP_WAIT_POLICY", "KMP_BLOCKTIME"})
        if (const char* value = std::getenv(name))
            return std::string(name) + "=" + value + " (from the environment)";
#if defined(__GNUC__) && !defined(__clang__) && defined(__linux__)
    if (const char* value = std::getenv("GOMP_SPINCOUNT"))
        return std::string("GOMP_SPINCOUNT=") + value +
               (std::string(value) == kGompSpinCount ? " (tinygpt's)" : " (from the environment)");
    return "libgomp's default spin (GOMP_SPINCOUNT=300000)";
#elif defined(__clang__)
    return "KMP_BLOCKTIME=" + std::to_string(kLibompBlocktimeMs) + " ms (tinygpt's)";
#else
    return "the OpenMP runtime's default";
#endif
}

void limit_openmp_spinning(char** argv) {
#if defined(__GNUC__) && !defined(__clang__) && defined(__linux__)
    if (std::getenv("GOMP_SPINCOUNT") || std::getenv("OMP_WAIT_POLICY")) return;
    if (setenv("GOMP_SPINCOUNT", kGompSpinCount, 1) != 0) return;
    execv("/proc/self/exe", argv);  // returns only on failure: run on with libgomp's default
#elif defined(__clang__)
    (void)argv;
    if (!std::getenv("KMP_BLOCKTIME") && !std::getenv("OMP_WAIT_POLICY"))
        kmp_set_blocktime(kLibompBlocktimeMs);
#else
    (void)argv;
#endif
}

}  // namespace tinygpt::cli
