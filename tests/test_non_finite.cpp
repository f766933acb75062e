// Numbers that compute nothing: NaN/inf weights are found at load and named (refused by the
// commands that compute, listed by `inspect`); finite weights whose products overflow stop
// `sample` / `eval` at the position instead of printing garbage; fast_exp of a NaN is a NaN (no
// undefined float-to-int conversion).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "cli_harness.h"
#include "io/model_file.h"
#include "kernels/fast_math.h"
#include "load/model_source.h"
#include "model/params.h"
#include "model/weight_check.h"
#include "test_util.h"
#include "util/error.h"

namespace tinygpt {
namespace {

using namespace test;

TEST(FastExp, MatchesExpAndPropagatesNan) {
    for (float x = -80.0f; x <= 80.0f; x += 0.37f)
        EXPECT_NEAR(fast_exp(x) / std::exp(x), 1.0f, 3e-7f) << x;
    EXPECT_TRUE(std::isnan(fast_exp(std::numeric_limits<float>::quiet_NaN())));
    EXPECT_FLOAT_EQ(fast_exp(std::numeric_limits<float>::infinity()), fast_exp(87.0f));
    EXPECT_FLOAT_EQ(fast_exp(-std::numeric_limits<float>::infinity()), fast_exp(-87.0f));
}

ModelConfig small_gpt() {
    return test::model_config({.layers = 1});
}

class NonFiniteWeights : public CliTest {
  protected:
    // A model whose tensor `role` gets `value` at `count` places (or whose token 'A' embedding
    // row is `value` when role is the token embedding and count is 0).
    std::string save(const std::string& name, TensorRole role, float value, size_t count) {
        const ModelConfig cfg = small_gpt();
        const ParameterLayout layout(cfg);
        std::vector<float> w(layout.total(), 0.0f);
        init_parameters(layout, w.data(), 3);
        const ParamInfo& p = layout.at(TensorId{role});
        if (count == 0)
            for (int k = 0; k < cfg.d_model; ++k) w[p.offset + 'A' * cfg.d_model + k] = value;
        for (size_t i = 0; i < count; ++i) w[p.offset + 5 + 7 * i] = value;
        SaveOptions options;
        options.include_optimizer = false;
        options.include_training_state = false;
        const std::string path = (dir_ / name).string();
        save_model_file(path, cfg, w.data(), nullptr, nullptr, TrainingState{}, options);
        return path;
    }
};

TEST_F(NonFiniteWeights, AreFoundAtLoadNamedAndListedByInspect) {
    const std::string bad =
        save("nan.tinygpt", TensorRole::TokenEmbedding, std::numeric_limits<float>::quiet_NaN(), 3);
    try {
        open_model(bad);
        FAIL() << "a model with NaN weights was opened";
    } catch (const Error& e) {
        const std::string what = e.what();
        EXPECT_NE(what.find("token_embedding.weight"), std::string::npos) << what;
        EXPECT_NE(what.find("3 NaN/inf values (the first at index 5)"), std::string::npos) << what;
    }
    const OpenedModel m = open_model(bad, {}, NonFinite::Report);
    ASSERT_EQ(m.non_finite.size(), 1u);
    EXPECT_EQ(m.non_finite[0].count, 3u);

    expect_clean_error(run({"sample", bad, "--prompt", "A"}), {"nan.tinygpt", "NaN/inf"});
    expect_clean_error(run({"eval", bad, "--corpus", corpus_.string()}), {"NaN/inf"});
    expect_clean_error(run({"convert", bad, (dir_ / "x.gguf").string()}), {"NaN/inf"});
    const RunResult i = run({"inspect", bad});
    EXPECT_EQ(i.exit_code, 0) << i.describe();
    EXPECT_NE(i.out.find("NaN/inf in 1 tensor"), std::string::npos) << i.out;
    const std::string good = save("ok.tinygpt", TensorRole::TokenEmbedding, 0.5f, 1);
    const RunResult g = run({"inspect", good});
    EXPECT_NE(g.out.find("all finite"), std::string::npos) << g.out;
}

TEST_F(NonFiniteWeights, OverflowingProductsStopSampleAndEvalAtThePosition) {
    // Finite weights: token 'A' embeds as FLT_MAX in every dimension. The tied head multiplies
    // that row with the final hidden state, so the logits overflow.
    const std::string huge =
        save("huge.tinygpt", TensorRole::TokenEmbedding, std::numeric_limits<float>::max(), 0);
    EXPECT_TRUE(find_non_finite(open_model(huge).weights).empty());
    // `sample` has said which model it loaded before it computes: that line, then the error.
    const RunResult s = run({"sample", huge, "--prompt", "xy", "--tokens", "4"});
    ASSERT_TRUE(s.exited) << s.describe();
    EXPECT_NE(s.exit_code, 0) << s.describe();
    const std::vector<std::string> lines = split_lines(s.err);
    ASSERT_FALSE(lines.empty()) << s.describe();
    std::string last;
    for (const std::string& line : lines)
        if (!line.empty()) last = line;
    EXPECT_TRUE(starts_with(last, "error: the model's logits are NaN/inf at position 1"))
        << s.describe();
    write_file(dir_ / "a.txt", "some text");
    expect_clean_error(run({"eval", huge, "--corpus", (dir_ / "a.txt").string()}), {"NaN/inf"});
    expect_clean_error(run({"eval", huge, "--corpus", (dir_ / "a.txt").string(), "--per-token"}),
                       {"NaN/inf"});
}

}  // namespace
}  // namespace tinygpt
