// Hostile GGUF files: every one must give a tinygpt::Error that starts with the path and names the
// problem (with the key, tensor or byte offset), never a crash, a hang or a huge allocation.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <limits>

#include "gguf_fixture.h"
#include "io/gguf_file.h"
#include "util/rng.h"

namespace tinygpt {
namespace {

using namespace gguf_test;

class GgufHostile : public ::testing::Test {
  protected:
    ScratchDir dir;
    std::string path = dir.file("hostile.gguf");

    void expect_error(const RawGguf& raw, const std::vector<std::string>& phrases) {
        write_bytes(path, raw.build());
        expect_gguf_open_error(path, phrases);
    }
    void expect_error(const Bytes& bytes, const std::vector<std::string>& phrases) {
        write_bytes(path, bytes);
        expect_gguf_open_error(path, phrases);
    }
    // A file with one metadata entry "k" of the given type and value bytes.
    void expect_kv_error(uint32_t type, const Bytes& value,
                         const std::vector<std::string>& phrases) {
        RawGguf raw;
        raw.kvs = {kv("k", type, value)};
        expect_error(raw, phrases);
    }
    // A file with one tensor info (and `data_bytes` zero bytes of data).
    void expect_tensor_error(const Bytes& info, const std::vector<std::string>& phrases,
                             size_t data_bytes = 64) {
        RawGguf raw;
        raw.infos = {info};
        raw.data.assign(data_bytes, 0);
        expect_error(raw, phrases);
    }
};

// A small valid file whose last tensor ends on the alignment, so that every prefix is invalid.
RawGguf valid_file() {
    RawGguf raw;
    Bytes tokens = str("a");
    append_bytes(tokens, str("bc"));
    Bytes scores = le<float>(0.5f);
    append_bytes(scores, le<float>(-1.0f));
    raw.kvs = {
        kv("general.architecture", kString, str("llama")),
        kv("tokenizer.ggml.tokens", kArray, array_value(kString, 2, tokens)),
        kv("llama.block_count", kU32, le<uint32_t>(7)),
        kv("tokenizer.ggml.scores", kArray, array_value(kF32, 2, scores)),
        kv("flag", kBool, le<uint8_t>(1)),
    };
    raw.infos = {tensor_info("q", {32}, kTQ8_0, 0), tensor_info("w", {8}, kTF32, 64)};
    raw.data.assign(96, 0);
    raw.data[1] = 0x3C;  // d = 1
    for (int i = 0; i < 32; ++i) raw.data[2 + i] = static_cast<uint8_t>(i - 16);
    for (int i = 0; i < 8; ++i) {
        const float v = static_cast<float>(i);
        std::memcpy(raw.data.data() + 64 + 4 * i, &v, 4);
    }
    return raw;
}

TEST_F(GgufHostile, MissingDirectoryFifoAndEmptyFile) {
    expect_gguf_open_error(dir.file("absent.gguf"), {"cannot open", "No such file"});
    expect_gguf_open_error(dir.path().string(), {"is a directory"});
    const std::string fifo = dir.file("fifo");
    ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
    expect_gguf_open_error(fifo, {"not a regular file"});
    expect_error(Bytes{}, {"empty"});
}

TEST_F(GgufHostile, TheValidFileOpens) {
    write_bytes(path, valid_file().build());
    const io::GgufFile f = io::GgufFile::open(path);
    EXPECT_EQ(f.tensors().size(), 2u);
    std::vector<float> q(32);
    io::gguf_tensor_to_f32(f.tensors()[0], q.data());
    EXPECT_EQ(q[0], -16.0f);
    EXPECT_EQ(q[31], 15.0f);
}

TEST_F(GgufHostile, EveryTruncationIsAnError) {
    const Bytes full = valid_file().build();
    ASSERT_EQ(full.size() % 32, 0u);
    for (size_t n = 1; n < full.size(); ++n) {
        SCOPED_TRACE(n);
        write_bytes(path, Bytes(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n)));
        try {
            io::GgufFile::open(path);
            ADD_FAILURE() << "a prefix of " << n << " of " << full.size() << " bytes opened";
        } catch (const Error& e) {
            EXPECT_EQ(std::string(e.what()).rfind(path + ": ", 0), 0u) << e.what();
        }
    }
    // Representative messages: the counts, the data.
    expect_error(Bytes(full.begin(), full.begin() + 30),
                 {"GGUF header", "metadata count 5 cannot fit in the 6 bytes left"});
    expect_error(Bytes(full.begin(), full.end() - 1),
                 {"tensor 'w'", "32 bytes at data offset 64", "past the end of the file"});
    // Inside a string and inside a scalar, where the counts still fit.
    RawGguf raw;
    raw.kvs = {kv("text", kString, str(std::string(100, 'x'))), kv("n", kU64, le<uint64_t>(1))};
    const Bytes two = raw.build();
    expect_error(Bytes(two.begin(), two.begin() + 100),
                 {"metadata key 'text' at byte 24", "value at byte 40 has length 100",
                  "more than the 52 bytes left"});
    expect_error(Bytes(two.begin(), two.end() - 3),
                 {"metadata key 'n'", "truncated: value at byte", "needs 8 bytes, 5 left"});
}

TEST_F(GgufHostile, RandomCorruptionNeverCrashes) {
    const Bytes full = valid_file().build();
    Rng rng(11);
    int opened = 0;
    for (int iter = 0; iter < 3000; ++iter) {
        Bytes b = full;
        const int flips = 1 + static_cast<int>(rng.uniform_index(4));
        for (int i = 0; i < flips; ++i) {
            const size_t at = rng.uniform_index(b.size() - 96);  // the header and infos
            b[at] = static_cast<uint8_t>(rng.uniform_index(4) == 0 ? 0xff : rng.next_u64());
        }
        write_bytes(path, b);
        try {
            const io::GgufFile f = io::GgufFile::open(path);
            ++opened;
            for (const io::GgufTensor& t : f.tensors()) {
                std::vector<float> out(static_cast<size_t>(t.numel()));
                io::gguf_tensor_to_f32(t, out.data());
            }
        } catch (const Error& e) {
            ASSERT_EQ(std::string(e.what()).rfind(path + ": ", 0), 0u) << e.what();
        }
    }
    EXPECT_GT(opened, 0);  // some flips land in values and leave a valid file
}

TEST_F(GgufHostile, BadMagicAndVersions) {
    expect_error(Bytes{'G', 'G'}, {"file too short for the magic"});
    Bytes b = valid_file().build();
    b[3] = 'X';
    expect_error(b, {"not a GGUF file", "magic 'GGUX'", "expected 'GGUF'"});
    b[0] = 0;
    expect_error(b, {"magic '?GUX'"});
    RawGguf raw = valid_file();
    raw.version = 1;
    expect_error(raw, {"GGUF version 1 is not supported"});
    raw.version = 4;
    expect_error(raw, {"unsupported GGUF version 4", "reads 2 and 3"});
    raw.version = 0;
    expect_error(raw, {"unsupported GGUF version 0"});
    raw.version = 0x03000000;
    expect_error(raw, {"byte-swapped", "big-endian"});
}

TEST_F(GgufHostile, AbsurdCounts) {
    RawGguf raw = valid_file();
    raw.n_kv = std::numeric_limits<uint64_t>::max();
    expect_error(raw, {"metadata count 18446744073709551615 cannot fit"});
    raw.n_kv = 1ull << 40;
    expect_error(raw, {"metadata count 1099511627776 cannot fit"});
    raw = valid_file();
    raw.n_tensors = 1ull << 62;
    expect_error(raw, {"tensor count 4611686018427387904 cannot fit"});
    // More tensors than the bytes after the metadata can hold (but not the whole file).
    raw = valid_file();
    raw.n_tensors = 8;
    expect_error(raw, {"tensor count 8 cannot fit", "after the metadata"});
    // A count that fits but claims more entries than there are.
    raw = valid_file();
    raw.n_kv = 6;  // the first tensor info is read as a sixth entry, and then nothing fits
    expect_error(raw, {"tensor info 0"});
}

TEST_F(GgufHostile, StringLengthsBeyondTheFile) {
    RawGguf raw;
    Bytes key = le<uint64_t>(1ull << 62);
    file_test::append_text(key, "k");
    raw.kvs = {key};
    raw.tail.assign(64, 0);
    expect_error(raw, {"metadata entry 0 at byte 24",
                       "key at byte 24 has length 4611686018427387904", "bytes left"});
    expect_kv_error(kString, le<uint64_t>(~0ull), {"metadata key 'k'", "value", "has length"});
    Bytes arr = array_value(kString, 1, le<uint64_t>(1000));
    expect_kv_error(kArray, arr, {"metadata key 'k'", "string element", "length 1000"});
    expect_tensor_error(le<uint64_t>(1ull << 50), {"tensor info 0", "name", "length"});
}

TEST_F(GgufHostile, ArrayCountsBeyondTheFile) {
    expect_kv_error(kArray, array_value(kU32, 1ull << 62, {}),
                    {"metadata key 'k'", "array of 4611686018427387904 uint32 values",
                     "at least 4 bytes each"});
    expect_kv_error(kArray, array_value(kString, 1000, Bytes(100, 0)),
                    {"metadata key 'k'", "array of 1000 string values", "at least 8 bytes"});
    expect_kv_error(kArray, array_value(kU8, ~0ull, {}), {"array of 18446744073709551615 uint8"});
    // Within the bytes left but truncated in the middle.
    expect_kv_error(kArray, array_value(kI64, 2, le<int64_t>(1)), {"at least 8 bytes"});
}

TEST_F(GgufHostile, UnknownValueTypesAndNestedArrays) {
    expect_kv_error(13, le<uint32_t>(0), {"metadata key 'k'", "unknown value type 13"});
    expect_kv_error(0x80000000u, Bytes(8, 0), {"unknown value type 2147483648"});
    expect_kv_error(kArray, array_value(99, 0, {}),
                    {"metadata key 'k'", "unknown array element type 99"});
    expect_kv_error(kArray, array_value(kArray, 1, array_value(kU8, 0, {})),
                    {"metadata key 'k'", "arrays of arrays are not supported"});
}

TEST_F(GgufHostile, BadValues) {
    expect_kv_error(kBool, le<uint8_t>(2),
                    {"metadata key 'k'", "bool value", "is 2 (must be 0 or 1)"});
    expect_kv_error(kArray, array_value(kBool, 2, Bytes{1, 7}), {"bool element", "is 7"});
    Bytes big = le<uint64_t>(1);
    append_bytes(big, le<uint64_t>(1ull << 63));
    expect_kv_error(kArray, array_value(kU64, 2, big),
                    {"metadata key 'k'", "uint64 array element 1 is 9223372036854775808"});
}

TEST_F(GgufHostile, DuplicateOrEmptyKeys) {
    RawGguf raw;
    raw.kvs = {kv("a", kU8, le<uint8_t>(1)), kv("dup", kU8, le<uint8_t>(1)),
               kv("dup", kU32, le<uint32_t>(2))};
    expect_error(raw, {"metadata key 'dup'", "duplicate key (entries 1 and 2)"});
    raw.kvs = {kv("", kU8, le<uint8_t>(1))};
    raw.tail.assign(8, 0);
    expect_error(raw, {"metadata entry 0", "empty key"});
}

TEST_F(GgufHostile, BadAlignment) {
    RawGguf raw = valid_file();
    raw.kvs.push_back(kv("general.alignment", kU64, le<uint64_t>(32)));
    expect_error(raw, {"'general.alignment'", "must be uint32, found uint64"});
    raw.kvs.back() = kv("general.alignment", kU32, le<uint32_t>(0));
    expect_error(raw, {"'general.alignment'", "0 is not a power of two"});
    raw.kvs.back() = kv("general.alignment", kU32, le<uint32_t>(48));
    expect_error(raw, {"'general.alignment'", "48 is not a power of two"});
    raw.kvs.back() = kv("general.alignment", kArray, array_value(kU32, 1, le<uint32_t>(32)));
    expect_error(raw, {"must be uint32, found array"});
    // 64: the valid file's second tensor (offset 64) is still aligned; 128 makes it misaligned.
    raw.kvs.back() = kv("general.alignment", kU32, le<uint32_t>(64));
    raw.alignment = 64;
    write_bytes(path, raw.build());
    EXPECT_EQ(io::GgufFile::open(path).alignment(), 64u);
    raw.kvs.back() = kv("general.alignment", kU32, le<uint32_t>(128));
    raw.alignment = 128;
    expect_error(raw, {"tensor 'w'", "data offset 64 is not a multiple of the alignment 128"});
}

TEST_F(GgufHostile, BadTensorNames) {
    expect_tensor_error(tensor_info("", {1}, kTF32, 0), {"tensor info 0", "empty tensor name"});
    expect_tensor_error(tensor_info(std::string(64, 'x'), {1}, kTF32, 0),
                        {"tensor info 0", "64 bytes; ggml allows at most 63"});
    RawGguf raw;
    raw.infos = {tensor_info("a\nb", {1}, kTF32, 0), tensor_info("c", {1}, kTF32, 32),
                 tensor_info("a\nb", {1}, kTF32, 64)};
    raw.data.assign(96, 0);
    expect_error(raw, {"tensor 'a\\x0ab'", "duplicate tensor name (tensor infos 0 and 2)"});
}

TEST_F(GgufHostile, BadDims) {
    expect_tensor_error(tensor_info("t", {}, kTF32, 0), {"tensor 't'", "n_dims is 0"});
    expect_tensor_error(tensor_info("t", {1, 1, 1, 1, 1}, kTF32, 0), {"tensor 't'", "n_dims is 5"});
    Bytes huge_dims = str("t");
    append_bytes(huge_dims, le<uint32_t>(0xffffffffu));
    expect_tensor_error(huge_dims, {"n_dims is 4294967295"});
    expect_tensor_error(tensor_info("t", {4, 0}, kTF32, 0),
                        {"tensor 't'", "dimension 1 of [4, 0] is 0 (must be at least 1)"});
    expect_tensor_error(tensor_info("t", {-4}, kTF32, 0), {"dimension 0 of [-4] is -4"});
    expect_tensor_error(
        tensor_info("t", {1ll << 32, 1ll << 31, 2}, kTF32, 0),
        {"tensor 't'", "element count of [4294967296, 2147483648, 2]", "overflows int64"});
    expect_tensor_error(tensor_info("t", {1ll << 62}, kTF32, 0),
                        {"tensor 't'", "byte size of [4611686018427387904] overflows int64"});
    expect_tensor_error(tensor_info("t", {std::numeric_limits<int64_t>::max()}, kTF16, 0),
                        {"byte size", "overflows"});
    // Q8_0 has 34 bytes per 32 values: fewer values than int64 can count may still overflow.
    expect_tensor_error(
        tensor_info("t", {(std::numeric_limits<int64_t>::max() / 32) * 32}, kTQ8_0, 0),
        {"tensor 't'", "byte size", "overflows int64"});
    expect_tensor_error(tensor_info("t", {1ll << 40}, kTQ8_0, 0),
                        {"tensor 't'", "1168231104512 bytes", "past the end of the file"});
    expect_tensor_error(tensor_info("t", {1ll << 40, 4}, kTF32, 0),
                        {"tensor 't'", "17592186044416 bytes at data offset 0", "past the end"});
}

TEST_F(GgufHostile, UnsupportedTypesAreNamed) {
    expect_tensor_error(
        tensor_info("blk.0.attn_q.weight", {256}, kTQ4_K, 0),
        {"tensor 'blk.0.attn_q.weight'", "type Q4_K is not supported", "F32, F16, BF16 and Q8_0"});
    expect_tensor_error(tensor_info("t", {32}, 2, 0), {"type Q4_0 is not supported"});
    expect_tensor_error(tensor_info("t", {32}, 4, 0), {"type Q4_2 is not supported"});
    expect_tensor_error(tensor_info("t", {32}, 28, 0), {"type F64 is not supported"});
    expect_tensor_error(tensor_info("t", {32}, 99, 0),
                        {"tensor 't'", "unknown ggml type 99 is not supported"});
    expect_tensor_error(tensor_info("t", {32}, 0xffffffffu, 0), {"type 4294967295"});
}

TEST_F(GgufHostile, Q8_0RowNotAMultipleOf32) {
    expect_tensor_error(tensor_info("blk.0.ffn_down.weight", {48, 2}, kTQ8_0, 0),
                        {"tensor 'blk.0.ffn_down.weight'", "Q8_0 rows must be a multiple of 32",
                         "dimension 0 of [48, 2] is 48"});
    // 96 values in all, but rows of 16.
    expect_tensor_error(tensor_info("t", {16, 6}, kTQ8_0, 0), {"is 16"});
}

TEST_F(GgufHostile, BadOffsets) {
    expect_tensor_error(tensor_info("t", {4}, kTF32, 16),
                        {"tensor 't'", "data offset 16 is not a multiple of the alignment 32"});
    expect_tensor_error(tensor_info("t", {4}, kTF32, 64),
                        {"tensor 't'", "16 bytes at data offset 64", "past the end of the file"});
    expect_tensor_error(tensor_info("t", {4}, kTF32, 1ull << 63), {"past the end of the file"});
    expect_tensor_error(tensor_info("t", {4}, kTF32, ~0ull - 31), {"past the end of the file"});
    // The data region starts after the padding: a file that ends inside it has no room at all.
    RawGguf raw;
    raw.infos = {tensor_info("t", {1}, kTF32, 0)};
    write_bytes(path, raw.build());  // no data, no padding
    expect_gguf_open_error(path, {"tensor 't'", "4 bytes at data offset 0", "past the end"});
}

TEST_F(GgufHostile, OverlappingTensors) {
    RawGguf raw;
    raw.infos = {tensor_info("a", {16}, kTF32, 0), tensor_info("b", {4}, kTF32, 32)};
    raw.data.assign(128, 0);
    expect_error(raw, {"tensors 'a' (data bytes [0, 64)) and 'b' (data bytes [32, 48)) overlap"});
    raw.infos = {tensor_info("x", {4}, kTF32, 64), tensor_info("y", {4}, kTF32, 0),
                 tensor_info("z", {1}, kTF32, 64)};
    expect_error(raw, {"overlap", "'x'", "'z'"});
    // Touching is fine.
    raw.infos = {tensor_info("a", {8}, kTF32, 0), tensor_info("b", {8}, kTF32, 32)};
    write_bytes(path, raw.build());
    EXPECT_EQ(io::GgufFile::open(path).tensors().size(), 2u);
}

TEST_F(GgufHostile, TooManyTensorInfosAfterTheMetadata) {
    // n_tensors passes the first check against the whole file but not against what is left
    // after a large metadata value.
    RawGguf raw;
    raw.kvs = {kv("big", kString, str(std::string(2000, 'x')))};
    raw.n_tensors = 50;
    expect_error(raw, {"tensor count 50 cannot fit", "after the metadata"});
}

}  // namespace
}  // namespace tinygpt
