// Hugging Face model directories: every type's reference directory (tools/hf_reference.py: an
// independent float64 implementation of HF's modeling code) loads and gives its logits and loss;
// export → import is exact; bad directories and unexportable models are refused clearly.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "hf/hf_model.h"
#include "infer/session.h"
#include "load/model_source.h"
#include "model/model.h"
#include "model/params.h"
#include "scratch_dir.h"
#include "test_data.h"
#include "util/error.h"

namespace tinygpt {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

using test::kHfData;

struct Expected {
    std::vector<int> tokens;
    std::vector<float> logits;
    double loss = 0;
};

Expected read_expected(const std::string& name) {
    std::ifstream in(kHfData / (name + ".expected.json"));
    const json j = json::parse(in);
    Expected e;
    e.tokens = j["tokens"].get<std::vector<int>>();
    e.logits = j["logits"].get<std::vector<float>>();
    e.loss = j["loss"].get<double>();
    return e;
}

// Logits through the training forward and the KV-cached session, and the loss, against the
// reference.
void check_against_reference(const std::string& name) {
    SCOPED_TRACE(name);
    const Expected want = read_expected(name);
    const OpenedModel m = open_model((kHfData / name).string());
    const int T = static_cast<int>(want.tokens.size()), V = m.config.vocab;
    ASSERT_EQ(want.logits.size(), static_cast<size_t>(T) * V);
    double scale = 0;
    for (float x : want.logits) scale = std::max(scale, static_cast<double>(std::fabs(x)));

    Model model(m.config, m.f32_weights());
    model.forward(want.tokens.data(), nullptr, 1, T);
    double worst = 0;
    for (size_t i = 0; i < want.logits.size(); ++i)
        worst = std::max(worst, std::fabs(static_cast<double>(model.logits()[i]) - want.logits[i]));
    EXPECT_LT(worst / scale, 2e-5) << "logits (training forward), max |diff| " << worst;

    const ForwardResult r = model.forward(want.tokens.data(), want.tokens.data() + 1, 1, T - 1);
    EXPECT_NEAR(r.ce, want.loss, 2e-5 * std::max(1.0, want.loss)) << "loss";

    InferenceSession session(m.config, m.f32_weights());
    session.forward(want.tokens.data(), T, /*all_logits=*/true);
    worst = 0;
    for (size_t i = 0; i < want.logits.size(); ++i)
        worst =
            std::max(worst, std::fabs(static_cast<double>(session.logits()[i]) - want.logits[i]));
    EXPECT_LT(worst / scale, 2e-5) << "logits (KV-cached session), max |diff| " << worst;
}

TEST(HfModels, LlamaDenseTied) {
    check_against_reference("llama_dense_tied_f32");
}
TEST(HfModels, LlamaAttentionBiasHeadDimBf16Sharded) {
    check_against_reference("llama_bias_bf16_sharded");
}
TEST(HfModels, MistralHeadDimApart) {
    check_against_reference("mistral_f32");
}
TEST(HfModels, Qwen2QkvBias) {
    check_against_reference("qwen2_f32");
}
TEST(HfModels, Qwen3QkNormBf16) {
    check_against_reference("qwen3_bf16");
}
TEST(HfModels, MixtralHubNamesSharded) {
    check_against_reference("mixtral_f32_sharded");
}
TEST(HfModels, MixtralFusedExpertsV5) {
    check_against_reference("mixtral_fused_f32");
}
TEST(HfModels, Qwen2MoeSharedExpertSparseStep) {
    check_against_reference("qwen2_moe_bf16");
}
TEST(HfModels, Qwen3MoeDenseFirstLayer) {
    check_against_reference("qwen3_moe_f32");
}
TEST(HfModels, Qwen3MoeFusedExpertsBf16) {
    check_against_reference("qwen3_moe_fused_bf16");
}
TEST(HfModels, OlmoeFullWidthQkNorm) {
    check_against_reference("olmoe_f32");
}
TEST(HfModels, Gpt2Conv1D) {
    check_against_reference("gpt2_f32");
}

TEST(HfModels, ConfigsMapToOurDescription) {
    const OpenedModel olmoe = open_model((kHfData / "olmoe_f32").string());
    EXPECT_EQ(olmoe.config.qk_norm, QkNorm::Full);
    EXPECT_EQ(olmoe.config.norm_topk, NormTopk::Off);
    const OpenedModel qwen3moe = open_model((kHfData / "qwen3_moe_f32").string());
    EXPECT_FALSE(qwen3moe.config.is_moe_layer(0));
    EXPECT_TRUE(qwen3moe.config.is_moe_layer(1));
    EXPECT_NE(qwen3moe.config.head_dim() * qwen3moe.config.heads, qwen3moe.config.d_model);
    const OpenedModel qwen2moe = open_model((kHfData / "qwen2_moe_bf16").string());
    EXPECT_GT(qwen2moe.config.shared_ffn, 0);
    EXPECT_TRUE(qwen2moe.config.qkv_bias);
    EXPECT_FALSE(qwen2moe.tokenizer.is_bytes());
}

class TempDir : public ::testing::Test {
  protected:
    test::ScratchDir scratch_{"hf"};
    const fs::path& dir_ = scratch_.path();
};

std::vector<float> logits_of(const OpenedModel& m, const std::vector<int>& tokens) {
    Model model(m.config, m.f32_weights());
    model.forward(tokens.data(), nullptr, 1, static_cast<int>(tokens.size()));
    return std::vector<float>(model.logits(), model.logits() + tokens.size() * m.config.vocab);
}

// Export then import: the same function to the last bit at f32 (and the same weights wherever the
// HF type needs no extra zero tensors), and at bf16 the bf16-rounded weights.
class HfRoundTrip : public TempDir, public ::testing::WithParamInterface<std::string> {};

TEST_P(HfRoundTrip, ExportThenImportIsExact) {
    const std::string name = GetParam();
    const Expected want = read_expected(name);
    const OpenedModel a = open_model((kHfData / name).string());
    const fs::path out = dir_ / "export";
    hf::save_hf_model(out.string(), a.config, a.f32_weights(), a.tokenizer.to_hf_json(),
                      a.tokenizer.to_hf_config_json(), a.tokenizer.bos_id(), a.tokenizer.eos_id(),
                      hf::HfDtype::F32);
    const OpenedModel b = open_model(out.string());
    EXPECT_EQ(b.tokenizer.fingerprint(), a.tokenizer.fingerprint());
    const std::vector<float> la = logits_of(a, want.tokens), lb = logits_of(b, want.tokens);
    EXPECT_EQ(la, lb) << "logits after export → import";
    const size_t n = ParameterLayout(a.config).total();
    if (n == ParameterLayout(b.config).total()) {
        EXPECT_TRUE(std::equal(a.f32_weights(), a.f32_weights() + n, b.f32_weights())) << "weights";
    }
}

INSTANTIATE_TEST_SUITE_P(EveryType, HfRoundTrip,
                         ::testing::Values("llama_dense_tied_f32", "llama_bias_bf16_sharded",
                                           "mistral_f32", "qwen2_f32", "qwen3_bf16",
                                           "mixtral_f32_sharded", "mixtral_fused_f32",
                                           "qwen2_moe_bf16", "qwen3_moe_f32",
                                           "qwen3_moe_fused_bf16", "olmoe_f32", "gpt2_f32"));

TEST_F(TempDir, Bf16ExportRoundsTheWeights) {
    const OpenedModel a = open_model((kHfData / "qwen3_moe_f32").string());
    hf::save_hf_model((dir_ / "b").string(), a.config, a.f32_weights(), a.tokenizer.to_hf_json(),
                      a.tokenizer.to_hf_config_json(), a.tokenizer.bos_id(), a.tokenizer.eos_id(),
                      hf::HfDtype::BF16);
    const OpenedModel b = open_model((dir_ / "b").string());
    const size_t n = ParameterLayout(a.config).total();
    double worst = 0;
    for (size_t i = 0; i < n; ++i)
        worst = std::max(worst,
                         std::fabs(static_cast<double>(a.f32_weights()[i]) - b.f32_weights()[i]) /
                             std::max(1e-30, std::fabs(static_cast<double>(a.f32_weights()[i]))));
    EXPECT_LE(worst, 1.0 / 256.0);
    EXPECT_NE(b.format.find("bf16"), std::string::npos);
}

TEST_F(TempDir, ExportReplacesOnlyAnExportDirectory) {
    const OpenedModel a = open_model((kHfData / "llama_dense_tied_f32").string());
    const auto save = [&](const fs::path& p) {
        hf::save_hf_model(p.string(), a.config, a.f32_weights(), a.tokenizer.to_hf_json(), "", {},
                          {}, hf::HfDtype::F32);
    };
    save(dir_ / "m");
    save(dir_ / "m");  // an earlier export is replaced whole
    EXPECT_TRUE(fs::exists(dir_ / "m" / "model.safetensors"));
    std::ofstream(dir_ / "m" / "notes.txt") << "mine";
    try {
        save(dir_ / "m");
        FAIL() << "a directory with other files must not be replaced";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("notes.txt"), std::string::npos) << e.what();
    }
    EXPECT_TRUE(fs::exists(dir_ / "m" / "notes.txt"));
    std::ofstream(dir_ / "file") << "x";
    EXPECT_THROW(save(dir_ / "file"), Error);
    for (const auto& entry : fs::directory_iterator(dir_))  // no staging directory left behind
        EXPECT_EQ(entry.path().filename().string().find(".tmp."), std::string::npos);
}

void expect_export_refused(const ModelConfig& cfg, const std::string& phrase) {
    try {
        hf::export_type_for(cfg);
        FAIL() << "expected a refusal naming '" << phrase << "'";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find(phrase), std::string::npos) << e.what();
    }
}

TEST(HfExport, ChoosesTheTypeThatComputesTheSameFunction) {
    ModelConfig c;
    EXPECT_EQ(hf::export_type_for(c), hf::ModelType::Gpt2);
    c.arch = Arch::Llama;
    EXPECT_EQ(hf::export_type_for(c), hf::ModelType::Llama);
    c.qkv_bias = true;
    EXPECT_EQ(hf::export_type_for(c), hf::ModelType::Qwen2);
    c.qk_norm = QkNorm::PerHead;
    EXPECT_EQ(hf::export_type_for(c), hf::ModelType::Qwen3);
    c.qkv_bias = false;
    c.experts = 8;
    c.topk = 2;
    EXPECT_EQ(hf::export_type_for(c), hf::ModelType::Qwen3Moe);
    c.qk_norm = QkNorm::Full;
    EXPECT_EQ(hf::export_type_for(c), hf::ModelType::Olmoe);
    c.qk_norm = QkNorm::None;
    EXPECT_EQ(hf::export_type_for(c), hf::ModelType::Mixtral);
    c.shared_ffn = 64;
    EXPECT_EQ(hf::export_type_for(c), hf::ModelType::Qwen2Moe);

    ModelConfig gpt_moe;
    gpt_moe.experts = 4;
    gpt_moe.topk = 2;
    expect_export_refused(gpt_moe, "GPT family's MoE block");
    ModelConfig mixtral_dense_layer = c;
    mixtral_dense_layer.shared_ffn = 0;
    mixtral_dense_layer.layers = 4;
    mixtral_dense_layer.moe_layers = moe_layout_rule(4, 2, 0);
    expect_export_refused(mixtral_dense_layer, "mixtral has every layer MoE");
    ModelConfig top1_unnormalised = c;
    top1_unnormalised.shared_ffn = 0;
    top1_unnormalised.topk = 1;
    expect_export_refused(top1_unnormalised, "renormalised");
}

// Bad directories: a copy of a good one, broken one way each time.
class HfBadDirectory : public TempDir {
  protected:
    fs::path copy_of(const std::string& name) {
        const fs::path to = dir_ / name;
        fs::copy(kHfData / name, to, fs::copy_options::recursive);
        return to;
    }
    static void edit_json(const fs::path& file, const std::function<void(json&)>& edit) {
        json j;
        {
            std::ifstream in(file);
            j = json::parse(in);
        }
        edit(j);
        std::ofstream(file, std::ios::trunc) << j.dump(2);
    }
    static void expect_refused(const fs::path& dir, const std::vector<std::string>& phrases) {
        try {
            open_model(dir.string());
            FAIL() << "expected an error for " << dir;
        } catch (const Error& e) {
            for (const auto& p : phrases)
                EXPECT_NE(std::string(e.what()).find(p), std::string::npos)
                    << "'" << p << "' not in: " << e.what();
        }
    }
};

TEST_F(HfBadDirectory, ConfigFieldsThatChangeTheMathAreRefusedByName) {
    const fs::path d = copy_of("llama_dense_tied_f32");
    const fs::path cfg = d / "config.json";
    const std::string original = [&] {
        std::ifstream in(cfg);
        return std::string(std::istreambuf_iterator<char>(in), {});
    }();
    const auto restore = [&] { std::ofstream(cfg, std::ios::trunc) << original; };
    edit_json(cfg, [](json& j) { j["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}}; });
    expect_refused(d, {"rope_scaling"});
    restore();
    edit_json(cfg, [](json& j) { j["hidden_act"] = "gelu"; });
    expect_refused(d, {"hidden_act"});
    restore();
    edit_json(cfg, [](json& j) { j["mlp_bias"] = true; });
    expect_refused(d, {"mlp_bias"});
    restore();
    edit_json(cfg, [](json& j) { j["model_type"] = "deepseek_v3"; });
    expect_refused(d, {"deepseek_v3", "qwen3_moe"});
    restore();
    edit_json(cfg, [](json& j) { j["num_key_value_heads"] = 3; });
    expect_refused(d, {"config.json"});
    restore();
    edit_json(cfg, [](json& j) { j.erase("hidden_size"); });
    expect_refused(d, {"hidden_size"});
    restore();
    std::ofstream(cfg, std::ios::trunc) << "{ not json";
    expect_refused(d, {"config.json", "JSON"});

    const fs::path m = copy_of("mistral_f32");
    edit_json(m / "config.json", [](json& j) { j["sliding_window"] = 4; });
    expect_refused(m, {"sliding_window"});
    const fs::path g = copy_of("gpt2_f32");
    edit_json(g / "config.json", [](json& j) { j["activation_function"] = "gelu_new"; });
    expect_refused(g, {"activation_function", "gelu_new"});
}

TEST_F(HfBadDirectory, MissingExtraOrMisshapenTensorsAreRefused) {
    // A config that claims a tensor the checkpoint lacks (more experts).
    const fs::path a = copy_of("olmoe_f32");
    edit_json(a / "config.json", [](json& j) { j["num_experts"] = 9; });
    expect_refused(a, {"tensor"});
    // A config without the biases the checkpoint has: an extra tensor.
    const fs::path b = copy_of("llama_bias_bf16_sharded");
    edit_json(b / "config.json", [](json& j) { j["attention_bias"] = false; });
    expect_refused(b, {"unexpected tensor", "bias"});
    // A wider model than the tensors: wrong shape, both shapes named.
    const fs::path c = copy_of("qwen2_f32");
    edit_json(c / "config.json", [](json& j) { j["intermediate_size"] = 65; });
    expect_refused(c, {"shape"});
    // No tokenizer.
    const fs::path d = copy_of("gpt2_f32");
    fs::remove(d / "tokenizer.json");
    expect_refused(d, {"tokenizer.json"});
}

TEST_F(HfBadDirectory, BrokenShardsAndIndexesAreRefused) {
    const fs::path a = copy_of("mixtral_f32_sharded");
    fs::remove(a / "model-00002-of-00002.safetensors");
    expect_refused(a, {"model-00002-of-00002.safetensors"});
    const fs::path b = copy_of("llama_bias_bf16_sharded");
    const fs::path shard = b / "model-00001-of-00002.safetensors";
    fs::resize_file(shard, fs::file_size(shard) - 10);
    expect_refused(b, {"model-00001-of-00002.safetensors"});
    const fs::path c = copy_of("qwen3_moe_f32");
    fs::remove(c / "model.safetensors");
    expect_refused(c, {"model.safetensors"});
}

}  // namespace
}  // namespace tinygpt
