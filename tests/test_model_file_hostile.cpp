// Hostile files: every one must give an Error naming the path and the problem, never a crash, a
// hang or a huge allocation.
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

TEST_F(ModelFileTest, HostileNonexistentPath) {
    expect_read_error(dir.file("no-such-file.tinygpt"), {"cannot open", "No such file"});
}

TEST_F(ModelFileTest, HostileDirectory) {
    expect_read_error(dir.path().string(), {"is a directory"});
}

TEST_F(ModelFileTest, HostileFifoDoesNotHang) {
    const std::string path = dir.file("fifo");
    ASSERT_EQ(mkfifo(path.c_str(), 0600), 0);
    expect_read_error(path, {"not a regular file"});
}

TEST_F(ModelFileTest, HostileEmptyFile) {
    const std::string path = dir.file("empty.tinygpt");
    write_bytes(path, {});
    expect_read_error(path, {"empty"});
}

TEST_F(ModelFileTest, HostileBadMagic) {
    const std::string path = dir.file("text.tinygpt");
    write_bytes(path, Bytes{'h', 'e', 'l', 'l', 'o', ' ', 'w', 'o', 'r', 'l', 'd', '!', '\n'});
    expect_read_error(path, {"not a tinygpt model file", "bad magic"});
    write_bytes(path, Bytes{'T', 'G'});  // a prefix of the magic: truncated, not "bad magic"
    expect_read_error(path, {"truncated"});
    write_bytes(path, Bytes{'X'});
    expect_read_error(path, {"bad magic"});
}

TEST_F(ModelFileTest, HostileNewerAndUnknownVersions) {
    Bytes b = read_bytes(save(dense, "v.tinygpt"));
    const std::string path = dir.file("version.tinygpt");
    for (uint32_t version : {4u, 77u, 0xFFFFFFFFu}) {
        std::memcpy(b.data() + 4, &version, 4);
        write_bytes(path, b);
        expect_read_error(path, {"file format version " + std::to_string(version) +
                                 " is newer than this tinygpt understands (up to 3)"});
    }
    const uint32_t zero = 0;
    std::memcpy(b.data() + 4, &zero, 4);
    write_bytes(path, b);
    expect_read_error(path, {"unknown file format version 0"});
}

TEST_F(ModelFileTest, HostileTruncatedPreamble) {
    const Bytes b = read_bytes(save(dense, "t.tinygpt"));
    const std::string path = dir.file("cut.tinygpt");
    for (size_t cut : {4, 7, 11}) {
        write_bytes(path, Bytes(b.begin(), b.begin() + static_cast<std::ptrdiff_t>(cut)));
        expect_read_error(path, {"truncated", "preamble"});
    }
}

TEST_F(ModelFileTest, HostileTruncatedJsonHeader) {
    const Bytes b = read_bytes(save(dense, "t.tinygpt"));
    const std::string path = dir.file("cut.tinygpt");
    write_bytes(path, Bytes(b.begin(), b.begin() + 200));
    expect_read_error(path, {"truncated", "bytes of JSON"});
}

TEST_F(ModelFileTest, HostileTruncatedHeaderChecksum) {
    const Bytes b = read_bytes(save(dense, "t.tinygpt"));
    const V3View v = parse_v3(b);
    const std::string path = dir.file("cut.tinygpt");
    write_bytes(path, Bytes(b.begin(), b.begin() + 12 + v.header_len + 5));
    expect_read_error(path, {"truncated", "checksum"});
}

TEST_F(ModelFileTest, HostileTruncatedSection) {
    const Bytes b = read_bytes(save(dense, "t.tinygpt"));
    const std::string path = dir.file("cut.tinygpt");
    write_bytes(path, Bytes(b.begin(), b.end() - 1000));
    expect_read_error(path, {"truncated", "section 'adam_v'", "extends past the end"});
    const V3View v = parse_v3(b);
    write_bytes(path,
                Bytes(b.begin(), b.begin() + static_cast<std::ptrdiff_t>(v.data_start + 100)));
    expect_read_error(path, {"truncated", "section 'weights'"});
}

TEST_F(ModelFileTest, HostileTruncatedV2) {
    SaveOptions options;
    options.version = 2;
    const Bytes b = read_bytes(save(moe, "t2.tinygpt", options));
    uint32_t hl;
    std::memcpy(&hl, b.data() + 8, 4);
    const std::string path = dir.file("cut2.tinygpt");
    write_bytes(path, Bytes(b.begin(), b.end() - 1));
    expect_read_error(path, {"truncated"});
    write_bytes(path, Bytes(b.begin(), b.begin() + 12 + hl + 2));
    expect_read_error(path, {"truncated", "step counter"});
    write_bytes(path, Bytes(b.begin(), b.begin() + 12 + hl + 4 + 1000));
    expect_read_error(path, {"truncated"});
    write_bytes(path, Bytes(b.begin(), b.begin() + 100));
    expect_read_error(path, {"truncated", "bytes of JSON"});
}

TEST_F(ModelFileTest, HostileEveryTruncationIsAnError) {
    for (int version : {2, 3}) {
        SaveOptions options;
        options.version = version;
        const Bytes b = read_bytes(save(dense, "full.tinygpt", options));
        const std::string path = dir.file("prefix.tinygpt");
        for (size_t cut = 1; cut < b.size(); cut += (cut < 4096 ? 13 : 997)) {
            write_bytes(path, Bytes(b.begin(), b.begin() + static_cast<std::ptrdiff_t>(cut)));
            try {
                ModelFile f = ModelFile::read(path);
                ADD_FAILURE() << "v" << version << " cut at " << cut << " of " << b.size()
                              << " loaded";
            } catch (const Error& e) {
                ASSERT_EQ(std::string(e.what()).rfind(path + ": ", 0), 0u) << e.what();
            }
        }
    }
}

TEST_F(ModelFileTest, HostileHeaderNotJson) {
    const Bytes good = read_bytes(save(dense, "g.tinygpt"));
    const std::string raw = "{\"config\": {\"arch\": \"gpt\", oops";
    const std::string path = dir.file("notjson.tinygpt");
    write_bytes(path, rewrite_v3(
                          good, [](json&) {}, &raw));
    expect_read_error(path, {"header is not valid JSON"});
    const std::string array = "[1, 2, 3]";
    write_bytes(path, rewrite_v3(
                          good, [](json&) {}, &array));
    expect_read_error(path, {"header is not a JSON object"});
    // v2: no checksum, straight to the parser.
    Bytes v2;
    append_text(v2, "TGPT");
    append(v2, uint32_t{2});
    append(v2, uint32_t{5});
    append_text(v2, "{,,,}");
    append(v2, int32_t{0});
    write_bytes(path, v2);
    expect_read_error(path, {"header is not valid JSON"});
    // A million nested arrays: refused before anything recurses.
    const std::string deep = std::string(1000000, '[') + std::string(1000000, ']');
    Bytes nested;
    append_text(nested, "TGPT");
    append(nested, uint32_t{2});
    append(nested, static_cast<uint32_t>(deep.size()));
    append_text(nested, deep);
    append(nested, int32_t{0});
    write_bytes(path, nested);
    expect_read_error(path, {"nested more than 64 levels"});
    write_bytes(path, rewrite_v3(
                          good, [](json&) {}, &deep));
    expect_read_error(path, {"nested more than 64 levels"});
}

TEST_F(ModelFileTest, HostileMissingRequiredFields) {
    expect_read_error(hostile_v3("a.tinygpt", [](json& h) { h["config"].erase("d_model"); }),
                      {"header field 'config.d_model' is missing"});
    expect_read_error(hostile_v3("b.tinygpt", [](json& h) { h.erase("config"); }),
                      {"header field 'config' is missing"});
    expect_read_error(hostile_v3("c.tinygpt", [](json& h) { h.erase("sections"); }),
                      {"header field 'sections' is missing"});
    expect_read_error(hostile_v3("d.tinygpt", [](json& h) { h.erase("tensors"); }),
                      {"header field 'tensors' is missing"});
    expect_read_error(hostile_v3("e.tinygpt", [](json& h) { h["training"].erase("data_rng"); }),
                      {"header field 'training.data_rng' is missing"});
    expect_read_error(
        hostile_v3("f.tinygpt", [](json& h) { h["sections"][0]["name"] = "weightz"; }),
        {"no 'weights' section"});
    expect_read_error(hostile_v3("g.tinygpt", [](json& h) { h["sections"][0].erase("checksum"); }),
                      {"'sections[0].checksum' is missing"});
    expect_read_error(hostile_v3("h.tinygpt", [](json& h) { h["sections"].erase(1); }),
                      {"'adam_v' without 'adam_m'"});
}

TEST_F(ModelFileTest, HostileWrongTypes) {
    expect_read_error(hostile_v3("a.tinygpt", [](json& h) { h["config"]["layers"] = "two"; }),
                      {"header field 'config.layers' must be an integer"});
    expect_read_error(hostile_v3("b.tinygpt", [](json& h) { h["config"]["layers"] = 2.5; }),
                      {"'config.layers' must be an integer"});
    expect_read_error(hostile_v3("c.tinygpt", [](json& h) { h["config"]["layers"] = -2; }),
                      {"'config.layers' must be an integer in [1, "});
    expect_read_error(hostile_v3("d.tinygpt", [](json& h) { h["training"]["data_rng"] = 5; }),
                      {"'training.data_rng' must be an array"});
    expect_read_error(
        hostile_v3("e.tinygpt", [](json& h) { h["training"]["data_rng"][2] = "0xZZ"; }),
        {"'training.data_rng[2]' must be an unsigned 64-bit integer"});
    expect_read_error(hostile_v3("f.tinygpt", [](json& h) { h["sections"] = "weights"; }),
                      {"'sections' must be an array"});
    expect_read_error(hostile_v3("g.tinygpt", [](json& h) { h["sections"][0]["offset"] = "far"; }),
                      {"'sections.weights.offset' must be an unsigned"});
    expect_read_error(hostile_v3("h.tinygpt",
                                 [](json& h) {
                                     h["loss_history"][0] = {1, 2};
                                 }),
                      {"'loss_history[0]' must be [step, loss, aux, val_loss]"});
    expect_read_error(
        hostile_v3("i.tinygpt", [](json& h) { h["config"]["aux_weight"] = json::array(); }),
        {"'config.aux_weight' must be a number"});
    expect_read_error(
        hostile_v3("j.tinygpt", [](json& h) { h["training"]["schedule"]["kind"] = "linear"; }),
        {"unknown schedule 'linear'"});
    expect_read_error(hostile_v3("k.tinygpt", [](json& h) { h["format"] = 3; }),
                      {"'format' must be an object"});
    // The training state's later fields: the clock and a distillation's recipe.
    expect_read_error(hostile_v3("l.tinygpt", [](json& h) { h["training"]["train_seconds"] = -1; }),
                      {"'training.train_seconds' must be >= 0"});
    expect_read_error(
        hostile_v3("m.tinygpt", [](json& h) { h["training"]["train_seconds"] = "long"; }),
        {"'training.train_seconds' must be a number"});
    const json recipe = {{"teacher", "/models/teacher.tinygpt"},
                         {"alpha", 0.5},
                         {"temperature", 2.0},
                         {"teacher_topk", 0}};
    const auto with_recipe = [&](const char* name, const std::function<void(json&)>& mutate) {
        return hostile_v3(name, [&](json& h) {
            h["training"]["distillation"] = recipe;
            mutate(h["training"]["distillation"]);
        });
    };
    expect_read_error(with_recipe("n.tinygpt", [](json& d) { d = 5; }),
                      {"'training.distillation' must be an object"});
    expect_read_error(with_recipe("o.tinygpt", [](json& d) { d.erase("teacher"); }),
                      {"training.distillation", "teacher"});
    expect_read_error(with_recipe("p.tinygpt", [](json& d) { d["teacher"] = ""; }),
                      {"'training.distillation.teacher' is empty"});
    expect_read_error(with_recipe("q.tinygpt", [](json& d) { d["alpha"] = 1.5; }),
                      {"'training.distillation.alpha' must be in [0, 1]"});
    expect_read_error(with_recipe("r.tinygpt", [](json& d) { d["temperature"] = 0; }),
                      {"'training.distillation.temperature' must be a finite number > 0"});
    expect_read_error(with_recipe("s.tinygpt", [](json& d) { d["teacher_topk"] = -3; }),
                      {"training.distillation.teacher_topk"});
    // The untouched recipe reads back.
    const TrainingState read =
        ModelFile::read(with_recipe("t.tinygpt", [](json&) {})).training_state();
    ASSERT_TRUE(read.distillation.has_value());
    EXPECT_EQ(read.distillation->teacher, "/models/teacher.tinygpt");
    EXPECT_EQ(read.distillation->alpha, 0.5);

    // v2: wrong types in the config and the manifest.
    const ModelConfig cfg = small_config(false);
    const auto tensors = original_manifest(cfg, 60);
    const std::string path = dir.file("v2-types.tinygpt");
    write_bytes(path,
                training_fp32_file(2, cfg, tensors, true, 1, {{"config", {{"layers", "x"}}}}));
    expect_read_error(path, {"'config.layers' must be an integer"});
    write_bytes(path,
                training_fp32_file(2, cfg, tensors, true, 1, {{"manifest", {{{"name", 5}}}}}));
    expect_read_error(path, {"'manifest[0].name' must be a string"});
    write_bytes(path, training_fp32_file(2, cfg, tensors, true, 1, {{"manifest", "none"}}));
    expect_read_error(path, {"'manifest' must be an array"});
    write_bytes(path,
                training_fp32_file(2, cfg, tensors, true, 1, {{"includesOptimizerState", "yes"}}));
    expect_read_error(path, {"'includesOptimizerState' must be true or false"});
    write_bytes(path, training_fp32_file(2, cfg, tensors, true, 1, {{"config", 7}}));
    expect_read_error(path, {"'config' must be an object"});
}

TEST_F(ModelFileTest, HostileV2MissingManifest) {
    const ModelConfig cfg = small_config(false);
    const auto tensors = original_manifest(cfg, 61);
    const std::string path = dir.file("no-manifest.tinygpt");
    write_bytes(path, training_fp32_file(2, cfg, tensors, false, 1));
    expect_read_error(path, {"'manifest' is missing"});
}

TEST_F(ModelFileTest, HostileShapesDisagreeWithTheConfig) {
    const ModelConfig cfg = small_config(true);
    auto tensors = original_manifest(cfg, 62);
    const std::string path = dir.file("shapes.tinygpt");
    // A manifest shape that disagrees (the byte count stays the same: [32, 16] → [16, 32]).
    auto swapped = tensors;
    for (HandTensor& t : swapped)
        if (t.name == "blocks.1.moe.experts.2.fc_in.weight") t.shape = {16, 32};
    write_bytes(path, training_fp32_file(2, cfg, swapped, true, 1));
    expect_read_error(path,
                      {"manifest entry 'blocks.1.moe.experts.2.fc_in.weight' has shape [16, 32]",
                       "config needs [32, 16]"});
    // A config that disagrees with the manifest (and the bytes).
    write_bytes(path, training_fp32_file(2, cfg, tensors, true, 1,
                                         {{"config",
                                           {{"layers", 2},
                                            {"dModel", 16},
                                            {"ctx", 16},
                                            {"heads", 2},
                                            {"dMlp", 16},
                                            {"nExperts", 4},
                                            {"moeTopK", 2}}}}));
    expect_read_error(path, {"has shape"});
    // A manifest lacking a tensor, and one listing a tensor twice.
    auto fewer = tensors;
    fewer.erase(fewer.begin() + 5);
    write_bytes(path, training_fp32_file(2, cfg, fewer, true, 1));
    expect_read_error(path, {"lacks tensor '" + tensors[5].name + "'"});
    auto twice = tensors;
    twice[6] = twice[4];
    write_bytes(path, training_fp32_file(2, cfg, twice, true, 1));
    expect_read_error(path, {"twice"});
    // v3: the tensor table disagrees with the layout.
    expect_read_error(hostile_v3("table.tinygpt",
                                 [](json& h) {
                                     h["tensors"][3]["shape"] = {1, 2};
                                 }),
                      {"tensor table disagrees with the config"});
    expect_read_error(hostile_v3("table2.tinygpt", [](json& h) { h["tensors"][3]["offset"] = 4; }),
                      {"tensor table disagrees with the config"});
    expect_read_error(hostile_v3("table3.tinygpt", [](json& h) { h["tensors"].erase(0); }),
                      {"tensor table disagrees with the config", "lists"});
    expect_read_error(
        hostile_v3("table4.tinygpt", [](json& h) { h["tensors"][0]["dtype"] = "bf16"; }),
        {"tensor table disagrees with the config"});
}

TEST_F(ModelFileTest, HostileByteLengthsDisagree) {
    expect_read_error(hostile_v3("a.tinygpt",
                                 [](json& h) {
                                     h["sections"][0]["bytes"] =
                                         h["sections"][0]["bytes"].get<uint64_t>() - 64;
                                 }),
                      {"section 'weights' is", "the config needs"});
    expect_read_error(hostile_v3("b.tinygpt",
                                 [](json& h) {
                                     h["config"]["d_mlp"] =
                                         48;  // a bigger model than the sections hold
                                 }),
                      {"section 'weights' is"});
    expect_read_error(hostile_v3("c.tinygpt", [](json& h) { h["sections"][1]["bytes"] = 64; }),
                      {"section 'adam_m' is 64 bytes"});
    // Trailing bytes after the last section / after the v2 body.
    Bytes b = read_bytes(save(dense, "t.tinygpt"));
    b.resize(b.size() + 64, 0);
    const std::string path = dir.file("trailing.tinygpt");
    write_bytes(path, b);
    expect_read_error(path, {"64 unexpected bytes after its last section"});
    SaveOptions options;
    options.version = 2;
    b = read_bytes(save(dense, "t2.tinygpt", options));
    b.push_back(0);
    write_bytes(path, b);
    expect_read_error(path, {"1 unexpected bytes after the tensor data"});
    // A wrong stateByteLength.
    const ModelConfig cfg = small_config(false);
    write_bytes(path, training_fp32_file(2, cfg, original_manifest(cfg, 63), true, 1,
                                         {{"stateByteLength", 12}}));
    expect_read_error(path, {"'stateByteLength' is 12"});
}

TEST_F(ModelFileTest, HostileOffsets) {
    expect_read_error(hostile_v3("misaligned.tinygpt",
                                 [](json& h) {
                                     h["sections"][1]["offset"] =
                                         h["sections"][1]["offset"].get<uint64_t>() + 4;
                                 }),
                      {"section 'adam_m' at offset", "not 64-byte aligned"});
    expect_read_error(hostile_v3("overlap.tinygpt",
                                 [](json& h) {
                                     h["sections"][1]["offset"] =
                                         h["sections"][0]["offset"].get<uint64_t>() + 64;
                                 }),
                      {"sections 'weights' and 'adam_m' overlap"});
    expect_read_error(hostile_v3("header.tinygpt", [](json& h) { h["sections"][0]["offset"] = 0; }),
                      {"section 'weights' at offset 0 overlaps the header"});
    expect_read_error(hostile_v3("range.tinygpt",
                                 [](json& h) { h["sections"][2]["offset"] = uint64_t{1} << 40; }),
                      {"section 'adam_v'", "extends past the end of the file"});
    expect_read_error(hostile_v3("wrap.tinygpt",
                                 [](json& h) {
                                     h["sections"][2]["offset"] =
                                         std::numeric_limits<uint64_t>::max() - 63;
                                 }),
                      {"extends past the end of the file"});
    expect_read_error(
        hostile_v3("dup.tinygpt", [](json& h) { h["sections"][1]["name"] = "weights"; }),
        {"section 'weights' appears twice"});
    // The original's fp16 layout: a floatOffset outside the buffer, and two entries overlapping.
    const ModelConfig cfg = small_config(false);
    const auto tensors = original_manifest(cfg, 64);
    for (int variant = 0; variant < 2; ++variant) {
        json manifest = json::array();
        size_t offset = 0;
        for (const HandTensor& t : tensors) {
            manifest.push_back({{"name", t.name}, {"shape", t.shape}, {"floatOffset", offset}});
            offset += t.values.size();
        }
        if (variant == 0)
            manifest[3]["floatOffset"] = offset;  // past the end
        else
            manifest[3]["floatOffset"] = 0;  // on top of the token embedding
        Bytes b = original_file(
            2, {{"config", original_config(cfg)}, {"manifest", manifest}, {"weightDtype", "fp16"}},
            0);
        b.resize(b.size() + 2 * offset, 0);
        const std::string path = dir.file("fp16-offsets.bin");
        write_bytes(path, b);
        expect_read_error(path, {variant == 0 ? "lies outside" : "overlap"});
    }
}

TEST_F(ModelFileTest, HostileAbsurdSizesAreRefusedBeforeAllocating) {
    Bytes b = read_bytes(save(dense, "t.tinygpt"));
    const std::string path = dir.file("absurd.tinygpt");
    Bytes huge = b;
    const uint32_t len = 0xFFFFFFF0u;
    std::memcpy(huge.data() + 8, &len, 4);
    write_bytes(path, huge);
    expect_read_error(path, {"header length 4294967280 bytes exceeds the 64 MiB limit"});
    const uint32_t mib = 32u << 20;  // under the cap, over the file size
    std::memcpy(huge.data() + 8, &mib, 4);
    write_bytes(path, huge);
    expect_read_error(path, {"truncated", "33554432 bytes of JSON"});
    // Sections and configs claiming terabytes.
    expect_read_error(
        hostile_v3("tb.tinygpt", [](json& h) { h["sections"][0]["bytes"] = uint64_t{1} << 42; }),
        {"section 'weights'", "extends past the end of the file"});
    expect_read_error(hostile_v3("cfg.tinygpt",
                                 [](json& h) {
                                     h["config"]["layers"] = 65536;
                                     h["config"]["d_model"] = 1 << 24;
                                     h["config"]["d_mlp"] = 1 << 24;
                                     h["config"]["heads"] = 1;
                                     h["config"]["experts"] = 4096;
                                     h["config"]["topk"] = 1;
                                 }),
                      {"truncated or inconsistent", "needs"});
    expect_read_error(
        hostile_v3("dim.tinygpt", [](json& h) { h["config"]["d_model"] = int64_t{1} << 40; }),
        {"'config.d_model' must be an integer in [1, 16777216]"});
    const ModelConfig cfg = small_config(false);
    write_bytes(path, training_fp32_file(2, cfg, original_manifest(cfg, 65), true, 1,
                                         {{"config",
                                           {{"layers", 60000},
                                            {"dModel", 16000000},
                                            {"heads", 1},
                                            {"ctx", 16000000},
                                            {"dMlp", 16000000}}}}));
    expect_read_error(path, {"truncated or inconsistent", "needs"});
    write_bytes(path, training_fp32_file(2, cfg, original_manifest(cfg, 66), true, 1,
                                         {{"config",
                                           {{"layers", 2},
                                            {"dModel", 16},
                                            {"heads", 2},
                                            {"ctx", 16},
                                            {"dMlp", 32},
                                            {"vocabSize", 16777216}}}}));
    expect_read_error(path, {"truncated or inconsistent"});
}

TEST_F(ModelFileTest, HostileChecksumMismatches) {
    const std::string good = save(moe, "c.tinygpt");
    const Bytes b = read_bytes(good);
    const V3View v = parse_v3(b);
    const std::string path = dir.file("corrupt.tinygpt");
    for (const json& s : v.header["sections"]) {
        Bytes bad = b;
        bad[s["offset"].get<size_t>() + s["bytes"].get<size_t>() / 2] ^= 0x10;
        write_bytes(path, bad);
        const std::string name = s["name"];
        expect_read_error(path, {"checksum mismatch in section '" + name + "' (file corrupted?)"});
    }
    Bytes bad = b;
    bad[12 + v.header_len / 2] ^= 0x01;  // inside the JSON
    write_bytes(path, bad);
    expect_read_error(path, {"checksum mismatch in the header (file corrupted?)"});
    bad = b;
    bad[12 + v.header_len + 3] ^= 0x01;  // the stored checksum itself
    write_bytes(path, bad);
    expect_read_error(path, {"checksum mismatch in the header"});
    expect_read_error(
        hostile_v3("sum.tinygpt", [](json& h) { h["sections"][0]["checksum"] = "xyz"; }),
        {"'sections.weights.checksum' must be 16 lowercase hex digits"});
}

TEST_F(ModelFileTest, InferenceReadsSkipTheOptimizerSections) {
    const std::string good = save(moe, "i.tinygpt");
    const ModelFile full = ModelFile::read(good), lean = ModelFile::read(good, ReadOptions{false});
    EXPECT_TRUE(lean.has_optimizer_state());
    EXPECT_EQ(lean.adam_m(), nullptr);
    EXPECT_EQ(lean.adam_v(), nullptr);
    EXPECT_NE(full.adam_m(), nullptr);
    // A corrupted moment is not read for inference, and is caught when the moments are wanted.
    const Bytes b = read_bytes(good);
    const V3View v = parse_v3(b);
    for (const json& s : v.header["sections"]) {
        if (s["name"] != "adam_v") continue;
        Bytes bad = b;
        bad[s["offset"].get<size_t>() + 8] ^= 0x10;
        const std::string path = dir.file("bad-moment.tinygpt");
        write_bytes(path, bad);
        EXPECT_NO_THROW(ModelFile::read(path, ReadOptions{false}));
        expect_read_error(path, {"checksum mismatch in section 'adam_v'"});
    }
}

TEST_F(ModelFileTest, HostileInvalidConfigGetsThePathPrefixed) {
    expect_read_error(hostile_v3("heads.tinygpt", [](json& h) { h["config"]["heads"] = 3; }),
                      {"invalid model config", "divisible"});
    expect_read_error(hostile_v3("topk.tinygpt", [](json& h) { h["config"]["topk"] = 5; }),
                      {"invalid model config", "--moe-topk"});
    const ModelConfig cfg = small_config(false);
    const std::string path = dir.file("v2-heads.tinygpt");
    write_bytes(path,
                training_fp32_file(
                    2, cfg, original_manifest(cfg, 67), true, 1,
                    {{"config",
                      {{"layers", 2}, {"dModel", 16}, {"heads", 3}, {"ctx", 16}, {"dMlp", 32}}}}));
    expect_read_error(path, {"invalid model config", "divisible"});
}

}  // namespace
}  // namespace tinygpt
