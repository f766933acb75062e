// The statistics of `tinygpt experts` (analysis/expert_stats.h, analysis/expert_recorder.h) on
// hand-built router decisions with known answers, and the token texts and classes they use.
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>

#include "analysis/expert_recorder.h"
#include "analysis/expert_stats.h"
#include "analysis/token_text.h"
#include "test_util.h"
#include "util/error.h"

namespace tinygpt {
namespace {

// One MoE block's routing of n rows, as InferenceFfn reports it.
struct Routing {
    int n, E, K;
    std::vector<int> topk;
    std::vector<float> gates, probs, lse;
    std::vector<int> counts;

    Routing(int E_, int K_, const std::vector<std::vector<int>>& chosen) : E(E_), K(K_) {
        n = static_cast<int>(chosen.size());
        counts.assign(E, 0);
        lse.assign(n, 0.0f);
        for (const auto& row : chosen) {
            // Probabilities: the chosen experts by descending share, the rest small and equal.
            std::vector<float> p(E, 0.0f);
            float left = 1.0f;
            for (int k = 0; k < K; ++k) {
                p[row[k]] = 0.5f * left;
                left -= p[row[k]];
            }
            for (int e = 0; e < E; ++e)
                if (p[e] == 0.0f) p[e] = left / static_cast<float>(E - K);
            float chosen_sum = 0;
            for (int k = 0; k < K; ++k) chosen_sum += p[row[k]];
            for (int k = 0; k < K; ++k) {
                topk.push_back(row[k]);
                gates.push_back(p[row[k]] / chosen_sum);
                counts[row[k]] += 1;
            }
            probs.insert(probs.end(), p.begin(), p.end());
        }
    }
    RouterDecisions decisions() const {
        return {n, E, K, topk.data(), gates.data(), probs.data(), lse.data(), counts.data()};
    }
};

ModelConfig moe_config(int layers, int experts, int topk) {
    return test::model_config(
        {.ctx = 64, .layers = layers, .d_model = 16, .heads = 2, .experts = experts, .topk = topk});
}

std::vector<int> ids_of(const std::string& text) {
    return std::vector<int>(text.begin(), text.end());
}

TEST(ExpertStats, LoadGatesCoselectionAndClassesCountEveryAssignment) {
    const ModelConfig cfg = moe_config(1, 4, 2);
    const Tokenizer bytes = Tokenizer::bytes();
    ExpertStatsRecorder recorder(cfg, bytes, {});
    const std::vector<int> ids = ids_of("aB1 ");
    const Routing r(4, 2, {{0, 1}, {0, 2}, {1, 0}, {3, 0}});
    recorder.begin_window(ids.data(), 4);
    recorder.observe(0, r.decisions());
    const ExpertStats stats = recorder.finish();
    ASSERT_EQ(stats.layers.size(), 1u);
    const ExpertLayerStats& s = stats.layers[0];
    EXPECT_EQ(s.layer, 0);
    EXPECT_EQ(s.rows, 4);
    EXPECT_EQ(s.assignments, (std::vector<int64_t>{4, 2, 1, 1}));
    EXPECT_EQ(s.load(), (std::vector<double>{0.5, 0.25, 0.125, 0.125}));
    const std::vector<double> load = s.load();
    EXPECT_DOUBLE_EQ(std::accumulate(load.begin(), load.end(), 0.0), 1.0);
    EXPECT_EQ(s.top1, (std::vector<int64_t>{2, 1, 0, 1}));
    EXPECT_EQ(s.top1_share(), (std::vector<double>{0.5, 0.25, 0.0, 0.25}));
    // Gates are renormalised over the top-2 (p = 0.5, 0.25 → 2/3 and 1/3).
    EXPECT_NEAR(s.mean_gate(0), (2.0 / 3 + 2.0 / 3 + 1.0 / 3 + 1.0 / 3) / 4, 1e-6);
    EXPECT_NEAR(s.mean_gate(2), 1.0 / 3, 1e-6);
    EXPECT_NEAR(s.mean_prob(0), (0.5 + 0.5 + 0.25 + 0.25) / 4, 1e-6);
    // Co-selection: symmetric; off the diagonal the tokens choosing both, on it those choosing one.
    const std::vector<int64_t> expected = {4, 2, 1, 1,  //
                                           2, 2, 0, 0,  //
                                           1, 0, 1, 0,  //
                                           1, 0, 0, 1};
    EXPECT_EQ(s.coselection, expected);
    // Byte classes: expert 0 took 'a', 'B', '1' and ' '; expert 3 only ' '.
    EXPECT_EQ(s.byte_classes[0][int(ByteClass::Lower)], 1);
    EXPECT_EQ(s.byte_classes[0][int(ByteClass::Upper)], 1);
    EXPECT_EQ(s.byte_classes[0][int(ByteClass::Digit)], 1);
    EXPECT_EQ(s.byte_classes[0][int(ByteClass::Space)], 1);
    EXPECT_EQ(s.byte_classes[3][int(ByteClass::Space)], 1);
    EXPECT_EQ(s.byte_classes[3][int(ByteClass::Lower)], 0);
    EXPECT_EQ(stats.text_classes[int(ByteClass::Upper)], 1);
    EXPECT_TRUE(s.never_chosen().empty());
    EXPECT_FALSE(s.next.has_value()) << "one MoE layer: nothing to agree with";
}

TEST(ExpertStats, EntropyOfUniformIsLogNAndOfCertaintyZero) {
    EXPECT_NEAR(entropy({1, 1, 1, 1, 1, 1, 1, 1}), std::log(8.0), 1e-12);
    EXPECT_NEAR(entropy({0.25, 0.25, 0.25, 0.25}), std::log(4.0), 1e-12);
    EXPECT_EQ(entropy({0, 3, 0}), 0.0);
    EXPECT_EQ(entropy({0, 0}), 0.0);
    EXPECT_NEAR(entropy({1, 3}), -(0.25 * std::log(0.25) + 0.75 * std::log(0.75)), 1e-12);

    // The router entropy is the mean over tokens of the softmax's entropy.
    const ModelConfig cfg = moe_config(1, 4, 1);
    const Tokenizer bytes = Tokenizer::bytes();
    ExpertStatsRecorder recorder(cfg, bytes, {});
    const std::vector<int> ids = ids_of("ab");
    const std::vector<int> topk = {0, 1};
    const std::vector<float> gates = {0.25f, 1.0f}, lse = {0, 0};
    const std::vector<float> probs = {0.25f, 0.25f, 0.25f, 0.25f,  // uniform: ln 4
                                      0.0f,  1.0f,  0.0f,  0.0f};  // certain: 0
    const std::vector<int> counts = {1, 1, 0, 0};
    recorder.begin_window(ids.data(), 2);
    recorder.observe(0,
                     {2, 4, 1, topk.data(), gates.data(), probs.data(), lse.data(), counts.data()});
    const ExpertLayerStats s = recorder.finish().layers[0];
    EXPECT_NEAR(s.router_entropy(), std::log(4.0) / 2, 1e-6);
    EXPECT_NEAR(s.load_entropy(), std::log(2.0), 1e-12);
    EXPECT_EQ(s.never_chosen(), (std::vector<int>{2, 3}));
    EXPECT_TRUE(std::isnan(s.mean_gate(2))) << "never chosen: no mean gate";
}

TEST(ExpertStats, AgreementMeasuresOnKnownJointCounts) {
    // A permutation: each layer determines the other.
    const std::vector<int64_t> permutation = {0, 5, 0, 0, 0, 7, 3, 0, 0};
    EXPECT_NEAR(normalized_mutual_information(permutation, 3), 1.0, 1e-12);
    EXPECT_DOUBLE_EQ(follow_rate(permutation, 3), 1.0);
    EXPECT_DOUBLE_EQ(follow_baseline(permutation, 3), 7.0 / 15);
    // Independent: the joint is the product of its marginals (rows 2·(1, 2) and 1·(1, 2)).
    EXPECT_NEAR(normalized_mutual_information({2, 4, 1, 2}, 2), 0.0, 1e-12);
    EXPECT_DOUBLE_EQ(follow_rate({2, 4, 1, 2}, 2), 6.0 / 9);
    EXPECT_DOUBLE_EQ(follow_baseline({2, 4, 1, 2}, 2), 6.0 / 9);
    // Constant marginals: both constant agree (1); one constant, the other not, do not (0).
    EXPECT_EQ(normalized_mutual_information({0, 0, 0, 9}, 2), 1.0);
    EXPECT_EQ(normalized_mutual_information({4, 5, 0, 0}, 2), 0.0);
    EXPECT_EQ(normalized_mutual_information({0, 0, 0, 0}, 2), 0.0);
}

TEST(ExpertStats, IdenticalLayersAgreeFullyAndDenseLayersAreSkipped) {
    ModelConfig cfg = moe_config(4, 4, 2);
    cfg.moe_layers = {0, 1, 0, 1};
    const Tokenizer bytes = Tokenizer::bytes();
    ExpertStatsRecorder recorder(cfg, bytes, {});
    const Routing same(4, 2, {{0, 1}, {2, 3}, {1, 2}, {3, 0}, {0, 2}, {2, 1}});
    const std::vector<int> ids = ids_of("abcdef");
    recorder.begin_window(ids.data(), 6);
    recorder.observe(1, same.decisions());
    recorder.observe(3, same.decisions());
    EXPECT_THROW(recorder.observe(2, same.decisions()), Error) << "layer 2 is dense";
    const ExpertStats stats = recorder.finish();
    ASSERT_EQ(stats.layers.size(), 2u);
    EXPECT_EQ(stats.layers[0].layer, 1);
    EXPECT_EQ(stats.layers[1].layer, 3);
    ASSERT_TRUE(stats.layers[0].next.has_value());
    EXPECT_EQ(stats.layers[0].next->to_layer, 3);
    EXPECT_NEAR(stats.layers[0].next->nmi, 1.0, 1e-12);
    EXPECT_DOUBLE_EQ(stats.layers[0].next->follow, 1.0);
    EXPECT_EQ(stats.layers[0].next->joint[0 * 4 + 0], 2);  // top-1 0 → 0 twice
    EXPECT_EQ(stats.layers[0].next->joint[2 * 4 + 2], 2);
    EXPECT_FALSE(stats.layers[1].next.has_value());
}

TEST(ExpertStats, IndependentLayersHaveNoMutualInformation) {
    const ModelConfig cfg = moe_config(2, 2, 1);
    const Tokenizer bytes = Tokenizer::bytes();
    ExpertStatsRecorder recorder(cfg, bytes, {});
    const std::vector<int> ids = ids_of("abcd");
    recorder.begin_window(ids.data(), 4);
    recorder.observe(0, Routing(2, 1, {{0}, {0}, {1}, {1}}).decisions());
    recorder.observe(1, Routing(2, 1, {{0}, {1}, {0}, {1}}).decisions());
    const LayerAgreement a = *recorder.finish().layers[0].next;
    EXPECT_EQ(a.joint, (std::vector<int64_t>{1, 1, 1, 1}));
    EXPECT_NEAR(a.nmi, 0.0, 1e-12);
    EXPECT_DOUBLE_EQ(a.follow, 0.5);
    EXPECT_DOUBLE_EQ(a.follow_baseline, 0.5);
}

TEST(ExpertStats, RareExpertsTopTokensAndThePassageAcrossWindows) {
    const ModelConfig cfg = moe_config(1, 4, 1);
    const Tokenizer bytes = Tokenizer::bytes();
    ExpertStatsOptions options;
    options.top_tokens = 2;
    options.passage_tokens = 30;
    ExpertStatsRecorder recorder(cfg, bytes, options);
    // 50 tokens in two windows: expert 0 takes all but one 'x' (expert 1: 2% < 1/40 = 2.5%).
    std::string text(50, 'a');
    for (int i = 0; i < 50; i += 5) text[i] = 'x';
    text[1] = 'b';
    for (int start : {0, 25}) {
        std::vector<std::vector<int>> chosen;
        for (int t = start; t < start + 25; ++t) chosen.push_back({t == 45 ? 1 : 0});
        const std::vector<int> ids = ids_of(text.substr(start, 25));
        recorder.begin_window(ids.data(), 25);
        recorder.observe(0, Routing(4, 1, chosen).decisions());
    }
    const ExpertStats stats = recorder.finish();
    EXPECT_EQ(stats.tokens, 50);
    EXPECT_EQ(stats.windows, 2);
    EXPECT_DOUBLE_EQ(stats.rare_threshold(), 0.025);
    const ExpertLayerStats& s = stats.layers[0];
    EXPECT_EQ(s.never_chosen(), (std::vector<int>{2, 3}));
    EXPECT_EQ(s.rarely_chosen(stats.rare_threshold()), (std::vector<int>{1}));
    ASSERT_EQ(s.top_tokens[0].size(), 2u);
    EXPECT_EQ(s.top_tokens[0][0].id, 'a');
    EXPECT_EQ(s.top_tokens[0][0].count, 39);
    EXPECT_DOUBLE_EQ(s.top_tokens[0][0].share_of_token, 1.0);
    EXPECT_EQ(s.top_tokens[0][1].id, 'x');
    EXPECT_EQ(s.top_tokens[0][1].count, 9);
    EXPECT_DOUBLE_EQ(s.top_tokens[0][1].share_of_token, 0.9);
    ASSERT_EQ(s.top_tokens[1].size(), 1u);
    EXPECT_EQ(s.top_tokens[1][0].id, 'x');
    EXPECT_DOUBLE_EQ(s.top_tokens[1][0].share_of_token, 0.1);
    EXPECT_TRUE(s.top_tokens[2].empty());
    // The passage: the first 30 tokens, across the window boundary.
    ASSERT_EQ(stats.passage.ids.size(), 30u);
    EXPECT_EQ(stats.passage.ids[1], 'b');
    EXPECT_EQ(stats.passage.ids[25], 'x');
    ASSERT_EQ(stats.passage.topk[0].size(), 30u);
    EXPECT_EQ(stats.passage.gates[0].size(), 30u);
}

TEST(ExpertStats, DenseModelsAndMismatchedRoutingAreRefused) {
    const Tokenizer bytes = Tokenizer::bytes();
    try {
        ExpertStatsRecorder recorder(moe_config(2, 1, 1), bytes, {});
        FAIL() << "a dense model was accepted";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("model has no MoE layer"), std::string::npos);
    }
    ExpertStatsRecorder recorder(moe_config(1, 4, 2), bytes, {});
    const std::vector<int> ids = ids_of("abc");
    recorder.begin_window(ids.data(), 3);
    EXPECT_THROW(recorder.observe(0, Routing(4, 2, {{0, 1}, {1, 2}}).decisions()), Error)
        << "two rows for a window of three";
    EXPECT_THROW(recorder.observe(0, Routing(3, 2, {{0, 1}, {1, 2}, {0, 2}}).decisions()), Error)
        << "three experts for a model of four";
}

TEST(TokenText, ClassesFollowTheFirstByteThatIsNotWhitespace) {
    EXPECT_EQ(classify_token("A"), ByteClass::Upper);
    EXPECT_EQ(classify_token(" the"), ByteClass::Lower);
    EXPECT_EQ(classify_token("\tX"), ByteClass::Upper);
    EXPECT_EQ(classify_token("42"), ByteClass::Digit);
    EXPECT_EQ(classify_token(" "), ByteClass::Space);
    EXPECT_EQ(classify_token("  \t"), ByteClass::Space);
    EXPECT_EQ(classify_token("\n"), ByteClass::Newline);
    EXPECT_EQ(classify_token(" \r\n"), ByteClass::Newline);
    EXPECT_EQ(classify_token(","), ByteClass::Punct);
    EXPECT_EQ(classify_token(" <|endoftext|>"), ByteClass::Punct);
    EXPECT_EQ(classify_token("\xC3\xA9t\xC3\xA9"), ByteClass::NonAscii);
    EXPECT_EQ(classify_token("\xFF"), ByteClass::NonAscii);
    EXPECT_EQ(classify_token("\x01"), ByteClass::Other);
    EXPECT_EQ(classify_token(""), ByteClass::Other);
    EXPECT_STREQ(byte_class_name(ByteClass::NonAscii), "non-ascii");
}

TEST(TokenText, PrintablePiecesAreVisibleValidUtf8) {
    EXPECT_EQ(printable_piece(" the"), " the");
    EXPECT_EQ(printable_piece("\xC3\xA9"), "\xC3\xA9");  // é stays
    EXPECT_EQ(printable_piece("a\nb\tc\rd"), "a\\nb\\tc\\rd");
    EXPECT_EQ(printable_piece("back\\slash"), "back\\\\slash");
    EXPECT_EQ(printable_piece(std::string("\x00\x01\x7F", 3)), "\\x00\\x01\\x7F");
    EXPECT_EQ(printable_piece("\xE2\x82"), "\\xE2\\x82");  // half a character
    EXPECT_EQ(printable_piece("\xFF<&"), "\\xFF<&");       // markup is the page's to escape
}

}  // namespace
}  // namespace tinygpt
