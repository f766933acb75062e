// Model-level numbers of the Llama family against an independent implementation:
// tools/torch_reference_llama.py built the same models in PyTorch (float64, HF Llama / Mixtral /
// Qwen2-MoE / Qwen3-MoE semantics) and dumped the config, weights, a batch, logits, ce, the
// per-layer load-balance and z losses, every gradient and ten AdamW steps into
// tests/data/torch_ref_llama_*.bin. The engine loads the weights and must reproduce all of it,
// with the sparse and the dense MoE dispatch alike.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "model/model.h"
#include "torch_parity.h"

namespace tinygpt {
namespace {

using test::Archive;
using test::get;
using test::relative_error;

// The exact ModelConfig the reference used (config.<field> tensors, names as in ModelConfig).
ModelConfig config_from(const Archive& a, DispatchMode dispatch) {
    auto i = [&](const std::string& n) { return get(a, "config." + n).i32.at(0); };
    auto f = [&](const std::string& n) { return get(a, "config." + n).f32.at(0); };
    ModelConfig cfg;
    cfg.arch = Arch::Llama;
    cfg.preset = "test";
    cfg.vocab = i("vocab"), cfg.ctx = i("ctx"), cfg.layers = i("layers");
    cfg.d_model = i("d_model"), cfg.heads = i("heads"), cfg.kv_heads = i("kv_heads");
    cfg.d_mlp = i("d_mlp");
    cfg.norm_eps = f("norm_eps"), cfg.rope_theta = f("rope_theta");
    cfg.qkv_bias = i("qkv_bias") != 0,
    cfg.qk_norm = i("qk_norm") != 0 ? QkNorm::PerHead : QkNorm::None;
    cfg.tie_embeddings = i("tie_embeddings") != 0;
    cfg.experts = i("experts"), cfg.topk = i("topk"), cfg.moe_ffn = i("moe_ffn");
    cfg.shared_ffn = i("shared_ffn");
    cfg.moe_layers = moe_layout_rule(cfg.layers, i("moe_every"), i("moe_dense_first"));
    cfg.norm_topk = i("norm_topk") != 0 ? NormTopk::On : NormTopk::Off;
    cfg.aux_weight = f("aux_weight"), cfg.z_loss_weight = f("z_loss_weight");
    cfg.dispatch = dispatch;
    return cfg;
}

void check_against_torch(const std::string& file, DispatchMode dispatch) {
    SCOPED_TRACE(file + (dispatch == DispatchMode::Dense ? " (dense dispatch)" : ""));
    const Archive a = test::read_tensor_archive(std::string(TINYGPT_TEST_DATA) + "/" + file);
    const ModelConfig cfg = config_from(a, dispatch);
    const int B = get(a, "config.B").i32[0], T = get(a, "config.T").i32[0];
    Model model(cfg);

    // The same tensors, by name and shape, and nothing else.
    std::set<std::string> dumped;
    size_t dumped_count = 0;
    for (const auto& [name, t] : a)
        if (name.rfind("param.", 0) == 0) {
            dumped.insert(name.substr(6));
            dumped_count += t.f32.size();
        }
    const std::vector<std::string> manifest = model.layout().manifest_order();
    EXPECT_EQ(std::set<std::string>(manifest.begin(), manifest.end()), dumped);
    EXPECT_EQ(manifest.size(), model.layout().entries().size());
    EXPECT_EQ(model.num_params(), dumped_count);
    EXPECT_EQ(static_cast<int64_t>(model.num_params()), cfg.total_params());
    test::load_weights(model, a);
    if (::testing::Test::HasFatalFailure()) return;
    const auto& inputs = get(a, "batch.inputs").i32;
    const auto& targets = get(a, "batch.targets").i32;

    model.forward(inputs.data(), nullptr, B, T);
    EXPECT_LT(relative_error(model.logits(), get(a, "out.logits").f32), 1e-4) << "logits";
    const ForwardResult r = model.forward(inputs.data(), targets.data(), B, T);
    EXPECT_NEAR(r.ce, get(a, "out.ce").f32[0], 1e-5) << "ce";
    EXPECT_NEAR(r.aux, get(a, "out.aux").f32[0], 1e-5) << "aux";
    EXPECT_NEAR(r.z, get(a, "out.z").f32[0], 2e-5) << "z";
    EXPECT_NEAR(r.loss, get(a, "out.loss").f32[0], 1e-5) << "loss";
    if (cfg.is_moe()) {
        const auto& aux_l = get(a, "out.aux_per_layer").f32;
        const auto& z_l = get(a, "out.z_per_layer").f32;
        const auto& counts = get(a, "out.expert_counts").i32;  // [layers, experts]
        ASSERT_EQ(r.aux_per_block.size(), aux_l.size());
        ASSERT_EQ(r.z_per_block.size(), z_l.size());
        for (int l = 0; l < cfg.layers; ++l) {
            EXPECT_NEAR(r.aux_per_block[l], aux_l[l], 1e-5) << "aux of layer " << l;
            EXPECT_NEAR(r.z_per_block[l], z_l[l], 1e-5) << "z of layer " << l;
            if (!cfg.is_moe_layer(l)) continue;
            const std::vector<float> load = model.expert_load(l);
            for (int e = 0; e < cfg.experts; ++e)
                EXPECT_EQ(std::lround(load[e] * B * T * cfg.topk), counts[l * cfg.experts + e])
                    << "pairs routed to expert " << e << " of layer " << l;
        }
    }
    test::check_gradients_and_adamw(model, a, inputs, targets, B, T);
}

void check_both_dispatches(const std::string& file) {
    check_against_torch(file, DispatchMode::Sparse);
    check_against_torch(file, DispatchMode::Dense);
}

// Dense SwiGLU blocks, GQA (4 query heads on 2 kv heads), tied embeddings.
TEST(TorchParityLlama, Dense) {
    check_against_torch("torch_ref_llama_dense.bin", DispatchMode::Sparse);
}
// Every layer MoE, 4 experts top-2 renormalised, expert width ≠ d_mlp, untied head.
TEST(TorchParityLlama, Mixtral) {
    check_both_dispatches("torch_ref_llama_mixtral.bin");
}
// Dense and MoE layers (moe_every 2), top-2 not renormalised, shared expert with its sigmoid
// gate, q/k/v biases, z-loss.
TEST(TorchParityLlama, Qwen2Moe) {
    check_both_dispatches("torch_ref_llama_qwen2moe.bin");
}
// First layer dense, per-head q/k RMSNorm, one kv head, rope_theta 1e6, eps 1e-6, z-loss.
TEST(TorchParityLlama, Qwen3Moe) {
    check_both_dispatches("torch_ref_llama_qwen3moe.bin");
}

}  // namespace
}  // namespace tinygpt
