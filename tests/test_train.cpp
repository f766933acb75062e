// Optimizer, schedule, data and the trainer: AdamW against a hand computation, the LR schedule's
// shape, batch sampling, bit-identical reruns, and a tiny model memorising a short text.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "tokenizer/tokenizer.h"
#include "train/adamw.h"
#include "train/data.h"
#include "train/schedule.h"
#include "train/trainer.h"
#include "util/error.h"

namespace tinygpt {
namespace {

TEST(AdamW, OneStepMatchesTheFormula) {
    // Two decayed parameters then one without decay.
    std::vector<float> p = {1.0f, -2.0f, 0.5f}, g = {0.1f, -0.3f, 0.2f};
    AdamW opt(3, 2, AdamWConfig{0.9f, 0.95f, 1e-8f, 0.1f});
    const double norm = opt.step(p.data(), g.data(), 0.01f, 0.0f);
    EXPECT_NEAR(norm, std::sqrt(0.01 + 0.09 + 0.04), 1e-6);
    // t = 1: m̂ = g, v̂ = g², so the step is lr · g / (|g| + eps) = lr · sign(g).
    EXPECT_NEAR(p[0], 1.0 * (1 - 0.01 * 0.1) - 0.01, 1e-6);
    EXPECT_NEAR(p[1], -2.0 * (1 - 0.01 * 0.1) + 0.01, 1e-6);
    EXPECT_NEAR(p[2], 0.5 - 0.01, 1e-6);
    EXPECT_EQ(g, (std::vector<float>{0, 0, 0}));  // grads are zeroed for the next step
}

TEST(AdamW, ClipsByGlobalNormAndRejectsNonFiniteGradients) {
    std::vector<float> p = {0.0f, 0.0f}, g = {3.0f, 4.0f};
    AdamW opt(2, 0);
    EXPECT_NEAR(opt.step(p.data(), g.data(), 0.1f, 1.0f), 5.0, 1e-6);
    // Clipping scales both moments alike, so the first Adam step is still lr · sign(g).
    EXPECT_NEAR(p[0], -0.1, 1e-5);
    EXPECT_NEAR(opt.m()[0], 0.1 * 3.0 / 5.0, 1e-6);
    g = {NAN, 1.0f};
    EXPECT_THROW(opt.step(p.data(), g.data(), 0.1f, 1.0f), Error);
}

TEST(AdamW, GlobalNormIsIndependentOfThreadCount) {
    std::vector<float> g(100003);
    for (size_t i = 0; i < g.size(); ++i) g[i] = std::sin(static_cast<float>(i)) * 1e-3f;
    const double a = global_norm(g.data(), g.size());
    double ref = 0;
    for (float x : g) ref += static_cast<double>(x) * x;
    // A float sum in another order (threads, vector lanes, sanitizers): relative tolerance.
    EXPECT_NEAR(a, std::sqrt(ref), 1e-6 * std::sqrt(ref));
}

TEST(Schedule, WarmupCosineAndConstant) {
    ScheduleConfig s{LrSchedule::Cosine, 1.0f, 0.1f, 10, 110};
    EXPECT_FLOAT_EQ(learning_rate(s, 0), 0.1f);
    EXPECT_FLOAT_EQ(learning_rate(s, 9), 1.0f);
    EXPECT_FLOAT_EQ(learning_rate(s, 10), 1.0f);
    EXPECT_NEAR(learning_rate(s, 60), 0.55f, 1e-6);
    EXPECT_NEAR(learning_rate(s, 110), 0.1f, 1e-6);
    EXPECT_NEAR(learning_rate(s, 500), 0.1f, 1e-6);
    s.kind = LrSchedule::Constant;
    EXPECT_FLOAT_EQ(learning_rate(s, 60), 1.0f);
    EXPECT_THROW(parse_schedule("linear"), Error);
}

std::string write_temp(const std::string& name, const std::string& text) {
    const std::string path = testing::TempDir() + name;
    std::ofstream(path, std::ios::binary) << text;
    return path;
}

TEST(Data, CorpusErrorsNameTheFile) {
    try {
        Corpus::load("/nonexistent/corpus.txt", Tokenizer::bytes());
        FAIL();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("/nonexistent/corpus.txt"), std::string::npos);
    }
    EXPECT_THROW(Corpus::load(write_temp("empty.txt", ""), Tokenizer::bytes()), Error);
    EXPECT_THROW(Corpus::load(testing::TempDir(), Tokenizer::bytes()), Error);  // a directory
    const Corpus shorty = Corpus::load(write_temp("short.txt", "hello"), Tokenizer::bytes());
    EXPECT_THROW(split_corpus(shorty, 0.0, 8), Error);
    EXPECT_NO_THROW(split_corpus(shorty, 0.0, 4));
}

TEST(Data, BatchesAreNextByteWindowsAndReproducible) {
    const Corpus c =
        Corpus::load(write_temp("abc.txt", "abcdefghijklmnopqrstuvwxyz"), Tokenizer::bytes());
    const CorpusSplit split = split_corpus(c, 0.0, 4);
    Rng a(5), b(5);
    std::vector<int> in1(12), tg1(12), in2(12), tg2(12);
    sample_batch(split.train, a, 3, 4, in1.data(), tg1.data());
    sample_batch(split.train, b, 3, 4, in2.data(), tg2.data());
    EXPECT_EQ(in1, in2);
    for (int i = 0; i < 12; ++i) {
        EXPECT_EQ(tg1[i], in1[i] + 1);  // consecutive letters
        if (i % 4) {
            EXPECT_EQ(in1[i], in1[i - 1] + 1);
        }
    }
}

TrainOptions tiny_options(int experts, int topk) {
    TrainOptions o;
    o.model.vocab = 256;
    o.model.ctx = 32;
    o.model.layers = 2;
    o.model.d_model = 32;
    o.model.heads = 2;
    o.model.d_mlp = 64;
    o.model.experts = experts;
    o.model.topk = topk;
    o.batch = 4;
    o.steps = 12;
    o.schedule = {LrSchedule::Cosine, 3e-3f, 3e-4f, 2, 12};
    o.seed = 7;
    return o;
}

Corpus shakespeare_head(size_t bytes) {
    Corpus c = Corpus::load(TINYGPT_SOURCE_DIR "/data/shakespeare.txt", Tokenizer::bytes());
    c.tokens.resize(bytes);
    return c;
}

TEST(Trainer, SameSeedGivesBitIdenticalLosses) {
    const Corpus corpus = shakespeare_head(20000);
    for (int experts : {1, 4}) {
        TrainOptions o = tiny_options(experts, 2 < experts ? 2 : 1);
        o.accum = 2;
        Trainer a(o, corpus), b(o, corpus);
        for (int i = 0; i < 6; ++i) {
            const StepStats sa = a.step(), sb = b.step();
            EXPECT_EQ(sa.loss, sb.loss) << "experts " << experts << " step " << i;
            EXPECT_EQ(sa.grad_norm, sb.grad_norm);
        }
        EXPECT_EQ(0, std::memcmp(a.model().params(), b.model().params(),
                                 sizeof(float) * a.model().buffer_floats()));
        o.seed = 8;  // and a different seed gives a different run
        Trainer c(o, corpus);
        EXPECT_NE(c.step().loss,
                  Trainer(tiny_options(experts, 2 < experts ? 2 : 1), corpus).step().loss);
    }
}

TEST(Trainer, TinyMoeModelMemorisesAShortText) {
    Corpus corpus;
    corpus.path = "memory";
    // Every byte occurs once per period, so the next byte is fully determined and the loss can
    // go to ~0.
    const std::string text = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!?.,";
    for (int i = 0; i < 6; ++i) corpus.tokens.insert(corpus.tokens.end(), text.begin(), text.end());
    TrainOptions o = tiny_options(4, 2);
    o.steps = 100;
    o.schedule = {LrSchedule::Constant, 1e-2f, 1e-2f, 10, 100};
    Trainer trainer(o, corpus);
    const float first = trainer.step().ce;
    StepStats last;
    for (int i = 1; i < o.steps; ++i) last = trainer.step();
    EXPECT_GT(first, 5.0f);
    EXPECT_LT(last.ce, 0.05f) << "first " << first;
}

}  // namespace
}  // namespace tinygpt
