// Chooses weight_matmul's instruction-set path once, from what the CPU reports at run time (one
// x86-64 binary runs on any x86-64), and lets tests and benchmarks force another.
#include <atomic>
#include <cstdlib>
#include <string>
#include <vector>

#include "kernels/weight_matmul/kernels.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>
#endif

namespace tinygpt::weight_kernels {
namespace {

struct Path {
    const char* name;
    bool (*runs_here)();
    const IsaKernels& (*kernels)();
};

#if defined(__x86_64__) || defined(_M_X64)
bool has_f16c() {  // CPUID.1:ECX bit 29 (Clang's __builtin_cpu_supports does not know "f16c")
    unsigned eax, ebx, ecx, edx;
    return __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & (1u << 29)) != 0;
}
bool has_avx2() {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && has_f16c();
}
bool has_avx512() {  // BF16 and VNNI are optional: avx512.cpp checks for them itself
    return has_avx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl");
}
#endif
#if defined(__aarch64__)
bool has_neon() {  // Advanced SIMD is part of AArch64; neon.cpp checks SDOT and BF16 itself
    return true;
}
#endif
bool always() {
    return true;
}

// Best first.
const std::vector<Path>& paths() {
    static const std::vector<Path> all = {
#if defined(__x86_64__) || defined(_M_X64)
        {"avx512", has_avx512, avx512_kernels},
        {"avx2", has_avx2, avx2_kernels},
#endif
#if defined(__aarch64__)
        {"neon", has_neon, neon_kernels},
#endif
        {"portable", always, portable_kernels},
    };
    return all;
}

const IsaKernels* find_runnable(const std::string& name) {
    for (const Path& p : paths())
        if (name == p.name && p.runs_here()) return &p.kernels();
    return nullptr;
}

const IsaKernels* choose_at_start() {
    if (const char* forced = std::getenv("TINYGPT_WEIGHT_ISA"))
        if (const IsaKernels* k = find_runnable(forced)) return k;
    for (const Path& p : paths())
        if (p.runs_here()) return &p.kernels();
    return &portable_kernels();
}

std::atomic<const IsaKernels*>& active() {
    static std::atomic<const IsaKernels*> kernels{choose_at_start()};
    return kernels;
}

}  // namespace

const IsaKernels& active_kernels() {
    return *active().load(std::memory_order_relaxed);
}

}  // namespace tinygpt::weight_kernels

namespace tinygpt {

const char* weight_kernel_isa() {
    return weight_kernels::active_kernels().name;
}

std::vector<std::string> available_weight_kernel_isas() {
    std::vector<std::string> names;
    for (const auto& p : weight_kernels::paths())
        if (p.runs_here()) names.emplace_back(p.name);
    return names;
}

bool set_weight_kernel_isa(const std::string& isa) {
    const weight_kernels::IsaKernels* k = weight_kernels::find_runnable(isa);
    if (!k) return false;
    weight_kernels::active().store(k, std::memory_order_relaxed);
    return true;
}

}  // namespace tinygpt
