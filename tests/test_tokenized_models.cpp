// Models with a vocabulary of their own: the tokenizer stored in v3 files (and refused where it
// cannot be), scoring over covering windows, generation that stops at end-of-text.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "infer/evaluate.h"
#include "infer/generate.h"
#include "infer/session.h"
#include "io/model_file.h"
#include "load/model_source.h"
#include "model/model.h"
#include "model/params.h"
#include "model_file_fixture.h"
#include "test_util.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"

namespace tinygpt {
namespace {

namespace fs = std::filesystem;
using namespace file_test;

Tokenizer small_bpe() {
    std::string text;
    for (int i = 0; i < 40; ++i) text += "the cat sat on the mat. the dog sat on the log.\n";
    BpeTrainOptions o;
    o.vocab_size = 280;
    o.special_tokens = {"<|endoftext|>"};
    return train_bpe(text, o);
}

ModelConfig llama_for(const Tokenizer& tok, int ctx) {
    ModelConfig c = test::model_config({.vocab = tok.vocab_size(),
                                        .ctx = ctx,
                                        .layers = 2,
                                        .d_model = 16,
                                        .heads = 2,
                                        .d_mlp = 32,
                                        .experts = 4,
                                        .topk = 2});
    c.arch = Arch::Llama;
    return c;
}

std::vector<float> random_model(const ModelConfig& cfg, uint64_t seed) {
    tinygpt::Model m(cfg, false);
    m.init(seed);
    return std::vector<float>(m.params(), m.params() + m.buffer_floats());
}

// An inference file of a random Llama model with `tok` stored in it; returns its save options.
SaveOptions save_with_tokenizer(const std::string& path, const Tokenizer& tok) {
    const ModelConfig cfg = llama_for(tok, 16);
    const std::vector<float> w = random_model(cfg, 3);
    SaveOptions o;
    o.include_optimizer = false;
    o.include_training_state = false;
    set_tokenizer(o, tok);
    save_model_file(path, cfg, w.data(), nullptr, nullptr, TrainingState{}, o);
    return o;
}

TEST_F(ModelFileTest, TheTokenizerTravelsInsideTheV3File) {
    const Tokenizer tok = small_bpe();
    const std::string path = dir.file("bpe.tinygpt");
    const SaveOptions o = save_with_tokenizer(path, tok);
    const OpenedModel m = open_model(path);
    EXPECT_EQ(m.tokenizer.fingerprint(), tok.fingerprint());
    EXPECT_EQ(m.tokenizer.eos_id(), tok.eos_id());
    EXPECT_EQ(m.tokenizer.encode("the cat"), tok.encode("the cat"));
    // Byte models keep writing (and reading) the byte tokenizer.
    SaveOptions plain = o;
    set_tokenizer(plain, Tokenizer::bytes());
    EXPECT_TRUE(plain.tokenizer_json.empty());
    // v2 holds byte models only.
    SaveOptions v2;
    v2.version = 2;
    set_tokenizer(v2, tok);
    ModelConfig gpt = llama_for(tok, 16);
    gpt.arch = Arch::Gpt;
    const std::vector<float> gw = random_model(gpt, 4);
    expect_save_error(
        [&] { save_model_file(dir.file("v2.tinygpt"), gpt, gw.data(), nullptr, nullptr, {}, v2); },
        dir.file("v2.tinygpt"), {"BPE tokenizer"});
}

TEST_F(ModelFileTest, ATokenizerThatDisagreesWithItsFileIsRefused) {
    const std::string good_path = dir.file("good.tinygpt");
    save_with_tokenizer(good_path, small_bpe());
    const Bytes good = read_bytes(good_path);
    const std::string path = dir.file("bad.tinygpt");
    write_bytes(path, rewrite_v3(good, [](json& h) { h["tokenizer"]["type"] = "bytes"; }));
    expect_read_error(path, {"'tokenizer' section", "bytes"});
    write_bytes(path, rewrite_v3(good, [](json& h) { h["tokenizer"]["type"] = "sentencepiece"; }));
    expect_read_error(path, {"sentencepiece"});
    // tokenizer_config.json content that is not an object.
    write_bytes(path, rewrite_v3(good, [](json& h) { h["tokenizer"]["config"] = 7; }));
    expect_read_error(path, {"tokenizer.config"});
}

TEST(Evaluate, AShortTextIsOneWindowAndGivesTheExactMeanNll) {
    const Tokenizer bytes = Tokenizer::bytes();
    ModelConfig cfg =
        test::model_config({.ctx = 32, .layers = 2, .d_model = 16, .heads = 2, .d_mlp = 32});
    const std::vector<float> w = random_model(cfg, 9);
    const std::string text = "to be or not";
    std::vector<int32_t> tokens(text.begin(), text.end());
    const EvalResult r = evaluate(cfg, w.data(), tokens, bytes, 8, 0);
    EXPECT_EQ(r.windows, 1);
    EXPECT_EQ(r.tokens, static_cast<int64_t>(text.size()) - 1);
    tinygpt::Model m(cfg, w.data());
    std::vector<int> in(tokens.begin(), tokens.end() - 1), tg(tokens.begin() + 1, tokens.end());
    const ForwardResult f = m.forward(in.data(), tg.data(), 1, static_cast<int>(in.size()));
    EXPECT_NEAR(r.cross_entropy(), f.ce, 1e-6);
    EXPECT_NEAR(r.bits_per_byte(), f.ce / std::log(2.0), 1e-6);
}

TEST(Evaluate, WindowsAreNonOverlappingAndCoverTheText) {
    const Tokenizer bytes = Tokenizer::bytes();
    ModelConfig cfg =
        test::model_config({.ctx = 8, .layers = 1, .d_model = 16, .heads = 2, .d_mlp = 32});
    const std::vector<float> w = random_model(cfg, 10);
    std::vector<int32_t> tokens(30);
    for (int i = 0; i < 30; ++i) tokens[i] = (i * 37) % 256;
    // 29 predictions: windows of 8, 8, 8 and 5; the batch size does not change the sum.
    const EvalResult a = evaluate(cfg, w.data(), tokens, bytes, 1, 0);
    const EvalResult b = evaluate(cfg, w.data(), tokens, bytes, 3, 0);
    EXPECT_EQ(a.tokens, 29);
    EXPECT_EQ(a.windows, 4);
    EXPECT_NEAR(a.nll_sum, b.nll_sum, 1e-4);
    double manual = 0;
    tinygpt::Model m(cfg, w.data());
    for (int start = 0; start < 29; start += 8) {
        const int n = std::min(8, 29 - start);
        std::vector<int> in(tokens.begin() + start, tokens.begin() + start + n);
        std::vector<int> tg(tokens.begin() + start + 1, tokens.begin() + start + n + 1);
        manual += m.forward(in.data(), tg.data(), 1, n).ce * n;
    }
    EXPECT_NEAR(a.nll_sum, manual, 1e-4);
    const EvalResult capped = evaluate(cfg, w.data(), tokens, bytes, 2, 10);
    EXPECT_EQ(capped.tokens, 10);
    EXPECT_THROW(evaluate(cfg, w.data(), std::vector<int32_t>{1}, bytes, 1, 0), Error);
}

TEST(Generate, StopsAtTheEndOfTextTokenAndSamplesOnlyRealIds) {
    const Tokenizer tok = small_bpe();
    ModelConfig cfg = llama_for(tok, 32);
    cfg.vocab = tok.vocab_size() + 40;  // padded, as HF vocabularies often are
    std::vector<float> w = random_model(cfg, 5);
    // Logits that only the end-of-text row and one padding row can win: the final norm keeps one
    // channel, the head reads only that channel, and the padding row reads it twice as strongly.
    const ParameterLayout layout(cfg);
    const size_t head = layout.at(TensorId{TensorRole::OutputHead}).offset;
    const size_t norm = layout.at(TensorId{TensorRole::FinalNorm}).offset;
    const int eos = *tok.eos_id(), pad = tok.vocab_size() + 5;
    std::fill(w.begin() + head, w.begin() + head + static_cast<size_t>(cfg.vocab) * cfg.d_model,
              0.0f);
    std::fill(w.begin() + norm, w.begin() + norm + cfg.d_model, 0.0f);
    w[norm] = 1.0f;
    w[head + static_cast<size_t>(eos) * cfg.d_model] = 50.0f;
    w[head + static_cast<size_t>(pad) * cfg.d_model] = 100.0f;
    const std::vector<int> prompt = tok.encode("the cat");
    {
        InferenceSession probe(cfg, w.data());
        if (probe.forward(prompt.data(), static_cast<int>(prompt.size()))[eos] < 0) w[norm] = -1.0f;
    }
    GenerateOptions g;
    g.max_new_tokens = 10;
    g.sampling.temperature = 0.0f;
    g.stop_token = eos;
    g.sample_vocab = tok.vocab_size();
    int emitted = 0;
    const GenerateStats st = generate(cfg, w.data(), prompt, g, [&](int) { ++emitted; });
    EXPECT_TRUE(st.hit_stop);
    EXPECT_EQ(st.generated, 0);
    EXPECT_EQ(emitted, 0) << "the end-of-text token is not emitted";
    // Without the limit to real ids the padding row wins.
    g.sample_vocab = 0;
    g.max_new_tokens = 1;
    std::vector<int> ids;
    generate(cfg, w.data(), prompt, g, [&](int id) { ids.push_back(id); });
    EXPECT_EQ(ids, std::vector<int>{pad});
}

}  // namespace
}  // namespace tinygpt
