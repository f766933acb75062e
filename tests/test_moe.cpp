// The MoE layer: routing rules, counting-sort dispatch with and without a capacity, load-balance
// and z-loss, router jitter, finite-difference gradients of the whole layer (GELU and SwiGLU
// experts), and sparse dispatch against the dense reference path.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <type_traits>
#include <utility>

#include "moe/moe_layer.h"
#include "moe/shared_expert.h"
#include "moe_layer_fixture.h"
#include "test_util.h"

namespace tinygpt {
namespace {

using test::random_vector;

TEST(Router, SoftmaxTopKAndGates) {
    const RouterShape s{3, 2, 4, 2};
    // Router = identity-like so the logits are readable: logits[t] = x[t] · Wᵀ.
    const std::vector<float> w = {1, 0, 0, 1, 1, 1, -1, 0};  // [E=4, C=2]
    const std::vector<float> x = {2, 0, 0, 3, 1, 1};
    std::vector<float> probs(12), gates(6);
    std::vector<int> topk(6), counts(4);
    std::vector<float> lse(3);
    router_forward(probs.data(), topk.data(), gates.data(), counts.data(), lse.data(), x.data(),
                   w.data(), s);
    for (int t = 0; t < 3; ++t) {
        const float* p = probs.data() + t * 4;
        EXPECT_NEAR(std::accumulate(p, p + 4, 0.0), 1.0, 1e-6);
        // Chosen experts are the two most probable, in descending order.
        std::vector<int> order = {0, 1, 2, 3};
        std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return p[a] > p[b]; });
        EXPECT_EQ(topk[t * 2], order[0]);
        EXPECT_EQ(topk[t * 2 + 1], order[1]);
        // Mixtral rule for K = 2: renormalised over the chosen pair.
        EXPECT_NEAR(gates[t * 2], p[order[0]] / (p[order[0]] + p[order[1]]), 1e-6);
        EXPECT_NEAR(gates[t * 2] + gates[t * 2 + 1], 1.0, 1e-6);
    }
    // Token 0: logits (2, 0, 2, -2): a tie between experts 0 and 2 goes to the lower id.
    EXPECT_EQ(topk[0], 0);
    EXPECT_EQ(topk[1], 2);
    EXPECT_EQ(std::accumulate(counts.begin(), counts.end(), 0), 6);
}

TEST(Router, WithoutRenormalisationTheGatesAreTheSoftmaxProbabilities) {
    for (int K : {1, 3}) {
        const RouterShape s{2, 3, 5, K, /*renormalize=*/false};
        const auto w = random_vector(15, 1), x = random_vector(6, 2);
        std::vector<float> probs(10), gates(2 * K), lse(2);
        std::vector<int> topk(2 * K), counts(5);
        router_forward(probs.data(), topk.data(), gates.data(), counts.data(), lse.data(), x.data(),
                       w.data(), s);
        for (int t = 0; t < 2; ++t) {
            const float* p = probs.data() + t * 5;
            EXPECT_EQ(topk[t * K], std::max_element(p, p + 5) - p);
            for (int j = 0; j < K; ++j) EXPECT_FLOAT_EQ(gates[t * K + j], p[topk[t * K + j]]);
            // lse is the log-partition of the logits.
            double z = 0;
            for (int e = 0; e < 5; ++e) {
                double logit = 0;
                for (int c = 0; c < 3; ++c) logit += double{w[e * 3 + c]} * x[t * 3 + c];
                z += std::exp(logit);
            }
            EXPECT_NEAR(lse[t], std::log(z), 1e-5);
        }
    }
}

TEST(Router, ZLossIsTheMeanSquaredLogPartition) {
    const std::vector<float> lse = {1.0f, -2.0f, 3.0f};
    EXPECT_NEAR(router_z_loss(lse.data(), 3), (1.0 + 4.0 + 9.0) / 3, 1e-6);
}

TEST(Router, LoadBalanceLossIsOneAtPerfectBalanceAndGrowsWithImbalance) {
    const RouterShape s{4, 1, 4, 1};
    std::vector<float> uniform(16, 0.25f);
    std::vector<int> balanced = {1, 1, 1, 1}, collapsed = {4, 0, 0, 0};
    EXPECT_NEAR(load_balance_loss(uniform.data(), balanced.data(), s), 1.0, 1e-6);
    std::vector<float> peaked(16, 0.0f);
    for (int t = 0; t < 4; ++t) peaked[t * 4] = 1.0f;
    EXPECT_NEAR(load_balance_loss(peaked.data(), collapsed.data(), s), 4.0, 1e-6);
}

TEST(Dispatch, CountingSortGroupsPairsByExpertStably) {
    const int N = 5, K = 2, E = 3;
    const std::vector<int> topk = {2, 0, 1, 2, 0, 1, 2, 1, 0, 2};
    std::vector<int> offsets(E + 1), row_token(N * K), pair_row(N * K);
    DispatchPlan plan{offsets.data(), row_token.data(), pair_row.data()};
    dispatch_plan_build(plan, topk.data(), N, K, E);
    EXPECT_EQ(offsets, (std::vector<int>{0, 3, 6, 10}));
    // Rows of each expert come in token order; every pair maps to a row of its expert.
    EXPECT_EQ(row_token, (std::vector<int>{0, 2, 4, 1, 2, 3, 0, 1, 3, 4}));
    for (int i = 0; i < N * K; ++i) {
        const int e = topk[i], row = pair_row[i];
        EXPECT_GE(row, offsets[e]);
        EXPECT_LT(row, offsets[e + 1]);
        EXPECT_EQ(row_token[row], i / K);
    }
}

TEST(Dispatch, CapacityDropsTheLatestPairsOfAFullExpert) {
    const int N = 5, K = 2, E = 3;
    const std::vector<int> topk = {2, 0, 1, 2, 0, 1, 2, 1, 0, 2};  // expert 2 gets 4 pairs
    std::vector<int> offsets(E + 1), row_token(N * K), pair_row(N * K);
    DispatchPlan plan{offsets.data(), row_token.data(), pair_row.data()};
    EXPECT_EQ(expert_capacity(1.0f, N, K, E), 4);  // ⌈10/3⌉
    EXPECT_EQ(expert_capacity(0.5f, N, K, E), 2);
    const int kept = dispatch_plan_build(plan, topk.data(), N, K, E, /*capacity=*/2);
    EXPECT_EQ(kept, 6);
    EXPECT_EQ(offsets, (std::vector<int>{0, 2, 4, 6}));
    // Expert 0: pairs of tokens 0, 2 (token 4's is dropped); expert 2: tokens 0, 1.
    EXPECT_EQ((std::vector<int>(row_token.begin(), row_token.begin() + 6)),
              (std::vector<int>{0, 2, 1, 2, 0, 1}));
    EXPECT_EQ(pair_row, (std::vector<int>{4, 0, 2, 5, 1, 3, -1, -1, -1, -1}));
}

// A whole MoE layer with its parameters, for gradient and parity checks.
struct MoeFixture {
    MoeShape shape;
    DispatchMode mode;
    MoeOptions options;
    float aux_weight = 0.05f, z_weight = 0.0f;
    std::vector<float> x, router, weights;  // test::expert_floats(shape) per expert
    std::vector<float> out, r;
    MoeWorkspace work;
    MoeActivations& act = work.act;
    MoeScratch& scratch = work.scratch;

    size_t per_expert() const { return test::expert_floats(shape); }

    MoeFixture(MoeShape s, DispatchMode m, uint64_t seed) : shape(s), mode(m), work(s, m) {
        x = random_vector(static_cast<size_t>(s.tokens) * s.C, seed);
        router = random_vector(static_cast<size_t>(s.experts) * s.C, seed + 1, 1.5f);
        weights = random_vector(per_expert() * s.experts, seed + 2, 0.4f);
        r = random_vector(static_cast<size_t>(s.tokens) * s.C, seed + 3);
        out.resize(static_cast<size_t>(s.tokens) * s.C);
    }
    template <typename F, typename Vec>
    std::vector<MlpTensors<F>> experts(Vec& base) const {
        return test::expert_views<F>(base, shape, 0, shape.experts);
    }
    MoeParams params() const { return {router.data(), experts<const float>(weights)}; }
    // Σ out ⊙ r + aux_weight · aux + z_weight · z
    double loss() {
        moe_forward(out.data(), act, x.data(), params(), shape, mode, options);
        return test::weighted_sum(out.data(), r) + aux_weight * act.aux + z_weight * act.z;
    }
    // The chosen set of each token (slot order does not change the output).
    std::vector<int> routing() const {
        std::vector<int> chosen(act.topk,
                                act.topk + static_cast<size_t>(shape.tokens) * shape.topk);
        for (int t = 0; t < shape.tokens; ++t)
            std::sort(chosen.begin() + t * shape.topk, chosen.begin() + (t + 1) * shape.topk);
        return chosen;
    }
    // Gradients of loss() with respect to x, the router and the expert weights.
    void gradients(std::vector<float>& dx, std::vector<float>& d_router,
                   std::vector<float>& d_weights) {
        loss();
        dx.assign(x.size(), 0.0f);
        d_router.assign(router.size(), 0.0f);
        d_weights.assign(weights.size(), 0.0f);
        MoeGrads g{d_router.data(), experts<float>(d_weights)};
        moe_backward(dx.data(), g, scratch, r.data(), x.data(), act, params(), shape, mode,
                     aux_weight, z_weight);
    }
};

MoeShape shape_of(int N, int C, int M, int E, int K, FfnKind ffn = FfnKind::Gelu,
                  bool renormalize = true) {
    MoeShape s{N, C, M, E, K};
    s.ffn = ffn;
    s.renormalize = renormalize;
    s.with_jitter = true;
    return s;
}

void check_gradients(MoeFixture& f) {
    std::vector<float> dx, d_router, d_weights;
    f.gradients(dx, d_router, d_weights);
    const std::vector<int> routing = f.routing();
    auto loss = [&] {
        const double l = f.loss();
        EXPECT_EQ(f.routing(), routing) << "perturbation crossed a top-K tie";
        return l;
    };
    test::expect_gradient_matches("dx", f.x, dx, loss, 2e-2, 2e-3f, 72);
    test::expect_gradient_matches("d_router", f.router, d_router, loss, 2e-2, 2e-3f, 72);
    test::expect_gradient_matches("d_experts", f.weights, d_weights, loss, 2e-2, 2e-3f, 200);
}

// seed: one whose routing margins survive the finite-difference steps.
void check_layer_gradients(int E, int K, FfnKind ffn = FfnKind::Gelu, bool renormalize = true,
                           uint64_t seed = 0) {
    MoeFixture f(shape_of(12, 6, 10, E, K, ffn, renormalize), DispatchMode::Sparse,
                 seed ? seed : 40 + E * 10 + K);
    check_gradients(f);
}

TEST(MoeLayer, GradientsTop1) {
    check_layer_gradients(4, 1);
}
TEST(MoeLayer, GradientsTop2) {
    check_layer_gradients(4, 2);
}
TEST(MoeLayer, GradientsTopAll) {
    check_layer_gradients(3, 3);
}
TEST(MoeLayer, GradientsTop1Renormalised) {
    check_layer_gradients(4, 1, FfnKind::Gelu, true);  // gate ≡ 1: only aux trains the router
}
TEST(MoeLayer, GradientsSwiGluExpertsWithAndWithoutRenormalisation) {
    check_layer_gradients(4, 2, FfnKind::SwiGlu, true);
    check_layer_gradients(5, 3, FfnKind::SwiGlu, false, 7);
}

TEST(MoeLayer, ZLossGradientReachesTheRouter) {
    MoeFixture f(shape_of(16, 4, 6, 4, 2), DispatchMode::Sparse, 8);
    f.r.assign(f.r.size(), 0.0f);  // only the z term remains
    f.aux_weight = 0.0f;
    f.z_weight = 1.0f;
    std::vector<float> dx, d_router, d_weights;
    f.gradients(dx, d_router, d_weights);
    EXPECT_GT(f.act.z, 0.0f);
    EXPECT_EQ(test::max_abs(d_weights), 0.0);
    auto loss = [&] { return f.loss(); };
    test::expect_gradient_matches("d_router(z)", f.router, d_router, loss, 2e-2, 2e-3f, 64);
    test::expect_gradient_matches("dx(z)", f.x, dx, loss, 2e-2, 2e-3f, 64);
}

TEST(MoeLayer, CapacityDropsPairsAndTheGradientsFollow) {
    // Few experts, a tight capacity: some pairs must be dropped; those tokens lose that slot's
    // contribution and the gradients (checked by finite differences) still match.
    MoeFixture f(shape_of(12, 6, 10, 3, 2, FfnKind::SwiGlu), DispatchMode::Sparse, 61);
    f.options.capacity_factor = 0.75f;
    f.z_weight = 0.1f;
    f.loss();
    EXPECT_GT(f.act.dropped, 0);
    EXPECT_EQ(f.act.dropped, 12 * 2 - f.act.plan.offsets[3]);
    for (int e = 0; e < 3; ++e)
        EXPECT_LE(f.act.plan.offsets[e + 1] - f.act.plan.offsets[e],
                  expert_capacity(0.75f, 12, 2, 3));
    check_gradients(f);
    // A generous capacity drops nothing and equals the dropless layer.
    MoeFixture g(shape_of(12, 6, 10, 3, 2, FfnKind::SwiGlu), DispatchMode::Sparse, 61);
    g.loss();
    const std::vector<float> dropless = g.out;
    g.options.capacity_factor = 3.0f;
    g.loss();
    EXPECT_EQ(g.act.dropped, 0);
    EXPECT_EQ(g.out, dropless);
}

TEST(MoeLayer, JitterOffIsExactAndJitterOnIsSeededAndDifferentiable) {
    MoeFixture f(shape_of(12, 6, 10, 4, 2, FfnKind::SwiGlu), DispatchMode::Sparse, 71);
    f.loss();
    const std::vector<float> plain = f.out;
    f.options.jitter = 0.0f;
    f.options.jitter_seed = 99;
    f.loss();
    EXPECT_EQ(f.out, plain);  // jitter 0: bit-identical, whatever the seed
    f.options.jitter = 0.3f;
    f.loss();
    const std::vector<float> noisy = f.out;
    EXPECT_NE(noisy, plain);
    for (size_t i = 0; i < static_cast<size_t>(12) * 6; ++i) {
        EXPECT_GE(f.act.noise[i], 0.7f);
        EXPECT_LE(f.act.noise[i], 1.3f);
    }
    f.loss();
    EXPECT_EQ(f.out, noisy);  // a pure function of the seed
    check_gradients(f);       // the noise is fixed for a seed, so the layer is differentiable
}

TEST(MoeLayer, AuxLossGradientReachesTheRouter) {
    MoeFixture f({16, 4, 6, 4, 2}, DispatchMode::Sparse, 7);
    f.r.assign(f.r.size(), 0.0f);  // only the aux term remains
    f.aux_weight = 1.0f;
    std::vector<float> dx, d_router, d_weights;
    f.gradients(dx, d_router, d_weights);
    EXPECT_GT(test::max_abs(d_router), 1e-4);
    EXPECT_EQ(test::max_abs(d_weights), 0.0);  // experts do not enter the aux loss
    auto loss = [&] { return f.loss(); };
    test::expect_gradient_matches("d_router(aux)", f.router, d_router, loss, 2e-2, 2e-3f, 64);
}

void check_sparse_matches_dense(int E, int K, FfnKind ffn = FfnKind::Gelu, bool renormalize = true,
                                float capacity_factor = 0.0f) {
    MoeFixture sparse(shape_of(40, 8, 12, E, K, ffn, renormalize), DispatchMode::Sparse, 90 + K);
    MoeFixture dense(shape_of(40, 8, 12, E, K, ffn, renormalize), DispatchMode::Dense, 90 + K);
    for (MoeFixture* f : {&sparse, &dense}) {
        f->options.capacity_factor = capacity_factor;
        f->z_weight = 0.01f;
    }
    std::vector<float> sdx, srouter, sweights, ddx, drouter, dweights;
    sparse.gradients(sdx, srouter, sweights);
    dense.gradients(ddx, drouter, dweights);
    EXPECT_EQ(sparse.routing(), dense.routing());
    EXPECT_LT(test::max_abs_diff(sparse.out.data(), dense.out.data(), sparse.out.size()), 1e-5);
    EXPECT_FLOAT_EQ(sparse.act.aux, dense.act.aux);
    EXPECT_EQ(sparse.act.dropped, dense.act.dropped);
    if (capacity_factor > 0) {
        EXPECT_GT(sparse.act.dropped, 0);
    }
    EXPECT_LT(test::max_abs_diff(sdx.data(), ddx.data(), sdx.size()), 1e-5);
    EXPECT_LT(test::max_abs_diff(srouter.data(), drouter.data(), srouter.size()), 1e-5);
    EXPECT_LT(test::max_abs_diff(sweights.data(), dweights.data(), sweights.size()), 1e-5);
}

TEST(MoeLayer, SparseMatchesDenseTop1) {
    check_sparse_matches_dense(6, 1);
}
TEST(MoeLayer, SparseMatchesDenseTop2) {
    check_sparse_matches_dense(6, 2);
}
TEST(MoeLayer, SparseMatchesDenseTopAll) {
    check_sparse_matches_dense(6, 6);
}

TEST(MoeLayer, SparseMatchesDenseSwiGlu) {
    check_sparse_matches_dense(6, 2, FfnKind::SwiGlu, true);
    check_sparse_matches_dense(6, 3, FfnKind::SwiGlu, false);
}
TEST(MoeLayer, SparseMatchesDenseWithCapacityDropping) {
    check_sparse_matches_dense(6, 2, FfnKind::SwiGlu, false, 0.5f);
}

TEST(SharedExpert, GateAndMlpGradientsMatchFiniteDifferences) {
    const int N = 10, C = 6, S = 8;
    auto x = random_vector(static_cast<size_t>(N) * C, 81);
    auto w = random_vector(static_cast<size_t>(3) * S * C + C, 82, 0.5f);  // gate|up, down, gate
    const auto r = random_vector(static_cast<size_t>(N) * C, 83);
    auto tensors = [&](auto* base) {
        using F = std::remove_pointer_t<decltype(base)>;
        SharedExpertTensors<F> t;
        t.mlp.w_in = base;
        t.mlp.w_out = base + 2 * S * C;
        t.gate = base + 3 * S * C;
        return t;
    };
    Arena measure;
    SharedExpertActivations act;
    SharedExpertScratch scratch;
    act.layout(measure, N, C, S);
    scratch.layout(measure, N, C, S);
    AlignedBuffer buffer = aligned_alloc_bytes(measure.bytes());
    Arena arena(buffer.get());
    act.layout(arena, N, C, S);
    scratch.layout(arena, N, C, S);
    std::vector<float> out(static_cast<size_t>(N) * C);
    auto loss = [&] {
        std::fill(out.begin(), out.end(), 0.5f);  // the forward adds to what is there
        shared_expert_forward(out.data(), act, x.data(), tensors(std::as_const(w).data()), N, C, S);
        return test::weighted_sum(out.data(), r);
    };
    loss();
    for (int t = 0; t < N; ++t) {
        EXPECT_GT(act.gate[t], 0.0f);
        EXPECT_LT(act.gate[t], 1.0f);
    }
    std::vector<float> dx(x.size(), 0.25f), dw(w.size(), 0.0f);
    shared_expert_backward(dx.data(), tensors(dw.data()), scratch, r.data(), x.data(), act,
                           tensors(std::as_const(w).data()), N, C, S);
    for (float& v : dx) v -= 0.25f;  // the backward accumulates into dx
    test::expect_gradient_matches("dx", x, dx, loss, 2e-2, 2e-3f, 60);
    test::expect_gradient_matches("d_weights", w, dw, loss, 2e-2, 2e-3f, 120);
}

TEST(MoeLayer, SparseMatchesDenseWithManyExpertsInParallel) {
    // 16 experts over 2 threads exercises the one-expert-per-thread schedule, including
    // experts that receive no tokens.
    check_sparse_matches_dense(16, 2);
}

}  // namespace
}  // namespace tinygpt
