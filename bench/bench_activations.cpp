// The element-wise activation kernels of the two families at the shape of training config (h)
// (4096 rows: batch 8 × ctx 256 × top-2; SwiGLU width 704): SwiGLU forward and backward and the
// GPT family's biased GELU. All use fast_exp; the SwiGLU forward is the kernel that exposed the
// denormal blend of fast_exp's old ternary clamp (BENCHMARKS.md). Gate values are drawn from
// [−1, 1], where that bug cost the most.
//
//   ./build/bench/bench_activations --benchmark_min_time=1
#include <benchmark/benchmark.h>

#include <vector>

#include "kernels/gelu.h"
#include "kernels/swiglu.h"
#include "util/rng.h"

namespace tinygpt {
namespace {

constexpr int kRows = 4096, kWidth = 704;

std::vector<float> uniform_values(size_t n, uint64_t seed) {
    Rng rng(seed);
    std::vector<float> v(n);
    for (float& x : v) x = static_cast<float>(2.0 * rng.uniform() - 1.0);
    return v;
}

void report_elements(benchmark::State& state) {
    state.counters["Melem/s"] = benchmark::Counter(static_cast<double>(kRows) * kWidth / 1e6,
                                                   benchmark::Counter::kIsIterationInvariantRate);
}

void BM_SwiGluForward(benchmark::State& state) {
    const auto gu = uniform_values(static_cast<size_t>(kRows) * 2 * kWidth, 1);
    std::vector<float> h(static_cast<size_t>(kRows) * kWidth);
    for (auto _ : state) {
        swiglu_forward(h.data(), gu.data(), kRows, kWidth);
        benchmark::ClobberMemory();
    }
    report_elements(state);
}
BENCHMARK(BM_SwiGluForward)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_SwiGluBackward(benchmark::State& state) {
    const auto gu = uniform_values(static_cast<size_t>(kRows) * 2 * kWidth, 2);
    const auto dh = uniform_values(static_cast<size_t>(kRows) * kWidth, 3);
    std::vector<float> dgu(gu.size());
    for (auto _ : state) {
        swiglu_backward(dgu.data(), dh.data(), kWidth, gu.data(), kRows, kWidth);
        benchmark::ClobberMemory();
    }
    report_elements(state);
}
BENCHMARK(BM_SwiGluBackward)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_BiasGeluForward(benchmark::State& state) {
    const auto pre0 = uniform_values(static_cast<size_t>(kRows) * kWidth, 4);
    const auto bias = uniform_values(kWidth, 5);
    std::vector<float> pre(pre0.size()), out(pre0.size());
    for (auto _ : state) {
        state.PauseTiming();
        pre = pre0;  // the kernel adds the bias in place
        state.ResumeTiming();
        bias_gelu_forward(out.data(), pre.data(), bias.data(), kRows, kWidth);
        benchmark::ClobberMemory();
    }
    report_elements(state);
}
BENCHMARK(BM_BiasGeluForward)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace tinygpt

BENCHMARK_MAIN();
