#include "util/sysinfo.h"

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>
#ifdef __linux__
#include <sched.h>
#endif

#include "kernels/blas.h"
#include "util/parallel.h"

namespace tinygpt {

void set_num_threads(int n) {
    if (n <= 0) return;
    set_parallel_threads(n);
#ifdef TINYGPT_OPENBLAS
    openblas_set_num_threads(n);
#endif
}

int num_threads() {
    return parallel_threads();
}

#ifdef __linux__
namespace {

// Busy and total jiffies per CPU from /proc/stat ("cpuN user nice system idle iowait ...").
std::vector<std::pair<uint64_t, uint64_t>> cpu_ticks(int cpus) {
    std::vector<std::pair<uint64_t, uint64_t>> ticks(cpus, {0, 0});
    std::ifstream in("/proc/stat");
    std::string line;
    while (std::getline(in, line)) {
        int cpu = -1;
        unsigned long long v[8] = {};
        if (std::sscanf(line.c_str(), "cpu%d %llu %llu %llu %llu %llu %llu %llu %llu", &cpu, &v[0],
                        &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) < 5 ||
            cpu < 0 || cpu >= cpus)
            continue;
        uint64_t total = 0;
        for (unsigned long long x : v) total += x;
        ticks[cpu] = {total - v[3] - v[4], total};  // idle and iowait are not busy
    }
    return ticks;
}

}  // namespace

int cores_free_of_other_work() {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) != 0) return std::max(1, processor_count());
    const int cpus = CPU_SETSIZE;
    const auto before = cpu_ticks(cpus);
    std::this_thread::sleep_for(std::chrono::milliseconds(40));  // 4 ticks at USER_HZ 100
    const auto after = cpu_ticks(cpus);
    double busy = 0.0;
    int mine = 0;
    for (int c = 0; c < cpus; ++c) {
        if (!CPU_ISSET(c, &set)) continue;
        ++mine;
        const uint64_t total = after[c].second - before[c].second;
        if (total > 0) busy += static_cast<double>(after[c].first - before[c].first) / total;
    }
    // This process slept meanwhile: what was busy is other work. A core counts as taken from
    // 75% busy: 40 ms is four ticks per CPU, and a daemon's blip of one or two must not halve
    // the threads of an idle machine.
    return std::max(1, mine - static_cast<int>(busy + 0.25));
}
#else
int cores_free_of_other_work() {
    return std::max(1, processor_count());
}
#endif

std::string blas_description() {
#if defined(TINYGPT_ACCELERATE)
    return "Apple Accelerate";
#elif defined(TINYGPT_OPENBLAS)
    std::string config = openblas_get_config();
    const int mode = openblas_get_parallel();  // 0 sequential, 1 pthreads, 2 OpenMP
    const char* mode_name = mode == 2 ? "openmp" : mode == 1 ? "pthreads" : "sequential";
    std::string result =
        "OpenBLAS (" + std::string(mode_name) + ", " + openblas_get_corename() + ")";
    if (mode == 1) result += " [warning: the pthreads build oversubscribes cores next to OpenMP]";
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
