// The Llama/Qwen family and the per-layer MoE options at model level: presets and parameter
// counts, validation, sparse vs dense dispatch of whole models, file round trips (v3 keeps the
// family and the per-layer layout; v2 refuses what it cannot describe) and the MoE statistics.
#include <gtest/gtest.h>

#include "io/model_file.h"
#include "model/model.h"
#include "model_file_fixture.h"
#include "test_util.h"
#include "util/error.h"

namespace tinygpt {
namespace {

using namespace file_test;

ModelConfig qwen_style() {
    ModelConfig cfg = test::model_config(
        {.ctx = 16, .layers = 3, .d_model = 32, .heads = 4, .d_mlp = 40, .experts = 6, .topk = 2});
    cfg.arch = Arch::Llama;
    cfg.kv_heads = 2;
    cfg.moe_ffn = 24;
    cfg.shared_ffn = 20;
    cfg.moe_layers = moe_layout_rule(cfg.layers, 2, 0);
    cfg.norm_topk = NormTopk::Off;
    cfg.qkv_bias = true;
    cfg.z_loss_weight = 0.001f;
    return cfg;
}

TEST(LlamaFamily, PresetsFollowTheGptShapesWithSwiGluWidths) {
    const ModelConfig tiny = preset_config("tiny", Arch::Llama);
    EXPECT_TRUE(tiny.is_llama());
    EXPECT_EQ(tiny.d_model, 128);
    EXPECT_EQ(tiny.d_mlp, 352);  // 8/3 · 128 = 341.3, rounded up to a multiple of 32
    EXPECT_EQ(preset_config("small", Arch::Llama).d_mlp, 512);
    const ModelConfig tutorial = preset_config("tutorial");
    EXPECT_TRUE(tutorial.is_llama());
    EXPECT_EQ(tutorial.d_model, 768);
    EXPECT_EQ(tutorial.layers, 12);
    EXPECT_EQ(tutorial.experts, 8);
    EXPECT_EQ(tutorial.topk, 2);
    EXPECT_NO_THROW(tutorial.validate());
    EXPECT_NE(tutorial.describe().find("llama"), std::string::npos);
}

TEST(LlamaFamily, ParameterCountsAgreeWithTheLayout) {
    std::vector<ModelConfig> configs = {qwen_style(), preset_config("tiny", Arch::Llama),
                                        preset_config("tutorial")};
    ModelConfig tied = qwen_style();
    tied.tie_embeddings = true;
    tied.qk_norm = QkNorm::PerHead;
    tied.moe_layers = moe_layout_rule(tied.layers, 1, 1);
    configs.push_back(tied);
    ModelConfig gpt = test::model_config({.layers = 3, .experts = 4, .topk = 2});
    gpt.moe_layers = moe_layout_rule(gpt.layers, 1, 1);
    gpt.moe_ffn = 20;
    configs.push_back(gpt);
    for (const ModelConfig& cfg : configs) {
        const ParameterLayout layout(cfg);
        EXPECT_EQ(static_cast<int64_t>(layout.count()), cfg.total_params()) << cfg.describe();
        EXPECT_EQ(layout.manifest_order().size(), layout.entries().size());
        EXPECT_DOUBLE_EQ(cfg.total_params_estimate(), static_cast<double>(cfg.total_params()));
    }
    const ModelConfig cfg = qwen_style();
    const ParameterLayout layout(cfg);
    // Layer 1 is the only MoE layer; layers 0 and 2 are dense SwiGLU.
    EXPECT_TRUE(layout.contains("model.layers.1.mlp.experts.5.down_proj.weight"));
    EXPECT_TRUE(layout.contains("model.layers.0.mlp.gate_proj.weight"));
    EXPECT_FALSE(layout.contains("model.layers.0.mlp.gate.weight"));
    EXPECT_EQ(layout.at("model.layers.1.mlp.experts.0.gate_proj.weight").shape,
              (std::vector<int64_t>{24, 32}));
    EXPECT_EQ(layout.at("model.layers.1.mlp.shared_expert_gate.weight").shape,
              (std::vector<int64_t>{1, 32}));
    EXPECT_EQ(layout.at("model.layers.2.self_attn.k_proj.weight").shape,
              (std::vector<int64_t>{16, 32}));  // 2 kv heads of 8
    // Fused GEMM operands: q|k|v and gate|up are contiguous.
    EXPECT_EQ(layout.at("model.layers.2.self_attn.v_proj.weight").offset,
              layout.at("model.layers.2.self_attn.q_proj.weight").offset + 32 * 32 + 16 * 32);
    EXPECT_EQ(layout.at("model.layers.1.mlp.experts.3.up_proj.weight").offset,
              layout.at("model.layers.1.mlp.experts.3.gate_proj.weight").offset + 24 * 32);
    EXPECT_TRUE(layout.contains("lm_head.weight"));
    EXPECT_EQ(cfg.active_params(), cfg.total_params() - 1 * (6 - 2) * cfg.expert_params());
}

TEST(LlamaFamily, ValidationNamesTheFlag) {
    auto expect_invalid = [](ModelConfig cfg, const std::string& flag) {
        try {
            cfg.validate();
            ADD_FAILURE() << "accepted an invalid config; expected a complaint about " << flag;
        } catch (const Error& e) {
            EXPECT_NE(std::string(e.what()).find(flag), std::string::npos) << e.what();
        }
    };
    ModelConfig cfg = qwen_style();
    cfg.kv_heads = 3;
    expect_invalid(cfg, "--kv-heads");
    cfg = qwen_style();
    cfg.moe_layers = moe_layout_rule(cfg.layers, 1, 3);
    expect_invalid(cfg, "no MoE layer");
    cfg = qwen_style();
    cfg.moe_layers = {1, 1};
    expect_invalid(cfg, "2 entries for 3 layers");
    cfg = qwen_style();
    cfg.jitter = 1.5f;
    expect_invalid(cfg, "--moe-jitter");
    cfg = qwen_style();
    cfg.capacity_factor = -1.0f;
    expect_invalid(cfg, "--moe-capacity-factor");
    cfg = qwen_style();
    cfg.heads = 32;  // head size 1: RoPE needs pairs
    cfg.kv_heads = 0;
    expect_invalid(cfg, "even head size");
    ModelConfig gpt = test::model_config({.experts = 4, .topk = 2});
    gpt.shared_ffn = 8;
    expect_invalid(gpt, "--moe-shared-ffn needs --arch llama");
    gpt = test::model_config({});
    gpt.kv_heads = 1;
    expect_invalid(gpt, "--kv-heads needs --arch llama");
    EXPECT_THROW(parse_arch("mamba"), Error);
    EXPECT_THROW(parse_norm_topk("maybe"), Error);
}

// Sparse and dense dispatch of a whole model: the same loss and the same gradients.
void check_sparse_matches_dense(ModelConfig cfg) {
    const int B = 2, T = cfg.ctx;
    std::vector<int> tokens(B * T), targets(B * T);
    for (int i = 0; i < B * T; ++i) {
        tokens[i] = (i * 31 + 7) % cfg.vocab;
        targets[i] = (i * 17 + 3) % cfg.vocab;
    }
    cfg.dispatch = DispatchMode::Sparse;
    tinygpt::Model sparse(cfg);
    sparse.init(11);
    cfg.dispatch = DispatchMode::Dense;
    tinygpt::Model dense(cfg);
    std::copy(sparse.params(), sparse.params() + sparse.buffer_floats(), dense.params());
    for (tinygpt::Model* m : {&sparse, &dense}) m->set_training(true, 3);
    const ForwardResult a = sparse.forward(tokens.data(), targets.data(), B, T);
    const ForwardResult b = dense.forward(tokens.data(), targets.data(), B, T);
    EXPECT_NEAR(a.loss, b.loss, 1e-5);
    EXPECT_NEAR(a.aux, b.aux, 1e-6);
    EXPECT_NEAR(a.z, b.z, 1e-5);
    EXPECT_EQ(a.dropped, b.dropped);
    if (cfg.capacity_factor > 0) {
        EXPECT_GT(a.dropped, 0);
    }
    sparse.backward();
    dense.backward();
    double scale = 1e-6;
    for (size_t i = 0; i < sparse.buffer_floats(); ++i)
        scale = std::max(scale, static_cast<double>(std::fabs(dense.grads()[i])));
    EXPECT_LT(test::max_abs_diff(sparse.grads(), dense.grads(), sparse.buffer_floats()) / scale,
              1e-4);
}

TEST(LlamaFamily, SparseMatchesDenseWithSharedExpertNormOff) {
    check_sparse_matches_dense(qwen_style());
}
TEST(LlamaFamily, SparseMatchesDenseWithoutSharedExpertNormOn) {
    ModelConfig cfg = qwen_style();
    cfg.shared_ffn = 0;
    cfg.norm_topk = NormTopk::On;
    cfg.moe_layers.clear();
    cfg.qk_norm = QkNorm::PerHead;
    check_sparse_matches_dense(cfg);
}
TEST(LlamaFamily, SparseMatchesDenseWithJitterAndCapacity) {
    ModelConfig cfg = qwen_style();
    cfg.moe_layers.clear();
    cfg.jitter = 0.1f;
    cfg.capacity_factor = 0.6f;
    check_sparse_matches_dense(cfg);
}

TEST(LlamaFamily, TrainingOnlyOptionsDoNotChangeInference) {
    ModelConfig cfg = qwen_style();
    cfg.moe_layers.clear();
    cfg.jitter = 0.3f;
    cfg.capacity_factor = 0.5f;
    tinygpt::Model model(cfg);
    model.init(5);
    std::vector<int> tokens(16);
    for (int i = 0; i < 16; ++i) tokens[i] = i * 13 % 256;
    ModelConfig plain_cfg = cfg;
    plain_cfg.jitter = 0.0f;
    plain_cfg.capacity_factor = 0.0f;
    tinygpt::Model plain(plain_cfg, model.params());
    const ForwardResult a = model.forward(tokens.data(), tokens.data(), 1, 16);
    const ForwardResult b = plain.forward(tokens.data(), tokens.data(), 1, 16);
    EXPECT_EQ(a.loss, b.loss);
    EXPECT_EQ(a.dropped, 0);
    model.set_training(true, 1);
    const ForwardResult c = model.forward(tokens.data(), tokens.data(), 1, 16);
    EXPECT_GT(c.dropped, 0);
    EXPECT_NE(c.loss, a.loss);
    // Per-layer statistics: aux and z only in MoE layers.
    ASSERT_EQ(c.aux_per_block.size(), 3u);
    for (int l = 0; l < 3; ++l) EXPECT_GT(c.aux_per_block[l], 0.0f);
    EXPECT_EQ(model.expert_load(1).size(), 6u);
}

TEST_F(ModelFileTest, LlamaFamilyRoundTripsThroughV3AndV2IsRefused) {
    ModelConfig cfg = qwen_style();
    cfg.qk_norm = QkNorm::PerHead;
    cfg.tie_embeddings = true;
    cfg.rope_theta = 1e6f;
    cfg.norm_eps = 1e-6f;
    cfg.jitter = 0.01f;
    cfg.capacity_factor = 1.25f;
    const file_test::FlatModel model = make_model(cfg, 9);
    const std::string path = save(model, "llama.tinygpt");
    const ModelFile file = ModelFile::read(path);
    const ModelConfig& r = file.config();
    EXPECT_TRUE(r.is_llama());
    EXPECT_EQ(r.kv_head_count(), 2);
    EXPECT_EQ(r.expert_width(), 24);
    EXPECT_EQ(r.shared_ffn, 20);
    EXPECT_EQ(r.moe_layers, (std::vector<char>{0, 1, 0}));
    EXPECT_EQ(r.norm_topk, NormTopk::Off);
    EXPECT_TRUE(r.qkv_bias && r.qk_norm == QkNorm::PerHead && r.tie_embeddings);
    EXPECT_EQ(r.rope_theta, 1e6f);
    EXPECT_EQ(r.norm_eps, 1e-6f);
    EXPECT_EQ(r.z_loss_weight, 0.001f);
    EXPECT_EQ(r.jitter, 0.01f);
    EXPECT_EQ(r.capacity_factor, 1.25f);
    EXPECT_EQ(file.header()["config"]["moe"]["layers"], (json{"dense", "moe", "dense"}));
    EXPECT_TRUE(std::equal(model.w.begin(), model.w.end(), file.weights()));
    SaveOptions v2;
    v2.version = 2;
    expect_save_error([&] { save(model, "llama-v2.tinygpt", v2); }, dir.file("llama-v2.tinygpt"),
                      {"v2", "Llama family"});
    EXPECT_FALSE(fs::exists(dir.file("llama-v2.tinygpt")));
    // A GPT model with a per-layer MoE layout cannot go to v2 either.
    ModelConfig gpt = small_config(true);
    gpt.layers = 3;
    gpt.moe_layers = moe_layout_rule(3, 1, 1);
    expect_save_error([&] { save(make_model(gpt, 1), "gpt-v2.tinygpt", v2); },
                      dir.file("gpt-v2.tinygpt"), {"per-layer MoE layout"});
}

TEST_F(ModelFileTest, ALayerLayoutThatDisagreesWithTheRulesIsRefused) {
    const file_test::FlatModel model = make_model(qwen_style(), 3);
    const Bytes good = read_bytes(save(model, "good-llama.tinygpt"));
    const std::string path = dir.file("bad-layout.tinygpt");
    write_bytes(path, rewrite_v3(good, [](json& h) {
                    h["config"]["moe"]["layers"] = json{"moe", "dense"};
                }));
    expect_read_error(path, {"config.moe.layers", "2 entries for 3 layers"});
    write_bytes(path, rewrite_v3(good, [](json& h) {
                    h["config"]["moe"]["layers"] = json{"dense", "sparse", "dense"};
                }));
    expect_read_error(path, {"config.moe.layers[1]"});
    // A file of the older writers, which stored the rule too: both must agree.
    write_bytes(path, rewrite_v3(good, [](json& h) {
                    h["config"]["moe"]["every"] = 1;
                    h["config"]["moe"]["dense_first"] = 0;
                }));
    expect_read_error(path, {"config.moe.layers", "moe.every"});
    write_bytes(path, rewrite_v3(good, [](json& h) { h["config"]["moe"]["router"] = "sigmoid"; }));
    expect_read_error(path, {"config.moe", "router"});
    write_bytes(path, rewrite_v3(good, [](json& h) { h["config"]["arch"] = "mamba"; }));
    expect_read_error(path, {"architecture 'mamba'"});
    // Values out of range: refused with the path and the setting named.
    write_bytes(path, rewrite_v3(good, [](json& h) { h["config"]["moe"]["jitter"] = 2.0; }));
    expect_read_error(path, {"jitter"});
    write_bytes(path, rewrite_v3(good, [](json& h) { h["config"]["moe"]["norm_topk"] = "maybe"; }));
    expect_read_error(path, {"config.moe.norm_topk"});
    write_bytes(path, rewrite_v3(good, [](json& h) { h["config"]["kv_heads"] = 3; }));
    expect_read_error(path, {"--kv-heads"});
    write_bytes(path, rewrite_v3(good, [](json& h) { h["config"]["rope_theta"] = "nan"; }));
    expect_read_error(path, {"rope-theta"});
}

}  // namespace
}  // namespace tinygpt
