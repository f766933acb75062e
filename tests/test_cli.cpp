// End-to-end tests of the `tinygpt` binary: every bad input must end in a non-zero exit (not a
// signal) with one `error: ...` line on stderr that names the problem, and the happy paths
// (banner, done line, warnings, --version / info, bench-train --json, train --log) must hold.
//
// The binary runs as a child process (posix_spawn) with stdout and stderr redirected to files in
// a fresh mkdtemp directory, which is removed afterwards. Every run uses a tiny model and one or
// a few steps, so each case takes well under a second.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "cli_harness.h"
#include "model/config.h"
#include "util/sysinfo.h"

namespace tinygpt {
namespace {

using namespace test;
namespace fs = std::filesystem;

// --- files -----------------------------------------------------------------------------------

TEST_F(CliErrors, MissingCorpus) {
    const fs::path missing = dir_ / "no-such-corpus.txt";
    expect_clean_error(train({{"--corpus", missing.string()}}), {missing.string(), "No such file"});
}

TEST_F(CliErrors, CorpusIsADirectory) {
    const fs::path sub = dir_ / "a-directory";
    fs::create_directory(sub);
    expect_clean_error(train({{"--corpus", sub.string()}}), {sub.string(), "not a regular file"});
}

TEST_F(CliErrors, EmptyCorpus) {
    const fs::path empty = dir_ / "empty.txt";
    write_file(empty, "");
    expect_clean_error(train({{"--corpus", empty.string()}}), {empty.string(), "empty"});
}

TEST_F(CliErrors, SeedsOutsideUint64AreRefusedNotClamped) {
    expect_clean_error(train({{"--seed", "18446744073709551616"}}),
                       {"--seed", "0 to 18446744073709551615"});
    expect_clean_error(train({{"--seed", "-1"}}), {"--seed", "0 to 18446744073709551615"});
    const RunResult ok = train({{"--seed", "18446744073709551615"}});
    EXPECT_EQ(ok.exit_code, 0) << ok.describe();
}

TEST_F(CliErrors, AnEmptyOutIsRefused) {
    std::vector<std::string> args = tiny_args("train", corpus_, {});
    args.insert(args.end(), {"--out", ""});
    expect_clean_error(run(args), {"--out", "empty"});
    expect_clean_error(run({"convert", (dir_ / "m.tinygpt").string(), "--out", ""}),
                       {"--out", "empty"});
}

TEST_F(CliRuns, TooManyThreadsAreClampedWithAWarningAndProcFilesAreRead) {
    const RunResult r = train({{"--threads", "1000"}});
    EXPECT_EQ(r.exit_code, 0) << r.describe();
    EXPECT_NE(r.err.find("warning: --threads 1000 is more than the"), std::string::npos)
        << r.describe();
    // /proc files report a size of 0 but have content: read to the end, not st_size bytes.
    const RunResult p = train({{"--corpus", "/proc/self/maps"}});
    EXPECT_EQ(p.exit_code, 0) << p.describe();
}

TEST_F(CliErrors, CorpusShorterThanContext) {
    const fs::path shorter = dir_ / "short.txt";
    write_file(shorter, "sixteen bytes!!\n");  // 16 bytes: one short of ctx + 1 = 17
    expect_clean_error(train({{"--corpus", shorter.string()}, {"--ctx", "16"}}),
                       {shorter.string(), "ctx"});
}

TEST_F(CliErrors, ValidationSplitShorterThanContext) {
    // 8192 bytes × 0.001 = 8 validation bytes < ctx + 1.
    expect_clean_error(train({{"--val-split", "0.001"}}), {corpus_.string(), "--val-split"});
}

TEST_F(CliErrors, UnwritableLogFile) {
    const fs::path log = dir_ / "no-such-dir" / "log.jsonl";
    expect_clean_error(train({{"--log", log.string()}}), {log.string(), "--log"});
}

TEST_F(CliErrors, BenchTrainMissingCorpus) {
    const fs::path missing = dir_ / "nothing-here.txt";
    expect_clean_error(
        run(tiny_args("bench-train", corpus_, {{"--corpus", missing.string()}, {"--no-peak", ""}})),
        {missing.string()});
}

// --- command line ------------------------------------------------------------------------------

TEST_F(CliErrors, UnknownFlag) {
    expect_clean_error(train({{"--bogus-flag", "3"}}), {"--bogus-flag"});
}

TEST_F(CliErrors, UnknownSubcommand) {
    expect_clean_error(run({"frobnicate"}), {"frobnicate"});
}

TEST_F(CliErrors, NonNumericValue) {
    expect_clean_error(train({{"--max-lr", "abc"}}), {"--max-lr", "abc"});
}

// --- model shape ---------------------------------------------------------------------------------

TEST_F(CliErrors, ZeroLayers) {
    expect_clean_error(train({{"--layers", "0"}}), {"--layers"});
}

TEST_F(CliErrors, NegativeWidth) {
    expect_clean_error(train({{"--d-model", "-4"}}), {"--d-model", "-4"});
}

TEST_F(CliErrors, HeadsDoNotDivideWidth) {
    expect_clean_error(train({{"--d-model", "16"}, {"--heads", "3"}}), {"--heads", "divisible"});
}

TEST_F(CliErrors, ZeroContext) {
    expect_clean_error(train({{"--ctx", "0"}}), {"--ctx"});
}

TEST_F(CliErrors, UnknownPreset) {
    expect_clean_error(train({{"--preset", "gigantic"}}), {"gigantic", "preset"});
}

TEST_F(CliErrors, ZeroTopK) {
    expect_clean_error(train({{"--moe-experts", "4"}, {"--moe-topk", "0"}}), {"--moe-topk"});
}

TEST_F(CliErrors, ZeroExperts) {
    expect_clean_error(train({{"--moe-experts", "0"}}), {"--moe-experts"});
}

TEST_F(CliErrors, UnknownDispatch) {
    expect_clean_error(train({{"--moe-experts", "4"}, {"--moe-dispatch", "weird"}}),
                       {"--moe-dispatch", "weird"});
}

// --- optimisation
// ----------------------------------------------------------------------------------

TEST_F(CliErrors, NanMaxLr) {
    expect_clean_error(train({{"--max-lr", "nan"}}), {"--max-lr", "nan"});
}

TEST_F(CliErrors, NegativeMaxLr) {
    expect_clean_error(train({{"--max-lr", "-1"}}), {"--max-lr"});
}

TEST_F(CliErrors, InfiniteMinLr) {
    expect_clean_error(train({{"--min-lr", "inf"}}), {"--min-lr"});
}

TEST_F(CliErrors, NegativeGradClip) {
    expect_clean_error(train({{"--grad-clip", "-1"}}), {"--grad-clip"});
}

TEST_F(CliErrors, ValSplitTooLarge) {
    expect_clean_error(train({{"--val-split", "0.7"}}), {"--val-split", "0.7"});
}

TEST_F(CliErrors, UnknownSchedule) {
    expect_clean_error(train({{"--lr-schedule", "linear"}}), {"--lr-schedule", "linear"});
}

TEST_F(CliErrors, ZeroBatch) {
    expect_clean_error(train({{"--batch", "0"}}), {"--batch"});
}

TEST_F(CliErrors, ZeroSteps) {
    expect_clean_error(train({{"--steps", "0"}}), {"--steps"});
}

TEST_F(CliErrors, ZeroAccum) {
    expect_clean_error(train({{"--accum", "0"}}), {"--accum"});
}

TEST_F(CliErrors, NegativeLrWarmupOnTrain) {
    expect_clean_error(train({{"--lr-warmup", "-1"}}), {"warmup"});
}

// In bench-train, --warmup is the number of untimed steps and --lr-warmup the LR warm-up, so a
// bad --lr-warmup must be reported under that name.
TEST_F(CliErrors, NegativeLrWarmupOnBenchTrainNamesTheFlag) {
    expect_clean_error(
        run(tiny_args("bench-train", corpus_, {{"--lr-warmup", "-1"}, {"--no-peak", ""}})),
        {"--lr-warmup"});
}

TEST_F(CliErrors, DivergingLossStopsWithTheStep) {
    // An absurd learning rate without clipping: the first update blows the weights up to
    // ~1e30, and the next forward pass overflows.
    const RunResult r = train({{"--max-lr", "1e30"},
                               {"--lr-warmup", "0"},
                               {"--grad-clip", "0"},
                               {"--lr-schedule", "constant"},
                               {"--steps", "5"}});
    expect_clean_error(r, {"loss", "stop"});
    std::vector<std::string> errors;
    for (const auto& line : split_lines(r.err))
        if (starts_with(line, "error: ")) errors.push_back(line);
    ASSERT_EQ(errors.size(), 1u) << r.describe();
    EXPECT_TRUE(std::regex_search(errors[0], std::regex("step [0-9]+"))) << "must name the step\n"
                                                                         << r.describe();
    EXPECT_TRUE(std::regex_search(errors[0], std::regex("nan|inf", std::regex::icase)))
        << "must say what the loss became\n"
        << r.describe();
}

// --- successful runs
// -------------------------------------------------------------------------------

TEST_F(CliRuns, TinyTrainPrintsBannerAndDone) {
    const RunResult r = train({{"--steps", "2"}});
    ASSERT_TRUE(r.exited) << r.describe();
    ASSERT_EQ(r.exit_code, 0) << r.describe();
    EXPECT_NE(r.out.find("tinygpt train"), std::string::npos) << r.describe();
    EXPECT_NE(r.out.find("active per token"), std::string::npos) << r.describe();
    EXPECT_NE(r.out.find(corpus_.string()), std::string::npos) << "the banner names the corpus\n"
                                                               << r.describe();
    bool done = false;
    for (const auto& line : split_lines(r.out)) done = done || starts_with(line, "done");
    EXPECT_TRUE(done) << "expected a 'done ...' line\n" << r.describe();
    EXPECT_EQ(r.err.find("error"), std::string::npos) << r.describe();
}

TEST_F(CliRuns, TopKAboveExpertsWarnsAndClamps) {
    const RunResult r = train({{"--moe-experts", "4"}, {"--moe-topk", "8"}, {"--steps", "2"}});
    ASSERT_TRUE(r.exited) << r.describe();
    ASSERT_EQ(r.exit_code, 0) << r.describe();
    bool warned = false;
    for (const auto& line : split_lines(r.err))
        warned = warned ||
                 (starts_with(line, "warning: ") && line.find("--moe-topk") != std::string::npos &&
                  line.find("top-4") != std::string::npos);
    EXPECT_TRUE(warned) << "expected a warning about the clamped top-K\n" << r.describe();
    EXPECT_NE(r.out.find("4 experts top-4"), std::string::npos) << r.describe();
    EXPECT_EQ(r.err.find("error"), std::string::npos) << r.describe();
}

TEST_F(CliRuns, VersionPrintsBlas) {
    const RunResult r = run({"--version"});
    ASSERT_TRUE(r.exited) << r.describe();
    ASSERT_EQ(r.exit_code, 0) << r.describe();
    EXPECT_TRUE(starts_with(r.out, "tinygpt ")) << r.describe();
    const std::string blas = blas_description();
    const std::string family = blas.substr(0, blas.find(" ("));  // "OpenBLAS", "Apple Accelerate"
    EXPECT_NE(r.out.find(family), std::string::npos) << "expected the BLAS '" << family << "'\n"
                                                     << r.describe();
}

TEST_F(CliRuns, InfoPrintsBlasAndPresets) {
    const RunResult r = run({"info"});
    ASSERT_TRUE(r.exited) << r.describe();
    ASSERT_EQ(r.exit_code, 0) << r.describe();
    const std::string blas = blas_description();
    const std::string family = blas.substr(0, blas.find(" ("));
    bool blas_line = false;
    for (const auto& line : split_lines(r.out))
        blas_line = blas_line || (line.find("BLAS") != std::string::npos &&
                                  line.find(family) != std::string::npos);
    EXPECT_TRUE(blas_line) << "expected a 'BLAS " << family << "' line\n" << r.describe();
    for (const auto& name : preset_names()) EXPECT_NE(r.out.find(name), std::string::npos) << name;
}

TEST_F(CliRuns, BenchTrainJsonIsOneLine) {
    const RunResult r = run(tiny_args("bench-train", corpus_,
                                      {{"--moe-experts", "4"},
                                       {"--moe-topk", "2"},
                                       {"--steps", "3"},
                                       {"--warmup", "1"},
                                       {"--json", ""},
                                       {"--no-peak", ""}}));
    ASSERT_TRUE(r.exited) << r.describe();
    ASSERT_EQ(r.exit_code, 0) << r.describe();
    std::vector<std::string> lines;
    for (const auto& line : split_lines(r.out))
        if (!line.empty()) lines.push_back(line);
    ASSERT_EQ(lines.size(), 1u) << "--json prints exactly one line\n" << r.describe();
    nlohmann::json j;
    ASSERT_NO_THROW(j = nlohmann::json::parse(lines[0])) << r.describe();
    for (const char* key : {"ms_per_step_median", "tok_per_s", "params_total", "params_active"})
        ASSERT_TRUE(j.contains(key) && j[key].is_number()) << key << "\n" << r.describe();
    EXPECT_GT(j["ms_per_step_median"].get<double>(), 0.0);
    EXPECT_GT(j["tok_per_s"].get<double>(), 0.0);
    EXPECT_TRUE(std::isfinite(j["tok_per_s"].get<double>()));

    ModelConfig cfg = preset_config("tiny");
    cfg.layers = 1, cfg.d_model = 16, cfg.heads = 2, cfg.d_mlp = 32, cfg.ctx = 16, cfg.experts = 4,
    cfg.topk = 2;
    EXPECT_EQ(j["params_total"].get<int64_t>(), cfg.total_params());
    EXPECT_EQ(j["params_active"].get<int64_t>(), cfg.active_params());
    EXPECT_LT(j["params_active"].get<int64_t>(), j["params_total"].get<int64_t>());
}

TEST_F(CliRuns, TrainLogHasOneJsonObjectPerStep) {
    const fs::path log = dir_ / "train.jsonl";
    const int steps = 3, layers = 2, experts = 4;
    const RunResult r = train({{"--layers", std::to_string(layers)},
                               {"--moe-experts", std::to_string(experts)},
                               {"--moe-topk", "2"},
                               {"--steps", std::to_string(steps)},
                               {"--log", log.string()}});
    ASSERT_TRUE(r.exited) << r.describe();
    ASSERT_EQ(r.exit_code, 0) << r.describe();
    ASSERT_TRUE(fs::exists(log)) << r.describe();
    const auto lines = split_lines(read_file(log));
    ASSERT_EQ(lines.size(), static_cast<size_t>(steps)) << read_file(log);
    for (int i = 0; i < steps; ++i) {
        SCOPED_TRACE("log line " + std::to_string(i + 1) + ": " + lines[i]);
        nlohmann::json j;
        ASSERT_NO_THROW(j = nlohmann::json::parse(lines[i]));
        ASSERT_TRUE(j.is_object());
        ASSERT_TRUE(j.contains("step") && j["step"].is_number_integer());
        EXPECT_EQ(j["step"].get<int>(), i + 1);
        for (const char* key : {"loss", "aux", "lr", "tok_per_s"}) {
            ASSERT_TRUE(j.contains(key) && j[key].is_number()) << key;
            EXPECT_TRUE(std::isfinite(j[key].get<double>())) << key;
        }
        EXPECT_GT(j["loss"].get<double>(), 0.0);
        EXPECT_GT(j["lr"].get<double>(), 0.0);
        ASSERT_TRUE(j.contains("expert_load") && j["expert_load"].is_array());
        ASSERT_EQ(j["expert_load"].size(), static_cast<size_t>(layers));
        for (const auto& block : j["expert_load"]) {
            ASSERT_TRUE(block.is_array());
            ASSERT_EQ(block.size(), static_cast<size_t>(experts));
            double sum = 0;
            for (const auto& f : block) {
                EXPECT_GE(f.get<double>(), 0.0);
                sum += f.get<double>();
            }
            EXPECT_NEAR(sum, 1.0, 1e-4) << "a block's expert load is a distribution";
        }
    }
}

TEST_F(CliRuns, DenseTrainLogHasNoExpertLoad) {
    const fs::path log = dir_ / "dense.jsonl";
    const RunResult r = train({{"--steps", "2"}, {"--log", log.string()}});
    ASSERT_TRUE(r.exited) << r.describe();
    ASSERT_EQ(r.exit_code, 0) << r.describe();
    const auto lines = split_lines(read_file(log));
    ASSERT_EQ(lines.size(), 2u);
    for (const auto& line : lines) {
        const auto j = nlohmann::json::parse(line);
        EXPECT_FALSE(j.contains("expert_load")) << line;
        EXPECT_TRUE(j.contains("loss") && j.contains("lr") && j.contains("tok_per_s")) << line;
    }
}

}  // namespace
}  // namespace tinygpt
