// GGUF models: every Hugging Face reference model (tests/data/hf, checked against an independent
// implementation) goes out to GGUF and back with the same logits; F32/F16/BF16 round trips give
// the same (rounded) weights and Q8_0 ggml's dequantisation; the architecture chosen for each
// layout; what cannot be expressed is refused with the reason; files that describe something we
// do not compute are refused by name. tools/llama-reference/check_gguf.mjs checks the same files
// against the real llama.cpp.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>

#include "gguf/gguf_model.h"
#include "io/gguf_file.h"
#include "load/model_source.h"
#include "model/model.h"
#include "model/params.h"
#include "quant/q8_0.h"
#include "scratch_dir.h"
#include "test_data.h"
#include "util/error.h"
#include "util/half.h"

namespace tinygpt {
namespace {

namespace fs = std::filesystem;
using gguf::GgufArch;
using gguf::GgufDtype;

using test::kHfData;

class GgufTemp : public ::testing::Test {
  protected:
    std::string path(const std::string& name) const { return scratch_.file(name); }
    test::ScratchDir scratch_{"gguf"};
    const fs::path& dir_ = scratch_.path();
};

std::vector<float> logits_of(const ModelConfig& cfg, const float* weights,
                             const std::vector<int>& tokens) {
    Model model(cfg, weights);
    model.forward(tokens.data(), nullptr, 1, static_cast<int>(tokens.size()));
    return std::vector<float>(model.logits(), model.logits() + tokens.size() * cfg.vocab);
}

double max_rel_diff(const std::vector<float>& a, const std::vector<float>& b) {
    double scale = 1e-30, worst = 0;
    for (size_t i = 0; i < a.size(); ++i) {
        scale = std::max(scale, static_cast<double>(std::fabs(a[i])));
        worst = std::max(worst, std::fabs(static_cast<double>(a[i]) - b[i]));
    }
    return worst / scale;
}

std::vector<int> reference_tokens(const std::string& name) {
    std::ifstream in(kHfData / (name + ".expected.json"));
    return nlohmann::json::parse(in)["tokens"].get<std::vector<int>>();
}

// A model with random weights (GPT-2 init), for layouts no reference directory has.
struct RandomModel {
    ModelConfig cfg;
    std::vector<float> weights;
    explicit RandomModel(ModelConfig c, uint64_t seed = 5) : cfg(std::move(c)) {
        cfg.validate();
        const ParameterLayout layout(cfg);
        weights.assign(layout.total(), 0.0f);
        init_parameters(layout, weights.data(), seed);
        // Norm weights away from 1 so that a mixed-up norm shows.
        for (const ParamInfo& p : layout.entries())
            if (p.init_std < 0)
                for (size_t i = 0; i < p.numel; ++i)
                    weights[p.offset + i] =
                        1.0f + 0.1f * std::sin(static_cast<float>(i + p.offset));
    }
};

ModelConfig llama_config() {
    ModelConfig c;
    c.arch = Arch::Llama;
    c.vocab = 256;
    c.ctx = 64;
    c.layers = 2;
    c.d_model = 64;
    c.heads = 4;
    c.kv_heads = 2;
    c.d_mlp = 96;
    return c;
}

ModelConfig moe(ModelConfig c, int experts, int topk, NormTopk norm = NormTopk::Auto) {
    c.experts = experts;
    c.topk = topk;
    c.moe_ffn = 64;
    c.norm_topk = norm;
    return c;
}

const std::vector<int> kTokens = {5, 17, 200, 3, 99, 100, 42, 7, 7, 250, 1, 64};

// The same tokenizer in function (the serialised form may differ in fields that change nothing,
// such as a ByteLevel decoder's add_prefix_space): the same ids for texts, the same bytes for
// every id, the same bos/eos/add_bos.
void expect_same_tokenizer(const Tokenizer& a, const Tokenizer& b) {
    ASSERT_EQ(a.vocab_size(), b.vocab_size());
    for (int id = 0; id < a.vocab_size(); ++id)
        EXPECT_EQ(a.token_bytes(id), b.token_bytes(id)) << id;
    for (const char* text : {"ROMEO: But soft, what light\r\n\tthrough 1234567 windows?",
                             "naïve café — 東京 😀 don't   stop", "<|endoftext|>x<|endoftext|>"})
        EXPECT_EQ(a.encode(text), b.encode(text)) << text;
    EXPECT_EQ(a.bos_id(), b.bos_id());
    EXPECT_EQ(a.eos_id(), b.eos_id());
    EXPECT_EQ(a.add_bos(), b.add_bos());
}

// Export → import at f32: the same function (to float rounding where dense blocks are emulated as
// experts), the same weights wherever the file describes our model as is.
void expect_round_trip(const ModelConfig& cfg, const float* weights, const Tokenizer& tok,
                       const std::string& file, GgufArch arch, bool same_layout) {
    const gguf::GgufExport e =
        gguf::save_gguf_model(file, cfg, weights, tok, GgufDtype::F32, "test");
    EXPECT_EQ(e.arch, arch) << gguf::gguf_arch_name(e.arch);
    const OpenedModel back = open_model(file);
    expect_same_tokenizer(back.tokenizer, tok);
    std::vector<int> tokens;
    for (int t : kTokens) tokens.push_back(t % cfg.vocab);
    const std::vector<float> a = logits_of(cfg, weights, tokens);
    const std::vector<float> b = logits_of(back.config, back.f32_weights(), tokens);
    if (same_layout) {
        EXPECT_EQ(a, b) << "logits after export → import";
        const size_t n = ParameterLayout(cfg).total();
        ASSERT_EQ(ParameterLayout(back.config).total(), n);
        EXPECT_TRUE(std::equal(weights, weights + n, back.f32_weights())) << "weights";
    } else {
        EXPECT_LT(max_rel_diff(a, b), 2e-6) << "logits after export → import";
    }
}

// ---------------------------------------------------------------------------------------------
// Every HF reference model: GGUF and back gives the reference's logits.

class GgufFromHf : public GgufTemp, public ::testing::WithParamInterface<const char*> {};

TEST_P(GgufFromHf, ExportThenImportKeepsTheReferenceLogits) {
    const std::string name = GetParam();
    const OpenedModel hf = open_model((kHfData / name).string());
    const std::string file = path("m.gguf");
    gguf::save_gguf_model(file, hf.config, hf.f32_weights(), hf.tokenizer, GgufDtype::F32, name);
    const OpenedModel g = open_model(file);
    expect_same_tokenizer(g.tokenizer, hf.tokenizer);
    const std::vector<int> tokens = reference_tokens(name);
    EXPECT_LT(max_rel_diff(logits_of(hf.config, hf.f32_weights(), tokens),
                           logits_of(g.config, g.f32_weights(), tokens)),
              2e-6);
    EXPECT_NE(g.format.find("GGUF v3"), std::string::npos) << g.format;
}

INSTANTIATE_TEST_SUITE_P(EveryReference, GgufFromHf,
                         ::testing::Values("llama_dense_tied_f32", "llama_bias_bf16_sharded",
                                           "mistral_f32", "qwen2_f32", "qwen3_bf16",
                                           "mixtral_f32_sharded", "qwen2_moe_bf16", "qwen3_moe_f32",
                                           "olmoe_f32", "gpt2_f32"));

// ---------------------------------------------------------------------------------------------
// The architecture for each layout, and exact round trips.

TEST_F(GgufTemp, EachLayoutGoesToTheArchitectureThatComputesIt) {
    const Tokenizer bytes = Tokenizer::bytes();
    struct Case {
        const char* label;
        ModelConfig cfg;
        GgufArch arch;
        bool same_layout;
    };
    ModelConfig gpt;
    gpt.vocab = 256;
    gpt.ctx = 32;
    gpt.layers = 2;
    gpt.d_model = 32;
    gpt.heads = 2;
    gpt.d_mlp = 128;
    ModelConfig dense_bias = llama_config();
    dense_bias.qkv_bias = dense_bias.o_bias = true;
    ModelConfig qwen3 = llama_config();
    qwen3.qk_norm = QkNorm::PerHead;
    qwen3.head_size = 32;
    ModelConfig olmo_dense = llama_config();
    olmo_dense.qk_norm = QkNorm::Full;
    ModelConfig mixtral = moe(llama_config(), 4, 2);
    mixtral.tie_embeddings = true;
    ModelConfig qwen2moe = moe(llama_config(), 4, 2, NormTopk::Off);
    qwen2moe.shared_ffn = 48;
    qwen2moe.qkv_bias = true;
    qwen2moe.tie_embeddings = true;  // written with a copy of the embedding as `output`
    ModelConfig qwen2moe_mixed = qwen2moe;
    qwen2moe_mixed.layers = 3;
    qwen2moe_mixed.moe_layers = moe_layout_rule(3, 2, 0);
    ModelConfig qwen3moe = moe(llama_config(), 4, 2);
    qwen3moe.qk_norm = QkNorm::PerHead;
    qwen3moe.head_size = 8;
    ModelConfig olmoe = moe(llama_config(), 4, 1);
    olmoe.qk_norm = QkNorm::Full;
    olmoe.kv_heads = 0;
    ModelConfig dense_first = moe(llama_config(), 4, 2);
    dense_first.layers = 3;
    dense_first.moe_layers = moe_layout_rule(3, 1, 1);
    dense_first.d_mlp = 80;  // wider than the experts' 64: the copies are padded to 80
    const Case cases[] = {
        {"gpt dense", gpt, GgufArch::Gpt2, true},
        {"llama dense, q/k/v/o biases", dense_bias, GgufArch::Llama, true},
        {"per-head q/k norm, head_dim apart", qwen3, GgufArch::Qwen3, true},
        {"full q/k norm, dense", olmo_dense, GgufArch::Olmoe, false},
        {"mixtral, tied", mixtral, GgufArch::Llama, true},
        {"shared expert, tied", qwen2moe, GgufArch::Qwen2Moe, false},
        {"shared expert, every second block", qwen2moe_mixed, GgufArch::Qwen2Moe, false},
        {"per-head q/k norm MoE", qwen3moe, GgufArch::Qwen3Moe, true},
        {"full q/k norm, top-1", olmoe, GgufArch::Olmoe, false},
        {"dense first, wider MLP", dense_first, GgufArch::Llama, false},
    };
    for (const Case& c : cases) {
        SCOPED_TRACE(c.label);
        const RandomModel m(c.cfg);
        expect_round_trip(m.cfg, m.weights.data(), bytes, path("m.gguf"), c.arch, c.same_layout);
    }
}

TEST_F(GgufTemp, AnEmulatedDenseBlockComputesTheDenseMlp) {
    // Three blocks, the middle one dense: written as experts, read back as an all-MoE model.
    ModelConfig cfg = moe(llama_config(), 4, 2, NormTopk::Off);
    cfg.qk_norm = QkNorm::Full;
    cfg.kv_heads = 0;
    cfg.layers = 3;
    cfg.moe_layers = {1, 0, 1};
    const RandomModel m(cfg);
    gguf::save_gguf_model(path("m.gguf"), m.cfg, m.weights.data(), Tokenizer::bytes(),
                          GgufDtype::F32, "t");
    const OpenedModel back = open_model(path("m.gguf"));
    EXPECT_TRUE(back.config.all_layers_moe());
    EXPECT_EQ(back.config.experts, 4);
    const std::vector<float> a = logits_of(m.cfg, m.weights.data(), kTokens);
    const std::vector<float> b = logits_of(back.config, back.f32_weights(), kTokens);
    EXPECT_LT(max_rel_diff(a, b), 2e-6);
}

TEST_F(GgufTemp, HalfPrecisionRoundsAndQ8_0DequantisesAsGgml) {
    const RandomModel m(moe(llama_config(), 4, 2));
    const ParameterLayout layout(m.cfg);
    for (GgufDtype dtype : {GgufDtype::F16, GgufDtype::BF16, GgufDtype::Q8_0}) {
        SCOPED_TRACE(gguf::gguf_dtype_name(dtype));
        gguf::save_gguf_model(path("m.gguf"), m.cfg, m.weights.data(), Tokenizer::bytes(), dtype,
                              "t");
        const OpenedModel back = open_model(path("m.gguf"));
        ASSERT_EQ(ParameterLayout(back.config).total(), layout.total());
        for (const ParamInfo& p : layout.entries()) {
            const float* w = m.weights.data() + p.offset;
            const float* got = back.f32_weights() + p.offset;
            std::vector<float> want(w, w + p.numel);
            // 1-D tensors and the router stay f32.
            const bool kept_f32 = p.shape.size() < 2 || p.id.role == TensorRole::Router;
            if (!kept_f32) {
                if (dtype == GgufDtype::F16)
                    for (float& x : want) x = f16_to_float(float_to_f16(x));
                else if (dtype == GgufDtype::BF16)
                    for (float& x : want) x = bf16_to_float(float_to_bf16(x));
                else {
                    // Blocks of 32 within each row, so the same blocks as ours (the q/k row
                    // permutation moves whole rows).
                    std::vector<uint8_t> q(p.numel / 32 * quant::kQ8_0BlockBytes);
                    quant::quantize_q8_0(w, static_cast<int64_t>(p.numel), q.data());
                    quant::dequantize_q8_0(q.data(), static_cast<int64_t>(p.numel), want.data());
                }
            }
            EXPECT_TRUE(std::equal(want.begin(), want.end(), got)) << p.name;
        }
        EXPECT_NE(back.format.find(dtype == GgufDtype::Q8_0  ? "Q8_0"
                                   : dtype == GgufDtype::F16 ? "F16"
                                                             : "BF16"),
                  std::string::npos)
            << back.format;
        const double tol = dtype == GgufDtype::F16 ? 5e-3 : 3e-2;
        EXPECT_LT(max_rel_diff(logits_of(m.cfg, m.weights.data(), kTokens),
                               logits_of(back.config, back.f32_weights(), kTokens)),
                  tol);
    }
}

// tests/data/gguf (tools/make_gguf_fixture.sh): an F32 export, and the same file quantised by
// llama.cpp's own llama-quantize. Our Q8_0 export of the F32 model must be the same tensors, in
// the same types, with the same bytes.
TEST_F(GgufTemp, Q8_0ExportHasTheBytesOfLlamaQuantize) {
    const fs::path data = fs::path(TINYGPT_TEST_DATA) / "gguf";
    const OpenedModel m = open_model((data / "moe_f32.gguf").string());
    gguf::save_gguf_model(path("ours.gguf"), m.weights, m.tokenizer, GgufDtype::Q8_0, "t");
    const io::GgufFile ours = io::GgufFile::open(path("ours.gguf"));
    const io::GgufFile theirs =
        io::GgufFile::open((data / "moe_q8_0_llama_quantize.gguf").string());
    ASSERT_EQ(ours.tensors().size(), theirs.tensors().size());
    int q8 = 0;
    for (const io::GgufTensor& t : theirs.tensors()) {
        SCOPED_TRACE(t.name);
        const io::GgufTensor* o = ours.find_tensor(t.name);
        ASSERT_NE(o, nullptr);
        EXPECT_EQ(io::ggml_type_name(static_cast<uint32_t>(o->type)),
                  io::ggml_type_name(static_cast<uint32_t>(t.type)));
        EXPECT_EQ(o->ne, t.ne);
        ASSERT_EQ(o->bytes, t.bytes);
        EXPECT_EQ(std::memcmp(o->data, t.data, t.bytes), 0) << "bytes differ";
        q8 += t.type == io::GgmlType::Q8_0;
    }
    EXPECT_GE(q8, 6);  // embedding, q, k, v, o, experts, output
    EXPECT_EQ(ours.at("general.file_type").as_uint("file_type"),
              theirs.at("general.file_type").as_uint("file_type"));
}

TEST(GgufRope, ThePermutationForLlamaIsUndone) {
    std::vector<float> rows(4 * 8 * 3), permuted(rows.size()), back(rows.size());
    for (size_t i = 0; i < rows.size(); ++i) rows[i] = static_cast<float>(i);
    gguf::permute_rows_for_llama(rows.data(), permuted.data(), 4, 8, 3);
    // Head 1, pair 2: rows 2 and 2 + 4 of the head become its rows 4 and 5.
    EXPECT_EQ(permuted[(8 + 4) * 3], rows[(8 + 2) * 3]);
    EXPECT_EQ(permuted[(8 + 5) * 3], rows[(8 + 6) * 3]);
    gguf::unpermute_rows_from_llama(permuted.data(), back.data(), 4, 8, 3);
    EXPECT_EQ(back, rows);
}

// ---------------------------------------------------------------------------------------------
// Refusals on export.

void expect_refused(const ModelConfig& cfg, const std::vector<std::string>& phrases) {
    try {
        gguf::plan_export(cfg);
        FAIL() << "exported " << cfg.describe();
    } catch (const Error& e) {
        for (const std::string& p : phrases)
            EXPECT_NE(std::string(e.what()).find(p), std::string::npos)
                << "'" << p << "' not in: " << e.what();
    }
}

TEST(GgufExportPlan, WhatLlamaCppCannotComputeIsRefusedWithTheWayOut) {
    ModelConfig gpt_moe;
    gpt_moe.experts = 4;
    gpt_moe.topk = 2;
    expect_refused(gpt_moe, {"GPT-family", "--arch llama"});
    expect_refused(moe(llama_config(), 4, 1), {"top-1 without renormalised", "--moe-norm-topk on"});
    ModelConfig shared_renorm = moe(llama_config(), 4, 2);
    shared_renorm.shared_ffn = 32;
    expect_refused(shared_renorm, {"qwen2moe", "--moe-norm-topk off"});
    ModelConfig qwen3_off = moe(llama_config(), 4, 2, NormTopk::Off);
    qwen3_off.qk_norm = QkNorm::PerHead;
    expect_refused(qwen3_off, {"qwen3moe", "--moe-norm-topk on"});
    ModelConfig olmoe_on = moe(llama_config(), 4, 2);
    olmoe_on.qk_norm = QkNorm::Full;
    expect_refused(olmoe_on, {"olmoe", "--moe-norm-topk off"});
    ModelConfig o_bias = moe(llama_config(), 4, 2);
    o_bias.qk_norm = QkNorm::PerHead;
    o_bias.o_bias = true;
    expect_refused(o_bias, {"o_proj bias", "qwen3moe"});
    ModelConfig wide_heads = moe(llama_config(), 4, 2, NormTopk::Off);
    wide_heads.shared_ffn = 32;
    wide_heads.head_size = 32;
    expect_refused(wide_heads, {"heads × head_dim = d_model", "--head-dim"});
}

TEST_F(GgufTemp, ExportReplacesOnlyAGgufFile) {
    const RandomModel m(llama_config());
    const auto save = [&](const std::string& p) {
        gguf::save_gguf_model(p, m.cfg, m.weights.data(), Tokenizer::bytes(), GgufDtype::F32, "t");
    };
    save(path("m.gguf"));
    save(path("m.gguf"));  // an earlier export is replaced
    std::ofstream(path("notes.gguf")) << "my notes";
    EXPECT_THROW(save(path("notes.gguf")), Error);
    std::ifstream in(path("notes.gguf"));
    std::string text;
    std::getline(in, text);
    EXPECT_EQ(text, "my notes");
    EXPECT_THROW(save(dir_.string()), Error);
    EXPECT_THROW(save(path("missing/m.gguf")), Error);
    for (const auto& entry : fs::directory_iterator(dir_))  // no temporary file left
        EXPECT_EQ(entry.path().filename().string().find(".tmp"), std::string::npos);
}

// ---------------------------------------------------------------------------------------------
// Files that describe what we do not compute.

using Metadata = std::vector<std::pair<std::string, io::GgufValue>>;

// Rewrites a GGUF file through `edit_metadata` and `edit_tensors`.
void rewrite(const std::string& from, const std::string& to,
             const std::function<void(Metadata&)>& edit_metadata,
             const std::function<void(std::vector<io::GgufTensorToWrite>&)>& edit_tensors = {}) {
    const io::GgufFile f = io::GgufFile::open(from);
    Metadata md = f.metadata();
    std::vector<io::GgufTensorToWrite> tensors;
    for (const io::GgufTensor& t : f.tensors()) {
        const io::GgufTensor copy = t;
        tensors.push_back(
            {t.name, t.ne, t.type, [copy](float* dst) { io::gguf_tensor_to_f32(copy, dst); }});
    }
    edit_metadata(md);
    if (edit_tensors) edit_tensors(tensors);
    io::write_gguf(to, md, tensors);
}

void set_key(Metadata& md, const std::string& key, io::GgufValue value) {
    for (auto& kv : md)
        if (kv.first == key) {
            kv.second = std::move(value);
            return;
        }
    md.emplace_back(key, std::move(value));
}

void expect_load_error(const std::string& file, const std::vector<std::string>& phrases) {
    try {
        open_model(file);
        FAIL() << "loaded " << file;
    } catch (const Error& e) {
        const std::string what = e.what();
        EXPECT_EQ(what.rfind(file, 0), 0u) << "message does not start with the path: " << what;
        for (const std::string& p : phrases)
            EXPECT_NE(what.find(p), std::string::npos) << "'" << p << "' not in: " << what;
    }
}

TEST_F(GgufTemp, KeysAndTensorsWeDoNotComputeAreRefusedByName) {
    const RandomModel m(moe(llama_config(), 4, 2));
    const std::string good = path("good.gguf"), bad = path("bad.gguf");
    gguf::save_gguf_model(good, m.cfg, m.weights.data(), Tokenizer::bytes(), GgufDtype::F32, "t");
    const auto with_key = [&](const std::string& key, io::GgufValue v) {
        rewrite(good, bad, [&](Metadata& md) { set_key(md, key, std::move(v)); });
    };
    with_key("general.architecture", io::GgufValue::string("mamba"));
    expect_load_error(bad, {"general.architecture", "mamba"});
    with_key("llama.rope.scaling.type", io::GgufValue::string("yarn"));
    expect_load_error(bad, {"yarn"});
    with_key("llama.rope.dimension_count", io::GgufValue::u32(8));
    expect_load_error(bad, {"rope.dimension_count"});
    with_key("llama.expert_weights_scale", io::GgufValue::f32(2.5f));
    expect_load_error(bad, {"expert_weights_scale"});
    with_key("llama.embedding_length", io::GgufValue::u32(96));
    expect_load_error(bad, {"token_embd.weight", "shape"});
    with_key("llama.block_count", io::GgufValue::u32(1));
    expect_load_error(bad, {"blk.1.", "not part of"});
    with_key("llama.context_length", io::GgufValue::string("long"));
    expect_load_error(bad, {"llama.context_length"});
    with_key("llama.attention.head_count", io::GgufValue::u32(0));
    expect_load_error(bad, {"llama.attention.head_count"});
    rewrite(
        good, bad, [](Metadata&) {},
        [](std::vector<io::GgufTensorToWrite>& t) {
            t.erase(std::remove_if(t.begin(), t.end(),
                                   [](const auto& x) { return x.name == "blk.1.attn_k.weight"; }),
                    t.end());
        });
    expect_load_error(bad, {"blk.1.attn_k.weight", "missing"});
    // The untouched copy still loads.
    rewrite(good, bad, [](Metadata&) {});
    EXPECT_NO_THROW(open_model(bad));
}

}  // namespace
}  // namespace tinygpt
