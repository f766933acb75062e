// The Llama family and the per-layer MoE options through the binary: train (banner, log),
// inspect, sample (KV cache vs recompute), eval, bench, bench-train, exact resume with router
// jitter, and the refusals (v2, shape flags on resume, bad combinations).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cli_harness.h"

namespace tinygpt {
namespace {

using namespace test;
namespace fs = std::filesystem;

class LlamaCli : public CliTest {
  protected:
    // A small Qwen2-MoE-like model: GQA, q/k norm, every other layer MoE with a shared expert,
    // no renormalisation, z-loss, router jitter and a capacity factor.
    static std::vector<std::pair<std::string, std::string>> qwen_flags(int steps) {
        return {{"--arch", "llama"},
                {"--layers", "2"},
                {"--d-model", "16"},
                {"--heads", "2"},
                {"--kv-heads", "1"},
                {"--d-mlp", "24"},
                {"--moe-experts", "4"},
                {"--moe-topk", "2"},
                {"--moe-shared-ffn", "8"},
                {"--moe-norm-topk", "off"},
                {"--moe-every", "2"},
                {"--moe-z-loss", "0.01"},
                {"--moe-jitter", "0.05"},
                {"--moe-capacity-factor", "1.0"},
                {"--qk-norm", ""},
                {"--max-lr", "3e-3"},
                {"--steps", std::to_string(steps)}};
    }
    RunResult train_qwen(const std::string& out, int steps,
                         std::vector<std::pair<std::string, std::string>> extra = {}) {
        auto args = qwen_flags(steps);
        args.emplace_back("--out", path(out));
        args.insert(args.end(), extra.begin(), extra.end());
        return train(args);
    }
    std::string path(const std::string& name) const { return (dir_ / name).string(); }
    static std::vector<nlohmann::json> read_log(const fs::path& file) {
        std::vector<nlohmann::json> records;
        for (const auto& line : split_lines(read_file(file)))
            if (!line.empty()) records.push_back(nlohmann::json::parse(line));
        return records;
    }
};

TEST_F(LlamaCli, TrainInspectSampleEvalAndBench) {
    const RunResult t = train_qwen("q.tinygpt", 4, {{"--log", path("q.jsonl")}});
    ASSERT_EQ(t.exit_code, 0) << t.describe();
    for (const char* want : {"llama", "(1 kv)", "in 1/2 layers", "gates not renormalised",
                             "z-loss 0.01", "capacity factor 1", "dropped", "  block 1:"})
        EXPECT_NE(t.out.find(want), std::string::npos) << want << "\n" << t.describe();
    const auto log = read_log(dir_ / "q.jsonl");
    ASSERT_EQ(log.size(), 4u);
    EXPECT_TRUE(log[0].contains("z"));
    EXPECT_TRUE(log[0].contains("dropped"));
    EXPECT_EQ(log[0]["expert_load"][0].size(), 0u);  // layer 0 is dense
    EXPECT_EQ(log[0]["aux_per_layer"][0].get<double>(), 0.0);
    EXPECT_GT(log[0]["aux_per_layer"][1].get<double>(), 0.0);
    EXPECT_NEAR(log[0]["aux_per_layer"][1].get<double>(), log[0]["aux"].get<double>(), 1e-6);
    EXPECT_EQ(log[0]["expert_load"][1].size(), 4u);

    const RunResult i = run({"inspect", path("q.tinygpt")});
    ASSERT_EQ(i.exit_code, 0) << i.describe();
    for (const char* want :
         {"RMSNorm", "RoPE", "2 q / 1 kv heads", "q/k norm", "shared expert 8",
          "MoE layers: 1 · dense layers: 0", "Qwen2-MoE", "model.layers.1.mlp.shared_expert_gate",
          "model.layers.0.self_attn.q_norm.weight", "max/ideal"})
        EXPECT_NE(i.out.find(want), std::string::npos) << want << "\n" << i.describe();
    const auto info = nlohmann::json::parse(run({"inspect", path("q.tinygpt"), "--json"}).out);
    EXPECT_EQ(info["config"]["arch"], "llama");
    EXPECT_EQ(info["config"]["moe"]["layers"], (nlohmann::json{"dense", "moe"}));

    const std::vector<std::string> sample = {
        "sample", path("q.tinygpt"), "--prompt", "ROMEO:", "--tokens", "20", "--temperature", "0"};
    const RunResult cached = run(sample);
    std::vector<std::string> no_cache = sample;
    no_cache.push_back("--no-cache");
    const RunResult uncached = run(no_cache);
    ASSERT_EQ(cached.exit_code, 0) << cached.describe();
    EXPECT_EQ(cached.out, uncached.out);
    EXPECT_EQ(cached.out.rfind("ROMEO:", 0), 0u);

    const RunResult e = run({"eval", path("q.tinygpt"), "--corpus", corpus_.string(),
                             "--max-tokens", "64", "--batch", "2", "--json"});
    ASSERT_EQ(e.exit_code, 0) << e.describe();
    EXPECT_TRUE(std::isfinite(nlohmann::json::parse(e.out)["cross_entropy"].get<double>()));
    const RunResult b = run({"bench", path("q.tinygpt"), "--prompt-tokens", "4", "--gen-tokens",
                             "4", "--runs", "1", "--json"});
    EXPECT_EQ(b.exit_code, 0) << b.describe();
    auto bench_train = qwen_flags(1);
    bench_train.emplace_back("--warmup", "0");
    bench_train.emplace_back("--no-peak", "");
    bench_train.emplace_back("--json", "");
    const RunResult bt = run(tiny_args("bench-train", corpus_, bench_train));
    ASSERT_EQ(bt.exit_code, 0) << bt.describe();
    EXPECT_NE(bt.out.find("llama"), std::string::npos) << bt.describe();
}

TEST_F(LlamaCli, ResumeWithJitterContinuesBitIdentically) {
    ASSERT_EQ(train_qwen("full.tinygpt", 6, {{"--log", path("full.jsonl")}}).exit_code, 0);
    const RunResult half = train_qwen("half.tinygpt", 6, {{"--stop-at", "3"}});
    ASSERT_EQ(half.exit_code, 0) << half.describe();
    const RunResult resumed =
        run({"train", "--resume", path("half.tinygpt"), "--out", path("half.tinygpt"), "--corpus",
             corpus_.string(), "--log", path("resumed.jsonl"), "--sample-tokens", "0"});
    ASSERT_EQ(resumed.exit_code, 0) << resumed.describe();
    const auto full = read_log(dir_ / "full.jsonl"), rest = read_log(dir_ / "resumed.jsonl");
    ASSERT_EQ(full.size(), 6u);
    ASSERT_EQ(rest.size(), 3u);
    for (int i = 0; i < 3; ++i) {
        EXPECT_EQ(rest[i]["loss"].get<double>(), full[3 + i]["loss"].get<double>()) << i;
        EXPECT_EQ(rest[i]["z"].get<double>(), full[3 + i]["z"].get<double>()) << i;
        EXPECT_EQ(rest[i]["dropped"], full[3 + i]["dropped"]) << i;
    }
}

TEST_F(LlamaCli, RefusalsNameTheProblem) {
    // v2 cannot describe the family: refused before any training.
    auto v2 = qwen_flags(1);
    v2.emplace_back("--out", path("v2.tinygpt"));
    v2.emplace_back("--format", "v2");
    expect_clean_error(train(v2), {"--format v2", "Llama family"});
    EXPECT_FALSE(fs::exists(path("v2.tinygpt")));
    ASSERT_EQ(train_qwen("q.tinygpt", 1).exit_code, 0);
    expect_clean_error(run({"convert", path("q.tinygpt"), path("q2.tinygpt"), "--format", "v2"}),
                       {"v2", "Llama family"});
    for (const char* flag : {"--arch", "--kv-heads", "--moe-every"}) {
        const std::string value = std::string(flag) == "--arch" ? "gpt" : "2";
        expect_clean_error(run({"train", "--resume", path("q.tinygpt"), "--corpus",
                                corpus_.string(), flag, value}),
                           {flag, "--resume"});
    }
    expect_clean_error(train({{"--arch", "llama"}, {"--heads", "2"}, {"--kv-heads", "3"}}),
                       {"--kv-heads"});
    expect_clean_error(train({{"--moe-experts", "4"}, {"--moe-shared-ffn", "8"}}),
                       {"--moe-shared-ffn needs --arch llama"});
    expect_clean_error(train({{"--preset", "tutorial"}, {"--arch", "gpt"}}), {"tutorial"});
    expect_clean_error(train({{"--moe-experts", "4"}, {"--moe-norm-topk", "maybe"}}),
                       {"--moe-norm-topk"});
    expect_clean_error(train({{"--arch", "mamba"}}), {"mamba"});
    expect_clean_error(
        train({{"--moe-experts", "4"}, {"--layers", "2"}, {"--moe-dense-first", "2"}}),
        {"no MoE layer"});
}

}  // namespace
}  // namespace tinygpt
