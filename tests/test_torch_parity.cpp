// Model-level numbers against an independent implementation: tools/torch_reference.py built the
// same models in PyTorch (float64), and dumped weights, a batch, logits, losses, every gradient
// and ten AdamW steps into tests/data/torch_ref_*.bin. Here the engine loads the weights and must
// reproduce all of it.
#include <gtest/gtest.h>

#include <cmath>

#include "model/model.h"
#include "test_util.h"
#include "torch_parity.h"

namespace tinygpt {
namespace {

using test::Archive;
using test::get;
using test::relative_error;

void check_against_torch(const std::string& file) {
    const Archive a = test::read_tensor_archive(std::string(TINYGPT_TEST_DATA) + "/" + file);
    const auto& c = get(a, "config").i32;  // [V, ctx, L, C, H, M, E, K, B, T]
    ModelConfig cfg;
    cfg.vocab = c[0], cfg.ctx = c[1], cfg.layers = c[2], cfg.d_model = c[3], cfg.heads = c[4];
    cfg.d_mlp = c[5], cfg.experts = c[6], cfg.topk = c[7];
    cfg.aux_weight = get(a, "config.aux_weight").f32[0];
    const int B = c[8], T = c[9];
    Model model(cfg);
    test::load_weights(model, a);
    if (::testing::Test::HasFatalFailure()) return;
    const auto& inputs = get(a, "batch.inputs").i32;
    const auto& targets = get(a, "batch.targets").i32;

    model.forward(inputs.data(), nullptr, B, T);
    EXPECT_LT(relative_error(model.logits(), get(a, "out.logits").f32), 1e-4) << "logits";
    const ForwardResult r = model.forward(inputs.data(), targets.data(), B, T);
    EXPECT_NEAR(r.ce, get(a, "out.ce").f32[0], 1e-5);
    EXPECT_NEAR(r.aux, get(a, "out.aux").f32[0], 1e-5);
    EXPECT_NEAR(r.loss, get(a, "out.loss").f32[0], 1e-5);
    if (cfg.is_moe()) {
        const auto& per_block = get(a, "out.aux_per_block").f32;
        for (int l = 0; l < cfg.layers; ++l) EXPECT_NEAR(r.aux_per_block[l], per_block[l], 1e-5);
    }
    test::check_gradients_and_adamw(model, a, inputs, targets, B, T);
}

TEST(TorchParity, Dense) {
    check_against_torch("torch_ref_dense.bin");
}
TEST(TorchParity, MoeTop1) {
    check_against_torch("torch_ref_moe_top1.bin");
}
TEST(TorchParity, MoeTop2) {
    check_against_torch("torch_ref_moe_top2.bin");
}
TEST(TorchParity, MoeTopAll) {
    check_against_torch("torch_ref_moe_topN.bin");
}

}  // namespace
}  // namespace tinygpt
