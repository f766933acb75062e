// Expert parallelism on one process: the sharded parameter layout (moe/expert_shard.h) and the
// exchange over a group of one (moe/expert_parallel.h). The group runs are in tests/mpi.
#include <gtest/gtest.h>

#include <cstring>

#include "dist/communicator.h"
#include "model/params.h"
#include "moe/expert_parallel.h"
#include "moe_layer_fixture.h"
#include "test_util.h"
#include "util/error.h"

namespace tinygpt {
namespace {

ModelConfig moe_config(Arch arch) {
    test::Shape shape;
    shape.layers = 3;
    shape.experts = 4;
    shape.topk = 2;
    ModelConfig cfg = test::model_config(shape);
    cfg.arch = arch;
    if (arch == Arch::Llama) {
        cfg.shared_ffn = 8;
        cfg.moe_layers = moe_layout_rule(cfg.layers, 1, /*dense_first=*/1);
    }
    return cfg;
}

TEST(ExpertShard, SplitsTheExpertsEvenlyAndRefusesAnUnevenGroup) {
    EXPECT_TRUE(expert_shard(8, 1, 0).all());
    const ExpertShard third = expert_shard(8, 4, 2);
    EXPECT_EQ(third.first, 4);
    EXPECT_EQ(third.count, 2);
    EXPECT_TRUE(third.contains(5));
    EXPECT_FALSE(third.contains(6));
    EXPECT_THROW(expert_shard(6, 4, 0), Error);
}

TEST(ExpertShardLayout, HoldsTheSharedTensorsAndOnlyItsExperts) {
    for (Arch arch : {Arch::Gpt, Arch::Llama}) {
        const ModelConfig cfg = moe_config(arch);
        const ParameterLayout full(cfg);
        const ParameterLayout shard(cfg, expert_shard(cfg.experts, 2, 1));
        EXPECT_EQ(shard.shard().first, 2);
        size_t routed_full = 0, routed_shard = 0;
        for (const ParamInfo& p : full.entries()) {
            const ParamInfo* held = shard.find(p.id);
            const bool expected = !p.id.is_routed_expert() || p.id.expert >= 2;
            ASSERT_EQ(held != nullptr, expected) << p.name;
            if (p.id.is_routed_expert()) routed_full += p.numel;
            if (!held) continue;
            EXPECT_EQ(held->name, p.name);
            EXPECT_EQ(held->shape, p.shape);
            EXPECT_EQ(held->offset % 16, p.offset % 16) << "alignment of " << p.name;
            if (p.id.is_routed_expert()) routed_shard += p.numel;
        }
        EXPECT_EQ(routed_shard * 2, routed_full);
        EXPECT_EQ(shard.count(), full.count() - routed_full / 2);
        // Entries keep the full layout's order and are packed without gaps beyond alignment.
        size_t end = 0;
        for (const ParamInfo& p : shard.entries()) {
            EXPECT_GE(p.offset, end) << p.name;
            EXPECT_LT(p.offset, end + (p.joins_previous ? 1 : 16)) << p.name;
            end = p.offset + p.numel;
        }
        EXPECT_LE(end, shard.total());
        // A full shard is the unsharded layout, entry for entry.
        const ParameterLayout all(cfg, ExpertShard{});
        ASSERT_EQ(all.entries().size(), full.entries().size());
        for (size_t i = 0; i < full.entries().size(); ++i)
            EXPECT_EQ(all.entries()[i].offset, full.entries()[i].offset);
        EXPECT_EQ(all.total(), full.total());
        EXPECT_EQ(all.decay_count(), full.decay_count());
    }
}

TEST(ExpertShardLayout, BindsTheLocalExpertsInOrder) {
    const ModelConfig cfg = moe_config(Arch::Llama);
    const ParameterLayout shard(cfg, expert_shard(cfg.experts, 2, 1));
    std::vector<float> buffer(shard.total());
    const ModelTensors<float> t = bind_tensors(shard, cfg, buffer.data());
    for (int l = 0; l < cfg.layers; ++l) {
        if (!cfg.is_moe_layer(l)) {
            EXPECT_TRUE(t.blocks[l].experts.empty());
            continue;
        }
        ASSERT_EQ(t.blocks[l].experts.size(), 2u);
        for (int i = 0; i < 2; ++i) {
            const int global = 2 + i;
            EXPECT_EQ(t.blocks[l].experts[i].w_in,
                      buffer.data() + shard.at(TensorId{TensorRole::FfnGate, l, global}).offset);
            EXPECT_EQ(t.blocks[l].experts[i].w_out,
                      buffer.data() + shard.at(TensorId{TensorRole::FfnDown, l, global}).offset);
        }
        EXPECT_NE(t.blocks[l].router, nullptr);
        EXPECT_NE(t.blocks[l].shared.mlp.w_in, nullptr);
    }
}

TEST(ExpertShardLayout, InitGivesEachTensorItsSingleProcessValues) {
    for (Arch arch : {Arch::Gpt, Arch::Llama}) {
        const ModelConfig cfg = moe_config(arch);
        const ParameterLayout full(cfg);
        std::vector<float> full_values(full.total());
        init_parameters(full, full_values.data(), 7);
        for (int rank = 0; rank < 4; ++rank) {
            const ParameterLayout shard(cfg, expert_shard(cfg.experts, 4, rank));
            std::vector<float> values(shard.total());
            init_parameters(shard, values.data(), 7);
            for (const ParamInfo& p : shard.entries()) {
                const ParamInfo& f = full.at(p.id);
                EXPECT_EQ(std::memcmp(values.data() + p.offset, full_values.data() + f.offset,
                                      sizeof(float) * p.numel),
                          0)
                    << p.name << " on rank " << rank;
            }
        }
    }
}

// A group of one runs the exchange code with itself (the single-process communicator's
// collectives are copies): it must give the single-process layer's results bit for bit,
// capacity and jitter included.
TEST(ExpertParallelLayer, AGroupOfOneIsTheSingleProcessLayer) {
    for (FfnKind ffn : {FfnKind::Gelu, FfnKind::SwiGlu}) {
        MoeShape s{24, 8, 12, 4, 2};
        s.ffn = ffn;
        s.with_jitter = true;
        MoeOptions options;
        options.jitter = 0.1f;
        options.jitter_seed = 5;
        options.capacity_factor = 0.75f;
        const test::MoeLayerWeights w(s, 17);
        const std::vector<float> x = test::random_vector(static_cast<size_t>(s.tokens) * s.C, 3);
        const std::vector<float> dout = test::random_vector(x.size(), 4);

        MoeWorkspace single(s, DispatchMode::Sparse);
        std::vector<float> out(x.size()), dx(x.size());
        test::MoeLayerGrads g(w);
        moe_forward(out.data(), single.act, x.data(), w.params(), s, DispatchMode::Sparse, options);
        moe_backward(dx.data(), g.grads(w, 0, s.experts), single.scratch, dout.data(), x.data(),
                     single.act, w.params(), s, DispatchMode::Sparse, 0.05f, 0.1f);
        EXPECT_GT(single.act.dropped, 0);

        auto one = make_single_process_communicator();
        ExpertParallelScratch scratch;
        ExpertParallelLayer layer(*one, s.experts, scratch);
        MoeShape remote = s;
        remote.remote_experts = true;
        MoeWorkspace local(remote, DispatchMode::Sparse);
        std::vector<float> out_ep(x.size()), dx_ep(x.size());
        test::MoeLayerGrads g_ep(w);
        layer.forward(out_ep.data(), local.act, x.data(), w.params(), s, options);
        layer.backward(dx_ep.data(), g_ep.grads(w, 0, s.experts), local.scratch, dout.data(),
                       x.data(), local.act, w.params(), s, 0.05f, 0.1f);
        EXPECT_EQ(out_ep, out);
        EXPECT_EQ(local.act.aux, single.act.aux);
        EXPECT_EQ(local.act.z, single.act.z);
        EXPECT_EQ(local.act.dropped, single.act.dropped);
        EXPECT_EQ(layer.received_rows(), s.tokens * s.topk - single.act.dropped);
        EXPECT_EQ(layer.floats_sent(), 0);
        EXPECT_EQ(dx_ep, dx);
        EXPECT_EQ(g_ep.router, g.router);
        EXPECT_EQ(g_ep.experts, g.experts);
    }
}

}  // namespace
}  // namespace tinygpt
