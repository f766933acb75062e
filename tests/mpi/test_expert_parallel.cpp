// Expert parallelism (moe/expert_parallel.h) over the MPI world: P ranks, each with its own
// tokens, must compute what one process computes on the P batches concatenated in rank order.
// Every rank runs that single-process reference itself (full weights, all P·N tokens) and
// compares its own slice: outputs equal, losses equal (aux the group's, ce and z averaged over
// the ranks), and gradients P times the reference's (each rank's loss is a mean over its own
// tokens), the replicated ones after summing over the group, the experts' on their owner.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "dist/communicator.h"
#include "model/model.h"
#include "moe/expert_parallel.h"
#include "moe_layer_fixture.h"
#include "test_util.h"
#include "util/error.h"

namespace tinygpt {
namespace {

constexpr double kTolerance = 1e-5;

// max |a − b| over the largest |b|: the relative error of a tensor. The floor keeps a gradient
// that is zero but for float noise (the k bias's: softmax ignores a shift of all scores) from
// dividing noise by noise.
double relative_error(const float* a, const float* b, size_t n) {
    double diff = 0.0, scale = 1e-5;
    for (size_t i = 0; i < n; ++i) {
        diff = std::max(diff, static_cast<double>(std::fabs(a[i] - b[i])));
        scale = std::max(scale, static_cast<double>(std::fabs(b[i])));
    }
    return diff / scale;
}

std::vector<float> scaled(const float* v, size_t n, float factor) {
    std::vector<float> out(v, v + n);
    for (float& x : out) x *= factor;
    return out;
}

double group_mean(Communicator& group, double value) {
    group.allreduce_sum(&value, 1);
    return value / group.size();
}

// ---- One MoE layer ----------------------------------------------------------------------------

struct LayerCase {
    FfnKind ffn;
    int topk;
    bool renormalize;
    float capacity_factor = 0.0f;
};

void check_layer(const LayerCase& c) {
    Communicator& group = world();
    const int P = group.size(), g = group.rank();
    const int N = 12, C = 8, M = 12, E = 4;  // N tokens per rank
    if (E % P != 0) GTEST_SKIP() << "the world size must divide " << E << " experts";
    const float aux_weight = 0.05f, z_weight = 0.1f;
    MoeOptions options;
    options.jitter = 0.1f;
    options.jitter_seed = 21;
    options.capacity_factor = c.capacity_factor;

    // The reference: one process, all P·N tokens, every expert.
    MoeShape all{P * N, C, M, E, c.topk};
    all.ffn = c.ffn;
    all.renormalize = c.renormalize;
    all.with_jitter = true;
    const test::MoeLayerWeights w(all, 31);
    const size_t NC = static_cast<size_t>(N) * C;
    const std::vector<float> x = test::random_vector(NC * P, 5);
    const std::vector<float> dout = test::random_vector(NC * P, 6);
    MoeWorkspace ref(all, DispatchMode::Sparse);
    std::vector<float> out(NC * P), dx(NC * P);
    test::MoeLayerGrads ref_grads(w);
    moe_forward(out.data(), ref.act, x.data(), w.params(), all, DispatchMode::Sparse, options);
    moe_backward(dx.data(), ref_grads.grads(w, 0, E), ref.scratch, dout.data(), x.data(), ref.act,
                 w.params(), all, DispatchMode::Sparse, aux_weight, z_weight);

    // This rank: its N tokens, its experts. Its output gradient is P times the reference's
    // slice, as the gradient of a loss averaged over its own tokens would be.
    MoeShape mine = all;
    mine.tokens = N;
    mine.remote_experts = true;
    ExpertParallelScratch scratch;
    ExpertParallelLayer layer(group, E, scratch);
    const ExpertShard shard = layer.shard();
    MoeWorkspace local(mine, DispatchMode::Sparse);
    std::vector<float> out_ep(NC), dx_ep(NC);
    test::MoeLayerGrads grads(w);
    const std::vector<float> dout_ep = scaled(dout.data() + g * NC, NC, static_cast<float>(P));
    layer.forward(out_ep.data(), local.act, x.data() + g * NC, w.params(shard.first, shard.count),
                  mine, options);
    layer.backward(dx_ep.data(), grads.grads(w, shard.first, shard.count), local.scratch,
                   dout_ep.data(), x.data() + g * NC, local.act, w.params(shard.first, shard.count),
                   mine, aux_weight, z_weight);

    EXPECT_LT(relative_error(out_ep.data(), out.data() + g * NC, NC), kTolerance);
    EXPECT_NEAR(local.act.aux, ref.act.aux, kTolerance * ref.act.aux);
    EXPECT_NEAR(group_mean(group, local.act.z), ref.act.z, kTolerance * ref.act.z);
    EXPECT_EQ(std::vector<int>(local.act.counts, local.act.counts + E),
              std::vector<int>(ref.act.counts, ref.act.counts + E));
    double dropped = local.act.dropped;
    group.allreduce_sum(&dropped, 1);
    EXPECT_EQ(dropped, ref.act.dropped);
    if (c.capacity_factor > 0.0f) {
        EXPECT_GT(ref.act.dropped, 0) << "the case drops nothing";
    }

    const std::vector<float> dx_ref = scaled(dx.data() + g * NC, NC, static_cast<float>(P));
    EXPECT_LT(relative_error(dx_ep.data(), dx_ref.data(), NC), kTolerance);
    group.allreduce_sum(grads.router.data(), grads.router.size());
    const std::vector<float> router_ref =
        scaled(ref_grads.router.data(), ref_grads.router.size(), static_cast<float>(P));
    EXPECT_LT(relative_error(grads.router.data(), router_ref.data(), router_ref.size()),
              kTolerance);
    // This rank's experts hold every rank's tokens' gradient.
    const size_t first = w.per_expert() * shard.first, count = w.per_expert() * shard.count;
    const std::vector<float> experts_ref =
        scaled(ref_grads.experts.data() + first, count, static_cast<float>(P));
    EXPECT_LT(relative_error(grads.experts.data() + first, experts_ref.data(), count), kTolerance);
}

TEST(ExpertParallel, LayerGeluTop2Renormalised) {
    check_layer({FfnKind::Gelu, 2, true});
}
TEST(ExpertParallel, LayerGeluTop1NotRenormalised) {
    check_layer({FfnKind::Gelu, 1, false});
}
TEST(ExpertParallel, LayerSwiGluTop2NotRenormalised) {
    check_layer({FfnKind::SwiGlu, 2, false});
}
TEST(ExpertParallel, LayerSwiGluTop2Renormalised) {
    check_layer({FfnKind::SwiGlu, 2, true});
}
TEST(ExpertParallel, LayerCapacityKeepsThePairsInGlobalTokenOrder) {
    check_layer({FfnKind::Gelu, 2, true, 0.75f});
    check_layer({FfnKind::SwiGlu, 1, false, 0.5f});
}

TEST(ExpertParallel, RanksWithDifferentTokenCountsAreRefusedOnEveryRank) {
    Communicator& group = world();
    if (group.size() < 2 || 4 % group.size() != 0) GTEST_SKIP() << "needs a group of 2 or 4";
    MoeShape s{8 + group.rank(), 8, 12, 4, 2};
    const test::MoeLayerWeights w(s, 3);
    ExpertParallelScratch scratch;
    ExpertParallelLayer layer(group, s.experts, scratch);
    MoeWorkspace work(s, DispatchMode::Sparse);
    const std::vector<float> x = test::random_vector(static_cast<size_t>(s.tokens) * s.C, 1);
    std::vector<float> out(x.size());
    EXPECT_THROW(layer.forward(out.data(), work.act, x.data(),
                               w.params(layer.shard().first, layer.shard().count), s),
                 Error);
}

// ---- Whole models -----------------------------------------------------------------------------

ModelConfig gpt_moe() {
    ModelConfig cfg = test::model_config({.layers = 2, .experts = 4, .topk = 2});
    cfg.jitter = 0.05f;
    cfg.z_loss_weight = 0.01f;
    cfg.aux_weight = 0.05f;
    return cfg;
}

ModelConfig llama_moe() {
    ModelConfig cfg = test::model_config({.layers = 3, .experts = 4, .topk = 2});
    cfg.arch = Arch::Llama;
    cfg.kv_heads = 1;
    cfg.shared_ffn = 12;
    cfg.moe_ffn = 16;
    cfg.moe_layers = moe_layout_rule(cfg.layers, 1, /*dense_first=*/1);
    cfg.norm_topk = NormTopk::Off;
    cfg.jitter = 0.05f;
    cfg.z_loss_weight = 0.01f;
    return cfg;
}

void check_model(const ModelConfig& cfg) {
    Communicator& group = world();
    const int P = group.size(), g = group.rank();
    if (cfg.experts % P != 0) GTEST_SKIP() << "the world size must divide the experts";
    const int B = 2, T = 8, N = B * T;
    std::vector<int> tokens(static_cast<size_t>(P) * N), targets(tokens.size());
    for (size_t i = 0; i < tokens.size(); ++i) {
        tokens[i] = static_cast<int>((i * 37 + 11) % cfg.vocab);
        targets[i] = static_cast<int>((i * 53 + 7) % cfg.vocab);
    }
    const uint64_t seed = 9, noise_seed = 77;

    Model reference(cfg);
    reference.init(seed);
    reference.set_training(true, noise_seed);
    const ForwardResult ref = reference.forward(tokens.data(), targets.data(), P * B, T);
    reference.backward(1.0f);

    Communicator* expert_group = &group;
    Model model(cfg, expert_group);
    model.init(seed);
    model.set_training(true, noise_seed);
    const ForwardResult mine = model.forward(tokens.data() + g * N, targets.data() + g * N, B, T);
    model.backward(1.0f);

    EXPECT_NEAR(group_mean(group, mine.ce), ref.ce, kTolerance * ref.ce);
    EXPECT_NEAR(mine.aux, ref.aux, kTolerance * ref.aux);
    EXPECT_NEAR(group_mean(group, mine.z), ref.z, kTolerance * ref.z);
    double dropped = static_cast<double>(mine.dropped);
    group.allreduce_sum(&dropped, 1);
    EXPECT_EQ(dropped, ref.dropped);
    if (cfg.capacity_factor > 0.0f) {
        EXPECT_GT(ref.dropped, 0) << "the case drops nothing";
    }
    for (int l = 0; l < cfg.layers; ++l) {
        const std::vector<float> load = model.expert_load(l), ref_load = reference.expert_load(l);
        ASSERT_EQ(load.size(), ref_load.size());
        if (!load.empty()) {
            EXPECT_LT(relative_error(load.data(), ref_load.data(), load.size()), 1e-6);
        }
    }

    // The same weights as the full model, tensor by tensor.
    const ParameterLayout& layout = model.layout();
    EXPECT_EQ(layout.shard().size(cfg.experts), cfg.experts / P);
    for (const ParamInfo& p : layout.entries()) {
        const ParamInfo& full = reference.layout().at(p.id);
        ASSERT_EQ(
            relative_error(model.params() + p.offset, reference.params() + full.offset, p.numel),
            0.0)
            << p.name;
    }
    // Gradients: replicated tensors summed over the group, experts from their owner; both are
    // P times the reference (each rank's ce and z are means over its own tokens).
    std::vector<float> summed(model.grads(), model.grads() + model.buffer_floats());
    group.allreduce_sum(summed.data(), summed.size());
    for (const ParamInfo& p : layout.entries()) {
        const float* grad = (p.id.is_routed_expert() ? model.grads() : summed.data()) + p.offset;
        const std::vector<float> expected = scaled(
            reference.grads() + reference.layout().at(p.id).offset, p.numel, static_cast<float>(P));
        EXPECT_LT(relative_error(grad, expected.data(), p.numel), kTolerance) << p.name;
    }
}

TEST(ExpertParallel, GptMoeModelMatchesTheConcatenatedBatch) {
    check_model(gpt_moe());
}

TEST(ExpertParallel, GptMoeModelWithCapacityMatchesTheConcatenatedBatch) {
    ModelConfig cfg = gpt_moe();
    cfg.capacity_factor = 0.75f;
    check_model(cfg);
}

TEST(ExpertParallel, LlamaMoeModelWithSharedExpertAndDenseFirstLayer) {
    check_model(llama_moe());
}

TEST(ExpertParallel, ModelRefusesDenseDispatchInAGroup) {
    Communicator* group = &world();
    if (group->size() < 2) GTEST_SKIP() << "needs a group";
    ModelConfig cfg = gpt_moe();
    cfg.dispatch = DispatchMode::Dense;
    EXPECT_THROW(Model(cfg, group), Error);
    cfg.dispatch = DispatchMode::Sparse;
    cfg.experts = 3 * group->size() + 1;
    EXPECT_THROW(Model(cfg, group), Error);
}

}  // namespace
}  // namespace tinygpt
