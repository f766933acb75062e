// Models that come and go, through the binary: a BPE tokenizer trained here, a model trained
// with it (the tokenizer stored in the file), sample / eval / inspect / resume of it, export to a
// Hugging Face directory and back, fine-tuning with --init-from, and the refusals.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "cli_harness.h"

namespace tinygpt {
namespace {

using namespace test;
namespace fs = std::filesystem;

class ModelsInAndOut : public CliTest {
  protected:
    std::string path(const std::string& name) const { return (dir_ / name).string(); }
    // A BPE of 300 ids learned from the test corpus.
    void make_tokenizer() {
        const RunResult r = run({"tokenizer", "train", "--corpus", corpus_.string(), "--vocab",
                                 "300", "--special", "<|endoftext|>", "--out", path("tok.json")});
        ASSERT_EQ(r.exit_code, 0) << r.describe();
    }
    RunResult train_bpe(const std::string& out, int steps,
                        std::vector<std::pair<std::string, std::string>> extra = {}) {
        std::vector<std::pair<std::string, std::string>> args = {{"--arch", "llama"},
                                                                 {"--tokenizer", path("tok.json")},
                                                                 {"--moe-experts", "4"},
                                                                 {"--moe-topk", "2"},
                                                                 {"--qk-norm", ""},
                                                                 {"--max-lr", "3e-3"},
                                                                 {"--steps", std::to_string(steps)},
                                                                 {"--out", path(out)}};
        args.insert(args.end(), extra.begin(), extra.end());
        return train(args);
    }
    nlohmann::json eval_json(const std::string& model) {
        const RunResult e = run({"eval", model, "--corpus", corpus_.string(), "--json"});
        EXPECT_EQ(e.exit_code, 0) << e.describe();
        return e.exit_code == 0 ? nlohmann::json::parse(e.out) : nlohmann::json{};
    }
};

TEST_F(ModelsInAndOut, ABpeModelTrainsSavesSamplesEvaluatesAndResumes) {
    make_tokenizer();
    const RunResult t = train_bpe("m.tinygpt", 4, {{"--stop-at", "2"}});
    ASSERT_EQ(t.exit_code, 0) << t.describe();
    EXPECT_NE(t.out.find("byte-level BPE"), std::string::npos) << t.describe();
    EXPECT_NE(t.err.find("tokens"), std::string::npos) << "the corpus encode reports progress";
    // The model file alone carries the tokenizer.
    fs::remove(path("tok.json"));
    const RunResult i = run({"inspect", path("m.tinygpt"), "--json"});
    ASSERT_EQ(i.exit_code, 0) << i.describe();
    const auto info = nlohmann::json::parse(i.out);
    EXPECT_EQ(info["config"]["vocab"], 300);
    EXPECT_NE(info["tokenizer"].get<std::string>().find("byte-level BPE"), std::string::npos);
    const std::string text = read_file(corpus_).substr(0, 64);
    const RunResult enc = run({"tokenizer", "encode", path("m.tinygpt"), "--text", text, "--json"});
    ASSERT_EQ(enc.exit_code, 0) << enc.describe();
    EXPECT_LT(nlohmann::json::parse(enc.out)["ids"].size(), text.size()) << "merges apply";

    const RunResult s = run({"sample", path("m.tinygpt"), "--prompt", "ROMEO:", "--tokens", "12",
                             "--temperature", "0"});
    ASSERT_EQ(s.exit_code, 0) << s.describe();
    EXPECT_EQ(s.out.rfind("ROMEO:", 0), 0u) << s.describe();
    // Bits per byte: the summed NLL over the bytes the scored tokens cover (more than one byte
    // per token on average), so it is not ce / ln 2 as for a byte model.
    const auto e = eval_json(path("m.tinygpt"));
    EXPECT_GT(e["bytes_scored"].get<int64_t>(), e["tokens_scored"].get<int64_t>());
    EXPECT_NEAR(e["bits_per_byte"].get<double>(),
                e["cross_entropy"].get<double>() * e["tokens_scored"].get<double>() /
                    std::log(2.0) / e["bytes_scored"].get<double>(),
                1e-9);
    // Resume keeps the stored tokenizer; a --tokenizer flag there is refused.
    const RunResult r = run({"train", "--resume", path("m.tinygpt"), "--corpus", corpus_.string(),
                             "--sample-tokens", "0"});
    EXPECT_EQ(r.exit_code, 0) << r.describe();
    expect_clean_error(run({"train", "--resume", path("m.tinygpt"), "--tokenizer", "bytes",
                            "--corpus", corpus_.string()}),
                       {"--tokenizer", "--resume"});
    // v2 cannot hold a BPE tokenizer, even for the GPT family.
    ASSERT_EQ(run({"tokenizer", "train", "--corpus", corpus_.string(), "--vocab", "300", "--out",
                   path("tok2.json")})
                  .exit_code,
              0);
    ASSERT_EQ(train({{"--tokenizer", path("tok2.json")}, {"--out", path("g.tinygpt")}}).exit_code,
              0);
    expect_clean_error(run({"convert", path("g.tinygpt"), path("g-v2.tinygpt"), "--format", "v2"}),
                       {"BPE tokenizer"});
    expect_clean_error(train({{"--tokenizer", path("tok2.json")},
                              {"--format", "v2"},
                              {"--out", path("g2.tinygpt")}}),
                       {"BPE tokenizer"});
}

TEST_F(ModelsInAndOut, HfExportImportAndFineTuneKeepTheFunction) {
    make_tokenizer();
    ASSERT_EQ(train_bpe("m.tinygpt", 3).exit_code, 0);
    const RunResult x = run({"convert", path("m.tinygpt"), "--to", "hf", "--out", path("hf")});
    ASSERT_EQ(x.exit_code, 0) << x.describe();
    EXPECT_NE(x.out.find("qwen3_moe"), std::string::npos) << x.describe();
    for (const char* f : {"config.json", "model.safetensors", "tokenizer.json",
                          "tokenizer_config.json", "generation_config.json"})
        EXPECT_TRUE(fs::exists(dir_ / "hf" / f)) << f;
    // The directory works wherever a model file does, with the same numbers.
    const auto a = eval_json(path("m.tinygpt")), b = eval_json(path("hf"));
    EXPECT_EQ(a["cross_entropy"], b["cross_entropy"]);
    const std::vector<std::string> greedy = {"--prompt", "ROMEO:",        "--tokens",
                                             "10",       "--temperature", "0"};
    auto sample = [&](const std::string& model) {
        std::vector<std::string> args = {"sample", model};
        args.insert(args.end(), greedy.begin(), greedy.end());
        return run(args).out;
    };
    EXPECT_EQ(sample(path("m.tinygpt")), sample(path("hf")));
    // Back to .tinygpt (a trailing '/' on OUT means a directory for the other direction).
    ASSERT_EQ(run({"convert", path("hf"), path("back.tinygpt")}).exit_code, 0);
    EXPECT_EQ(eval_json(path("back.tinygpt"))["cross_entropy"], a["cross_entropy"]);
    ASSERT_EQ(run({"convert", path("m.tinygpt"), path("hf2") + "/"}).exit_code, 0);
    EXPECT_TRUE(fs::exists(dir_ / "hf2" / "config.json"));

    // Fine-tuning: a new run from the loaded weights (step 0), the recipe from the flags.
    const RunResult f =
        run({"train", "--init-from", path("hf"), "--corpus", corpus_.string(), "--steps", "2",
             "--batch", "2", "--ctx", "8", "--sample-tokens", "0", "--out", path("tuned.tinygpt")});
    ASSERT_EQ(f.exit_code, 0) << f.describe();
    EXPECT_NE(f.out.find("initialised from"), std::string::npos) << f.describe();
    const auto tuned = nlohmann::json::parse(run({"inspect", path("tuned.tinygpt"), "--json"}).out);
    EXPECT_EQ(tuned["step"], 2);
    EXPECT_EQ(tuned["config"]["ctx"], 8);
    EXPECT_EQ(tuned["tokenizer"],
              nlohmann::json::parse(run({"inspect", path("hf"), "--json"}).out)["tokenizer"]);

    expect_clean_error(
        run({"train", "--init-from", path("hf"), "--layers", "3", "--corpus", corpus_.string()}),
        {"--layers", "--init-from"});
    expect_clean_error(
        run({"train", "--init-from", path("hf"), "--ctx", "100000", "--corpus", corpus_.string()}),
        {"--ctx"});
    expect_clean_error(run({"train", "--init-from", path("hf"), "--tokenizer", "bytes", "--corpus",
                            corpus_.string()}),
                       {"--tokenizer", "differs"});
    expect_clean_error(run({"train", "--init-from", path("hf"), "--resume", path("m.tinygpt")}),
                       {"--resume", "--init-from"});
    expect_clean_error(run({"train", "--init-from", path("nowhere"), "--corpus", corpus_.string()}),
                       {path("nowhere")});
    expect_clean_error(train({{"--tokenizer", path("missing.json")}}), {path("missing.json")});
    write_file(dir_ / "broken.json", "{\"model\": {\"type\": \"BPE\"");
    expect_clean_error(train({{"--tokenizer", path("broken.json")}}), {path("broken.json")});
}

TEST_F(ModelsInAndOut, UnexportableModelsAndBadTargetsAreRefused) {
    // A GPT-family MoE exists in no HF type.
    ASSERT_EQ(train({{"--moe-experts", "2"}, {"--out", path("g.tinygpt")}}).exit_code, 0);
    expect_clean_error(run({"convert", path("g.tinygpt"), "--to", "hf", "--out", path("g-hf")}),
                       {"GPT family's MoE"});
    EXPECT_FALSE(fs::exists(dir_ / "g-hf"));
    // A Mixtral-style model with a dense layer neither.
    ASSERT_EQ(train({{"--arch", "llama"},
                     {"--layers", "2"},
                     {"--moe-experts", "2"},
                     {"--moe-topk", "2"},
                     {"--moe-dense-first", "1"},
                     {"--out", path("l.tinygpt")}})
                  .exit_code,
              0);
    expect_clean_error(run({"convert", path("l.tinygpt"), "--to", "hf", "--out", path("l-hf")}),
                       {"mixtral", "--qk-norm"});
    // A dense GPT exports as gpt2 and reads back with the same numbers.
    ASSERT_EQ(train({{"--out", path("d.tinygpt")}}).exit_code, 0);
    const RunResult g = run({"convert", path("d.tinygpt"), "--to", "hf", "--out", path("d-hf")});
    ASSERT_EQ(g.exit_code, 0) << g.describe();
    EXPECT_NE(g.out.find("gpt2"), std::string::npos);
    EXPECT_EQ(eval_json(path("d-hf"))["cross_entropy"],
              eval_json(path("d.tinygpt"))["cross_entropy"]);
    // Not a model; a GPT MoE to GGUF; OUT and --out disagreeing.
    expect_clean_error(run({"sample", dir_.string()}), {dir_.string()});
    expect_clean_error(run({"convert", path("g.tinygpt"), path("x.gguf")}), {"GGUF", "GPT-family"});
    EXPECT_FALSE(fs::exists(dir_ / "x.gguf"));
    expect_clean_error(
        run({"convert", path("d.tinygpt"), path("a.tinygpt"), "--out", path("b.tinygpt")}),
        {"--out"});
}

TEST_F(ModelsInAndOut, TheEncodedCorpusCacheIsKeyedAndNeverTrustedBlindly) {
    make_tokenizer();
    ASSERT_EQ(train_bpe("m.tinygpt", 1).exit_code, 0);
    std::vector<fs::path> caches;
    for (const auto& e : fs::directory_iterator(dir_))
        if (e.path().extension() == ".tokens") caches.push_back(e.path());
    ASSERT_EQ(caches.size(), 1u);
    const RunResult again = train_bpe("m2.tinygpt", 1);
    ASSERT_EQ(again.exit_code, 0);
    EXPECT_NE(again.err.find("from the cache"), std::string::npos) << again.describe();
    // A corrupt cache is rebuilt; the numbers do not change.
    std::string bytes = read_file(caches[0]);
    bytes[bytes.size() - 3] ^= 0x5a;
    write_file(caches[0], bytes);
    const RunResult rebuilt = train_bpe("m3.tinygpt", 1);
    ASSERT_EQ(rebuilt.exit_code, 0);
    EXPECT_EQ(rebuilt.err.find("from the cache"), std::string::npos) << rebuilt.describe();
    EXPECT_EQ(eval_json(path("m2.tinygpt"))["cross_entropy"],
              eval_json(path("m3.tinygpt"))["cross_entropy"]);
    // A changed corpus is encoded anew.
    write_file(corpus_, make_corpus_text(4096));
    const RunResult changed = train_bpe("m4.tinygpt", 1);
    ASSERT_EQ(changed.exit_code, 0);
    EXPECT_EQ(changed.err.find("from the cache"), std::string::npos) << changed.describe();
}

TEST_F(ModelsInAndOut, HeadDimAndFullQkNormFlagsTrain) {
    const RunResult t = train({{"--arch", "llama"},
                               {"--head-dim", "12"},
                               {"--qk-norm", "full"},
                               {"--moe-experts", "4"},
                               {"--moe-topk", "2"},
                               {"--out", path("o.tinygpt")}});
    ASSERT_EQ(t.exit_code, 0) << t.describe();
    const auto info = nlohmann::json::parse(run({"inspect", path("o.tinygpt"), "--json"}).out);
    EXPECT_EQ(info["config"]["head_dim"], 12);
    EXPECT_EQ(info["config"]["qk_norm"], "full");
    const RunResult x = run({"convert", path("o.tinygpt"), "--to", "hf", "--out", path("o-hf")});
    EXPECT_NE(x.exit_code, 0) << "olmoe has no head_dim";
    expect_clean_error(train({{"--arch", "llama"}, {"--qk-norm", "sideways"}}), {"sideways"});
    expect_clean_error(train({{"--head-dim", "12"}}), {"--head-dim"});
}

}  // namespace
}  // namespace tinygpt
