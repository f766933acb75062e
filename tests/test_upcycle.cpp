// Sparse upcycling (model/upcycle.h), for both families: which tensors are copied, created or
// perturbed, and the exactness upcycle_exactness() claims, checked against the models: the same
// logits as the dense model where it says "exact", the dense model with each upcycled MLP's
// output scaled by K/E where it names that factor, and a per-token factor (the sum of the token's
// chosen gates) at layer level where it names none.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "kernels/ffn.h"
#include "model/model.h"
#include "model/model_weights.h"
#include "model/params.h"
#include "model/upcycle.h"
#include "moe/moe_layer.h"
#include "test_util.h"
#include "util/error.h"

namespace tinygpt {
namespace {

constexpr int kTokenCount = 12;

ModelConfig dense_config(Arch arch) {
    ModelConfig cfg = test::model_config(
        {.vocab = 64, .ctx = 16, .layers = 3, .d_model = 32, .heads = 4, .d_mlp = 48});
    cfg.arch = arch;
    if (arch == Arch::Llama) {  // the Llama family's optional tensors too: all are carried over
        cfg.kv_heads = 2;
        cfg.qkv_bias = true;
        cfg.qk_norm = QkNorm::PerHead;
    }
    return cfg;
}

// A dense model whose every tensor, norms and biases included, holds distinct values, so that a
// tensor copied from the wrong place (or not at all) changes the logits.
struct DenseModel {
    ModelConfig cfg;
    std::vector<float> w;
    ModelWeights weights() const { return ModelWeights::from_f32(cfg, w.data()); }
};

DenseModel dense_model(Arch arch, uint64_t seed = 7) {
    DenseModel d{dense_config(arch), {}};
    const ParameterLayout layout(d.cfg);
    d.w.assign(layout.total(), 0.0f);
    init_parameters(layout, d.w.data(), seed);
    Rng rng(seed + 1);
    for (const ParamInfo& p : layout.entries()) {
        const float spread = p.shape.size() == 1 ? 0.2f : 0.05f;  // MLP outputs that matter
        for (size_t i = 0; i < p.numel; ++i)
            d.w[p.offset + i] += static_cast<float>(rng.normal() * spread);
    }
    return d;
}

std::vector<int> tokens(int vocab) {
    std::vector<int> t(kTokenCount);
    for (int i = 0; i < kTokenCount; ++i) t[i] = (i * 37 + 5) % vocab;
    return t;
}

std::vector<float> logits(const ModelConfig& cfg, const float* weights) {
    Model model(cfg, weights);
    model.reserve(1, kTokenCount);
    const std::vector<int> ids = tokens(cfg.vocab);
    model.forward(ids.data(), nullptr, 1, kTokenCount);
    return {model.logits(), model.logits() + static_cast<size_t>(kTokenCount) * cfg.vocab};
}

double max_diff(const std::vector<float>& a, const std::vector<float>& b) {
    return test::max_abs_diff(a.data(), b.data(), a.size());
}

// Float rounding of the gated sum, relative to the logits' size.
double tolerance(const std::vector<float>& reference) {
    return 2e-5 * std::max(1.0, test::max_abs(reference));
}

std::string describe(const UpcycleOptions& o, Arch arch) {
    return std::string(arch_name(arch)) + " E=" + std::to_string(o.experts) +
           " K=" + std::to_string(o.topk) + " norm=" + norm_topk_name(o.norm_topk) +
           " router=" + router_init_name(o.router_init) + " every=" + std::to_string(o.moe_every) +
           " dense_first=" + std::to_string(o.moe_dense_first) +
           " shared=" + std::to_string(o.shared_ffn);
}

UpcycleOptions options(int experts, int topk, NormTopk norm = NormTopk::Auto,
                       RouterInit router = RouterInit::Random) {
    UpcycleOptions o;
    o.experts = experts;
    o.topk = topk;
    o.norm_topk = norm;
    o.router_init = router;
    return o;
}

// The configurations whose gates sum to 1 (renormalised, or all E chosen), each with both
// routers, some with a per-layer layout and (Llama) a shared expert.
std::vector<UpcycleOptions> exact_configurations(Arch arch) {
    std::vector<UpcycleOptions> list;
    for (RouterInit router : {RouterInit::Zero, RouterInit::Random}) {
        list.push_back(options(4, 2, NormTopk::Auto, router));
        list.push_back(options(8, 3, NormTopk::On, router));
        list.push_back(options(4, 1, NormTopk::On, router));   // every gate is 1
        list.push_back(options(3, 3, NormTopk::Off, router));  // the whole softmax sums to 1
        UpcycleOptions every = options(6, 2, NormTopk::Auto, router);
        every.moe_every = 2;
        list.push_back(every);
        UpcycleOptions first = options(2, 2, NormTopk::Auto, router);
        first.moe_dense_first = 1;
        if (arch == Arch::Llama) first.shared_ffn = 20;
        list.push_back(first);
    }
    return list;
}

class Upcycle : public ::testing::TestWithParam<Arch> {};

TEST_P(Upcycle, RenormalisedGatesGiveTheDenseModelsLogits) {
    const DenseModel dense = dense_model(GetParam());
    const std::vector<float> reference = logits(dense.cfg, dense.w.data());
    for (const UpcycleOptions& o : exact_configurations(GetParam())) {
        const UpcycledModel moe = upcycle(dense.weights(), o);
        const UpcycleExactness claim = upcycle_exactness(moe.config, o);
        EXPECT_TRUE(claim.exact) << describe(o, GetParam());
        EXPECT_EQ(claim.scale, 1.0) << describe(o, GetParam());
        ASSERT_FALSE(claim.lines.empty());
        EXPECT_EQ(claim.lines[0].rfind("exact: ", 0), 0u) << claim.lines[0];
        EXPECT_LT(max_diff(logits(moe.config, moe.weights.data()), reference), tolerance(reference))
            << describe(o, GetParam());
    }
}

// The dense model with the MLP output of `layers` scaled by `factor` (GPT: fc_out and its bias;
// Llama: down_proj).
std::vector<float> scaled_mlp_outputs(const DenseModel& dense, const ModelConfig& moe,
                                      float factor) {
    std::vector<float> w = dense.w;
    const ParameterLayout layout(dense.cfg);
    for (const ParamInfo& p : layout.entries()) {
        const TensorRole r = p.id.role;
        const bool output =
            r == TensorRole::FfnOut || r == TensorRole::FfnOutBias || r == TensorRole::FfnDown;
        if (!output || !moe.is_moe_layer(p.id.layer)) continue;
        for (size_t i = 0; i < p.numel; ++i) w[p.offset + i] *= factor;
    }
    return w;
}

TEST_P(Upcycle, AZeroRouterWithoutRenormalisationScalesEachMlpByKOverE) {
    const DenseModel dense = dense_model(GetParam());
    const std::vector<float> reference = logits(dense.cfg, dense.w.data());
    UpcycleOptions every = options(8, 2, NormTopk::Off, RouterInit::Zero);
    every.moe_every = 2;
    for (const UpcycleOptions& o : {options(4, 1, NormTopk::Auto, RouterInit::Zero),
                                    options(8, 2, NormTopk::Off, RouterInit::Zero), every}) {
        const UpcycledModel moe = upcycle(dense.weights(), o);
        const UpcycleExactness claim = upcycle_exactness(moe.config, o);
        EXPECT_FALSE(claim.exact) << describe(o, GetParam());
        EXPECT_EQ(claim.scale, static_cast<double>(o.topk) / o.experts);
        EXPECT_EQ(claim.lines[0].rfind("not exact: ", 0), 0u) << claim.lines[0];
        EXPECT_NE(claim.lines[0].find("K/E = " + std::to_string(o.topk) + "/" +
                                      std::to_string(o.experts)),
                  std::string::npos)
            << claim.lines[0];
        const std::vector<float> upcycled = logits(moe.config, moe.weights.data());
        EXPECT_GT(max_diff(upcycled, reference), 100 * tolerance(reference))
            << "the scaling must show in the logits: " << describe(o, GetParam());
        const std::vector<float> scaled =
            scaled_mlp_outputs(dense, moe.config, static_cast<float>(claim.scale));
        const std::vector<float> expected = logits(dense.cfg, scaled.data());
        EXPECT_LT(max_diff(upcycled, expected), tolerance(expected)) << describe(o, GetParam());
    }
}

// Layer by layer: with a random router and no renormalisation, the MoE output of each token is
// the dense MLP's times the sum of its chosen gates.
TEST_P(Upcycle, ARandomRouterWithoutRenormalisationScalesEachTokenByItsGateSum) {
    const DenseModel dense = dense_model(GetParam());
    const UpcycleOptions o = options(6, 2, NormTopk::Off, RouterInit::Random);
    const UpcycledModel moe = upcycle(dense.weights(), o);
    const UpcycleExactness claim = upcycle_exactness(moe.config, o);
    EXPECT_FALSE(claim.exact);
    EXPECT_EQ(claim.scale, 0.0) << "not one number: per token";
    const ModelConfig& cfg = moe.config;
    const int N = kTokenCount, C = cfg.d_model, M = cfg.d_mlp, K = cfg.topk;
    const std::vector<float> x = test::random_vector(static_cast<size_t>(N) * C, 3);
    const auto moe_tensors = bind_tensors(ParameterLayout(cfg), cfg, moe.weights.data());
    const auto dense_tensors = bind_tensors(ParameterLayout(dense.cfg), dense.cfg, dense.w.data());
    const MoeShape shape = cfg.moe_shape(N);
    for (int l = 0; l < cfg.layers; ++l) {
        const BlockTensors<const float>& block = moe_tensors.blocks[l];
        MoeParams params{block.router, {block.experts.begin(), block.experts.end()}};
        MoeWorkspace ws(shape, DispatchMode::Sparse);
        std::vector<float> out(static_cast<size_t>(N) * C);
        moe_forward(out.data(), ws.act, x.data(), params, shape, DispatchMode::Sparse);
        std::vector<float> y(out.size()), pre(static_cast<size_t>(N) * shape.pre_width()),
            h(static_cast<size_t>(N) * M);
        ffn_forward(shape.ffn, y.data(), pre.data(), h.data(), x.data(),
                    dense_tensors.blocks[l].mlp, N, C, M);
        double smallest = 1.0, largest = 0.0;
        for (int t = 0; t < N; ++t) {
            double gate_sum = 0.0;
            for (int k = 0; k < K; ++k) gate_sum += ws.act.gates[t * K + k];
            smallest = std::min(smallest, gate_sum);
            largest = std::max(largest, gate_sum);
            EXPECT_GE(gate_sum, static_cast<double>(K) / cfg.experts - 1e-6);
            for (int c = 0; c < C; ++c)
                EXPECT_NEAR(out[t * C + c], gate_sum * y[t * C + c], 1e-5) << "layer " << l;
        }
        EXPECT_LT(smallest, largest) << "the factor varies with the token";
    }
}

TEST_P(Upcycle, ExpertNoiseBreaksTheCopiesAndTheExactness) {
    const DenseModel dense = dense_model(GetParam());
    const std::vector<float> reference = logits(dense.cfg, dense.w.data());
    UpcycleOptions o = options(4, 2);
    o.expert_noise = 0.02f;
    const UpcycledModel moe = upcycle(dense.weights(), o);
    const UpcycleExactness claim = upcycle_exactness(moe.config, o);
    EXPECT_FALSE(claim.exact);
    EXPECT_EQ(claim.scale, 0.0);
    EXPECT_NE(claim.lines[0].find("--expert-noise"), std::string::npos) << claim.lines[0];
    const std::vector<float> noisy = logits(moe.config, moe.weights.data());
    const double diff = max_diff(noisy, reference);
    EXPECT_GT(diff, 100 * tolerance(reference)) << "the noise must show in the logits";
    EXPECT_LT(diff, 0.1 * test::max_abs(reference)) << "small noise, small change";
    // Each expert differs from the dense MLP, and from the others, by about σ relative.
    const ParameterLayout layout(moe.config), dense_layout(dense.cfg);
    const TensorRole role = GetParam() == Arch::Llama ? TensorRole::FfnGate : TensorRole::FfnIn;
    const ParamInfo& source = dense_layout.at(TensorId{role, 0, kDenseFfn});
    for (int e = 0; e < 4; ++e) {
        const ParamInfo& p = layout.at(TensorId{role, 0, e});
        double ratio_sq = 0.0;
        for (size_t i = 0; i < p.numel; ++i) {
            const double r = moe.weights[p.offset + i] / dense.w[source.offset + i] - 1.0;
            ratio_sq += r * r;
        }
        EXPECT_NEAR(std::sqrt(ratio_sq / p.numel), 0.02, 0.004) << "expert " << e;
    }
    // Deterministic for a seed; another seed gives other noise.
    EXPECT_EQ(upcycle(dense.weights(), o).weights, moe.weights);
    o.seed += 1;
    EXPECT_NE(upcycle(dense.weights(), o).weights, moe.weights);
}

TEST_P(Upcycle, RouterInitZeroSendsEveryTokenToTheFirstKExpertsAndRandomSpreadsThem) {
    const DenseModel dense = dense_model(GetParam());
    for (RouterInit init : {RouterInit::Zero, RouterInit::Random}) {
        const UpcycleOptions o = options(4, 2, NormTopk::Auto, init);
        const UpcycledModel moe = upcycle(dense.weights(), o);
        const ParameterLayout layout(moe.config);
        const ParamInfo& router = layout.at(TensorId{TensorRole::Router, 1});
        double sum_sq = 0.0;
        for (size_t i = 0; i < router.numel; ++i)
            sum_sq += moe.weights[router.offset + i] * moe.weights[router.offset + i];
        const double rms = std::sqrt(sum_sq / router.numel);
        Model model(moe.config, moe.weights.data());
        model.reserve(1, kTokenCount);
        const std::vector<int> ids = tokens(moe.config.vocab);
        model.forward(ids.data(), nullptr, 1, kTokenCount);
        // The share of the pairs that experts 2 and 3 take, over all layers (a random router
        // may still prefer experts 0 and 1 for every token of one layer).
        float others = 0.0f;
        for (int l = 0; l < moe.config.layers; ++l) {
            const std::vector<float> load = model.expert_load(l);
            others += load[2] + load[3];
            if (init == RouterInit::Zero) {
                EXPECT_EQ(load, (std::vector<float>{0.5f, 0.5f, 0.0f, 0.0f})) << "ties: lower ids";
            }
        }
        if (init == RouterInit::Zero) {
            EXPECT_EQ(rms, 0.0);
            EXPECT_NE(upcycle_exactness(moe.config, o).lines.back().find("experts 0..1"),
                      std::string::npos);
        } else {
            EXPECT_NEAR(rms, 0.02, 0.005) << "train's router initialisation";
            EXPECT_GT(others, 0.0f) << "tokens reach the other experts too";
        }
    }
}

TEST_P(Upcycle, TensorsAreCopiedFromTheDenseModelOrCreated) {
    const DenseModel dense = dense_model(GetParam());
    UpcycleOptions o = options(3, 2);
    o.moe_dense_first = 1;
    if (GetParam() == Arch::Llama) o.shared_ffn = 16;
    const UpcycledModel moe = upcycle(dense.weights(), o);
    EXPECT_EQ(moe.config.moe_layers, (std::vector<char>{0, 1, 1}));
    EXPECT_EQ(moe.config.expert_width(), dense.cfg.d_mlp);
    const ParameterLayout layout(moe.config), dense_layout(dense.cfg);
    auto values = [](const std::vector<float>& w, const ParamInfo& p) {
        return std::vector<float>(w.begin() + p.offset, w.begin() + p.offset + p.numel);
    };
    int copies = 0, created = 0;
    for (const ParamInfo& p : layout.entries()) {
        TensorId source = p.id;
        if (p.id.is_routed_expert()) source.expert = kDenseFfn;
        const ParamInfo* from = dense_layout.find(source);
        const std::vector<float> got = values(moe.weights, p);
        if (from) {
            EXPECT_EQ(got, values(dense.w, *from)) << describe_tensor(p.id);
            ++copies;
            continue;
        }
        ++created;  // the router and the shared expert
        const bool silent = p.id.expert == kSharedExpert && p.id.role == TensorRole::FfnDown;
        const bool all_zero = test::max_abs(got) == 0.0;
        EXPECT_EQ(all_zero, silent) << describe_tensor(p.id);
    }
    // Per MoE layer: the router (and the shared expert's three matrices and gate); the dense
    // MLP's tensors (Llama 3, GPT 2 and their biases) become 3 copies.
    const bool llama = GetParam() == Arch::Llama;
    const int moe_layers = 2, tensors_per_mlp = llama ? 3 : 4;
    EXPECT_EQ(created, moe_layers * (llama ? 1 + 3 + 1 : 1));
    EXPECT_EQ(copies, static_cast<int>(dense_layout.entries().size()) +
                          moe_layers * (3 - 1) * tensors_per_mlp);
}

TEST_P(Upcycle, TypedWeightsAreWidenedFirst) {
    const DenseModel dense = dense_model(GetParam());
    for (WeightDtype dtype : {WeightDtype::BF16, WeightDtype::Q8_0}) {
        const ModelWeights typed = dense.weights().converted(dtype);
        const std::vector<float> widened = typed.to_f32();
        const UpcycleOptions o = options(4, 2);
        const UpcycledModel from_typed = upcycle(typed, o);
        EXPECT_EQ(from_typed.weights,
                  upcycle(ModelWeights::from_f32(dense.cfg, widened.data()), o).weights)
            << dtype_name(dtype);
        const std::vector<float> reference = logits(dense.cfg, widened.data());
        EXPECT_LT(max_diff(logits(from_typed.config, from_typed.weights.data()), reference),
                  tolerance(reference))
            << dtype_name(dtype);
    }
}

INSTANTIATE_TEST_SUITE_P(BothFamilies, Upcycle, ::testing::Values(Arch::Gpt, Arch::Llama),
                         [](const auto& p) { return std::string(arch_name(p.param)); });

TEST(UpcycleRefusals, OneClearErrorEach) {
    const ModelConfig gpt = dense_config(Arch::Gpt);
    auto message = [&](const ModelConfig& cfg, const UpcycleOptions& o) -> std::string {
        try {
            upcycled_config(cfg, o);
        } catch (const Error& e) {
            return e.what();
        }
        return "(accepted)";
    };
    ModelConfig moe = gpt;
    moe.experts = 4;
    moe.topk = 2;
    EXPECT_NE(message(moe, options(4, 2)).find("already has MoE layers"), std::string::npos);
    ModelConfig mixed = moe;
    mixed.moe_layers = {0, 1, 0};
    EXPECT_NE(message(mixed, options(4, 2)).find("already has MoE layers"), std::string::npos);
    EXPECT_NE(message(gpt, options(4, 5)).find("--topk"), std::string::npos);
    EXPECT_NE(message(gpt, options(1, 1)).find("--experts"), std::string::npos);
    UpcycleOptions wide = options(4, 2);
    wide.moe_ffn = 64;
    EXPECT_NE(message(gpt, wide).find("--moe-ffn 64"), std::string::npos);
    wide.moe_ffn = gpt.d_mlp;
    EXPECT_EQ(message(gpt, wide), "(accepted)") << "the dense width may be named";
    UpcycleOptions shared = options(4, 2);
    shared.shared_ffn = 8;
    EXPECT_NE(message(gpt, shared).find("Llama-family"), std::string::npos);
    UpcycleOptions none = options(4, 2);
    none.moe_every = 4;  // (i + 1) % 4 == 0 for no i < 3
    EXPECT_NE(message(gpt, none).find("no MoE layer"), std::string::npos);
    UpcycleOptions noisy = options(4, 2);
    noisy.expert_noise = -0.1f;
    EXPECT_NE(message(gpt, noisy).find("--expert-noise"), std::string::npos);
    EXPECT_THROW(parse_router_init("uniform"), Error);
    EXPECT_EQ(parse_router_init("zero"), RouterInit::Zero);
}

}  // namespace
}  // namespace tinygpt
