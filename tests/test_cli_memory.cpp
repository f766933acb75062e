// The memory check through the binary: what cannot fit is refused at once, with the estimate,
// the memory available or the --max-memory limit and what to change; --max-memory's parsing;
// the estimate in the training banner and in `info`.
#include <gtest/gtest.h>

#include <chrono>

#include "cli_harness.h"
#include "model/memory_estimate.h"
#include "sanitizer.h"
#include "util/memory_available.h"

namespace tinygpt {
namespace {

using namespace test;

// The refusals take milliseconds; the bound leaves room for a loaded machine, and for the slower
// start-up of a sanitizer build.
constexpr double kQuickSeconds = kUnderAddressSanitizer ? 5.0 : 1.0;

const std::string kShakespeare = TINYGPT_SOURCE_DIR "/data/shakespeare.txt";

class CliMemory : public CliTest {
  protected:
    // Runs and checks a refusal: a clean one-line error naming `names`, in under a second.
    void expect_quick_refusal(const std::vector<std::string>& args,
                              const std::vector<std::string>& names) {
        const auto start = std::chrono::steady_clock::now();
        const RunResult r = run(args);
        const double seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        expect_clean_error(r, names);
        EXPECT_LT(seconds, kQuickSeconds) << "the refusal must come before any allocation\n"
                                          << r.describe();
        EXPECT_EQ(r.out.find("step "), std::string::npos) << r.describe();
    }
    std::string path(const std::string& name) const { return (dir_ / name).string(); }
    // The tiny preset (d 128, 4 layers, ctx 128) trained for one step.
    void train_tiny_preset(const std::string& name) {
        const RunResult r = run({"train", "--corpus", kShakespeare, "--steps", "1",
                                 "--sample-tokens", "0", "--out", path(name)});
        ASSERT_EQ(r.exit_code, 0) << r.describe();
    }
};

struct Refusal {
    std::vector<std::string> args;
    std::string advice;  // a flag the message must suggest
    double estimate;     // what the library estimates for it
};

// The issue's five reproducers. Each is refused against a 16 GiB limit on any machine, and
// against the memory this machine has wherever that is smaller than its estimate.
TEST_F(CliMemory, RefusesTheIssuesReproducersAtOnce) {
    train_tiny_preset("tiny.tinygpt");
    TrainingMemoryPlan plan;
    plan.batch = 2;  // the default batch of d_model >= 1024
    ModelConfig behemoth = preset_config("behemoth");
    behemoth.experts = 16;
    ModelConfig titan = preset_config("titan");
    ModelConfig wide = preset_config("tiny");
    wide.d_model = 16777216;
    ModelConfig many = preset_config("tiny");
    many.experts = 4096;
    TrainingMemoryPlan tiny_plan;
    tiny_plan.batch = 16;
    const double shakespeare_windows = 1115394.0 / 128;  // every window of the text, at once
    const std::vector<Refusal> refusals = {
        {{"train", "--preset", "behemoth", "--moe-experts", "16", "--steps", "1"},
         "--moe-experts",
         estimate_training(behemoth, plan).total_bytes()},
        {{"train", "--preset", "titan"}, "--preset", estimate_training(titan, plan).total_bytes()},
        {{"train", "--moe-experts", "4096"},
         "--moe-experts (now 4096)",
         estimate_training(many, tiny_plan).total_bytes()},
        {{"train", "--d-model", "16777216"},
         "--batch",
         estimate_training(wide, plan).total_bytes()},
        {{"eval", path("tiny.tinygpt"), "--corpus", kShakespeare, "--batch", "100000000"},
         "--batch (now 100000000)",
         estimate_evaluation(preset_config("tiny"), shakespeare_windows, 128).total_bytes()},
    };
    const double available = available_memory().bytes;
    for (const Refusal& refusal : refusals) {
        SCOPED_TRACE(refusal.args[0] + " " + refusal.args[1] + " " + refusal.args.back());
        EXPECT_GT(refusal.estimate, 16.0 * (1 << 30));
        std::vector<std::string> limited = refusal.args;
        limited.insert(limited.end(), {"--max-memory", "16G"});
        expect_quick_refusal(limited, {"not enough memory", "the limit is 16.0 GiB (--max-memory)",
                                       "weights", "activations", refusal.advice});
        if (available > 0 && refusal.estimate > 1.5 * available)
            expect_quick_refusal(refusal.args, {"not enough memory", "is available (",
                                                refusal.advice, "--max-memory SIZE"});
    }
}

// Shapes whose products pass 32 and 64 bits, or whose layers number billions: refused as fast.
TEST_F(CliMemory, AbsurdShapesAreRefusedAtOnce) {
    const std::vector<std::vector<std::string>> shapes = {
        {"--layers", "2000000000"},
        {"--ctx", "2000000000"},
        {"--batch", "2000000000"},
        {"--heads", "1", "--d-model", "2000000000"},
        {"--moe-experts", "8", "--moe-ffn", "2000000000"},
        {"--arch", "llama", "--heads", "65536", "--head-dim", "65536"},
        {"--arch", "llama", "--moe-experts", "8", "--moe-shared-ffn", "2000000000"},
    };
    for (const auto& shape : shapes) {
        std::vector<std::string> args = {"train", "--max-memory", "16G"};
        args.insert(args.end(), shape.begin(), shape.end());
        expect_quick_refusal(args, {"not enough memory", "TiB"});
    }
}

TEST_F(CliMemory, MaxMemoryIsParsedAndHonoured) {
    for (const char* bad : {"8X", "0", "-1G", "", "1e9", "lots"})
        expect_clean_error(train({{"--max-memory", bad}}), {"--max-memory"});
    expect_clean_error(train({{"--max-memory", "100K"}}),
                       {"not enough memory", "the limit is 100 KiB (--max-memory)",
                        "--batch (now 2)", "raise --max-memory"});
    const RunResult ok = train({{"--max-memory", "1G"}});
    ASSERT_EQ(ok.exit_code, 0) << ok.describe();
    EXPECT_NE(ok.out.find("  memory    about "), std::string::npos) << ok.describe();
    EXPECT_NE(ok.out.find("1.00 GiB allowed (--max-memory)"), std::string::npos) << ok.describe();
    const RunResult plain = train({});
    ASSERT_EQ(plain.exit_code, 0) << plain.describe();
    EXPECT_NE(plain.out.find(" available ("), std::string::npos) << plain.describe();
    EXPECT_NE(plain.out.find("AdamW moments"), std::string::npos) << plain.describe();
}

TEST_F(CliMemory, EveryCommandThatBuildsAModelChecks) {
    ASSERT_EQ(train({{"--out", path("m.tinygpt")}, {"--steps", "2"}}).exit_code, 0);
    const std::string m = path("m.tinygpt"), limit = "4K";
    const std::vector<std::pair<std::vector<std::string>, std::string>> commands = {
        {{"train", "--resume", m, "--steps", "4", "--corpus", corpus_.string()}, "--batch"},
        {{"train", "--init-from", m, "--steps", "1", "--corpus", corpus_.string()}, "--batch"},
        {{"eval", m, "--corpus", corpus_.string()}, "--batch"},
        {{"eval", m, "--corpus", corpus_.string(), "--per-token"}, "KV cache"},
        {{"sample", m, "--tokens", "5"}, "KV cache"},
        {{"sample", m, "--tokens", "5", "--no-cache"}, "activations"},
        {{"bench", m, "--prompt-tokens", "4", "--gen-tokens", "4"}, "weights"},
        {{"bench-train", "--layers", "1", "--d-model", "16", "--heads", "2", "--steps", "1",
          "--corpus", corpus_.string()},
         "--batch"},
    };
    for (const auto& [args, name] : commands) {
        std::vector<std::string> limited = args;
        limited.insert(limited.end(), {"--max-memory", limit});
        expect_quick_refusal(limited, {"not enough memory", "(--max-memory)", name});
    }
    // The same commands fit under a generous limit.
    const RunResult e = run({"eval", m, "--corpus", corpus_.string(), "--max-memory", "1G"});
    EXPECT_EQ(e.exit_code, 0) << e.describe();
}

TEST_F(CliMemory, InfoShowsTheMemoryAndThePresetsTrainingEstimate) {
    const RunResult r = run({"info"});
    ASSERT_EQ(r.exit_code, 0) << r.describe();
    EXPECT_NE(r.out.find("  memory   "), std::string::npos) << r.describe();
    EXPECT_NE(r.out.find("dense train"), std::string::npos) << r.describe();
    EXPECT_NE(r.out.find("MoE train"), std::string::npos) << r.describe();
    EXPECT_NE(r.out.find("GiB"), std::string::npos) << r.describe();
}

}  // namespace
}  // namespace tinygpt
