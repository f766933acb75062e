// Weights in their stored type (model/model_weights.h) and inference on them: the conversion
// policy, bit-exact conversions, the inference path on bf16 / f16 / Q8_0 weights against the
// same path on their f32 widening, and the error a trained model's eval picks up per type.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "infer/evaluate.h"
#include "infer/generate.h"
#include "infer/session.h"
#include "kernels/weight_matmul/kernels.h"
#include "model/model.h"
#include "model/model_weights.h"
#include "quant/q8_0.h"
#include "test_util.h"
#include "tokenizer/tokenizer.h"
#include "train/data.h"
#include "train/trainer.h"
#include "util/error.h"
#include "util/half.h"

namespace tinygpt {
namespace {

// Models that cover every tensor kind: GPT dense and MoE (biases, position table), Llama MoE with
// GQA, q/k norm, q/k/v bias and a shared expert.
std::vector<ModelConfig> configs() {
    std::vector<ModelConfig> out;
    out.push_back(test::model_config({.ctx = 24, .d_model = 64, .heads = 2, .d_mlp = 96}));
    out.push_back(test::model_config(
        {.ctx = 24, .d_model = 64, .heads = 4, .d_mlp = 64, .experts = 4, .topk = 2}));
    ModelConfig llama = test::model_config(
        {.ctx = 24, .d_model = 64, .heads = 4, .d_mlp = 96, .experts = 4, .topk = 2});
    llama.arch = Arch::Llama;
    llama.kv_heads = 2;
    llama.qk_norm = QkNorm::PerHead;
    llama.qkv_bias = true;
    llama.shared_ffn = 64;
    llama.moe_ffn = 32;  // rows of 32: Q8_0 blocks; the dense head keeps rows of 64
    out.push_back(llama);
    return out;
}

std::vector<float> random_weights_with_perturbed_norms(const ModelConfig& cfg, uint64_t seed) {
    Model model(cfg, /*with_grads=*/false);
    model.init(seed);
    std::vector<float> w(model.params(), model.params() + model.buffer_floats());
    // Norm weights of 1 are exact in every type; perturb them so the widening is exercised.
    const ParameterLayout layout(cfg);
    Rng rng(seed + 1);
    for (const ParamInfo& p : layout.entries())
        if (p.init_std < 0)
            for (size_t i = 0; i < p.numel; ++i)
                w[p.offset + i] = 1.0f + 0.1f * static_cast<float>(rng.normal());
    return w;
}

double max_relative_diff(const float* a, const float* ref, size_t n) {
    double scale = 1e-3;
    for (size_t i = 0; i < n; ++i) scale = std::max(scale, static_cast<double>(std::fabs(ref[i])));
    return test::max_abs_diff(a, ref, n) / scale;
}

TEST(StoredWeights, PolicyKeepsVectorsRouterAndPositionsInF32) {
    const TensorId q{TensorRole::AttnQ, 0, kDenseFfn};
    EXPECT_EQ(stored_tensor_dtype(WeightDtype::Q8_0, q, {64, 64}), WeightDtype::Q8_0);
    EXPECT_EQ(stored_tensor_dtype(WeightDtype::Q8_0, q, {64, 48}), WeightDtype::F16);
    EXPECT_EQ(stored_tensor_dtype(WeightDtype::BF16, q, {64, 48}), WeightDtype::BF16);
    EXPECT_EQ(stored_tensor_dtype(WeightDtype::BF16, {TensorRole::AttnNorm, 0, kDenseFfn}, {64}),
              WeightDtype::F32);
    EXPECT_EQ(stored_tensor_dtype(WeightDtype::Q8_0, {TensorRole::Router, 0, kDenseFfn}, {8, 64}),
              WeightDtype::F32);
    EXPECT_EQ(stored_tensor_dtype(WeightDtype::F16, {TensorRole::PositionEmbedding, -1, kDenseFfn},
                                  {32, 64}),
              WeightDtype::F32);
    EXPECT_EQ(parse_weight_dtype("q8_0"), WeightDtype::Q8_0);
    EXPECT_THROW(parse_weight_dtype("q4_0"), Error);
    EXPECT_EQ(dtype_row_bytes(WeightDtype::Q8_0, 64), 68u);
    EXPECT_THROW(dtype_row_bytes(WeightDtype::Q8_0, 48), Error);
}

TEST(StoredWeights, ConversionsAreExactPerTensor) {
    for (const ModelConfig& cfg : configs()) {
        const auto w = random_weights_with_perturbed_norms(cfg, 5);
        const ModelWeights f32 = ModelWeights::from_f32(cfg, w.data());
        ASSERT_EQ(f32.f32_base(), w.data());
        for (WeightDtype dtype : {WeightDtype::BF16, WeightDtype::F16, WeightDtype::Q8_0}) {
            const ModelWeights typed = f32.converted(dtype);
            EXPECT_EQ(typed.f32_base(), nullptr);
            EXPECT_EQ(typed.main_dtype(), dtype);
            const auto& entries = typed.layout().entries();
            uint64_t bytes = 0;
            for (size_t i = 0; i < entries.size(); ++i) {
                const ParamInfo& p = entries[i];
                const TensorView& v = typed.view(i);
                EXPECT_EQ(v.dtype, stored_tensor_dtype(dtype, p.id, p.shape)) << p.name;
                EXPECT_EQ(reinterpret_cast<uintptr_t>(v.data) % (p.joins_previous ? 1 : 64), 0u);
                const size_t n = dtype_tensor_bytes(v.dtype, p.shape);
                bytes += n;
                std::vector<uint8_t> want(n);
                const float* x = w.data() + p.offset;
                if (v.dtype == WeightDtype::Q8_0) {
                    quant::quantize_q8_0(x, static_cast<int64_t>(p.numel), want.data());
                } else if (v.dtype == WeightDtype::F32) {
                    std::memcpy(want.data(), x, n);
                } else {
                    auto* h = reinterpret_cast<uint16_t*>(want.data());
                    for (size_t k = 0; k < p.numel; ++k)
                        h[k] =
                            v.dtype == WeightDtype::BF16 ? float_to_bf16(x[k]) : float_to_f16(x[k]);
                }
                EXPECT_EQ(0, std::memcmp(v.data, want.data(), n))
                    << p.name << " " << dtype_name(dtype);
            }
            EXPECT_EQ(typed.stored_bytes(), bytes);
            // Same-type conversion copies bits; back to f32 widens exactly.
            const ModelWeights again = typed.converted(dtype);
            for (size_t i = 0; i < entries.size(); ++i)
                ASSERT_EQ(0,
                          std::memcmp(again.view(i).data, typed.view(i).data,
                                      dtype_tensor_bytes(typed.view(i).dtype, entries[i].shape)));
            const std::vector<float> wide = typed.to_f32();
            const ModelWeights back = typed.converted(WeightDtype::F32);
            ASSERT_NE(back.f32_base(), nullptr);
            EXPECT_EQ(0, std::memcmp(back.f32_base(), wide.data(), wide.size() * sizeof(float)));
        }
    }
}

TEST(StoredWeights, RandomModelsAreTheInitialisationInTheirType) {
    for (const ModelConfig& cfg : configs()) {
        std::vector<float> init(ParameterLayout(cfg).total(), 0.0f);
        init_parameters(ParameterLayout(cfg), init.data(), 21);
        const ModelWeights f32 = ModelWeights::from_f32(cfg, init.data());
        const ModelWeights r32 = ModelWeights::random(cfg, WeightDtype::F32, 21);
        ASSERT_NE(r32.f32_base(), nullptr);
        EXPECT_EQ(0, std::memcmp(r32.f32_base(), init.data(), init.size() * sizeof(float)));
        for (WeightDtype dtype : {WeightDtype::BF16, WeightDtype::Q8_0}) {
            const ModelWeights want = f32.converted(dtype),
                               got = ModelWeights::random(cfg, dtype, 21);
            for (size_t i = 0; i < want.views().size(); ++i) {
                ASSERT_EQ(got.view(i).dtype, want.view(i).dtype);
                ASSERT_EQ(0, std::memcmp(got.view(i).data, want.view(i).data,
                                         dtype_tensor_bytes(want.view(i).dtype,
                                                            want.layout().entries()[i].shape)))
                    << want.layout().entries()[i].name;
            }
        }
    }
}

TEST(StoredWeights, JoinedTensorsMustBeContiguous) {
    const ModelConfig cfg = configs()[0];
    const auto w = random_weights_with_perturbed_norms(cfg, 1);
    const ModelWeights f32 = ModelWeights::from_f32(cfg, w.data());
    std::vector<TensorView> views = f32.views();
    const auto& entries = f32.layout().entries();
    size_t k = 0;
    while (!entries[k].joins_previous) ++k;
    std::vector<float> elsewhere(entries[k].numel);
    views[k].data = elsewhere.data();
    try {
        ModelWeights bad(cfg, views, nullptr);
        FAIL() << "accepted a k projection away from q";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find(entries[k].name), std::string::npos) << e.what();
    }
}

// The session on stored weights computes what it computes on their f32 widening: bf16 and f16
// products widen the weights exactly (only the summation order differs); Q8_0 products may round
// the activations to 8 bits per block as llama.cpp does, a relative error of ~1/127 per product,
// and bf16 products on a CPU with AVX512_BF16 round them to bf16 (vdpbf16ps), 2^-9 per product.
TEST(StoredWeights, SessionMatchesItsF32WideningForEveryType) {
    for (const ModelConfig& cfg : configs()) {
        const auto w = random_weights_with_perturbed_norms(cfg, 9);
        const ModelWeights f32 = ModelWeights::from_f32(cfg, w.data());
        const std::vector<int> seq = {3, 77, 140, 9, 250, 31, 31, 64, 1, 200};
        for (WeightDtype dtype : {WeightDtype::BF16, WeightDtype::F16, WeightDtype::Q8_0}) {
            const ModelWeights typed = f32.converted(dtype);
            const std::vector<float> wide = typed.to_f32();
            InferenceSession stored(typed), reference(cfg, wide.data());
            const bool bf16_activations =
                dtype == WeightDtype::BF16 && weight_kernels::active_kernels().bf16_activations;
            const double tolerance = dtype == WeightDtype::Q8_0 ? 3e-2
                                     : bf16_activations         ? 1e-2
                                                                : 1e-4;
            const int n = static_cast<int>(seq.size());
            // Prefill of 6 (the grouped MoE path), then decode steps (one row).
            stored.forward(seq.data(), 6, /*all_logits=*/true);
            reference.forward(seq.data(), 6, /*all_logits=*/true);
            EXPECT_LT(max_relative_diff(stored.logits(), reference.logits(), 6u * cfg.vocab),
                      tolerance)
                << dtype_name(dtype) << " prefill";
            for (int i = 6; i < n; ++i) {
                const float* a = stored.forward(&seq[i], 1);
                const float* b = reference.forward(&seq[i], 1);
                EXPECT_LT(max_relative_diff(a, b, cfg.vocab), tolerance)
                    << dtype_name(dtype) << " decode position " << i;
            }
        }
    }
}

TEST(StoredWeights, GenerationWithAndWithoutTheCacheAgree) {
    const ModelConfig cfg = configs()[2];
    const auto w = random_weights_with_perturbed_norms(cfg, 4);
    const ModelWeights q8 = ModelWeights::from_f32(cfg, w.data()).converted(WeightDtype::Q8_0);
    GenerateOptions opt;
    opt.max_new_tokens = 12;
    opt.sampling.temperature = 0.0f;
    std::vector<int> cached, recomputed;
    generate(q8, {5, 6, 7}, opt, [&](int t) { cached.push_back(t); });
    opt.use_cache = false;
    generate(q8, {5, 6, 7}, opt, [&](int t) { recomputed.push_back(t); });
    EXPECT_EQ(cached.size(), 12u);
    EXPECT_EQ(cached, recomputed);
}

// The router statistics of eval on typed weights (the inference path, window by window) sum
// every MoE block's own aux and z, as the f32 eval (the training forward) does.
TEST(StoredWeights, EvalRouterStatisticsCoverEveryMoeBlock) {
    ModelConfig cfg = configs()[1];
    cfg.layers = 3;
    auto w = random_weights_with_perturbed_norms(cfg, 6);
    // Decisive routers in the first two blocks, a near-uniform one (aux about 1) in the last, so
    // that each block's aux differs from the others'.
    const ParameterLayout layout(cfg);
    for (const ParamInfo& p : layout.entries())
        if (p.id.role == TensorRole::Router && p.id.layer < 2)
            for (size_t i = 0; i < p.numel; ++i) w[p.offset + i] *= 100.0f;
    const ModelWeights f32 = ModelWeights::from_f32(cfg, w.data());
    // Three tokens only: the decisive routers send them to few experts (aux well above 1).
    std::vector<int32_t> text(100);
    for (size_t i = 0; i < text.size(); ++i) text[i] = static_cast<int32_t>('a' + i % 3);
    const Tokenizer bytes = Tokenizer::bytes();
    // The blocks' aux differ enough that the last block's counted for all three would show.
    Model model(cfg, w.data());
    const ForwardResult first = model.forward(text.data(), nullptr, 1, cfg.ctx);
    ASSERT_EQ(first.aux_per_block.size(), 3u);
    ASSERT_GT(std::fabs(3 * first.aux_per_block[2] - first.aux), 0.1 * first.aux);
    const EvalResult ref = evaluate(f32, text, bytes, 4, 0);
    const EvalResult typed = evaluate(f32.converted(WeightDtype::BF16), text, bytes, 4, 0);
    EXPECT_NEAR(typed.aux(), ref.aux(), 0.02 * ref.aux());
    EXPECT_NEAR(typed.z(), ref.z(), 0.02 * ref.z());
}

// A trained model loses little in bf16 and Q8_0: eval within 0.01 nats of f32 (the issue's
// bound). The f32 eval runs the batched training forward, the others the inference path.
TEST(StoredWeights, TrainedModelEvalIsWithinABoundOfF32) {
    Corpus corpus = Corpus::load(TINYGPT_SOURCE_DIR "/data/shakespeare.txt", Tokenizer::bytes());
    const std::vector<int32_t> heldout(corpus.tokens.end() - 1500, corpus.tokens.end());
    corpus.tokens.resize(60000);
    TrainOptions o;
    o.model = test::model_config(
        {.ctx = 64, .d_model = 64, .heads = 4, .d_mlp = 128, .experts = 4, .topk = 2});
    o.model.arch = Arch::Llama;
    o.model.kv_heads = 2;
    o.batch = 8;
    o.steps = 40;
    o.schedule = {LrSchedule::Cosine, 3e-3f, 3e-4f, 5, 40};
    o.seed = 11;
    Trainer trainer(o, corpus);
    for (int i = 0; i < o.steps; ++i) trainer.step();
    const ModelConfig& cfg = trainer.model().config();
    const ModelWeights f32 = ModelWeights::from_f32(cfg, trainer.model().params());
    const Tokenizer bytes = Tokenizer::bytes();
    const double ce32 = evaluate(f32, heldout, bytes, 4, 0).cross_entropy();
    EXPECT_LT(ce32, 3.5) << "the model did not train";
    for (WeightDtype dtype : {WeightDtype::BF16, WeightDtype::F16, WeightDtype::Q8_0}) {
        const double ce = evaluate(f32.converted(dtype), heldout, bytes, 4, 0).cross_entropy();
        EXPECT_NEAR(ce, ce32, 0.01) << dtype_name(dtype);
    }
}

}  // namespace
}  // namespace tinygpt
