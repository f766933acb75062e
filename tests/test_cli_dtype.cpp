// --dtype of sample, eval and bench: an f32 model runs converted on load (quantised to q8_0, or
// bf16), a typed file runs as stored without any f32 copy, and a bad type is one clean error.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cli_harness.h"

namespace tinygpt {
namespace {

using namespace test;

class CliDtype : public CliTest {
  protected:
    std::string path(const std::string& name) const { return (dir_ / name).string(); }
    nlohmann::json run_json(const std::vector<std::string>& args) {
        const RunResult r = run(args);
        EXPECT_EQ(r.exit_code, 0) << r.describe();
        return r.exit_code == 0 ? nlohmann::json::parse(r.out) : nlohmann::json{};
    }
};

TEST_F(CliDtype, RunsConvertedOnLoadOrAsStored) {
    const RunResult t = train({{"--arch", "llama"},
                               {"--d-model", "64"},
                               {"--heads", "2"},
                               {"--moe-experts", "4"},
                               {"--moe-topk", "2"},
                               {"--moe-ffn", "64"},
                               {"--steps", "20"},
                               {"--out", path("m.tinygpt")}});
    ASSERT_EQ(t.exit_code, 0) << t.describe();
    const std::string corpus = corpus_.string();
    const double f32 =
        run_json({"eval", path("m.tinygpt"), "--corpus", corpus, "--json"})["cross_entropy"];
    for (const char* dtype : {"bf16", "q8_0"}) {
        const double on_load = run_json({"eval", path("m.tinygpt"), "--corpus", corpus, "--json",
                                         "--dtype", dtype})["cross_entropy"];
        EXPECT_NEAR(on_load, f32, 0.01) << dtype;
        EXPECT_NE(on_load, f32) << dtype << ": the weights were not converted";
        // A file stored in that type gives the same numbers as converting on load.
        const std::string copy = path(std::string("m-") + dtype + ".tinygpt");
        const RunResult c = run({"convert", path("m.tinygpt"), copy, "--dtype", dtype});
        ASSERT_EQ(c.exit_code, 0) << c.describe();
        EXPECT_EQ(run_json({"eval", copy, "--corpus", corpus, "--json"})["cross_entropy"], on_load)
            << dtype;
        const RunResult a = run({"sample", copy, "--tokens", "8", "--temperature", "0"});
        const RunResult b = run(
            {"sample", path("m.tinygpt"), "--tokens", "8", "--temperature", "0", "--dtype", dtype});
        ASSERT_EQ(a.exit_code, 0) << a.describe();
        EXPECT_EQ(a.out, b.out) << dtype;
        const nlohmann::json bench =
            run_json({"bench", copy, "--runs", "1", "--warmup", "0", "--prompt-tokens", "4",
                      "--gen-tokens", "4", "--json"});
        EXPECT_EQ(bench["weights"], std::string(dtype) + "+f32");
        EXPECT_LT(bench["weight_mb_per_token"].get<double>(), bench["weights_mb"].get<double>());
    }
    const RunResult bad = run({"sample", path("m.tinygpt"), "--dtype", "q4_0"});
    EXPECT_NE(bad.exit_code, 0);
    EXPECT_NE(bad.err.find("q4_0"), std::string::npos) << bad.describe();
}

}  // namespace
}  // namespace tinygpt
