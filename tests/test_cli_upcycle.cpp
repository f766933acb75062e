// `tinygpt upcycle` through the binary: a trained dense model of either family becomes an MoE
// model with the same function where the command says "exact" (the same evaluation loss) and a
// different one where it says "not exact"; the result carries the tokenizer over, trains with
// `train --init-from`, resumes, samples and exports, from .tinygpt (f32, bf16) and GGUF inputs;
// bad inputs are refused with one error line and no file.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "cli_harness.h"

namespace tinygpt {
namespace {

using namespace test;

class UpcycleCli : public CliTest {
  protected:
    std::string path(const std::string& name) const { return (dir_ / name).string(); }
    // A dense model of 2 layers trained for a few steps.
    void train_dense(const std::string& out,
                     std::vector<std::pair<std::string, std::string>> extra) {
        extra.insert(extra.begin(), {{"--layers", "2"}, {"--steps", "3"}, {"--out", path(out)}});
        const RunResult r = train(extra);
        ASSERT_EQ(r.exit_code, 0) << r.describe();
    }
    RunResult upcycle(const std::string& in, const std::string& out,
                      const std::vector<std::string>& flags) {
        std::vector<std::string> args = {"upcycle", path(in), "--out", path(out)};
        args.insert(args.end(), flags.begin(), flags.end());
        return run(args);
    }
    double cross_entropy(const std::string& model) {
        const RunResult e = run({"eval", path(model), "--corpus", corpus_.string(), "--json"});
        EXPECT_EQ(e.exit_code, 0) << e.describe();
        return e.exit_code == 0 ? nlohmann::json::parse(e.out)["cross_entropy"].get<double>() : NAN;
    }
    nlohmann::json inspect(const std::string& model) {
        const RunResult i = run({"inspect", path(model), "--json"});
        EXPECT_EQ(i.exit_code, 0) << i.describe();
        return i.exit_code == 0 ? nlohmann::json::parse(i.out) : nlohmann::json{};
    }
};

TEST_F(UpcycleCli, AGptModelUpcyclesExactlyTrainsResumesAndSamples) {
    train_dense("dense.tinygpt", {});
    const RunResult u = upcycle("dense.tinygpt", "moe.tinygpt", {"--experts", "4", "--topk", "2"});
    ASSERT_EQ(u.exit_code, 0) << u.describe();
    EXPECT_NE(u.out.find("\nexact: at step 0"), std::string::npos) << u.describe();
    EXPECT_NE(u.out.find("MoE 4 experts top-2"), std::string::npos) << u.describe();
    EXPECT_NE(u.out.find("wrote " + path("moe.tinygpt")), std::string::npos) << u.describe();
    const double dense_ce = cross_entropy("dense.tinygpt");
    EXPECT_NEAR(cross_entropy("moe.tinygpt"), dense_ce, 1e-5 * dense_ce);
    const auto info = inspect("moe.tinygpt");
    EXPECT_EQ(info["config"]["experts"], 4);
    EXPECT_EQ(info["config"]["topk"], 2);

    // Top-1 with a zero router and Switch gates: the output says by how much it differs.
    const RunResult s = upcycle("dense.tinygpt", "switch.tinygpt",
                                {"--experts", "4", "--topk", "1", "--router-init", "zero"});
    ASSERT_EQ(s.exit_code, 0) << s.describe();
    EXPECT_NE(s.out.find("\nnot exact: "), std::string::npos) << s.describe();
    EXPECT_NE(s.out.find("K/E = 1/4 = 0.25"), std::string::npos) << s.describe();
    EXPECT_GT(std::fabs(cross_entropy("switch.tinygpt") - dense_ce), 1e-4);

    // The result is a model like any other: it trains, saves, resumes and samples.
    const RunResult t = run({"train", "--init-from", path("moe.tinygpt"), "--corpus",
                             corpus_.string(), "--steps", "4", "--stop-at", "2", "--batch", "2",
                             "--sample-tokens", "0", "--out", path("trained.tinygpt")});
    ASSERT_EQ(t.exit_code, 0) << t.describe();
    EXPECT_NE(t.out.find("MoE 4 experts top-2"), std::string::npos) << t.describe();
    const RunResult r =
        run({"train", "--resume", path("trained.tinygpt"), "--corpus", corpus_.string(),
             "--sample-tokens", "0", "--out", path("trained.tinygpt")});
    ASSERT_EQ(r.exit_code, 0) << r.describe();
    EXPECT_EQ(inspect("trained.tinygpt")["step"], 4);
    const RunResult g = run({"sample", path("trained.tinygpt"), "--prompt", "ROMEO:", "--tokens",
                             "8", "--temperature", "0"});
    ASSERT_EQ(g.exit_code, 0) << g.describe();
    EXPECT_EQ(g.out.rfind("ROMEO:", 0), 0u) << g.describe();
}

TEST_F(UpcycleCli, ALlamaModelKeepsItsTokenizerAndExports) {
    ASSERT_EQ(run({"tokenizer", "train", "--corpus", corpus_.string(), "--vocab", "300", "--out",
                   path("tok.json")})
                  .exit_code,
              0);
    train_dense("dense.tinygpt", {{"--arch", "llama"}, {"--tokenizer", path("tok.json")}});
    // Every other layer, a shared expert, noise: a mixed model that is not exact.
    const RunResult u = upcycle("dense.tinygpt", "moe.tinygpt",
                                {"--experts", "3", "--topk", "2", "--moe-every", "2",
                                 "--moe-shared-ffn", "16", "--expert-noise", "0.01"});
    ASSERT_EQ(u.exit_code, 0) << u.describe();
    EXPECT_NE(u.out.find("layers 1 of 2"), std::string::npos) << u.describe();
    EXPECT_NE(u.out.find("\nnot exact: --expert-noise 0.01"), std::string::npos) << u.describe();
    EXPECT_NE(u.out.find("\nnote: the shared expert"), std::string::npos) << u.describe();
    const auto dense = inspect("dense.tinygpt"), moe = inspect("moe.tinygpt");
    EXPECT_NE(moe["tokenizer"].get<std::string>().find("byte-level BPE"), std::string::npos);
    EXPECT_EQ(moe["tokenizer"], dense["tokenizer"]);
    EXPECT_EQ(moe["config"]["vocab"], 300);
    EXPECT_EQ(moe["config"]["moe"]["layers"], nlohmann::json::array({"dense", "moe"}));
    EXPECT_EQ(moe["config"]["moe"]["shared_ffn"], 16);
    // Without noise the same layout is exact; HF and GGUF exports keep it.
    ASSERT_EQ(
        upcycle("dense.tinygpt", "exact.tinygpt",
                {"--experts", "3", "--topk", "2", "--moe-every", "2", "--moe-shared-ffn", "16"})
            .exit_code,
        0);
    const double dense_ce = cross_entropy("dense.tinygpt");
    EXPECT_NEAR(cross_entropy("exact.tinygpt"), dense_ce, 1e-5 * dense_ce);
    const RunResult hf = run({"convert", path("exact.tinygpt"), "--to", "hf", "--out", path("hf")});
    ASSERT_EQ(hf.exit_code, 0) << hf.describe();
    EXPECT_NEAR(cross_entropy("hf"), dense_ce, 1e-5 * dense_ce);
    // A bf16 input upcycles too (the output is f32 for training), and the result exports to
    // GGUF (llama.cpp's qwen2moe, the only architecture with a shared expert, never renormalises
    // its gates, so the shared-expert model above cannot go there).
    ASSERT_EQ(run({"convert", path("dense.tinygpt"), path("dense-bf16.tinygpt"), "--dtype", "bf16"})
                  .exit_code,
              0);
    ASSERT_EQ(upcycle("dense-bf16.tinygpt", "from-bf16.tinygpt", {"--experts", "2"}).exit_code, 0);
    EXPECT_EQ(inspect("from-bf16.tinygpt")["weight_dtype"], "f32");
    const double bf16_ce = cross_entropy("dense-bf16.tinygpt");
    EXPECT_NEAR(cross_entropy("from-bf16.tinygpt"), bf16_ce, 1e-5 * bf16_ce);
    const RunResult gguf = run({"convert", path("from-bf16.tinygpt"), path("moe.gguf")});
    ASSERT_EQ(gguf.exit_code, 0) << gguf.describe();
    EXPECT_NEAR(cross_entropy("moe.gguf"), bf16_ce, 1e-5 * bf16_ce);
    // A GGUF input, with its tokenizer.
    ASSERT_EQ(run({"convert", path("dense.tinygpt"), path("dense.gguf")}).exit_code, 0);
    ASSERT_EQ(upcycle("dense.gguf", "from-gguf.tinygpt", {"--experts", "4"}).exit_code, 0);
    const double gguf_ce = cross_entropy("dense.gguf");
    EXPECT_NEAR(cross_entropy("from-gguf.tinygpt"), gguf_ce, 1e-5 * gguf_ce);
    EXPECT_EQ(inspect("from-gguf.tinygpt")["config"]["vocab"], 300);
}

TEST_F(UpcycleCli, BadInputsAreRefusedWithoutWritingAFile) {
    train_dense("dense.tinygpt", {});
    ASSERT_EQ(upcycle("dense.tinygpt", "moe.tinygpt", {"--experts", "2"}).exit_code, 0);
    auto refused = [&](const std::string& in, const std::string& out,
                       const std::vector<std::string>& flags,
                       const std::vector<std::string>& names) {
        expect_clean_error(upcycle(in, out, flags), names);
        EXPECT_FALSE(fs::exists(dir_ / out)) << out;
    };
    refused("moe.tinygpt", "again.tinygpt", {"--experts", "4"}, {"already has MoE layers"});
    refused("dense.tinygpt", "k.tinygpt", {"--experts", "4", "--topk", "5"}, {"--topk"});
    refused("dense.tinygpt", "one.tinygpt", {"--experts", "1"}, {"--experts"});
    refused("dense.tinygpt", "wide.tinygpt", {"--experts", "4", "--moe-ffn", "64"}, {"--moe-ffn"});
    refused("dense.tinygpt", "shared.tinygpt", {"--experts", "4", "--moe-shared-ffn", "8"},
            {"Llama-family"});
    refused("dense.tinygpt", "router.tinygpt", {"--experts", "4", "--router-init", "uniform"},
            {"--router-init"});
    refused("dense.tinygpt", "none.tinygpt", {"--experts", "4", "--moe-every", "3"},
            {"no MoE layer"});
    refused("nowhere.tinygpt", "x.tinygpt", {"--experts", "4"}, {"nowhere.tinygpt"});
    refused("dense.tinygpt", "missing/x.tinygpt", {"--experts", "4"}, {"--out", "does not exist"});
    fs::create_directory(dir_ / "folder");
    expect_clean_error(upcycle("dense.tinygpt", "folder", {"--experts", "4"}),
                       {"--out", "is a directory"});
    expect_clean_error(upcycle("dense.tinygpt", "dense.tinygpt", {"--experts", "4"}),
                       {"must differ"});
    expect_clean_error(run({"upcycle", path("dense.tinygpt"), "--out", path("y.tinygpt")}),
                       {"--experts"});
    EXPECT_FALSE(fs::exists(dir_ / "y.tinygpt"));
}

}  // namespace
}  // namespace tinygpt
