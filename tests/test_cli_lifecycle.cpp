// The model's life cycle through the binary: train --out, inspect, sample, eval, bench, exact
// resume (bit-identical losses), v2 files, Ctrl-C saves, and refusals.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>
#include <random>

#include "cli_harness.h"
#include "io/model_file.h"
#include "model/params.h"

namespace tinygpt {
namespace {

using namespace test;
namespace fs = std::filesystem;

class Lifecycle : public CliTest {
  protected:
    // A tiny MoE model, trained for `steps` with a per-step log.
    // The flags of a tiny MoE run of `steps` saving to `out`.
    std::vector<std::pair<std::string, std::string>> moe_flags(const std::string& out,
                                                               int steps) const {
        return {{"--corpus", corpus_.string()},
                {"--layers", "2"},
                {"--d-model", "16"},
                {"--heads", "2"},
                {"--d-mlp", "24"},
                {"--ctx", "16"},
                {"--batch", "2"},
                {"--moe-experts", "4"},
                {"--moe-topk", "2"},
                {"--max-lr", "3e-3"},
                {"--steps", std::to_string(steps)},
                {"--out", out},
                {"--val-split", "0.1"},
                {"--val-every", "3"}};
    }
    // A tiny MoE model, trained for `steps` with a per-step log.
    RunResult train_moe(const std::string& out, int steps,
                        std::vector<std::pair<std::string, std::string>> extra = {}) {
        auto args = moe_flags((dir_ / out).string(), steps);
        args.erase(args.begin());  // train() adds the corpus
        args.insert(args.end(), extra.begin(), extra.end());
        return train(args);
    }
    static std::vector<nlohmann::json> read_log(const fs::path& path) {
        std::vector<nlohmann::json> records;
        for (const auto& line : split_lines(read_file(path)))
            if (!line.empty()) records.push_back(nlohmann::json::parse(line));
        return records;
    }
    std::string path(const std::string& name) const { return (dir_ / name).string(); }
};

TEST_F(Lifecycle, TrainSavesAFileThatInspectDescribes) {
    const RunResult t = train_moe("m.tinygpt", 5);
    ASSERT_EQ(t.exit_code, 0) << t.describe();
    EXPECT_NE(t.out.find("saved " + path("m.tinygpt")), std::string::npos) << t.describe();
    const RunResult i = run({"inspect", path("m.tinygpt")});
    ASSERT_EQ(i.exit_code, 0) << i.describe();
    for (const char* want :
         {"format     v3", "step       5", "MoE        4 experts of width 24 · top-2",
          "active per token", "AdamW moments + training state",
          "blocks.1.moe.experts.3.fc_out.weight", "expert load at step 5"})
        EXPECT_NE(i.out.find(want), std::string::npos) << want << "\n" << i.describe();
    const RunResult j = run({"inspect", path("m.tinygpt"), "--json"});
    ASSERT_EQ(j.exit_code, 0) << j.describe();
    const auto info = nlohmann::json::parse(j.out);
    EXPECT_EQ(info["format_version"], 3);
    EXPECT_EQ(info["step"], 5);
    EXPECT_EQ(info["config"]["experts"], 4);
    EXPECT_TRUE(info["optimizer_state"].get<bool>());
    EXPECT_EQ(info["expert_load"]["per_block"].size(), 2u);
}

TEST_F(Lifecycle, ResumeContinuesBitIdentically) {
    // One uninterrupted 8-step run against 4 steps + resume to 8.
    ASSERT_EQ(train_moe("full.tinygpt", 8, {{"--log", path("full.jsonl")}}).exit_code, 0);
    const RunResult first = train_moe("half.tinygpt", 8, {{"--stop-at", "4"}});
    ASSERT_EQ(first.exit_code, 0) << first.describe();
    const RunResult second =
        run({"train", "--resume", path("half.tinygpt"), "--out", path("half.tinygpt"), "--corpus",
             corpus_.string(), "--log", path("resumed.jsonl"), "--sample-tokens", "0",
             "--val-every", "3"});
    ASSERT_EQ(second.exit_code, 0) << second.describe();
    EXPECT_NE(second.out.find("resuming from"), std::string::npos) << second.describe();
    const auto full = read_log(dir_ / "full.jsonl"), resumed = read_log(dir_ / "resumed.jsonl");
    ASSERT_EQ(full.size(), 8u);
    ASSERT_EQ(resumed.size(), 4u);
    for (int i = 0; i < 4; ++i) {
        EXPECT_EQ(resumed[i]["step"], full[4 + i]["step"]);
        EXPECT_EQ(resumed[i]["loss"].get<double>(), full[4 + i]["loss"].get<double>())
            << "step " << 5 + i;
        EXPECT_EQ(resumed[i]["aux"].get<double>(), full[4 + i]["aux"].get<double>())
            << "step " << 5 + i;
    }
    // Same final weights as well.
    const ModelFile a = ModelFile::read(path("full.tinygpt")),
                    b = ModelFile::read(path("half.tinygpt"));
    const size_t n = ParameterLayout(a.config()).total();
    EXPECT_EQ(0, std::memcmp(a.weights(), b.weights(), n * sizeof(float)));
}

TEST_F(Lifecycle, ResumeRefusesShapeFlagsAndFinishedRuns) {
    ASSERT_EQ(train_moe("m.tinygpt", 3).exit_code, 0);
    expect_clean_error(run({"train", "--resume", path("m.tinygpt"), "--corpus", corpus_.string(),
                            "--moe-experts", "8"}),
                       {"--moe-experts", "--resume", path("m.tinygpt")});
    expect_clean_error(
        run({"train", "--resume", path("m.tinygpt"), "--corpus", corpus_.string(), "--steps", "3"}),
        {"already at step 3"});
    expect_clean_error(
        run({"train", "--resume", path("missing.tinygpt"), "--corpus", corpus_.string()}),
        {path("missing.tinygpt")});
}

TEST_F(Lifecycle, SampleIsSeededAndCacheMatchesRecompute) {
    ASSERT_EQ(train_moe("m.tinygpt", 6).exit_code, 0);
    auto sample = [&](std::vector<std::string> extra) {
        std::vector<std::string> args = {"sample", path("m.tinygpt"), "--prompt",
                                         "ROMEO:", "--tokens",        "20"};
        args.insert(args.end(), extra.begin(), extra.end());
        const RunResult r = run(args);
        EXPECT_EQ(r.exit_code, 0) << r.describe();
        return r;
    };
    const RunResult cached = sample({"--temperature", "0"}),
                    uncached = sample({"--temperature", "0", "--no-cache"});
    EXPECT_EQ(cached.out, uncached.out);
    EXPECT_EQ(cached.out.rfind("ROMEO:", 0), 0u);
    EXPECT_NE(cached.err.find("KV-cached"), std::string::npos);
    // 20 tokens past a 16-token context: the window slides (the same on both paths), unless
    // --stop-at-context.
    EXPECT_NE(cached.err.find("the window slid"), std::string::npos) << cached.describe();
    EXPECT_NE(cached.err.find("generated 20"), std::string::npos) << cached.describe();
    const RunResult stopped = sample({"--temperature", "0", "--stop-at-context"});
    EXPECT_NE(stopped.err.find("context of 16 tokens is full"), std::string::npos)
        << stopped.describe();
    EXPECT_EQ(stopped.out, cached.out.substr(0, stopped.out.size() - 1) + "\n");
    expect_clean_error(run({"sample", path("m.tinygpt"), "--keep", "15"}), {"--keep"});
    EXPECT_EQ(sample({"--seed", "5", "--top-k", "20", "--top-p", "0.9"}).out,
              sample({"--seed", "5", "--top-k", "20", "--top-p", "0.9"}).out);
    expect_clean_error(run({"sample", path("m.tinygpt"), "--top-p", "0"}), {"--top-p"});
}

TEST_F(Lifecycle, EvalIsDeterministicAndConsistent) {
    ASSERT_EQ(train_moe("m.tinygpt", 4).exit_code, 0);
    const std::vector<std::string> args = {
        "eval", path("m.tinygpt"), "--corpus", corpus_.string(), "--max-tokens",
        "90",   "--batch",         "2",        "--json"};
    const RunResult a = run(args), b = run(args);
    ASSERT_EQ(a.exit_code, 0) << a.describe();
    EXPECT_EQ(a.out, b.out);
    const auto r = nlohmann::json::parse(a.out);
    EXPECT_NEAR(r["bits_per_byte"].get<double>(), r["cross_entropy"].get<double>() / std::log(2.0),
                1e-9);
    EXPECT_NEAR(r["perplexity"].get<double>(), std::exp(r["cross_entropy"].get<double>()), 1e-6);
    EXPECT_TRUE(r.contains("aux"));
    // Non-overlapping windows of ctx 16 from the start: 5 full ones and one of 10.
    EXPECT_EQ(r["tokens_scored"], 90);
    EXPECT_EQ(r["bytes_scored"], 90);
    EXPECT_EQ(r["windows"], 6);
    // A text shorter than the context is one window of all its tokens.
    write_file(dir_ / "short.txt", "too short");
    const RunResult s = run({"eval", path("m.tinygpt"), "--corpus", path("short.txt"), "--json"});
    ASSERT_EQ(s.exit_code, 0) << s.describe();
    const auto sj = nlohmann::json::parse(s.out);
    EXPECT_EQ(sj["tokens_scored"], 8);
    EXPECT_EQ(sj["windows"], 1);
}

TEST_F(Lifecycle, BenchReportsInferenceFigures) {
    ASSERT_EQ(train_moe("m.tinygpt", 2).exit_code, 0);
    const RunResult r = run({"bench", path("m.tinygpt"), "--prompt-tokens", "8", "--gen-tokens",
                             "8", "--runs", "2", "--json"});
    ASSERT_EQ(r.exit_code, 0) << r.describe();
    const auto j = nlohmann::json::parse(r.out);
    for (const char* key : {"decode_tok_per_s", "prefill_tok_per_s", "ttft_ms", "load_ms",
                            "peak_rss_mb", "itl_ms_p50", "itl_ms_p95", "itl_ms_p99"})
        EXPECT_TRUE(j.contains(key)) << key;
    EXPECT_GT(j["decode_tok_per_s"].get<double>(), 0.0);
    expect_clean_error(
        run({"bench", path("m.tinygpt"), "--prompt-tokens", "10", "--gen-tokens", "10"}),
        {"exceeds the model's context"});
}

TEST_F(Lifecycle, V2FilesRoundTripThroughTheCli) {
    ASSERT_EQ(train_moe("m2.tinygpt", 3, {{"--format", "v2"}}).exit_code, 0);
    const RunResult i = run({"inspect", path("m2.tinygpt")});
    ASSERT_EQ(i.exit_code, 0) << i.describe();
    EXPECT_NE(i.out.find("format     v2"), std::string::npos) << i.describe();
    EXPECT_EQ(run({"sample", path("m2.tinygpt"), "--tokens", "4"}).exit_code, 0);
    const RunResult r = run({"train", "--resume", path("m2.tinygpt"), "--corpus", corpus_.string(),
                             "--steps", "5", "--sample-tokens", "0"});
    ASSERT_EQ(r.exit_code, 0) << r.describe();
    EXPECT_NE(r.err.find("warning:"), std::string::npos)
        << "a v2 resume cannot be exact and says so\n"
        << r.describe();
}

TEST_F(Lifecycle, CtrlCSavesAndExits130) {
    // Ctrl-C once the run is training (its first progress line is out), however long a loaded
    // machine takes to get there.
    const RunResult r = run_tinygpt(
        tiny_args("train", corpus_, {{"--steps", "1000000"}, {"--out", path("c.tinygpt")}}), dir_,
        120, /*signal_after_ms=*/300, SIGINT, /*signal_after_output=*/"step      1/");
    EXPECT_TRUE(r.exited) << r.describe();
    EXPECT_EQ(r.exit_code, 130) << r.describe();
    EXPECT_NE(r.out.find("interrupted at step"), std::string::npos) << r.describe();
    const ModelFile f = ModelFile::read(path("c.tinygpt"));
    EXPECT_GT(f.training_state().step, 0);
}

// SIGKILL at random moments of a run that saves every step, then resume, several times: the
// file always loads, no saved step is lost, the dead runs' temporary and lock files go away,
// and the run ends with exactly the weights of an uninterrupted one.
TEST_F(Lifecycle, KilledAtRandomMomentsTheRunResumesExactly) {
    constexpr int kSteps = 300;
    ASSERT_EQ(train_moe("whole.tinygpt", kSteps, {{"--sample-tokens", "0"}}).exit_code, 0);
    const std::string target = path("killed.tinygpt");
    const std::vector<std::string> resume = {
        "train",          "--resume",        target, "--out",       target, "--corpus",
        corpus_.string(), "--sample-tokens", "0",    "--val-every", "3"};
    // A fresh run while nothing is saved (the first run, or every run so far killed before its
    // first save: a loaded machine or a sanitized build starts slowly), else a resume.
    const auto next_run = [&] {
        if (fs::exists(target)) return resume;
        std::vector<std::string> args = {"train"};
        for (const auto& [flag, value] : moe_flags(target, kSteps)) {
            args.push_back(flag);
            args.push_back(value);
        }
        args.insert(args.end(), {"--sample-tokens", "0"});
        return args;
    };
    std::mt19937 gen(7);
    int last_step = 0, kills = 0;
    for (int round = 0; round < 8 && last_step < kSteps; ++round) {
        std::vector<std::string> args = next_run();
        args.insert(args.end(), {"--save-every", "1"});
        const int kill_after_ms = std::uniform_int_distribution<int>(30, 400)(gen);
        const RunResult r = run_tinygpt(args, dir_, 120, kill_after_ms, SIGKILL);
        if (r.signal == SIGKILL)
            ++kills;
        else
            ASSERT_EQ(r.exit_code, 0) << r.describe();
        if (!fs::exists(target)) continue;
        const ModelFile f = ModelFile::read(target);  // never half-written
        EXPECT_GE(f.training_state().step, last_step) << "a saved step was lost";
        last_step = static_cast<int>(f.training_state().step);
    }
    EXPECT_GE(kills, 2) << "the runs ended before the kills: the test did not test";
    if (last_step < kSteps) {  // finish the run
        const RunResult r = run(next_run());
        ASSERT_EQ(r.exit_code, 0) << r.describe();
    }
    const ModelFile a = ModelFile::read(path("whole.tinygpt")), b = ModelFile::read(target);
    ASSERT_EQ(b.training_state().step, kSteps);
    EXPECT_EQ(0, std::memcmp(a.weights(), b.weights(),
                             ParameterLayout(a.config()).total() * sizeof(float)));
    for (const auto& entry : fs::directory_iterator(dir_)) {
        const std::string name = entry.path().filename().string();
        EXPECT_TRUE(name.find(".tmp.") == std::string::npos &&
                    name.find(".lock") == std::string::npos)
            << "left behind: " << name;
    }
}

TEST_F(Lifecycle, HostileFilesGetCleanErrors) {
    write_file(dir_ / "garbage.tinygpt", "this is not a model file at all");
    expect_clean_error(run({"inspect", path("garbage.tinygpt")}), {path("garbage.tinygpt")});
    expect_clean_error(run({"sample", dir_.string()}), {dir_.string()});
    write_file(dir_ / "empty.tinygpt", "");
    expect_clean_error(run({"eval", path("empty.tinygpt"), "--corpus", corpus_.string()}),
                       {path("empty.tinygpt")});
}

TEST_F(Lifecycle, BadFlagsOfTheFileCommandsGetCleanErrors) {
    ASSERT_EQ(train_moe("m.tinygpt", 2).exit_code, 0);
    const std::string m = path("m.tinygpt");
    expect_clean_error(run({"eval", m, "--corpus", corpus_.string(), "--max-tokens", "-1"}),
                       {"--max-tokens"});
    expect_clean_error(run({"eval", m, "--corpus", corpus_.string(), "--batch", "0"}), {"--batch"});
    write_file(dir_ / "short.txt", "x");
    expect_clean_error(run({"eval", m, "--corpus", path("short.txt")}),
                       {path("short.txt"), "at least 2"});
    expect_clean_error(run({"sample", m, "--tokens", "-1"}), {"--tokens"});
    const RunResult long_prompt = run({"sample", m, "--prompt", std::string(40, 'x')});
    expect_clean_error(long_prompt, {"--prompt", "context of 16"});
    EXPECT_EQ(long_prompt.out, "") << "nothing is printed before the error";
    expect_clean_error(run({"sample", m, "--prompt", ""}), {"--prompt", "empty"});
    expect_clean_error(run({"bench", m, "--runs", "0"}), {"--runs"});
    expect_clean_error(run({"convert", m, m}), {"OUT must differ"});
    expect_clean_error(run({"convert", m, path("x.tinygpt"), "--format", "v2", "--dtype", "bf16"}),
                       {"v2"});
    expect_clean_error(run({"convert", m, path("x.tinygpt"), "--dtype", "int3"}), {"int3"});
    expect_clean_error(train({{"--format", "v4"}, {"--out", path("y.tinygpt")}}), {"--format"});
    expect_clean_error(train({{"--save-every", "2"}}), {"--save-every", "--out"});
    // An unwritable --out is caught before any training, not after it.
    expect_clean_error(train({{"--out", path("no-such-dir/m.tinygpt")}, {"--steps", "100000"}}),
                       {"no-such-dir", "does not exist"});
    expect_clean_error(train({{"--out", dir_.string()}}), {"is a directory"});
    expect_clean_error(run({"train", "--resume", m, "--corpus", corpus_.string(), "--steps", "10",
                            "--stop-at", "1"}),
                       {"--stop-at"});
    EXPECT_FALSE(fs::exists(dir_ / "x.tinygpt"));
    EXPECT_FALSE(fs::exists(dir_ / "y.tinygpt"));
}

TEST_F(Lifecycle, ConvertMakesWorkingInferenceCopies) {
    ASSERT_EQ(train_moe("m.tinygpt", 3).exit_code, 0);
    for (const char* dtype : {"bf16", "f16"}) {
        const std::string out = path(std::string("m-") + dtype + ".tinygpt");
        const RunResult c = run({"convert", path("m.tinygpt"), out, "--dtype", dtype});
        ASSERT_EQ(c.exit_code, 0) << c.describe();
        const RunResult i = run({"inspect", out, "--json"});
        ASSERT_EQ(i.exit_code, 0) << i.describe();
        const auto info = nlohmann::json::parse(i.out);
        EXPECT_EQ(info["weight_dtype"], dtype);
        EXPECT_FALSE(info["optimizer_state"].get<bool>());
        EXPECT_EQ(run({"sample", out, "--tokens", "4"}).exit_code, 0);
        // An inference copy can seed further training; AdamW restarts, and the CLI says so.
        const RunResult r = run({"train", "--resume", out, "--corpus", corpus_.string(), "--steps",
                                 "5", "--sample-tokens", "0"});
        EXPECT_EQ(r.exit_code, 0) << r.describe();
        EXPECT_NE(r.err.find("AdamW restarts"), std::string::npos) << r.describe();
    }
    const RunResult v2 =
        run({"convert", path("m.tinygpt"), path("m-v2.tinygpt"), "--format", "v2"});
    ASSERT_EQ(v2.exit_code, 0) << v2.describe();
    // The same weights through both formats score the same.
    auto ce = [&](const std::string& file) {
        const RunResult e =
            run({"eval", file, "--corpus", corpus_.string(), "--max-tokens", "64", "--json"});
        EXPECT_EQ(e.exit_code, 0) << e.describe();
        return nlohmann::json::parse(e.out)["cross_entropy"].get<double>();
    };
    EXPECT_EQ(ce(path("m-v2.tinygpt")), ce(path("m.tinygpt")));
}

}  // namespace
}  // namespace tinygpt
