// The optimizer's pass over all parameters, at the size of config (f) (64 experts, ~136 M
// parameters): the one cost of a training step that grows with the number of experts. Reports
// ms per step and the memory bandwidth it sustains (p, g, m, v read; p, g, m, v written).
//
//   ./build/bench/bench_optimizer --benchmark_min_time=2
#include <benchmark/benchmark.h>

#include <vector>

#include "train/adamw.h"

namespace tinygpt {
namespace {

void BM_AdamWStep(benchmark::State& state) {
    const size_t n = static_cast<size_t>(state.range(0));
    std::vector<float> params(n, 0.01f), grads(n, 0.0f);
    AdamW opt(n, n / 2);
    for (auto _ : state) {
        state.PauseTiming();
        for (size_t i = 0; i < n; i += 1024) grads[i] = 1e-3f;  // sparse writes: cheap to set
        state.ResumeTiming();
        opt.step(params.data(), grads.data(), 1e-3f, 1.0f);
    }
    const double bytes = 9.0 * 4.0 * static_cast<double>(n);  // norm read + 4 reads + 4 writes
    state.counters["GB/s"] =
        benchmark::Counter(bytes / 1e9, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_AdamWStep)
    ->Arg(18014720)
    ->Arg(135799296)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

void BM_GlobalNorm(benchmark::State& state) {
    const size_t n = static_cast<size_t>(state.range(0));
    std::vector<float> grads(n, 1e-3f);
    for (auto _ : state) benchmark::DoNotOptimize(global_norm(grads.data(), n));
    state.counters["GB/s"] =
        benchmark::Counter(4.0 * n / 1e9, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_GlobalNorm)->Arg(135799296)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace tinygpt

BENCHMARK_MAIN();
