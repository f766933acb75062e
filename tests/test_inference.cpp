// Inference: the KV-cached path against recomputation through the training forward, sampling
// rules, and the context limit.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <set>

#include "infer/generate.h"
#include "infer/sampler.h"
#include "infer/session.h"
#include "model/model.h"
#include "test_util.h"
#include "util/error.h"
#include "util/sysinfo.h"

namespace tinygpt {
namespace {

ModelConfig small_model(int experts, int topk) {
    return test::model_config(
        {.ctx = 32, .d_model = 32, .heads = 4, .d_mlp = 48, .experts = experts, .topk = topk});
}

// Max difference relative to the largest reference logit (the scaled-up weights make logits
// large, so float32 rounding grows with them).
double relative_diff(const float* a, const float* ref, size_t n) {
    double scale = 1.0;
    for (size_t i = 0; i < n; ++i) scale = std::max(scale, static_cast<double>(std::fabs(ref[i])));
    return test::max_abs_diff(a, ref, n) / scale;
}

std::vector<float> random_weights(const ModelConfig& cfg, uint64_t seed) {
    Model model(cfg);
    model.init(seed);
    // Scale up so the logits are far from uniform and greedy choices are clear-cut.
    std::vector<float> w(model.params(), model.params() + model.buffer_floats());
    for (float& x : w) x *= 4.0f;
    return w;
}

void check_cache_matches_recompute(const ModelConfig& cfg) {
    const auto weights = random_weights(cfg, 3);
    InferenceSession session(cfg, weights.data());
    Model model(cfg, weights.data());
    std::vector<int> seq = {10, 200, 33, 47, 5, 99, 128};
    // Prefill: every position's logits.
    session.forward(seq.data(), static_cast<int>(seq.size()), /*all_logits=*/true);
    model.forward(seq.data(), nullptr, 1, static_cast<int>(seq.size()));
    const size_t V = cfg.vocab;
    EXPECT_LT(relative_diff(session.logits(), model.logits(), seq.size() * V), 1e-4);
    // Decode greedily to the end of the context, one token at a time.
    const float* logits = session.logits() + (seq.size() - 1) * V;
    while (static_cast<int>(seq.size()) < cfg.ctx) {
        const int token = argmax(logits, cfg.vocab);
        seq.push_back(token);
        logits = session.forward(&token, 1);
        const int T = static_cast<int>(seq.size());
        model.forward(seq.data(), nullptr, 1, T);
        const float* ref = model.logits() + static_cast<size_t>(T - 1) * V;
        ASSERT_LT(relative_diff(logits, ref, V), 1e-4) << "position " << T;
        ASSERT_EQ(argmax(logits, cfg.vocab), argmax(ref, cfg.vocab)) << "position " << T;
    }
    EXPECT_THROW(session.forward(seq.data(), 1), Error);  // context is full
}

void check_chunked_prefill(const ModelConfig& cfg, uint64_t seed) {
    const auto weights = random_weights(cfg, seed);
    const std::vector<int> prompt = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
    InferenceSession one(cfg, weights.data()), chunked(cfg, weights.data());
    const float* a = one.forward(prompt.data(), 11);
    chunked.forward(prompt.data(), 4);
    chunked.forward(prompt.data() + 4, 6);
    const float* b = chunked.forward(prompt.data() + 10, 1);
    EXPECT_LT(relative_diff(a, b, cfg.vocab), 1e-4);
}

TEST(Inference, KvCacheMatchesRecomputeDense) {
    check_cache_matches_recompute(small_model(1, 1));
}
TEST(Inference, KvCacheMatchesRecomputeMoe) {
    check_cache_matches_recompute(small_model(4, 2));
}

// The Llama family: RoPE applied at the cache position, a cache of KVH heads (GQA).
ModelConfig llama_model(int experts, int topk) {
    ModelConfig cfg = small_model(experts, topk);
    cfg.arch = Arch::Llama;
    cfg.heads = 4;
    cfg.kv_heads = 2;
    cfg.rope_theta = 500.0f;
    return cfg;
}
TEST(Inference, KvCacheMatchesRecomputeLlamaDenseGqaQkNormQkvBias) {
    ModelConfig cfg = llama_model(1, 1);
    cfg.qk_norm = QkNorm::PerHead;
    cfg.qkv_bias = true;
    check_cache_matches_recompute(cfg);
}
TEST(Inference, KvCacheMatchesRecomputeLlamaMoeWithSharedExpert) {
    ModelConfig cfg = llama_model(4, 2);
    cfg.kv_heads = 1;
    cfg.layers = 3;
    cfg.moe_layers = moe_layout_rule(3, 2, 0);
    cfg.shared_ffn = 16;
    cfg.norm_topk = NormTopk::Off;
    cfg.tie_embeddings = true;
    // Training-only options must not change inference.
    cfg.jitter = 0.5f;
    cfg.capacity_factor = 0.5f;
    check_cache_matches_recompute(cfg);
    const ModelConfig cache_only = [&] {
        ModelConfig c = cfg;
        c.kv_heads = 4;
        return c;
    }();
    // The cache grows with the positions seen: GQA with 1 kv head of 4 keeps a quarter.
    const std::vector<int> prompt = {1, 2, 3, 4, 5};
    const std::vector<float> w1 = random_weights(cfg, 1), w4 = random_weights(cache_only, 1);
    InferenceSession gqa(cfg, w1.data()), mha(cache_only, w4.data());
    EXPECT_EQ(gqa.cache_bytes(), 0u);
    gqa.forward(prompt.data(), 5);
    mha.forward(prompt.data(), 5);
    EXPECT_GT(gqa.cache_bytes(), 0u);
    EXPECT_EQ(gqa.cache_bytes() * 4, mha.cache_bytes());
}

// The session reports each MoE block's routing as it happens: per block (not the last block's
// routing repeated), the counts the training forward computes, and nothing for dense blocks.
TEST(Inference, RouterObserverSeesEveryMoeBlockAsTheTrainingForwardRoutesIt) {
    ModelConfig cfg = small_model(4, 2);
    cfg.layers = 3;
    cfg.moe_layers = {1, 0, 1};
    const auto weights = random_weights(cfg, 5);
    const std::vector<int> seq = {3, 141, 59, 26, 53, 58, 97, 93, 23, 84, 62, 64};
    const int n = static_cast<int>(seq.size());
    InferenceSession session(cfg, weights.data());
    std::vector<int> layers;
    std::map<int, std::vector<int>> counts;
    session.observe_routing([&](int layer, const RouterDecisions& d) {
        layers.push_back(layer);
        ASSERT_EQ(d.rows, n);
        ASSERT_EQ(d.experts, 4);
        ASSERT_EQ(d.k, 2);
        counts[layer].assign(d.counts, d.counts + d.experts);
    });
    session.forward(seq.data(), n);
    EXPECT_EQ(layers, (std::vector<int>{0, 2}));
    Model model(cfg, weights.data());
    model.forward(seq.data(), nullptr, 1, n);
    for (int layer : {0, 2}) {
        const std::vector<float> load = model.expert_load(layer);
        for (int e = 0; e < 4; ++e)
            EXPECT_NEAR(counts[layer][e], load[e] * n * 2, 1e-3)
                << "layer " << layer << " expert " << e;
    }
    EXPECT_NE(counts[0], counts[2]) << "both blocks report one block's routing";
}

// Buffers follow what is processed, not the maximum context: a long-context, large-vocabulary
// model decodes a few tokens with a cache of a few rows.
TEST(Inference, SessionBuffersFollowThePositionsSeenNotTheContext) {
    ModelConfig cfg = llama_model(1, 1);
    cfg.ctx = 32768;
    cfg.vocab = 5000;
    const std::vector<float> w = random_weights(cfg, 3);
    InferenceSession session(cfg, w.data());
    const std::vector<int> prompt = {10, 4000, 7};
    session.forward(prompt.data(), 3);
    for (int i = 0; i < 5; ++i) {
        const int next = 100 + i;
        session.forward(&next, 1);
    }
    const size_t full =
        sizeof(float) * 2 * cfg.layers * static_cast<size_t>(cfg.ctx) * cfg.kv_width();
    EXPECT_LT(session.cache_bytes() * 100, full);
}

// head_dim set apart from d_model / heads (Qwen3-MoE-30B: 2048 wide, 32 heads × 128) and the
// q/k norm over the whole projection (OLMoE): cached decode equals a full recompute.
TEST(Inference, KvCacheMatchesRecomputeWithHeadDimApartAndFullQkNorm) {
    ModelConfig cfg = llama_model(4, 2);
    cfg.head_size = 12;  // d_model 16, 4 heads: q width 48
    cfg.qk_norm = QkNorm::Full;
    check_cache_matches_recompute(cfg);
    cfg.qk_norm = QkNorm::PerHead;
    check_cache_matches_recompute(cfg);
}
TEST(Inference, ChunkedPrefillEqualsOnePrefillLlama) {
    check_chunked_prefill(llama_model(4, 2), 6);
}

TEST(Inference, ChunkedPrefillEqualsOnePrefill) {
    check_chunked_prefill(small_model(4, 1), 4);
}

TEST(Inference, CachedAndUncachedGenerationGiveTheSameGreedyText) {
    const ModelConfig cfg = small_model(4, 2);
    const auto weights = random_weights(cfg, 5);
    GenerateOptions opt;
    opt.max_new_tokens = 100;  // more than fits: stops at the context
    opt.stop_at_context = true;
    opt.sampling.temperature = 0.0f;
    std::vector<int> cached, uncached;
    const auto prompt = bytes_to_tokens("ROMEO:");
    const GenerateStats a =
        generate(cfg, weights.data(), prompt, opt, [&](int t) { cached.push_back(t); });
    opt.use_cache = false;
    const GenerateStats b =
        generate(cfg, weights.data(), prompt, opt, [&](int t) { uncached.push_back(t); });
    EXPECT_EQ(cached, uncached);
    EXPECT_TRUE(a.hit_context);
    EXPECT_TRUE(b.hit_context);
    EXPECT_EQ(a.generated, cfg.ctx - 6 + 1);  // the last token needs no room in the context
    EXPECT_EQ(a.itl_ms.size(), static_cast<size_t>(a.generated - 1));
}

// Past the context: every generated token is the argmax of a fresh forward pass over the window
// the sliding rule gives (the first `keep` tokens, then the latest ones; learned positions slide
// by one, RoPE by half the slidable part), with and without the cache.
void check_generation_past_the_context(const ModelConfig& cfg, int keep) {
    SCOPED_TRACE(std::string(arch_name(cfg.arch)) + " keep " + std::to_string(keep));
    const auto weights = random_weights(cfg, 9);
    const std::vector<int> prompt = bytes_to_tokens("ROMEO: hi");
    GenerateOptions opt;
    opt.max_new_tokens = 3 * cfg.ctx;
    opt.sampling.temperature = 0.0f;
    opt.keep = keep;
    std::vector<int> cached, uncached;
    const GenerateStats a =
        generate(cfg, weights.data(), prompt, opt, [&](int t) { cached.push_back(t); });
    opt.use_cache = false;
    generate(cfg, weights.data(), prompt, opt, [&](int t) { uncached.push_back(t); });
    EXPECT_EQ(cached, uncached);
    ASSERT_EQ(a.generated, 3 * cfg.ctx);
    EXPECT_FALSE(a.hit_context);
    EXPECT_GT(a.slides, 0);

    // The reference: rebuild the window from scratch at every step.
    const int drop = cfg.has_position_table() ? 1 : (cfg.ctx - keep) / 2;
    std::vector<int> window = prompt;
    Model model(cfg, weights.data());
    for (size_t i = 0; i < cached.size(); ++i) {
        model.forward(window.data(), nullptr, 1, static_cast<int>(window.size()));
        const float* last = model.logits() + (window.size() - 1) * cfg.vocab;
        ASSERT_EQ(cached[i], argmax(last, cfg.vocab)) << "generated token " << i;
        if (static_cast<int>(window.size()) == cfg.ctx)
            window.erase(window.begin() + keep, window.begin() + keep + drop);
        window.push_back(cached[i]);
    }
}

TEST(Inference, GenerationSlidesPastTheContext) {
    check_generation_past_the_context(small_model(4, 2), 0);
    check_generation_past_the_context(small_model(1, 1), 3);
    check_generation_past_the_context(llama_model(4, 2), 0);
    check_generation_past_the_context(llama_model(1, 1), 5);
}

// A session handed in (bench's runs) is reset and reused: whatever it held before (another
// prompt, a slid window), the text is the one a new session gives, bit for bit in its logits'
// argmax, and its buffers are not allocated again.
TEST(Inference, AReusedSessionGivesTheTextOfANewOne) {
    for (const ModelConfig& cfg : {small_model(4, 2), llama_model(4, 2)}) {
        SCOPED_TRACE(arch_name(cfg.arch));
        const auto weights = random_weights(cfg, 13);
        const ModelWeights stored = ModelWeights::from_f32(cfg, weights.data());
        GenerateOptions opt;
        opt.max_new_tokens = 2 * cfg.ctx;  // slides, so the session ends full
        opt.sampling.temperature = 0.0f;
        auto text_of = [&](const std::vector<int>& prompt, InferenceSession* session) {
            opt.session = session;
            std::vector<int> out;
            generate(stored, prompt, opt, [&](int t) { out.push_back(t); });
            return out;
        };
        const std::vector<int> first = bytes_to_tokens("ROMEO: hi"), second = {7, 3, 11};
        InferenceSession session(stored);
        EXPECT_EQ(text_of(first, &session), text_of(first, nullptr));
        const size_t held = session.cache_bytes();
        EXPECT_EQ(text_of(second, &session), text_of(second, nullptr));
        EXPECT_EQ(text_of(first, &session), text_of(first, nullptr));
        EXPECT_EQ(session.cache_bytes(), held);  // the cache was kept, not rebuilt
    }
}

// A session of other weights is refused, even of the same shapes: its logits are another
// model's (of another vocabulary, the sampler would read past them).
TEST(Inference, ASessionOfOtherWeightsIsRefused) {
    const ModelConfig cfg = small_model(2, 1);
    const auto weights = random_weights(cfg, 1), same_shapes = random_weights(cfg, 2);
    ModelConfig wider = cfg;
    wider.vocab = 2 * cfg.vocab;
    const auto wider_weights = random_weights(wider, 3);
    const ModelWeights stored = ModelWeights::from_f32(cfg, weights.data());
    InferenceSession other(cfg, same_shapes.data()), larger(wider, wider_weights.data());
    GenerateOptions opt;
    opt.max_new_tokens = 2;
    for (InferenceSession* session : {&other, &larger}) {
        opt.session = session;
        EXPECT_THROW(generate(stored, {1, 2}, opt, [](int) {}), Error);
    }
    InferenceSession own(cfg, weights.data());  // the same buffer, another ModelWeights
    opt.session = &own;
    int produced = 0;
    generate(stored, {1, 2}, opt, [&](int) { ++produced; });
    EXPECT_EQ(produced, 2);
}

TEST(Inference, AKeepThatLeavesNoRoomToSlideIsRefused) {
    const ModelConfig cfg = small_model(1, 1);
    const auto weights = random_weights(cfg, 1);
    GenerateOptions opt;
    opt.keep = cfg.ctx - 1;
    EXPECT_THROW(generate(cfg, weights.data(), {1, 2}, opt, [](int) {}), Error);
    opt.keep = -1;
    EXPECT_THROW(generate(cfg, weights.data(), {1, 2}, opt, [](int) {}), Error);
}

// The default picks each decode step's thread count by timing (ThreadTuner), so a decode step
// must give the same bits on any thread count: seeded sampling stays reproducible. (A prompt of
// several tokens may not: BLAS picks other kernels for other thread counts; it always runs on
// all threads.)
void check_thread_count_does_not_change_decode(const ModelConfig& cfg) {
    const auto weights = random_weights(cfg, 5);
    const std::vector<int> prompt = {3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8};
    const int all_threads = num_threads();
    std::vector<std::vector<float>> runs;
    for (int threads : {1, 2, 3}) {
        set_num_threads(all_threads);
        InferenceSession session(cfg, weights.data());
        const float* logits = session.forward(prompt.data(), static_cast<int>(prompt.size()));
        set_num_threads(threads);
        std::vector<float> decoded;
        for (int step = 0; step < 6; ++step) {
            const int token = argmax(logits, cfg.vocab);
            logits = session.forward(&token, 1);
            decoded.insert(decoded.end(), logits, logits + cfg.vocab);
        }
        runs.push_back(decoded);
    }
    set_num_threads(all_threads);
    for (size_t r = 1; r < runs.size(); ++r)
        for (size_t i = 0; i < runs[0].size(); ++i)
            ASSERT_EQ(runs[r][i], runs[0][i]) << "threads run " << r << ", logit " << i;
}

TEST(Inference, DecodeStepsGiveTheSameBitsOnAnyThreadCount) {
    // Wide enough that the BLAS and the MoE loops do run in parallel.
    ModelConfig gpt = test::model_config(
        {.ctx = 64, .d_model = 256, .heads = 4, .d_mlp = 512, .experts = 4, .topk = 2});
    check_thread_count_does_not_change_decode(gpt);
    ModelConfig llama = gpt;
    llama.arch = Arch::Llama;
    llama.kv_heads = 2;
    llama.shared_ffn = 128;
    check_thread_count_does_not_change_decode(llama);
}

// decode_thread_limit lets the decode timing try more threads than the prompt ran on (the CLI
// sets it when the load at start lowered num_threads()): the observer sees the count of every
// forward; the prompt's stays num_threads(), and so does the count after the call.
TEST(Inference, DecodeTimingMayTryThreadsBeyondThePrompts) {
    // ~5 M active multiply-adds per token: worth two threads by work size.
    const ModelConfig cfg = test::model_config({.ctx = 64,
                                                .layers = 4,
                                                .d_model = 256,
                                                .heads = 4,
                                                .d_mlp = 1024,
                                                .experts = 4,
                                                .topk = 2});
    const auto weights = random_weights(cfg, 9);
    const int all_threads = num_threads();
    set_num_threads(1);
    std::vector<int> counts;  // per forward
    GenerateOptions opt;
    opt.max_new_tokens = 12;
    opt.sampling.temperature = 0.0f;
    opt.routing = [&](int layer, const RouterDecisions&) {
        if (layer == 0) counts.push_back(num_threads());
    };
    std::vector<int> limited, wider;
    generate(cfg, weights.data(), {1, 2, 3}, opt, [&](int t) { limited.push_back(t); });
    const std::vector<int> limited_counts = counts;
    counts.clear();
    opt.decode_thread_limit = 2;
    generate(cfg, weights.data(), {1, 2, 3}, opt, [&](int t) { wider.push_back(t); });
    EXPECT_EQ(num_threads(), 1);
    set_num_threads(all_threads);
    EXPECT_EQ(limited, wider);  // a decode step gives the same bits on any count
    EXPECT_EQ(std::set<int>(limited_counts.begin(), limited_counts.end()), std::set<int>{1});
    ASSERT_FALSE(counts.empty());
    EXPECT_EQ(counts.front(), 1);                                   // the prompt
    EXPECT_EQ(*std::max_element(counts.begin(), counts.end()), 2);  // the first trial tries 2
}

TEST(Sampler, GreedyTopKOneAndTinyTopPAllPickTheArgmax) {
    const std::vector<float> logits = {0.1f, 2.0f, -1.0f, 1.9f, 0.5f};
    Sampler greedy({0.0f, 0, 1.0f}, 1), top1({1.0f, 1, 1.0f}, 2), nucleus({1.0f, 0, 1e-6f}, 3);
    for (int i = 0; i < 20; ++i) {
        EXPECT_EQ(greedy.next(logits.data(), 5), 1);
        EXPECT_EQ(top1.next(logits.data(), 5), 1);
        EXPECT_EQ(nucleus.next(logits.data(), 5), 1);
    }
}

TEST(Sampler, SeededSamplingIsReproducibleAndFollowsTheDistribution) {
    const std::vector<float> logits = {0.0f, std::log(2.0f), std::log(3.0f), -50.0f};
    Sampler a({1.0f, 0, 1.0f}, 7), b({1.0f, 0, 1.0f}, 7);
    std::map<int, int> counts;
    const int draws = 60000;
    for (int i = 0; i < draws; ++i) {
        const int x = a.next(logits.data(), 4);
        ASSERT_EQ(x, b.next(logits.data(), 4));
        ++counts[x];
    }
    EXPECT_NEAR(counts[0] / double(draws), 1.0 / 6, 0.01);
    EXPECT_NEAR(counts[1] / double(draws), 2.0 / 6, 0.01);
    EXPECT_NEAR(counts[2] / double(draws), 3.0 / 6, 0.01);
    // top-k 2 keeps tokens 2 and 1 only, renormalised: 3/5 and 2/5.
    Sampler k2({1.0f, 2, 1.0f}, 8);
    std::map<int, int> top;
    for (int i = 0; i < draws; ++i) ++top[k2.next(logits.data(), 4)];
    EXPECT_EQ(top[0] + top[3], 0);
    EXPECT_NEAR(top[2] / double(draws), 0.6, 0.01);
    // top-p 0.6: token 2 (0.5) is not enough, token 1 joins: same as top-k 2.
    Sampler p6({1.0f, 0, 0.6f}, 9);
    std::map<int, int> nuc;
    for (int i = 0; i < draws; ++i) ++nuc[p6.next(logits.data(), 4)];
    EXPECT_EQ(nuc[0] + nuc[3], 0);
    EXPECT_NEAR(nuc[2] / double(draws), 0.6, 0.01);
}

TEST(Sampler, BadOptionsAreErrors) {
    EXPECT_THROW(Sampler({1.0f, -1, 1.0f}, 1), Error);
    EXPECT_THROW(Sampler({1.0f, 0, 0.0f}, 1), Error);
    EXPECT_THROW(Sampler({1.0f, 0, 1.5f}, 1), Error);
    EXPECT_THROW(Sampler({NAN, 0, 1.0f}, 1), Error);
}

}  // namespace
}  // namespace tinygpt
