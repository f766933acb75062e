// WebSession (src/web/web_session.h), the engine as the browser page's worker sees it, run
// natively: the WebAssembly module exports these same functions, and tools/web-check/ checks the
// module against the native CLI. Here: training step by step lowers the loss; a saved model
// reopens and generates exactly what the engine's generate() gives; every token carries the
// routing of the forward that produced it (K experts per MoE layer, renormalised gates);
// eval_text matches next_token_logprobs; Stop (the callback's false) ends generation; bad input
// comes back as {"error"} and keeps the current model.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "infer/evaluate.h"
#include "infer/generate.h"
#include "load/model_source.h"
#include "scratch_dir.h"
#include "web/web_session.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

class WebSessionTest : public ::testing::Test {
  protected:
    void SetUp() override {
        std::ifstream in(TINYGPT_SOURCE_DIR "/data/shakespeare.txt", std::ios::binary);
        std::string text(60000, '\0');
        in.read(text.data(), static_cast<std::streamsize>(text.size()));
        std::ofstream(corpus()) << text;
    }
    std::string corpus() const { return (dir_ / "corpus.txt").string(); }
    std::string path(const char* name) const { return (dir_ / name).string(); }

    // A small model trained through the session, like the page's Train button.
    json train(tinygpt::WebSession& session, const json& options, int steps) {
        const json started = json::parse(session.train_start(options.dump(), corpus()));
        EXPECT_FALSE(started.contains("error")) << started.dump();
        json last;
        for (int i = 0; i < steps; ++i) last = json::parse(session.train_step(1));
        return last;
    }

    tinygpt::test::ScratchDir scratch_{"web"};
    const fs::path& dir_ = scratch_.path();
};

json parse(const std::string& text) {
    return json::parse(text);
}

TEST_F(WebSessionTest, TrainingStepByStepLowersTheLossAndEndsAtTheGivenSteps) {
    tinygpt::WebSession session;
    const json options = {{"d_model", 32}, {"layers", 2},     {"heads", 2},  {"ctx", 32},
                          {"experts", 4},  {"topk", 2},       {"steps", 30}, {"batch", 4},
                          {"lr", 3e-3},    {"val_split", 0.1}};
    const json first = parse(session.train_start(options.dump(), corpus()));
    ASSERT_FALSE(first.contains("error")) << first.dump();
    const json step1 = parse(session.train_step(1));
    ASSERT_EQ(step1["step"], 1);
    ASSERT_EQ(step1["expert_load"].size(), 2u);  // one load vector per MoE layer
    ASSERT_EQ(step1["expert_load"][0].size(), 4u);
    ASSERT_TRUE(step1["val_loss"].is_null());
    json last = parse(session.train_step(100));  // stops at the run's 30 steps
    EXPECT_EQ(last["step"], 30);
    EXPECT_TRUE(last["done"].get<bool>());
    EXPECT_LT(last["loss"].get<double>(), step1["loss"].get<double>() - 0.3);
    EXPECT_TRUE(last["val_loss"].is_number());
    const json info = parse(session.model_info());
    EXPECT_EQ(info["moe_layers"], json::array({0, 1}));
    EXPECT_EQ(info["config"]["experts"], 4);
}

TEST_F(WebSessionTest, SavedModelReopensAndGeneratesWhatTheEngineGenerates) {
    tinygpt::WebSession trainer;
    train(trainer,
          {{"arch", "llama"},
           {"d_model", 32},
           {"layers", 2},
           {"heads", 4},
           {"kv_heads", 2},
           {"ctx", 32},
           {"experts", 4},
           {"topk", 2},
           {"steps", 8},
           {"batch", 4}},
          8);
    const json saved = parse(trainer.save_model(path("m.tinygpt"), R"({"optimizer": false})"));
    ASSERT_GT(saved.value("bytes", 0), 1000) << saved.dump();

    tinygpt::WebSession session;
    const json info = parse(session.open_model(path("m.tinygpt")));
    ASSERT_EQ(info.value("family", ""), "llama") << info.dump();
    std::vector<json> tokens;
    const json stats = parse(session.generate("ROMEO:", R"({"tokens": 40, "temperature": 0})",
                                              [&](const std::string& t) {
                                                  tokens.push_back(json::parse(t));
                                                  return true;
                                              }));
    ASSERT_EQ(stats.value("generated", 0), 40) << stats.dump();  // past the context of 32
    ASSERT_EQ(tokens.size(), 40u);

    const tinygpt::OpenedModel model = tinygpt::open_model(path("m.tinygpt"));
    tinygpt::GenerateOptions options;
    options.max_new_tokens = 40;
    options.sampling.temperature = 0;
    std::vector<int> expected;
    tinygpt::generate(model.weights, model.tokenizer.encode("ROMEO:"), options,
                      [&](int id) { expected.push_back(id); });
    std::string text;
    for (size_t i = 0; i < tokens.size(); ++i) {
        EXPECT_EQ(tokens[i]["id"], expected[i]) << "token " << i;
        text += tokens[i]["text"].get<std::string>();
        ASSERT_EQ(tokens[i]["layers"].size(), 2u);
        for (const json& layer : tokens[i]["layers"]) {
            ASSERT_EQ(layer.size(), 2u);  // K pairs [expert, gate]
            const int e0 = layer[0][0], e1 = layer[1][0];
            EXPECT_NE(e0, e1);
            EXPECT_NEAR(layer[0][1].get<double>() + layer[1][1].get<double>(), 1.0, 1e-5);
            EXPECT_GE(layer[0][1].get<double>(), layer[1][1].get<double>());
        }
    }
    EXPECT_EQ(text, stats["text"]);
    EXPECT_EQ(text, model.tokenizer.decode(expected));
}

TEST_F(WebSessionTest, EvalTextMatchesTheEnginesLogProbabilities) {
    tinygpt::WebSession session;
    train(session, {{"d_model", 32}, {"layers", 1}, {"heads", 2}, {"ctx", 64}, {"steps", 3}}, 3);
    ASSERT_FALSE(parse(session.save_model(path("d.tinygpt"), "")).contains("error"));
    const std::string text = "First Citizen: speak, speak.";
    const json scored = parse(session.eval_text(text));
    const tinygpt::OpenedModel model = tinygpt::open_model(path("d.tinygpt"));
    const std::vector<int> ids = model.tokenizer.encode(text);
    const std::vector<double> expected =
        tinygpt::next_token_logprobs(model.weights, std::vector<int32_t>(ids.begin(), ids.end()));
    ASSERT_EQ(scored["logprobs"].size(), expected.size());
    double nll = 0;
    for (size_t i = 0; i < expected.size(); ++i) {
        EXPECT_NEAR(scored["logprobs"][i].get<double>(), expected[i], 1e-5);
        nll -= expected[i];
    }
    EXPECT_NEAR(scored["cross_entropy"].get<double>(), nll / expected.size(), 1e-6);
}

TEST_F(WebSessionTest, StopEndsGenerationAtTheCallbacksFalse) {
    tinygpt::WebSession session;
    train(session, {{"d_model", 32}, {"layers", 1}, {"heads", 2}, {"ctx", 32}, {"steps", 2}}, 2);
    int calls = 0;
    const json stats = parse(session.generate("A", R"({"tokens": 50, "seed": 3})",
                                              [&](const std::string&) { return ++calls < 5; }));
    EXPECT_EQ(calls, 5);
    EXPECT_EQ(stats["generated"], 5);
    EXPECT_TRUE(stats["stopped"].get<bool>());
}

TEST_F(WebSessionTest, BadInputReturnsAnErrorAndKeepsTheCurrentModel) {
    tinygpt::WebSession session;
    EXPECT_NE(parse(session.model_info()).value("error", ""), "");
    EXPECT_NE(parse(session.generate("x", "", nullptr)).value("error", "").find("no model"),
              std::string::npos);
    train(session, {{"d_model", 32}, {"layers", 1}, {"heads", 2}, {"ctx", 32}, {"steps", 2}}, 2);
    std::ofstream(path("bad.tinygpt")) << "TGPT\x03garbage";
    const json bad = parse(session.open_model(path("bad.tinygpt")));
    EXPECT_NE(bad.value("error", "").find("bad.tinygpt"), std::string::npos) << bad.dump();
    EXPECT_FALSE(parse(session.model_info()).contains("error"));  // the trained model stays
    for (const char* options : {R"({"temperature": "hot"})", R"({"top_p": 2})", "[1, 2]", "{"})
        EXPECT_TRUE(parse(session.generate("x", options, nullptr)).contains("error")) << options;
    EXPECT_TRUE(parse(session.generate("", "", nullptr)).contains("error"));
    EXPECT_TRUE(
        parse(session.train_start(R"({"experts": 4, "topk": 9})", corpus())).contains("error"));
    EXPECT_TRUE(parse(session.train_start("", path("missing.txt"))).contains("error"));
    EXPECT_TRUE(
        parse(session.save_model(path("x.tinygpt"), R"({"dtype": "f64"})")).contains("error"));
    EXPECT_FALSE(parse(session.generate("x", R"({"tokens": 3})", nullptr)).contains("error"));
}

TEST_F(WebSessionTest, ModelsTooLargeForMemoryAreRefusedBeforeAllocating) {
    tinygpt::WebSession session;
    const json refused = parse(session.train_start(
        R"({"d_model": 8192, "layers": 64, "heads": 64, "d_mlp": 32768, "experts": 64, "topk": 2})",
        corpus()));
    EXPECT_NE(refused.value("error", "").find("too large"), std::string::npos) << refused.dump();
}

}  // namespace
