// MoE layer forward + backward at the d_model 256 shapes of the training benchmarks
// (B·T = 2048 tokens, d_mlp 1024): sparse dispatch against the dense reference path, and sparse
// dispatch at E = 8 vs E = 64 with K = 2 (compute should follow K, not E). Also the sgemm peak.
//
//   ./build/bench/bench_moe_layer --benchmark_min_time=1 --benchmark_repetitions=3
//       --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <vector>

#include "kernels/gemm.h"
#include "moe/moe_layer.h"
#include "util/rng.h"

namespace tinygpt {
namespace {

struct Layer {
    MoeShape shape;
    DispatchMode mode;
    std::vector<float> x, router, weights, grads, d_router, out, dout, dx;
    MoeWorkspace work;
    MoeActivations& act = work.act;
    MoeScratch& scratch = work.scratch;
    MoeParams params;
    MoeGrads g;

    Layer(MoeShape s, DispatchMode m) : shape(s), mode(m), work(s, m) {
        Rng rng(1);
        auto fill = [&](std::vector<float>& v, size_t n, float scale) {
            v.resize(n);
            for (auto& f : v) f = static_cast<float>(rng.normal() * scale);
        };
        const size_t per_expert = 2ull * s.M * s.C + s.M + s.C;
        fill(x, static_cast<size_t>(s.tokens) * s.C, 1.0f);
        fill(router, static_cast<size_t>(s.experts) * s.C, 0.02f);
        fill(weights, per_expert * s.experts, 0.02f);
        fill(dout, x.size(), 1e-3f);
        grads.assign(weights.size(), 0.0f);
        d_router.assign(router.size(), 0.0f);
        out.resize(x.size());
        dx.resize(x.size());
        params.router = router.data();
        g.router = d_router.data();
        for (int e = 0; e < s.experts; ++e) {
            const float* p = weights.data() + per_expert * e;
            float* q = grads.data() + per_expert * e;
            const size_t a = static_cast<size_t>(s.M) * s.C, b = a + s.M,
                         c = b + static_cast<size_t>(s.C) * s.M;
            params.experts.push_back({p, p + a, p + b, p + c});
            g.experts.push_back({q, q + a, q + b, q + c});
        }
    }
    void step() {
        moe_forward(out.data(), act, x.data(), params, shape, mode);
        moe_backward(dx.data(), g, scratch, dout.data(), x.data(), act, params, shape, mode, 0.01f);
    }
};

void BM_MoeLayer(benchmark::State& state) {
    const int experts = static_cast<int>(state.range(0)), topk = static_cast<int>(state.range(1));
    const DispatchMode mode = state.range(2) ? DispatchMode::Dense : DispatchMode::Sparse;
    Layer layer({2048, 256, 1024, experts, topk}, mode);
    for (auto _ : state) layer.step();
    // Useful FLOPs: forward + backward of K experts per token (6 · 2·C·M per token-expert).
    const double flops = 6.0 * 2048 * topk * 2.0 * 256 * 1024;
    state.counters["useful_GFLOP/s"] =
        benchmark::Counter(flops / 1e9, benchmark::Counter::kIsIterationInvariantRate);
    state.SetLabel(mode == DispatchMode::Sparse ? "sparse" : "dense");
}
BENCHMARK(BM_MoeLayer)
    ->ArgNames({"E", "K", "dense"})
    ->Args({8, 2, 0})
    ->Args({8, 2, 1})
    ->Args({8, 1, 0})
    ->Args({64, 2, 0})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

void BM_SgemmPeak(benchmark::State& state) {
    double best = 0;
    for (auto _ : state) best = std::max(best, measure_sgemm_peak_gflops(3));
    state.counters["GFLOP/s"] = best;
}
BENCHMARK(BM_SgemmPeak)->Iterations(1)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace tinygpt

BENCHMARK_MAIN();
