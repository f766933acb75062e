// Hugging Face checkpoint directories: one model.safetensors, or shards listed by
// model.safetensors.index.json. The index and the shards must agree on every tensor.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "io/hf_checkpoint.h"
#include "safetensors_fixture.h"

namespace tinygpt {
namespace {

using namespace safetensors_test;
using file_test::write_bytes;

class SafetensorsCheckpoint : public ::testing::Test {
  protected:
    ScratchDir dir;
    std::string root = dir.path().string();
    std::string index = dir.file("model.safetensors.index.json");
    std::string shard1 = dir.file("model-00001-of-00002.safetensors");
    std::string shard2 = dir.file("model-00002-of-00002.safetensors");

    void write_text(const std::string& path, const std::string& text) {
        Bytes b;
        file_test::append_text(b, text);
        write_bytes(path, b);
    }

    // Two shards: {embed [3, 2], norm [2]} and {head [2, 3]}, BF16, plus the index for them.
    void write_two_shards() {
        io::write_safetensors(
            shard1, {tensor("embed", {3, 2}, {1, 2, 3, 4, 5, 6}), tensor("norm", {2}, {1, 1})},
            io::TensorDtype::BF16);
        io::write_safetensors(shard2, {tensor("head", {2, 3}, {-1, -2, -3, -4, -5, -6})},
                              io::TensorDtype::BF16);
        write_index(R"({"embed": "model-00001-of-00002.safetensors",)"
                    R"( "norm": "model-00001-of-00002.safetensors",)"
                    R"( "head": "model-00002-of-00002.safetensors"})");
    }

    void write_index(const std::string& weight_map) {
        write_text(index, R"({"metadata": {"total_size": 24}, "weight_map": )" + weight_map + "}");
    }
};

TEST_F(SafetensorsCheckpoint, ReadsTwoShardsThroughTheIndex) {
    write_two_shards();
    const io::HfCheckpoint ckpt = io::HfCheckpoint::open_dir(root);
    EXPECT_TRUE(ckpt.sharded());
    EXPECT_EQ(ckpt.files().size(), 2u);
    EXPECT_EQ(ckpt.names(), (std::vector<std::string>{"embed", "head", "norm"}));
    EXPECT_EQ(ckpt.total_bytes(), 2u * (6 + 2 + 6));
    const io::SafetensorsTensor& head = ckpt.require("head", {2, 3});
    std::vector<float> values(6);
    io::tensor_to_f32(head, values.data());
    EXPECT_EQ(values, (std::vector<float>{-1, -2, -3, -4, -5, -6}));
    EXPECT_EQ(ckpt.find("embed"), &ckpt.require("embed", {3, 2}));
    EXPECT_EQ(ckpt.find("nope"), nullptr);

    // A checkpoint keeps working after a move (its tensors point into the shards' mappings).
    io::HfCheckpoint moved = io::HfCheckpoint::open_dir(root + "/");
    const io::HfCheckpoint other = std::move(moved);
    io::tensor_to_f32(other.require("norm", {2}), values.data());
    EXPECT_EQ(values[0], 1.0f);
}

TEST_F(SafetensorsCheckpoint, ReadsASingleFile) {
    io::write_safetensors(dir.file("model.safetensors"), {tensor("w", {2}, {0.5f, 1.5f})},
                          io::TensorDtype::F32);
    const io::HfCheckpoint ckpt = io::HfCheckpoint::open_dir(root);
    EXPECT_FALSE(ckpt.sharded());
    EXPECT_EQ(ckpt.names(), std::vector<std::string>{"w"});
    EXPECT_EQ(ckpt.total_bytes(), 8u);
}

TEST_F(SafetensorsCheckpoint, RequireNamesTheTensorAndTheProblem) {
    write_bytes(dir.file("model.safetensors"),
                raw_safetensors(header_of({entry("w", "F32", "[2, 3]", 0, 24),
                                           entry("ids", "I64", "[1]", 24, 32)}),
                                Bytes(32, 0)));
    const io::HfCheckpoint ckpt = io::HfCheckpoint::open_dir(root);
    EXPECT_EQ(ckpt.names(), (std::vector<std::string>{"ids", "w"}));
    auto expect_require_error = [&](const std::string& name, const std::vector<int64_t>& shape,
                                    const std::vector<std::string>& phrases) {
        file_test::expect_error_about(
            "requiring", [&] { ckpt.require(name, shape); }, root, phrases);
    };
    expect_require_error("w", {3, 2}, {"tensor 'w' has shape [2, 3], expected [3, 2]"});
    expect_require_error("w", {6}, {"tensor 'w' has shape [2, 3], expected [6]"});
    expect_require_error("missing.weight", {1}, {"tensor 'missing.weight' is missing"});
    expect_require_error("ids", {1}, {"tensor 'ids' has dtype I64", "cannot load"});
}

TEST_F(SafetensorsCheckpoint, DirectoryWithoutACheckpoint) {
    expect_checkpoint_error(root, root, {"neither model.safetensors nor"});
    expect_checkpoint_error(dir.file("absent"), dir.file("absent"), {"no such"});
    write_text(dir.file("plain"), "x");
    expect_checkpoint_error(dir.file("plain"), dir.file("plain"), {"is not a directory"});
}

TEST_F(SafetensorsCheckpoint, IndexNotJsonOrWithoutAWeightMap) {
    write_text(index, "{\"weight_map\": ");
    expect_checkpoint_error(root, index, {"index is not valid JSON"});
    write_text(index, "[]");
    expect_checkpoint_error(root, index, {"not a JSON object"});
    write_text(index, R"({"metadata": {}})");
    expect_checkpoint_error(root, index, {"'weight_map' is missing"});
    write_text(index, R"({"weight_map": ["a"]})");
    expect_checkpoint_error(root, index, {"'weight_map' must be an object"});
    write_text(index, R"({"weight_map": {}})");
    expect_checkpoint_error(root, index, {"lists no tensors"});
    write_text(index, R"({"metadata": 3, "weight_map": {"a": "s.safetensors"}})");
    expect_checkpoint_error(root, index, {"'metadata' must be an object"});
    write_index(R"({"a": "s.safetensors", "a": "t.safetensors"})");
    expect_checkpoint_error(root, index, {"key 'a' twice (in 'weight_map')"});
}

TEST_F(SafetensorsCheckpoint, IndexValuesMustBePlainFileNames) {
    write_two_shards();
    write_index(R"({"embed": 1})");
    expect_checkpoint_error(root, index, {"tensor 'embed' must be a shard file name", "number"});
    for (const char* shard : {"../model-00001-of-00002.safetensors", "/etc/passwd", "..", ".", "",
                              "sub/x.safetensors"}) {
        write_index(R"({"embed": ")" + std::string(shard) + "\"}");
        expect_checkpoint_error(root, index, {"tensor 'embed'", "not a plain file name"});
    }
}

TEST_F(SafetensorsCheckpoint, ShardMissingOrTruncated) {
    write_two_shards();
    std::filesystem::remove(shard2);
    expect_checkpoint_error(root, index,
                            {"shard 'model-00002-of-00002.safetensors'", "'head'", "is missing"});
    write_two_shards();
    const Bytes whole = file_test::read_bytes(shard2);
    write_bytes(shard2, Bytes(whole.begin(), whole.end() - 2));
    expect_checkpoint_error(root, shard2, {"truncated", "tensor 'head'"});
}

TEST_F(SafetensorsCheckpoint, IndexAndShardsMustAgree) {
    write_two_shards();
    // Listed in the index, absent from its shard.
    write_index(R"({"embed": "model-00001-of-00002.safetensors",)"
                R"( "norm": "model-00001-of-00002.safetensors",)"
                R"( "head": "model-00002-of-00002.safetensors",)"
                R"( "ghost": "model-00002-of-00002.safetensors"})");
    expect_checkpoint_error(root, index, {"tensor 'ghost' is listed for shard", "no such tensor"});
    // In a shard, absent from the index.
    write_index(R"({"embed": "model-00001-of-00002.safetensors",)"
                R"( "head": "model-00002-of-00002.safetensors"})");
    expect_checkpoint_error(root, index, {"tensor 'norm' is in shard", "not in the index"});
    // The index puts it in the other shard.
    write_index(R"({"embed": "model-00001-of-00002.safetensors",)"
                R"( "norm": "model-00002-of-00002.safetensors",)"
                R"( "head": "model-00002-of-00002.safetensors"})");
    expect_checkpoint_error(root, index, {"the index puts tensor 'norm' in 'model-00002"});
}

TEST_F(SafetensorsCheckpoint, SameTensorInTwoShards) {
    write_two_shards();
    io::write_safetensors(shard2,
                          {tensor("head", {2, 3}, {1, 2, 3, 4, 5, 6}), tensor("norm", {2}, {2, 2})},
                          io::TensorDtype::BF16);
    expect_checkpoint_error(root, root, {"tensor 'norm' is in two shards", shard1, shard2});
}

}  // namespace
}  // namespace tinygpt
