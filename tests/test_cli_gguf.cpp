// GGUF through the binary: convert a trained model to GGUF at every dtype, and every command
// (sample, eval, inspect, bench, tokenizer, convert back, train --init-from) takes the file with
// the same numbers; q8_0 copies (.tinygpt and GGUF) convert into each other without requantising
// and `inspect` shows their types; bad targets, dtypes and broken files end in one clean error.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include "cli_harness.h"
#include "io/gguf_file.h"
#include "io/model_file.h"
#include "model/params.h"

namespace tinygpt {
namespace {

using namespace test;
namespace fs = std::filesystem;

class CliGguf : public CliTest {
  protected:
    std::string path(const std::string& name) const { return (dir_ / name).string(); }
    void train_moe(const std::string& out) {
        const RunResult r = train({{"--arch", "llama"},
                                   {"--d-model", "32"},
                                   {"--heads", "2"},
                                   {"--moe-experts", "4"},
                                   {"--moe-topk", "2"},
                                   {"--moe-ffn", "32"},
                                   {"--steps", "3"},
                                   {"--out", path(out)}});
        ASSERT_EQ(r.exit_code, 0) << r.describe();
    }
    nlohmann::json eval_json(const std::string& model) {
        const RunResult e = run({"eval", model, "--corpus", corpus_.string(), "--json"});
        EXPECT_EQ(e.exit_code, 0) << e.describe();
        return e.exit_code == 0 ? nlohmann::json::parse(e.out) : nlohmann::json{};
    }
    std::string greedy(const std::string& model) {
        const RunResult s =
            run({"sample", model, "--prompt", "ROMEO:", "--tokens", "12", "--temperature", "0"});
        EXPECT_EQ(s.exit_code, 0) << s.describe();
        return s.out;
    }
};

TEST_F(CliGguf, EveryCommandTakesAGgufFileWithTheSameNumbers) {
    train_moe("m.tinygpt");
    const RunResult c = run({"convert", path("m.tinygpt"), path("m.gguf")});
    ASSERT_EQ(c.exit_code, 0) << c.describe();
    EXPECT_NE(c.out.find("GGUF llama"), std::string::npos) << c.out;
    EXPECT_EQ(greedy(path("m.gguf")), greedy(path("m.tinygpt")));
    EXPECT_EQ(eval_json(path("m.gguf"))["cross_entropy"],
              eval_json(path("m.tinygpt"))["cross_entropy"]);
    const RunResult per =
        run({"eval", path("m.gguf"), "--corpus", corpus_.string(), "--per-token"});
    EXPECT_NE(per.exit_code, 0) << "the corpus does not fit one window: " << per.describe();
    write_file(dir_ / "short.txt", "ROMEO: hi");
    const RunResult lp =
        run({"eval", path("m.gguf"), "--corpus", path("short.txt"), "--per-token"});
    ASSERT_EQ(lp.exit_code, 0) << lp.describe();
    EXPECT_EQ(nlohmann::json::parse(lp.out)["logprobs"].size(), 8u);

    const RunResult i = run({"inspect", path("m.gguf")});
    EXPECT_EQ(i.exit_code, 0) << i.describe();
    EXPECT_NE(i.out.find("GGUF"), std::string::npos) << i.out;
    const RunResult b = run({"bench", path("m.gguf"), "--prompt-tokens", "4", "--gen-tokens", "4",
                             "--runs", "1", "--warmup", "0", "--json"});
    EXPECT_EQ(b.exit_code, 0) << b.describe();
    const RunResult t = run({"tokenizer", "encode", path("m.gguf"), "--text", "AB", "--json"});
    EXPECT_EQ(t.exit_code, 0) << t.describe();
    EXPECT_NE(t.out.find("65"), std::string::npos) << t.out;

    // Back to .tinygpt, and fine-tuning from the GGUF file.
    const RunResult back = run({"convert", path("m.gguf"), "--out", path("back.tinygpt")});
    ASSERT_EQ(back.exit_code, 0) << back.describe();
    EXPECT_EQ(eval_json(path("back.tinygpt"))["cross_entropy"],
              eval_json(path("m.tinygpt"))["cross_entropy"]);
    const RunResult ft =
        run({"train", "--corpus", corpus_.string(), "--init-from", path("m.gguf"), "--steps", "1",
             "--batch", "2", "--sample-tokens", "0", "--out", path("ft.tinygpt")});
    EXPECT_EQ(ft.exit_code, 0) << ft.describe();

    // Lower precisions load and give close numbers.
    for (const char* dtype : {"f16", "bf16", "q8_0"}) {
        const std::string out = path(std::string("m.") + dtype + ".gguf");
        const RunResult q = run({"convert", path("m.tinygpt"), "--out", out, "--dtype", dtype});
        ASSERT_EQ(q.exit_code, 0) << q.describe();
        EXPECT_NEAR(eval_json(out)["cross_entropy"].get<double>(),
                    eval_json(path("m.tinygpt"))["cross_entropy"].get<double>(), 0.02)
            << dtype;
    }
}

TEST_F(CliGguf, Q8_0CopiesConvertIntoEachOtherAndInspectShowsTheirTypes) {
    train_moe("m.tinygpt");
    const RunResult c = run({"convert", path("m.tinygpt"), path("q8.tinygpt"), "--dtype", "q8_0"});
    ASSERT_EQ(c.exit_code, 0) << c.describe();
    EXPECT_NE(c.out.find("weights q8_0, no optimizer state"), std::string::npos) << c.out;
    const RunResult j = run({"inspect", path("q8.tinygpt"), "--json"});
    ASSERT_EQ(j.exit_code, 0) << j.describe();
    const auto info = nlohmann::json::parse(j.out);
    EXPECT_EQ(info["weight_dtype"], "q8_0");
    EXPECT_EQ(info["weight_types"], "q8_0+f32");
    EXPECT_EQ(info["format"], "tinygpt v3 (q8_0+f32)");
    uint64_t bytes = 0;
    for (const auto& t : info["tensors"]) {
        const std::string name = t["name"];
        const bool matrix = t["shape"].size() == 2 && name.find("router") == std::string::npos &&
                            name.find("gate.weight") == std::string::npos;
        EXPECT_EQ(t["dtype"], matrix ? "q8_0" : "f32") << name;
        bytes += t["bytes"].get<uint64_t>();
    }
    EXPECT_EQ(info["weight_bytes"], bytes);
    EXPECT_LT(bytes, 4 * info["params_total"].get<uint64_t>() / 3);
    const RunResult i = run({"inspect", path("q8.tinygpt")});
    EXPECT_NE(i.out.find("weights q8_0+f32"), std::string::npos) << i.out;
    EXPECT_NE(i.out.find("as stored (q8_0+f32)"), std::string::npos) << i.out;
    EXPECT_NE(i.out.find(" q8_0 "), std::string::npos) << i.out;
    EXPECT_NEAR(eval_json(path("q8.tinygpt"))["cross_entropy"].get<double>(),
                eval_json(path("m.tinygpt"))["cross_entropy"].get<double>(), 0.02);
    EXPECT_EQ(run({"sample", path("q8.tinygpt"), "--tokens", "4"}).exit_code, 0);

    // To GGUF q8_0: the .tinygpt copy's bytes, the same as quantising the f32 model directly;
    // and back: the same .tinygpt weights section.
    ASSERT_EQ(run({"convert", path("q8.tinygpt"), path("q8.gguf"), "--dtype", "q8_0"}).exit_code,
              0);
    ASSERT_EQ(run({"convert", path("m.tinygpt"), path("direct.gguf"), "--dtype", "q8_0"}).exit_code,
              0);
    const io::GgufFile a = io::GgufFile::open(path("q8.gguf"));
    const io::GgufFile b = io::GgufFile::open(path("direct.gguf"));
    ASSERT_EQ(a.tensors().size(), b.tensors().size());
    for (const io::GgufTensor& t : a.tensors()) {
        const io::GgufTensor* o = b.find_tensor(t.name);
        ASSERT_NE(o, nullptr) << t.name;
        EXPECT_EQ(o->type, t.type) << t.name;
        ASSERT_EQ(o->bytes, t.bytes) << t.name;
        EXPECT_EQ(std::memcmp(o->data, t.data, t.bytes), 0) << t.name;
    }
    const ModelFile q8 = ModelFile::read(path("q8.tinygpt"));
    const io::GgufTensor& v = *a.find_tensor("blk.0.attn_v.weight");
    const ParameterLayout layout(q8.config());
    const ParamInfo& vp = layout.at(TensorId{TensorRole::AttnV, 0});
    const size_t vi = static_cast<size_t>(&vp - layout.entries().data());
    ASSERT_EQ(v.type, io::GgmlType::Q8_0);
    ASSERT_EQ(q8.tensors()[vi].bytes, v.bytes);
    EXPECT_EQ(std::memcmp(q8.stored_weights().view(vi).data, v.data, v.bytes), 0);
    ASSERT_EQ(run({"convert", path("q8.gguf"), path("back.tinygpt"), "--dtype", "q8_0"}).exit_code,
              0);
    const ModelFile back = ModelFile::read(path("back.tinygpt"));
    EXPECT_EQ(back.header()["tensors"], q8.header()["tensors"]);
    EXPECT_EQ(back.header()["sections"][0]["checksum"], q8.header()["sections"][0]["checksum"]);
}

TEST_F(CliGguf, BadTargetsDtypesAndFilesEndInOneCleanError) {
    train_moe("m.tinygpt");
    expect_clean_error(run({"convert", path("m.tinygpt"), path("m.gguf"), "--dtype", "q4_k"}),
                       {"q4_k", "q8_0"});
    write_file(dir_ / "notes.gguf", "my notes");
    expect_clean_error(run({"convert", path("m.tinygpt"), "--out", path("notes.gguf")}),
                       {"notes.gguf", "not a GGUF file"});
    EXPECT_EQ(read_file(dir_ / "notes.gguf"), "my notes");
    // A FIFO (or a device: /dev/null as root) is never replaced, whatever the format.
    ASSERT_EQ(mkfifo(path("pipe").c_str(), 0644), 0);
    expect_clean_error(run({"convert", path("m.tinygpt"), path("pipe")}), {"not a regular file"});
    expect_clean_error(run({"convert", path("m.tinygpt"), "--to", "gguf", "--out", path("pipe")}),
                       {"not a regular file"});
    EXPECT_TRUE(fs::is_fifo(path("pipe")));
    expect_clean_error(run({"convert", path("m.tinygpt"), "--to", "gguf", "--out", path("x.gguf"),
                            "--format", "v2"}),
                       {"--format"});
    // A top-1 model without renormalised gates: llama.cpp's llama cannot compute it.
    ASSERT_EQ(train({{"--arch", "llama"},
                     {"--moe-experts", "2"},
                     {"--moe-topk", "1"},
                     {"--out", path("top1.tinygpt")}})
                  .exit_code,
              0);
    expect_clean_error(run({"convert", path("top1.tinygpt"), path("top1.gguf")}),
                       {"renormalise", "--moe-norm-topk on"});
    EXPECT_FALSE(fs::exists(dir_ / "top1.gguf"));

    // A truncated file: every command that reads it says so.
    ASSERT_EQ(run({"convert", path("m.tinygpt"), path("m.gguf")}).exit_code, 0);
    const std::string whole = read_file(dir_ / "m.gguf");
    write_file(dir_ / "cut.gguf", whole.substr(0, whole.size() / 2));
    expect_clean_error(run({"sample", path("cut.gguf"), "--prompt", "A"}), {path("cut.gguf")});
    expect_clean_error(run({"convert", path("cut.gguf"), path("cut.tinygpt")}), {path("cut.gguf")});
    EXPECT_FALSE(fs::exists(dir_ / "cut.tinygpt"));
}

}  // namespace
}  // namespace tinygpt
