// Hostile safetensors files: every one must give a tinygpt::Error that starts with the path and
// names the problem (and the tensor or field), never a crash, a hang or a huge allocation.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <string>

#include "io/safetensors.h"
#include "safetensors_fixture.h"

namespace tinygpt {
namespace {

using namespace safetensors_test;
using file_test::write_bytes;

class SafetensorsHostile : public ::testing::Test {
  protected:
    ScratchDir dir;
    std::string path = dir.file("hostile.safetensors");

    // A file whose header is `header` (padded) followed by `data_bytes` zero bytes.
    void expect_header_error(const std::string& header, const std::vector<std::string>& phrases,
                             size_t data_bytes = 16) {
        write_bytes(path, raw_safetensors(header, Bytes(data_bytes, 0)));
        expect_safetensors_open_error(path, phrases);
    }
};

TEST_F(SafetensorsHostile, MissingDirectoryFifoAndEmptyFile) {
    expect_safetensors_open_error(dir.file("absent.safetensors"), {"cannot open", "No such file"});
    expect_safetensors_open_error(dir.path().string(), {"is a directory"});
    const std::string fifo = dir.file("fifo");
    ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
    expect_safetensors_open_error(fifo, {"not a regular file"});
    write_bytes(path, {});
    expect_safetensors_open_error(path, {"empty"});
}

TEST_F(SafetensorsHostile, ShorterThanTheHeaderLength) {
    write_bytes(path, {1, 2, 3});
    expect_safetensors_open_error(path, {"truncated", "3 bytes", "8-byte header length"});
}

TEST_F(SafetensorsHostile, HeaderLengthTooLargeOrPastTheEnd) {
    Bytes b;
    file_test::append<uint64_t>(b, 100'000'001);
    file_test::append_text(b, "{}      ");
    write_bytes(path, b);
    expect_safetensors_open_error(
        path, {"header length 100000001 bytes exceeds the 100000000-byte limit"});
    b.clear();
    file_test::append<uint64_t>(b, 64);
    file_test::append_text(b, "{}      ");
    write_bytes(path, b);
    expect_safetensors_open_error(path,
                                  {"truncated", "says 64 bytes of JSON but only 8 bytes follow"});
}

TEST_F(SafetensorsHostile, HeaderNotJsonOrNotAnObject) {
    expect_header_error("{\"a\": ", {"header is not valid JSON"});
    expect_header_error("{\"a\xff\": {}}", {"header is not valid JSON"});  // not UTF-8
    expect_header_error("[1, 2]", {"header is not a JSON object", "array"});
    expect_header_error("\"text\"", {"header is not a JSON object", "string"});
    expect_header_error(std::string(100, '[') + std::string(100, ']'), {"nested more than 64"});
}

TEST_F(SafetensorsHostile, EntryNotAnObjectOrFieldsMissing) {
    expect_header_error(R"({"a": [1, 2]})", {"tensor 'a'", "must be an object", "array"});
    expect_header_error(R"({"a": {"shape": [1], "data_offsets": [0, 4]}})",
                        {"tensor 'a'", "'dtype' is missing"});
    expect_header_error(R"({"a": {"dtype": "F32", "data_offsets": [0, 4]}})",
                        {"tensor 'a'", "'shape' is missing"});
    expect_header_error(R"({"a": {"dtype": "F32", "shape": [1]}})",
                        {"tensor 'a'", "'data_offsets' is missing"});
}

TEST_F(SafetensorsHostile, FieldsOfTheWrongType) {
    expect_header_error(R"({"a": {"dtype": 5, "shape": [1], "data_offsets": [0, 4]}})",
                        {"tensor 'a'", "'dtype' must be a string", "number"});
    for (const char* shape : {"3", "[1, -1]", "[2.0]", "[\"2\"]", "[null]", "[[1]]"})
        expect_header_error(std::string(R"({"a": {"dtype": "F32", "shape": )") + shape +
                                R"(, "data_offsets": [0, 4]}})",
                            {"tensor 'a'", "'shape' must be a list of non-negative integers"});
    for (const char* offsets : {"4", "[0]", "[0, 4, 8]", "[-1, 3]", "[0, 4.0]", "{}"})
        expect_header_error(
            std::string(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": )") + offsets +
                "}}",
            {"tensor 'a'", "'data_offsets' must be"});
}

TEST_F(SafetensorsHostile, UnknownDtypeIsNamed) {
    expect_header_error(header_of({entry("w", "Q7", "[1]", 0, 4)}),
                        {"tensor 'w' has an unknown dtype 'Q7'", "F16, BF16"});
    expect_header_error(header_of({entry("w", "f32", "[1]", 0, 4)}),
                        {"unknown dtype 'f32'"});  // the names are case-sensitive
}

TEST_F(SafetensorsHostile, SizeDoesNotMatchShape) {
    expect_header_error(header_of({entry("w", "F32", "[2]", 0, 4)}),
                        {"tensor 'w'", "shape [2] of F32 needs 8 bytes", "[0, 4] span 4"});
    expect_header_error(header_of({entry("w", "BF16", "[2, 3]", 0, 16)}),
                        {"tensor 'w'", "needs 12 bytes"});
    expect_header_error(header_of({entry("w", "I64", "[1]", 0, 4)}), {"needs 8 bytes"});
    expect_header_error(header_of({entry("w", "F4", "[3]", 0, 2)}), {"whole number of bytes"});
}

TEST_F(SafetensorsHostile, ShapeOverflow) {
    expect_header_error(header_of({entry("w", "F32", "[4294967296, 4294967296]", 0, 4)}),
                        {"tensor 'w'", "more bytes than a 64-bit size can count"});
    expect_header_error(header_of({entry("w", "F64", "[2305843009213693952]", 0, 4)}),
                        {"tensor 'w'", "more bytes than a 64-bit size can count"});
    expect_header_error(header_of({entry("w", "F32", "[9223372036854775808]", 0, 4)}),
                        {"tensor 'w'", "'shape' must be"});
}

TEST_F(SafetensorsHostile, OffsetsBackwardsOrPastTheData) {
    expect_header_error(header_of({entry("w", "F32", "[1]", 8, 4)}),
                        {"tensor 'w'", "[8, 4] run backwards"});
    expect_header_error(header_of({entry("w", "F32", "[4]", 4, 20)}),
                        {"truncated", "tensor 'w'", "[4, 20]", "holds only 16 bytes"});
    expect_header_error(header_of({entry("w", "F32", "[0]", 17, 17)}), {"holds only 16 bytes"});
}

TEST_F(SafetensorsHostile, OverlappingTensors) {
    expect_header_error(
        header_of({entry("a", "F32", "[2]", 0, 8), entry("b", "F32", "[2]", 4, 12)}),
        {"tensors 'a' [0, 8] and 'b' [4, 12] overlap"});
    // An inner tensor inside a longer one, listed in another order.
    expect_header_error(
        header_of({entry("z", "F32", "[1]", 8, 12), entry("big", "F32", "[4]", 0, 16),
                   entry("c", "F32", "[0]", 4, 4)}),
        {"'big' [0, 16] and 'z' [8, 12] overlap"});
    // Empty tensors overlap nothing; adjacent tensors are fine.
    write_bytes(path, raw_safetensors(
                          header_of({entry("a", "F32", "[2]", 0, 8), entry("e", "F32", "[0]", 4, 4),
                                     entry("b", "F32", "[2]", 8, 16)}),
                          Bytes(16, 0)));
    EXPECT_EQ(io::SafetensorsFile::open(path).tensors().size(), 3u);
}

TEST_F(SafetensorsHostile, DuplicateNames) {
    expect_header_error(header_of({entry("a", "F32", "[1]", 0, 4), entry("a", "F32", "[1]", 4, 8)}),
                        {"key 'a' twice at the top level"});
    expect_header_error(R"({"a": {"dtype": "F32", "dtype": "F16", "shape": [1],)"
                        R"( "data_offsets": [0, 4]}})",
                        {"key 'dtype' twice (in 'a')"});
    expect_header_error(R"({"__metadata__": {"k": "1", "k": "2"}})",
                        {"key 'k' twice (in '__metadata__')"});
}

TEST_F(SafetensorsHostile, MetadataNotAMapOfStrings) {
    expect_header_error(R"({"__metadata__": ["format", "pt"]})",
                        {"'__metadata__' must be an object of strings", "array"});
    expect_header_error(R"({"__metadata__": {"format": "pt", "step": 3}})",
                        {"'__metadata__' entry 'step' must be a string", "number"});
}

TEST_F(SafetensorsHostile, EveryUnsupportedDtypeIsStillBoundsChecked) {
    expect_header_error(header_of({entry("q", "F8_E4M3", "[32]", 0, 32)}),
                        {"tensor 'q'", "holds only 16 bytes"});
    write_bytes(path,
                raw_safetensors(header_of({entry("q", "F8_E4M3", "[16]", 0, 16)}), Bytes(16, 0)));
    const io::SafetensorsFile f = io::SafetensorsFile::open(path);
    EXPECT_TRUE(f.tensors().empty());
    EXPECT_EQ(*f.unsupported_dtype("q"), "F8_E4M3");
}

}  // namespace
}  // namespace tinygpt
