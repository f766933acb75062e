// `tinygpt report` end to end: a short real MoE training run (validation every few steps, a
// --log) drawn from its .tinygpt file and from its log. Both pages are well-formed and stand
// alone, hold the expected plots (one load heatmap per MoE layer, a column per load record), and
// the .svg files match; bad input is one clear error line and writes nothing.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli_harness.h"
#include "io/model_file.h"
#include "markup_check.h"
#include "model/params.h"
#include "test_util.h"

namespace tinygpt {
namespace {

using namespace test;

constexpr int kLayers = 2, kSteps = 20;

class CliReport : public CliTest {
  protected:
    std::string path(const std::string& name) const { return (dir_ / name).string(); }

    // The run of every test: 2 MoE layers of 4 experts, validation every 5 steps.
    void train_moe() {
        const RunResult r = train({{"--layers", std::to_string(kLayers)},
                                   {"--moe-experts", "4"},
                                   {"--moe-topk", "2"},
                                   {"--steps", std::to_string(kSteps)},
                                   {"--val-split", "0.1"},
                                   {"--val-every", "5"},
                                   {"--log", path("run.jsonl")},
                                   {"--out", path("m.tinygpt")}});
        ASSERT_EQ(r.exit_code, 0) << r.describe();
    }
};

TEST_F(CliReport, ModelFileAndLogGiveTheRunsPlots) {
    train_moe();
    const auto lines = split_lines(read_file(dir_ / "run.jsonl"));
    ASSERT_EQ(lines.size(), static_cast<size_t>(kSteps));
    const nlohmann::json last = nlohmann::json::parse(lines.back());
    const ModelFile file = ModelFile::read(path("m.tinygpt"));
    const size_t state_loads = file.training_state().expert_load_history.size();
    ASSERT_GT(state_loads, 1u);

    struct Case {
        std::string input;
        std::vector<std::string> figures;
        size_t load_columns;
    };
    const std::vector<Case> cases = {
        {"m.tinygpt",
         {"loss", "aux", "layer00_load_over_steps", "layer01_load_over_steps"},
         state_loads},
        {"run.jsonl",
         {"loss", "aux", "z", "lr", "layer00_load_over_steps", "layer01_load_over_steps"},
         lines.size()},
    };
    for (const Case& c : cases) {
        SCOPED_TRACE(c.input);
        const std::string html_path = path(c.input + ".html"), svg_dir = path(c.input + "-svg");
        const RunResult r = run({"report", path(c.input), "--html", html_path, "--svg", svg_dir});
        ASSERT_EQ(r.exit_code, 0) << r.describe();
        EXPECT_NE(r.out.find("steps  20 recorded, 1 to 20"), std::string::npos) << r.out;
        char final_val[64];
        std::snprintf(final_val, sizeof final_val, "final val loss %.4f (step 20)",
                      last["val_loss"].get<double>());
        EXPECT_NE(r.out.find(final_val), std::string::npos) << r.out;
        EXPECT_NE(r.out.find("html  " + html_path), std::string::npos) << r.out;

        const std::string html = read_file(html_path);
        EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
        EXPECT_EQ(markup_problem(html), "");
        expect_self_contained(html);
        EXPECT_EQ(count_of(html, "<svg "), c.figures.size());
        EXPECT_EQ(count_of(html, "_load_over_steps\""), static_cast<size_t>(kLayers))
            << "one heatmap per MoE layer";
        // Validation ran at steps 5, 10, 15 and 20: four points of the validation curve.
        EXPECT_EQ(count_of(html, "validation at "), 4u);
        EXPECT_EQ(count_of(html, "train at "), static_cast<size_t>(kSteps));
        size_t files = 0;
        for (const auto& entry : fs::directory_iterator(svg_dir)) (void)entry, ++files;
        EXPECT_EQ(files, c.figures.size());
        for (const std::string& name : c.figures) {
            SCOPED_TRACE(name);
            const std::string svg = read_file(fs::path(svg_dir) / (name + ".svg"));
            ASSERT_FALSE(svg.empty());
            EXPECT_EQ(svg.rfind("<?xml", 0), 0u);
            EXPECT_EQ(markup_problem(svg), "");
            if (name.find("_load_") != std::string::npos) {
                EXPECT_EQ(count_of(svg, ", expert 3: "), c.load_columns)
                    << "a column per load record";
                EXPECT_EQ(count_of(svg, ", expert 4: "), 0u) << "four experts";
            }
        }
    }
}

// Several inputs: one page comparing the runs, validation against steps and against training
// seconds, in bits per byte where every log has it.
TEST_F(CliReport, SeveralRunsAreComparedOnOnePage) {
    train_moe();
    const RunResult dense = train({{"--steps", "10"},
                                   {"--val-split", "0.1"},
                                   {"--val-every", "5"},
                                   {"--log", path("dense.jsonl")}});
    ASSERT_EQ(dense.exit_code, 0) << dense.describe();
    const RunResult r = run({"report", path("run.jsonl"), path("dense.jsonl"), "--label", "moe",
                             "--label", "dense", "--html", path("cmp.html"), "--svg", path("cmp")});
    ASSERT_EQ(r.exit_code, 0) << r.describe();
    EXPECT_NE(r.out.find("2 runs compared"), std::string::npos) << r.out;
    const std::string html = read_file(path("cmp.html"));
    EXPECT_EQ(markup_problem(html), "");
    expect_self_contained(html);
    EXPECT_EQ(count_of(html, "<svg "), 3u);
    for (const char* name : {"validation_vs_steps", "validation_vs_seconds", "train_loss_vs_steps"})
        EXPECT_TRUE(fs::exists(fs::path(path("cmp")) / (std::string(name) + ".svg"))) << name;
    EXPECT_NE(html.find("validation (bits per byte)"), std::string::npos);
    // Validation at steps 5, 10, 15, 20 (moe) and 5, 10 (dense), drawn against steps and against
    // seconds up to the worst value after each run's first quarter (what lies above is off the
    // scale); the training loss at every step.
    auto validation = [&](const std::string& log) {
        std::vector<std::pair<int, double>> points;
        for (const auto& line : split_lines(read_file(dir_ / log))) {
            const nlohmann::json j = nlohmann::json::parse(line);
            if (j.contains("val_bpb")) points.emplace_back(j["step"], j["val_bpb"]);
        }
        return points;
    };
    const auto moe_val = validation("run.jsonl"), dense_val = validation("dense.jsonl");
    ASSERT_EQ(moe_val.size(), 4u);
    ASSERT_EQ(dense_val.size(), 2u);
    double top = 0;  // the runs' steps are 1 to 20 and 1 to 10
    for (const auto& [points, last_step] :
         {std::pair{&moe_val, kSteps}, std::pair{&dense_val, 10}}) {
        const double from = 1 + 0.25 * (last_step - 1);
        for (const auto& [step, v] : *points)
            if (step >= from) top = std::max(top, v);
    }
    auto shown = [&](const std::vector<std::pair<int, double>>& points) {
        size_t n = 0;
        for (const auto& p : points) n += p.second <= top;
        return n;
    };
    EXPECT_EQ(count_of(html, "moe at "), 2 * shown(moe_val) + kSteps);
    EXPECT_EQ(count_of(html, "dense at "), 2 * shown(dense_val) + 10u);
    EXPECT_GE(shown(moe_val), 3u);
    // The table holds each run's last validation in bits per byte (the byte vocabulary: the
    // loss in nats over ln 2).
    const auto lines = split_lines(read_file(dir_ / "run.jsonl"));
    const nlohmann::json last = nlohmann::json::parse(lines.back());
    EXPECT_NEAR(last["val_bpb"].get<double>(), last["val_loss"].get<double>() / std::log(2.0),
                1e-12);
    char bpb[32];
    std::snprintf(bpb, sizeof bpb, "%.4f", last["val_bpb"].get<double>());
    EXPECT_NE(html.find(bpb), std::string::npos) << bpb;

    // A model file keeps no seconds: that plot is left out, and validation is in nats.
    const RunResult mixed =
        run({"report", path("run.jsonl"), path("m.tinygpt"), "--html", path("mixed.html")});
    ASSERT_EQ(mixed.exit_code, 0) << mixed.describe();
    EXPECT_NE(mixed.out.find("plots  2 (1 left out)"), std::string::npos) << mixed.out;
    EXPECT_NE(read_file(path("mixed.html")).find("validation (nats per token)"), std::string::npos);

    expect_clean_error(run({"report", path("run.jsonl"), path("dense.jsonl"), "--label", "one",
                            "--html", path("bad.html")}),
                       {"--label", "one per input"});
    expect_clean_error(run({"report", path("run.jsonl"), path("dense.jsonl"), "--label", "moe",
                            "--label", "", "--html", path("bad.html")}),
                       {"--label 2 is empty", "dense.jsonl"});
    expect_clean_error(run({"report", path("run.jsonl"), path("dense.jsonl"), "--label", "run",
                            "--label", "run", "--html", path("bad.html")}),
                       {"--label 'run' is given twice"});
    EXPECT_FALSE(fs::exists(dir_ / "bad.html"));
}

// Validation in bits per byte with a BPE tokenizer: a token stands for more than one byte of
// text, the same number at every step (the validation text does not change).
TEST_F(CliReport, ValidationBitsPerByteCountTheBytesOfABpeToken) {
    const RunResult tok = run({"tokenizer", "train", "--corpus", corpus_.string(), "--vocab", "300",
                               "--out", path("tok.json")});
    ASSERT_EQ(tok.exit_code, 0) << tok.describe();
    const RunResult r = train({{"--tokenizer", path("tok.json")},
                               {"--steps", "2"},
                               {"--val-split", "0.2"},
                               {"--val-every", "1"},
                               {"--log", path("bpe.jsonl")}});
    ASSERT_EQ(r.exit_code, 0) << r.describe();
    std::vector<double> bytes_per_token;
    for (const auto& line : split_lines(read_file(dir_ / "bpe.jsonl"))) {
        const nlohmann::json j = nlohmann::json::parse(line);
        bytes_per_token.push_back(j["val_loss"].get<double>() / std::log(2.0) /
                                  j["val_bpb"].get<double>());
    }
    ASSERT_EQ(bytes_per_token.size(), 2u);
    EXPECT_GT(bytes_per_token[0], 1.2);
    EXPECT_LT(bytes_per_token[0], 8.0);
    EXPECT_NEAR(bytes_per_token[0], bytes_per_token[1], 1e-9 * bytes_per_token[0]);
    EXPECT_NE(r.out.find(" bits/byte)"), std::string::npos) << r.out;
}

TEST_F(CliReport, BadInputIsOneClearError) {
    train_moe();
    const std::string log = path("run.jsonl");
    std::string text = read_file(log);
    write_file(dir_ / "bad.jsonl", text.substr(0, text.find('\n') + 1) + "{\"step\": 2, oops\n");
    expect_clean_error(run({"report", path("bad.jsonl"), "--html", path("p.html")}),
                       {"bad.jsonl", "line 2", "not valid JSON"});
    write_file(dir_ / "empty.jsonl", "");
    expect_clean_error(run({"report", path("empty.jsonl"), "--html", path("p.html")}),
                       {"empty.jsonl", "no training records"});
    EXPECT_FALSE(fs::exists(dir_ / "p.html")) << "nothing written on a refusal";

    // A model file without history: saved outside a training run.
    const ModelConfig cfg = test::model_config(
        {.vocab = 256, .ctx = 16, .layers = 1, .d_model = 16, .heads = 2, .d_mlp = 32});
    const std::vector<float> w(ParameterLayout(cfg).total(), 0.01f);
    SaveOptions options;
    options.include_optimizer = false;
    save_model_file(path("bare.tinygpt"), cfg, w.data(), nullptr, nullptr, TrainingState{},
                    options);
    expect_clean_error(run({"report", path("bare.tinygpt"), "--html", path("p.html")}),
                       {"bare.tinygpt", "no training history"});
    expect_clean_error(run({"report", dir_.string(), "--html", path("p.html")}),
                       {"no training history"});

    const std::string m = path("m.tinygpt");
    expect_clean_error(run({"report", m, "--html", dir_.string()}), {"--html", "is a directory"});
    expect_clean_error(run({"report", m, "--html", path("no/such/p.html")}),
                       {"--html", "does not exist"});
    expect_clean_error(run({"report", m, "--svg", log}), {"--svg", "not a directory"});
    expect_clean_error(run({"report", m}), {"--html"});
    expect_clean_error(run({"report", path("missing.tinygpt"), "--html", path("p.html")}),
                       {"missing.tinygpt"});
    EXPECT_FALSE(fs::exists(dir_ / "no")) << "nothing written on a refusal";
    EXPECT_FALSE(fs::exists(dir_ / "p.html"));
}

}  // namespace
}  // namespace tinygpt
