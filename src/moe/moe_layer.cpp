#include "moe/moe_layer.h"

#include <algorithm>
#include <cstddef>
#include <numeric>

#include "kernels/gemm.h"
#include "util/error.h"
#include "util/parallel.h"

namespace tinygpt {

namespace {

// Runs fn(e, first_row, rows) for every expert with rows. Many segments: one expert per thread
// (largest first), each GEMM single-threaded (OpenBLAS runs serially inside a parallel region),
// which avoids a BLAS fork/join per small GEMM. Few segments: one at a time with threaded GEMMs.
template <typename Fn>
void for_each_expert(const int* offsets, int experts, Fn&& fn) {
    std::vector<int> order;
    order.reserve(experts);
    for (int e = 0; e < experts; ++e)
        if (offsets[e + 1] > offsets[e]) order.push_back(e);
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
        return offsets[a + 1] - offsets[a] > offsets[b + 1] - offsets[b];
    });
    const int threads = threads_for_region(true);
    const int active = static_cast<int>(order.size());
    if (threads > 1 && active >= 2 * threads) {
        parallel_for_dynamic(active, true, [&](long i) {
            const int e = order[i];
            fn(e, offsets[e], offsets[e + 1] - offsets[e]);
        });
    } else {
        for (int e : order) fn(e, offsets[e], offsets[e + 1] - offsets[e]);
    }
}

// Uniform in [0, 1) as a pure function of (seed, index): splitmix64 of the pair, so the noise
// of a token does not depend on threads or on which other tokens are in the batch.
float hashed_uniform(uint64_t seed, uint64_t index) {
    uint64_t z = seed + (index + 1) * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return static_cast<float>(z >> 40) * 0x1.0p-24f;
}

// Dense mode: expert e owns rows [e·N, (e+1)·N) of the expert buffers.
std::vector<int> dense_offsets(int experts, int tokens) {
    std::vector<int> offsets(experts + 1);
    for (int e = 0; e <= experts; ++e) offsets[e] = e * tokens;
    return offsets;
}

}  // namespace

void MoeActivations::layout(Arena& arena, const MoeShape& s, DispatchMode mode) {
    const size_t N = s.tokens, K = s.topk, E = s.experts, rows = s.expert_rows(mode);
    // With remote experts only the rows of this rank's own pairs are here: sent and received.
    const size_t hidden_rows = s.remote_experts ? 0 : rows;
    probs = arena.take<float>(N * E);
    lse = arena.take<float>(N);
    topk = arena.take<int>(N * K);
    gates = arena.take<float>(N * K);
    counts = arena.take<int>(E);
    plan.offsets = arena.take<int>(E + 1);
    plan.row_token = arena.take<int>(N * K);
    plan.pair_row = arena.take<int>(N * K);
    xg = mode == DispatchMode::Sparse ? arena.take<float>(rows * s.C) : nullptr;
    h_pre = arena.take<float>(hidden_rows * s.pre_width());
    h = arena.take<float>(hidden_rows * s.M);
    y = arena.take<float>(rows * s.C);
    noise = s.with_jitter ? arena.take<float>(N * s.C) : nullptr;
    router_in = s.with_jitter ? arena.take<float>(N * s.C) : nullptr;
}

void MoeScratch::layout(Arena& arena, const MoeShape& s, DispatchMode mode) {
    const size_t N = s.tokens, rows = s.expert_rows(mode);
    d_gates = arena.take<float>(N * s.topk);
    d_logits = arena.take<float>(N * s.experts);
    dy = arena.take<float>(rows * s.C);
    dh = arena.take<float>((s.remote_experts ? 0 : rows) * s.pre_width());
    dxg = arena.take<float>(rows * s.C);
}

MoeWorkspace::MoeWorkspace(const MoeShape& shape, DispatchMode mode) {
    Arena measure;
    act.layout(measure, shape, mode);
    scratch.layout(measure, shape, mode);
    buffer = aligned_alloc_bytes(measure.bytes());
    Arena real(buffer.get());
    act.layout(real, shape, mode);
    scratch.layout(real, shape, mode);
}

void moe_route(MoeActivations& act, const float* x, const float* w_router, const MoeShape& s,
               const MoeOptions& options, long first_token) {
    act.jittered = options.jitter > 0.0f;
    const float* router_in = x;
    if (act.jittered) {
        require(act.noise != nullptr, "router jitter needs a layout with jitter buffers");
        const float eps = options.jitter;
        const size_t n = static_cast<size_t>(s.tokens) * s.C;
        const uint64_t first = static_cast<uint64_t>(first_token) * s.C;  // element index
        parallel_for(n, n >= 65536, [&](long i) {
            act.noise[i] =
                1.0f + eps * (2.0f * hashed_uniform(options.jitter_seed, first + i) - 1.0f);
            act.router_in[i] = x[i] * act.noise[i];
        });
        router_in = act.router_in;
    }
    router_forward(act.probs, act.topk, act.gates, act.counts, act.lse, router_in, w_router,
                   s.router());
    act.z = router_z_loss(act.lse, s.tokens);
}

void experts_forward(float* y, float* h_pre, float* h, const float* x, const int* offsets,
                     const std::vector<MlpWeights>& weights, const MoeShape& s, ExpertInput input) {
    const int C = s.C, M = s.M, P = s.pre_width();
    for_each_expert(offsets, static_cast<int>(weights.size()), [&](int e, int r0, int rows) {
        const size_t o = static_cast<size_t>(r0);
        const float* in = input == ExpertInput::Grouped ? x + o * C : x;
        ffn_forward(s.ffn, y + o * C, h_pre + o * P, h + o * M, in, weights[e], rows, C, M);
    });
}

void experts_backward(float* dx, const std::vector<MlpGrads>& grads, float* dh, const float* dy,
                      const float* x, const float* h_pre, const float* h, const int* offsets,
                      const std::vector<MlpWeights>& weights, const MoeShape& s,
                      ExpertInput input) {
    const int C = s.C, M = s.M, P = s.pre_width();
    for_each_expert(offsets, static_cast<int>(weights.size()), [&](int e, int r0, int rows) {
        const size_t o = static_cast<size_t>(r0);
        const float* in = input == ExpertInput::Grouped ? x + o * C : x;
        ffn_backward(s.ffn, dx + o * C, grads[e], dh + o * P, dy + o * C, in, h_pre + o * P,
                     h + o * M, weights[e], rows, C, M);
    });
}

void moe_router_backward(float* dx, float* d_router, MoeScratch& sc, const float* x,
                         const MoeActivations& act, const float* w_router, RouterShape router,
                         float aux_weight, float z_weight) {
    const int N = router.tokens, C = router.C, E = router.experts;
    router_backward(sc.d_logits, act.probs, act.topk, act.gates, sc.d_gates, act.counts, act.lse,
                    aux_weight, z_weight, router);
    linear_backward(dx, d_router, nullptr, sc.d_logits, act.jittered ? act.router_in : x, w_router,
                    N, C, E);
    if (act.jittered) {  // ∂(x ⊙ noise)/∂x
        const size_t n = static_cast<size_t>(N) * C;
        parallel_for_chunks(static_cast<long>(n), [&](long begin, long count) {
            float* d = dx + begin;
            const float* noise = act.noise + begin;
#pragma omp simd
            for (long i = 0; i < count; ++i) d[i] *= noise[i];
        });
    }
}

void moe_forward(float* out, MoeActivations& act, const float* x, const MoeParams& params,
                 const MoeShape& s, DispatchMode mode, const MoeOptions& options) {
    const int N = s.tokens, C = s.C, E = s.experts, K = s.topk;
    require(static_cast<int>(params.experts.size()) == E,
            "the MoE layer needs all its experts (expert parallelism: moe/expert_parallel.h)");
    moe_route(act, x, params.router, s, options, /*first_token=*/0);
    act.aux = load_balance_loss(act.probs, act.counts, s.router());
    const int capacity =
        options.capacity_factor > 0.0f ? expert_capacity(options.capacity_factor, N, K, E) : 0;
    act.dropped = N * K - dispatch_plan_build(act.plan, act.topk, N, K, E, capacity);

    if (mode == DispatchMode::Sparse) {
        dispatch_gather(act.xg, x, act.plan, act.plan.offsets[E], C);
        experts_forward(act.y, act.h_pre, act.h, act.xg, act.plan.offsets, params.experts, s);
        dispatch_combine(out, act.y, act.gates, act.plan, N, K, C);
        return;
    }
    // Dense reference: every expert on all N tokens, then the gated sum over the chosen ones.
    const std::vector<int> offsets = dense_offsets(E, N);
    experts_forward(act.y, act.h_pre, act.h, x, offsets.data(), params.experts, s,
                    ExpertInput::EveryToken);
    parallel_for(N, N >= 128, [&](long t) {
        float* o = out + static_cast<size_t>(t) * C;
        std::fill(o, o + C, 0.0f);
        for (int k = 0; k < K; ++k) {
            if (act.plan.pair_row[t * K + k] < 0) continue;  // dropped by the capacity
            const float g = act.gates[t * K + k];
            const float* yr = act.y + (static_cast<size_t>(act.topk[t * K + k]) * N + t) * C;
            for (int c = 0; c < C; ++c) o[c] += g * yr[c];
        }
    });
}

void moe_backward(float* dx, const MoeGrads& grads, MoeScratch& sc, const float* dout,
                  const float* x, const MoeActivations& act, const MoeParams& params,
                  const MoeShape& s, DispatchMode mode, float aux_weight, float z_weight) {
    const int N = s.tokens, C = s.C, E = s.experts, K = s.topk;
    if (mode == DispatchMode::Sparse) {
        dispatch_combine_backward(sc.dy, sc.d_gates, dout, act.y, act.gates, act.plan, N, K, C);
        experts_backward(sc.dxg, grads.experts, sc.dh, sc.dy, act.xg, act.h_pre, act.h,
                         act.plan.offsets, params.experts, s);
    } else {
        // Gate weights of every (token, expert): zero where the expert was not chosen.
        const size_t rows = static_cast<size_t>(E) * N;
        std::fill(sc.dy, sc.dy + rows * C, 0.0f);
        parallel_for(N, N >= 128, [&](long t) {
            const float* g_out = dout + static_cast<size_t>(t) * C;
            for (int k = 0; k < K; ++k) {
                if (act.plan.pair_row[t * K + k] < 0) {  // dropped by the capacity
                    sc.d_gates[t * K + k] = 0.0f;
                    continue;
                }
                const size_t row = static_cast<size_t>(act.topk[t * K + k]) * N + t;
                const float g = act.gates[t * K + k];
                float dot = 0.0f;
                for (int c = 0; c < C; ++c) {
                    dot += act.y[row * C + c] * g_out[c];
                    sc.dy[row * C + c] = g * g_out[c];
                }
                sc.d_gates[t * K + k] = dot;
            }
        });
        const std::vector<int> offsets = dense_offsets(E, N);
        experts_backward(sc.dxg, grads.experts, sc.dh, sc.dy, x, act.h_pre, act.h, offsets.data(),
                         params.experts, s, ExpertInput::EveryToken);
    }

    // Router: ∂L/∂logits, then the router Linear's backward writes dx (overwrite) ...
    moe_router_backward(dx, grads.router, sc, x, act, params.router, s.router(), aux_weight,
                        z_weight);
    // ... and the experts' input gradients are added on top.
    if (mode == DispatchMode::Sparse) {
        dispatch_gather_backward(dx, sc.dxg, act.plan, N, K, C);
    } else {
        parallel_for(N, N >= 128, [&](long t) {
            for (int e = 0; e < E; ++e) {
                const float* src = sc.dxg + (static_cast<size_t>(e) * N + t) * C;
                float* d = dx + static_cast<size_t>(t) * C;
                for (int c = 0; c < C; ++c) d[c] += src[c];
            }
        });
    }
}

}  // namespace tinygpt
