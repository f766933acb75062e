// Files of the original TinyGPT, built byte by byte as it writes them: v2 training fp32
// (transposed Linear weights), the fp16 inference layout, v1 without a manifest; config
// fallbacks; and the refusal of features and save arguments this engine does not support.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <random>
#include <thread>

#include "io/format_internal.h"
#include "io/model_file.h"
#include "model/params.h"
#include "model_file_fixture.h"
#include "util/error.h"
#include "util/rng.h"

namespace tinygpt {
namespace {

using namespace file_test;

TEST_F(ModelFileTest, OriginalV2TrainingFp32FileBuiltByHand) {
    for (bool is_moe : {false, true}) {
        const ModelConfig cfg = small_config(is_moe);
        const auto tensors = original_manifest(cfg, is_moe ? 11 : 10);
        const std::string path = dir.file(is_moe ? "hand-moe.tinygpt" : "hand-dense.tinygpt");
        write_bytes(path, training_fp32_file(2, cfg, tensors, true, 4321));
        const ModelFile f = ModelFile::read(path);
        EXPECT_EQ(f.version(), 2);
        EXPECT_EQ(f.config().d_model, 16);
        EXPECT_EQ(f.config().d_mlp, 32);
        EXPECT_EQ(f.config().experts, cfg.experts);
        EXPECT_EQ(f.config().topk, cfg.topk);
        EXPECT_EQ(f.config().aux_weight, 0.01f);
        EXPECT_EQ(f.weight_dtype(), WeightDtype::F32);
        EXPECT_EQ(f.training_state().step, 4321);
        EXPECT_EQ(f.training_state().batch, 8);
        ASSERT_TRUE(f.has_optimizer_state());
        expect_hand_values(f, tensors, true);
        // tensors() lists the file's manifest with each weight's position.
        ASSERT_EQ(f.tensors().size(), tensors.size());
        EXPECT_EQ(f.tensors()[0].name, "token_embedding.weight");
        EXPECT_EQ(f.tensors()[1].offset, f.tensors()[0].offset + 3 * f.tensors()[0].bytes);
    }
}

TEST_F(ModelFileTest, OriginalV2WithZeroMomentsHasNoOptimizerState) {
    // The Swift original writes zeros for m and v.
    const ModelConfig cfg = small_config(true);
    auto tensors = original_manifest(cfg, 12);
    json header = {{"config", original_config(cfg)}};
    json manifest = json::array();
    for (const HandTensor& t : tensors) manifest.push_back({{"name", t.name}, {"shape", t.shape}});
    header["manifest"] = manifest;
    Bytes b = original_file(2, header, 7);
    for (const HandTensor& t : tensors) {
        for (float x : stored_order(t, 1, 0)) append(b, x);
        b.resize(b.size() + 8 * t.values.size(), 0);
    }
    const std::string path = dir.file("swift.tinygpt");
    write_bytes(path, b);
    const ModelFile f = ModelFile::read(path);
    EXPECT_FALSE(f.has_optimizer_state());
    EXPECT_EQ(f.adam_m(), nullptr);
    EXPECT_EQ(f.training_state().step, 7);
    expect_hand_values(f, tensors, false);
}

TEST_F(ModelFileTest, OriginalV2InferenceFp16FileBuiltByHand) {
    for (bool is_moe : {false, true}) {
        const ModelConfig cfg = small_config(is_moe);
        const auto tensors = original_manifest(cfg, 20);
        // floatOffsets assigned in reverse manifest order: the reader must slice by floatOffset.
        size_t total = 0;
        for (const HandTensor& t : tensors) total += t.values.size();
        std::vector<uint16_t> buffer(total);
        json manifest = json::array();
        size_t end = total;
        for (const HandTensor& t : tensors) {
            end -= t.values.size();
            manifest.push_back({{"name", t.name}, {"shape", t.shape}, {"floatOffset", end}});
            const auto stored = stored_order(t, 1, 0);
            for (size_t k = 0; k < stored.size(); ++k) buffer[end + k] = float_to_f16(stored[k]);
        }
        json header = {{"config", original_config(cfg)},
                       {"manifest", manifest},
                       {"weightDtype", "fp16"},
                       {"includesOptimizerState", false}};
        Bytes b = original_file(2, header, 55);
        for (uint16_t h : buffer) append(b, h);
        const std::string path = dir.file(is_moe ? "fp16-moe.bin" : "fp16-dense.bin");
        write_bytes(path, b);
        const ModelFile f = ModelFile::read(path);
        EXPECT_EQ(f.weight_dtype(), WeightDtype::F16);
        EXPECT_FALSE(f.has_optimizer_state());
        EXPECT_EQ(f.training_state().step, 55);
        expect_hand_values(f, tensors, false);
    }
}

TEST_F(ModelFileTest, OriginalV1FileWithoutManifestBuiltByHand) {
    const ModelConfig cfg = small_config(false);
    const auto tensors = original_manifest(cfg, 30);
    const std::string path = dir.file("v1.tinygpt");
    write_bytes(path, training_fp32_file(1, cfg, tensors, false, 99));
    const ModelFile f = ModelFile::read(path);
    EXPECT_EQ(f.version(), 1);
    EXPECT_EQ(f.training_state().step, 99);
    ASSERT_TRUE(f.has_optimizer_state());
    expect_hand_values(f, tensors, true);
}

TEST_F(ModelFileTest, OriginalV1MoeFileWithoutManifestBuiltByHand) {
    const ModelConfig cfg = small_config(true);
    const auto tensors = original_manifest(cfg, 31);
    const std::string path = dir.file("v1-moe.tinygpt");
    write_bytes(path, training_fp32_file(1, cfg, tensors, false, 5));
    const ModelFile f = ModelFile::read(path);
    EXPECT_EQ(f.config().experts, 4);
    expect_hand_values(f, tensors, true);
}

TEST_F(ModelFileTest, OriginalConfigFallbacksAndUnknownKeys) {
    // Missing keys fall back to ctx 256, layers 12, heads 8, dModel 256, dMlp 1024 (the "huge"
    // shape); unknown keys are ignored. Only dModel and layers are given here: a small model.
    ModelConfig cfg = small_config(false);
    cfg.ctx = 256;
    cfg.heads = 8;
    cfg.d_mlp = 1024;
    cfg.layers = 1;
    const auto tensors = original_manifest(cfg, 40);
    json header = {{"config", {{"dModel", 16}, {"layers", 1}, {"someFutureKey", {1, 2, 3}}}},
                   {"unknownTopLevel", "ignored"}};
    json manifest = json::array();
    for (const HandTensor& t : tensors) manifest.push_back({{"name", t.name}, {"shape", t.shape}});
    header["manifest"] = manifest;
    Bytes b = original_file(2, header, 1);
    for (const HandTensor& t : tensors)
        for (auto [scale, shift] :
             {std::pair{1.0f, 0.0f}, std::pair{0.5f, 1.0f}, std::pair{0.25f, 2.0f}})
            for (float x : stored_order(t, scale, shift)) append(b, x);
    const std::string path = dir.file("fallbacks.tinygpt");
    write_bytes(path, b);
    const ModelFile f = ModelFile::read(path);
    EXPECT_EQ(f.config().ctx, 256);
    EXPECT_EQ(f.config().heads, 8);
    EXPECT_EQ(f.config().d_mlp, 1024);
    EXPECT_EQ(f.config().vocab, 256);
    EXPECT_EQ(f.config().experts, 1);
    expect_hand_values(f, tensors, true);
}

// --- refusals
// ---------------------------------------------------------------------------------------

TEST_F(ModelFileTest, RefusesV2WithHalfPrecision) {
    SaveOptions options;
    options.version = 2;
    options.dtype = WeightDtype::BF16;
    const std::string path = dir.file("v2-bf16.tinygpt");
    expect_save_error(
        [&] {
            save_model_file(path, dense.cfg, dense.w.data(), dense.m.data(), dense.v.data(), state,
                            options);
        },
        path, {"v2", "fp32", "v3"});
    EXPECT_FALSE(fs::exists(path));
    options.dtype = WeightDtype::F16;
    expect_save_error(
        [&] {
            save_model_file(path, dense.cfg, dense.w.data(), dense.m.data(), dense.v.data(), state,
                            options);
        },
        path, {"v2"});
}

TEST_F(ModelFileTest, RefusesBadSaveArguments) {
    const std::string path = dir.file("bad-args.tinygpt");
    SaveOptions options;
    options.version = 4;
    expect_save_error(
        [&] {
            save_model_file(path, dense.cfg, dense.w.data(), dense.m.data(), dense.v.data(), state,
                            options);
        },
        path, {"version 4"});
    expect_save_error(
        [&] { save_model_file(path, dense.cfg, dense.w.data(), nullptr, nullptr, state); }, path,
        {"AdamW moments are missing"});
    ModelConfig bad = dense.cfg;
    bad.heads = 3;
    expect_save_error(
        [&] { save_model_file(path, bad, dense.w.data(), dense.m.data(), dense.v.data(), state); },
        path, {"invalid model config", "divisible"});
    EXPECT_FALSE(fs::exists(path));
}

TEST_F(ModelFileTest, RefusesUnknownArchitecture) {
    const std::string path =
        hostile_v3("rwkv.tinygpt", [](json& h) { h["config"]["arch"] = "rwkv"; });
    expect_read_error(path, {"unsupported model architecture 'rwkv'"});
}

TEST_F(ModelFileTest, RefusesUnknownV3ConfigKeyAndTokenizer) {
    expect_read_error(hostile_v3("rope.tinygpt", [](json& h) { h["config"]["rope"] = true; }),
                      {"config key 'rope' is not understood"});
    expect_read_error(hostile_v3("bpe.tinygpt", [](json& h) { h["tokenizer"]["type"] = "bpe"; }),
                      {"unsupported tokenizer type 'bpe'"});
}

TEST_F(ModelFileTest, RefusesUnsupportedOriginalFeatures) {
    const ModelConfig cfg = small_config(false);
    const auto tensors = original_manifest(cfg, 50);
    struct Case {
        const char* name;
        std::function<void(json&)> edit;
        const char* phrase;
    };
    const std::vector<Case> cases = {
        {"mod", [](json& h) { h["config"]["useMoD"] = true; }, "mixture-of-depths"},
        {"window", [](json& h) { h["config"]["slidingWindow"] = 64; }, "sliding-window attention"},
        {"alibi", [](json& h) { h["config"]["useALiBi"] = true; }, "ALiBi"},
        {"bpe", [](json& h) { h["config"]["tokenizerSource"] = "/models/gpt2"; }, "tokenizer"},
        {"deepnorm", [](json& h) { h["config"]["useDeepNorm"] = true; }, "DeepNorm"},
        {"gqa", [](json& h) { h["config"]["nKvHeads"] = 1; }, "grouped-query attention"},
        {"int4", [](json& h) { h["weightDtype"] = "int4"; }, "int4"},
        {"dtype", [](json& h) { h["weightDtype"] = "fp8"; }, "unknown value 'fp8'"},
        {"diff",
         [](json& h) {
             h["manifest"].push_back(
                 {{"name", "blocks.0.diff_attn.q1_proj.weight"}, {"shape", {16, 16}}});
         },
         "differential attention"},
        {"embednorm",
         [](json& h) {
             h["manifest"].push_back({{"name", "embed_norm.weight"}, {"shape", {16}}});
         },
         "embedding RMSNorm"},
        {"unknown",
         [](json& h) {
             h["manifest"].push_back({{"name", "blocks.0.mystery.weight"}, {"shape", {16}}});
         },
         "'blocks.0.mystery.weight'"},
    };
    for (const Case& c : cases) {
        Bytes good = training_fp32_file(2, cfg, tensors, true, 1);
        uint32_t hl;
        std::memcpy(&hl, good.data() + 8, 4);
        json h = json::parse(good.begin() + 12, good.begin() + 12 + hl);
        c.edit(h);
        Bytes b = original_file(2, h, 1);
        b.insert(b.end(), good.begin() + 16 + hl, good.end());
        const std::string path = dir.file(std::string("feature-") + c.name + ".tinygpt");
        write_bytes(path, b);
        SCOPED_TRACE(c.name);
        expect_read_error(path, {c.phrase});
    }
}

// --- hostile files
// ------------------------------------------------------------------------------------

}  // namespace
}  // namespace tinygpt
