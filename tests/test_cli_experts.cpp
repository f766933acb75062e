// `tinygpt experts` end to end: a small mixed dense/MoE model (random weights, decisive routers)
// over a text through the binary. The JSON has each MoE layer with a load that sums to 1 and
// matches a count from the training forward; the HTML page and the SVG files stand alone, are
// well-formed and escape hostile token text; bad input is one clear error line.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "cli_harness.h"
#include "io/model_file.h"
#include "load/model_source.h"
#include "markup_check.h"
#include "model/model.h"
#include "test_util.h"
#include "tokenizer/tokenizer.h"
#include "train/data.h"

namespace tinygpt {
namespace {

using namespace test;

constexpr int kExperts = 4, kTopk = 2, kCtx = 32;

// Three blocks, the middle one dense (it must be skipped).
ModelConfig mixed_config(int vocab) {
    ModelConfig cfg = test::model_config({.vocab = vocab,
                                          .ctx = kCtx,
                                          .layers = 3,
                                          .d_model = 32,
                                          .heads = 2,
                                          .d_mlp = 32,
                                          .experts = kExperts,
                                          .topk = kTopk});
    cfg.moe_layers = {1, 0, 1};
    return cfg;
}

// Routers scaled up so that no two experts' probabilities nearly tie: the inference path and
// the training forward then pick the same experts.
std::vector<float> decisive_weights(const ModelConfig& cfg) {
    Model model(cfg, /*with_grads=*/false);
    model.init(17);
    std::vector<float> w(model.params(), model.params() + model.buffer_floats());
    const ParameterLayout layout(cfg);
    for (const ParamInfo& p : layout.entries())
        if (p.id.role == TensorRole::Router)
            for (size_t i = 0; i < p.numel; ++i) w[p.offset + i] *= 50.0f;
    return w;
}

void save(const fs::path& path, const ModelConfig& cfg, const std::vector<float>& w,
          const Tokenizer& tokenizer) {
    SaveOptions options;
    options.include_optimizer = false;
    set_tokenizer(options, tokenizer);
    save_model_file(path.string(), cfg, w.data(), nullptr, nullptr, TrainingState{}, options);
}

// A text with bytes a page must escape: markup, entities, quotes, control and invalid UTF-8.
std::string hostile_text() {
    return make_corpus_text(400) + "<svg></svg> & \"q\" 'a' <b>x&amp;y</b>\x01\x1B\xFF\xFE\n";
}

class ExpertsCli : public CliTest {
  protected:
    std::string path(const std::string& name) const { return (dir_ / name).string(); }
};

// HTML that opens offline: nothing fetched, nothing run.
TEST_F(ExpertsCli, JsonHasEachMoeLayerWithTheLoadOfTheForwardPass) {
    const Tokenizer bytes = Tokenizer::bytes();
    const ModelConfig cfg = mixed_config(256);
    const std::vector<float> w = decisive_weights(cfg);
    save(dir_ / "m.tinygpt", cfg, w, bytes);
    write_file(dir_ / "text.txt", hostile_text());
    const RunResult r = run({"experts", path("m.tinygpt"), "--corpus", path("text.txt"), "--json"});
    ASSERT_EQ(r.exit_code, 0) << r.describe();
    const nlohmann::json j = nlohmann::json::parse(r.out);
    ASSERT_TRUE(j.contains("layers")) << j.dump();

    // The independent count: the training forward over the same windows.
    const std::vector<int32_t> tokens = Corpus::load(path("text.txt"), bytes).tokens;
    Model model(cfg, w.data());
    std::vector<std::vector<double>> counts(3, std::vector<double>(kExperts, 0.0));
    std::vector<double> entropy(3, 0.0);
    for (size_t start = 0; start < tokens.size(); start += kCtx) {
        const int n = static_cast<int>(std::min<size_t>(kCtx, tokens.size() - start));
        const std::vector<int> ids(tokens.begin() + start, tokens.begin() + start + n);
        model.forward(ids.data(), nullptr, 1, n);
        for (int block : {0, 2}) {
            const std::vector<float> load = model.expert_load(block);
            for (int e = 0; e < kExperts; ++e) counts[block][e] += std::round(load[e] * n * kTopk);
            const float* p = model.router_probs(block);
            for (int i = 0; i < n * kExperts; ++i)
                if (p[i] > 0) entropy[block] -= p[i] * std::log(static_cast<double>(p[i]));
        }
    }
    const double N = static_cast<double>(tokens.size());
    EXPECT_EQ(j["tokens"].get<double>(), N);
    ASSERT_EQ(j["layers"].size(), 2u) << "layer 1 is dense";
    for (size_t m = 0; m < 2; ++m) {
        const nlohmann::json& layer = j["layers"][m];
        const int block = m == 0 ? 0 : 2;
        EXPECT_EQ(layer["layer"], block);
        ASSERT_EQ(layer["load"].size(), static_cast<size_t>(kExperts));
        double sum = 0;
        for (int e = 0; e < kExperts; ++e) {
            const double share = layer["load"][e].get<double>();
            sum += share;
            EXPECT_NEAR(share, counts[block][e] / (N * kTopk), 1e-12)
                << "layer " << block << " expert " << e;
        }
        EXPECT_NEAR(sum, 1.0, 1e-12);
        EXPECT_NEAR(layer["router_entropy"].get<double>(), entropy[block] / N, 1e-4);
        EXPECT_NEAR(layer["max_entropy"].get<double>(), std::log(4.0), 1e-12);
        // Co-selection is symmetric, with the tokens choosing each expert on the diagonal.
        for (int a = 0; a < kExperts; ++a) {
            EXPECT_EQ(layer["coselection"][a][a], layer["assignments"][a]);
            for (int b = 0; b < kExperts; ++b)
                EXPECT_EQ(layer["coselection"][a][b], layer["coselection"][b][a]);
        }
        EXPECT_EQ(layer["top_tokens"].size(), static_cast<size_t>(kExperts));
    }
    EXPECT_EQ(j["layers"][0]["next_layer"]["layer"], 2);
    EXPECT_FALSE(j["layers"][1].contains("next_layer"));
    EXPECT_EQ(j["passage"]["ids"].size(), 200u);
    EXPECT_EQ(j["passage"]["layers"][1]["experts"][0].size(), static_cast<size_t>(kTopk));

    // Typed weights run as stored (the inference path reads bf16): the same kind of answer.
    const RunResult bf16 = run({"experts", path("m.tinygpt"), "--corpus", path("text.txt"),
                                "--json", "--dtype", "bf16", "--passage", "0"});
    ASSERT_EQ(bf16.exit_code, 0) << bf16.describe();
    const nlohmann::json b = nlohmann::json::parse(bf16.out);
    ASSERT_EQ(b["layers"].size(), 2u);
    double bf16_sum = 0;
    for (const auto& share : b["layers"][1]["load"]) bf16_sum += share.get<double>();
    EXPECT_NEAR(bf16_sum, 1.0, 1e-12);
    EXPECT_TRUE(b["passage"]["ids"].empty());

    // The text report: each MoE layer, not the dense one.
    const RunResult text = run({"experts", path("m.tinygpt"), "--corpus", path("text.txt")});
    ASSERT_EQ(text.exit_code, 0) << text.describe();
    EXPECT_NE(text.out.find("\nlayer 0: router entropy"), std::string::npos) << text.out;
    EXPECT_NE(text.out.find("\nlayer 2: router entropy"), std::string::npos) << text.out;
    EXPECT_EQ(text.out.find("\nlayer 1:"), std::string::npos) << text.out;
    EXPECT_NE(text.out.find("→ layer 2: NMI"), std::string::npos) << text.out;
}

TEST_F(ExpertsCli, HtmlAndSvgFilesStandAloneAndEscapeHostileTokens) {
    // A BPE vocabulary learned on the text, so that tokens hold several markup characters.
    std::string text;
    for (int i = 0; i < 30; ++i)
        text += "<b>\"x&y\"</b> <svg> & 'quoted' </svg>\n" + make_corpus_text(80);
    BpeTrainOptions bpe;
    bpe.vocab_size = 320;
    const Tokenizer tokenizer = train_bpe(text, bpe);
    const ModelConfig cfg = mixed_config(tokenizer.vocab_size());
    save(dir_ / "bpe.tinygpt", cfg, decisive_weights(cfg), tokenizer);
    write_file(dir_ / "text.txt", text);
    const RunResult r = run({"experts", path("bpe.tinygpt"), "--corpus", path("text.txt"), "--html",
                             path("page.html"), "--svg", path("figures"), "--json"});
    ASSERT_EQ(r.exit_code, 0) << r.describe();
    const nlohmann::json j = nlohmann::json::parse(r.out);
    bool hostile_piece = false;
    for (const auto& piece : j["passage"]["text"]) {
        const std::string p = piece.get<std::string>();
        hostile_piece =
            hostile_piece || (p.size() > 1 && p.find_first_of("<>&\"") != std::string::npos);
    }
    ASSERT_TRUE(hostile_piece) << "no token holds markup: the escaping is not exercised";

    const std::string html = read_file(dir_ / "page.html");
    EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
    EXPECT_EQ(markup_problem(html), "");
    expect_self_contained(html);
    for (const char* raw : {"<b>", "</b>", "x&y", "<svg>", "\"x"})
        EXPECT_EQ(html.find(raw), std::string::npos) << raw << " left unescaped";
    for (const char* escaped : {"&lt;", "&gt;", "&amp;", "&quot;"})
        EXPECT_NE(html.find(escaped), std::string::npos) << "the token text is shown escaped";

    const std::vector<std::string> names = {
        "load_by_layer",        "summary_by_layer",     "layer00_load",    "layer00_coselection",
        "layer00_byte_classes", "layer00_to_layer02",   "layer00_passage", "layer02_load",
        "layer02_coselection",  "layer02_byte_classes", "layer02_passage"};
    EXPECT_EQ(count_of(html, "<svg "), names.size()) << "the page shows every figure";
    size_t files = 0;
    for (const auto& entry : fs::directory_iterator(dir_ / "figures")) (void)entry, ++files;
    EXPECT_EQ(files, names.size());
    for (const std::string& name : names) {
        SCOPED_TRACE(name);
        const std::string svg = read_file(dir_ / "figures" / (name + ".svg"));
        ASSERT_FALSE(svg.empty());
        EXPECT_EQ(svg.rfind("<?xml", 0), 0u);
        EXPECT_EQ(markup_problem(svg), "");
        EXPECT_GE(count_of(svg, "<rect") + count_of(svg, "<circle"), 3u) << "an empty plot";
    }
}

TEST_F(ExpertsCli, BadInputIsOneClearError) {
    const Tokenizer bytes = Tokenizer::bytes();
    const ModelConfig moe = mixed_config(256);
    save(dir_ / "m.tinygpt", moe, decisive_weights(moe), bytes);
    ModelConfig dense = moe;
    dense.experts = 1;
    dense.topk = 1;
    dense.moe_layers.clear();
    Model dense_model(dense, /*with_grads=*/false);
    dense_model.init(3);
    save(dir_ / "dense.tinygpt", dense,
         std::vector<float>(dense_model.params(),
                            dense_model.params() + dense_model.buffer_floats()),
         bytes);
    const std::string m = path("m.tinygpt"), corpus = corpus_.string();

    expect_clean_error(run({"experts", path("dense.tinygpt"), "--corpus", corpus}),
                       {"dense.tinygpt", "model has no MoE layer"});
    expect_clean_error(run({"experts", m, "--corpus", path("missing.txt")}), {"missing.txt"});
    expect_clean_error(run({"experts", m}), {"--corpus"});
    expect_clean_error(run({"experts", m, "--corpus", corpus, "--html", dir_.string()}),
                       {"--html", "is a directory"});
    expect_clean_error(run({"experts", m, "--corpus", corpus, "--html", path("no/such/p.html")}),
                       {"--html", "does not exist"});
    expect_clean_error(run({"experts", m, "--corpus", corpus, "--svg", corpus}),
                       {"--svg", "not a directory"});
    expect_clean_error(run({"experts", m, "--corpus", corpus, "--max-tokens", "-1"}),
                       {"--max-tokens"});
    EXPECT_FALSE(fs::exists(dir_ / "no")) << "nothing written on a refusal";
}

}  // namespace
}  // namespace tinygpt
