// Safetensors files: the byte layout Hugging Face writes, write → read round trips in every
// dtype (rounding checked against a brute-force nearest-value search), unaligned data, and crash
// safety of the writer. Hostile files: test_safetensors_hostile.cpp; checkpoints with an index:
// test_hf_checkpoint.cpp.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <limits>

#include "io/atomic_write.h"
#include "io/safetensors.h"
#include "safetensors_fixture.h"
#include "util/error.h"
#include "util/rng.h"

namespace tinygpt {
namespace {

using namespace safetensors_test;
using file_test::read_bytes;
using file_test::write_bytes;

TEST(SafetensorsDtype, NamesAndSizes) {
    EXPECT_STREQ(io::safetensors_dtype_name(io::TensorDtype::F32), "F32");
    EXPECT_STREQ(io::safetensors_dtype_name(io::TensorDtype::BF16), "BF16");
    EXPECT_STREQ(io::safetensors_dtype_name(io::TensorDtype::F16), "F16");
    EXPECT_EQ(io::dtype_size(io::TensorDtype::F32), 4u);
    EXPECT_EQ(io::dtype_size(io::TensorDtype::BF16), 2u);
    EXPECT_EQ(io::dtype_size(io::TensorDtype::F16), 2u);
}

// What Python's `safetensors.torch.save_file({"a": torch.tensor([1.0, 2.0])}, path)` writes:
// the header length 56 (54 bytes of JSON + 2 spaces), the JSON, then 1.0f and 2.0f.
Bytes python_reference_file() {
    const std::string json = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
    Bytes b = {56, 0, 0, 0, 0, 0, 0, 0};
    file_test::append_text(b, json + "  ");
    for (uint8_t byte : {0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0x40}) b.push_back(byte);
    return b;
}

TEST(SafetensorsFile, ReadsTheReferenceByteLayout) {
    ScratchDir dir;
    const std::string path = dir.file("ref.safetensors");
    write_bytes(path, python_reference_file());
    const io::SafetensorsFile f = io::SafetensorsFile::open(path);
    EXPECT_EQ(f.path(), path);
    ASSERT_EQ(f.tensors().size(), 1u);
    const io::SafetensorsTensor* a = f.find("a");
    ASSERT_NE(a, nullptr);
    EXPECT_EQ(a->dtype, io::TensorDtype::F32);
    EXPECT_EQ(a->shape, (std::vector<int64_t>{2}));
    EXPECT_EQ(a->bytes, 8u);
    EXPECT_EQ(a->numel(), 2);
    float values[2];
    io::tensor_to_f32(*a, values);
    EXPECT_EQ(values[0], 1.0f);
    EXPECT_EQ(values[1], 2.0f);
    EXPECT_EQ(f.find("b"), nullptr);
    EXPECT_TRUE(f.metadata().empty());
}

TEST(SafetensorsWrite, ProducesTheReferenceBytes) {
    ScratchDir dir;
    const std::string path = dir.file("ours.safetensors");
    io::write_safetensors(path, {tensor("a", {2}, {1.0f, 2.0f})}, io::TensorDtype::F32, {});
    EXPECT_EQ(read_bytes(path), python_reference_file());
}

TEST(SafetensorsWrite, F32RoundTripKeepsOrderShapesAndMetadata) {
    ScratchDir dir;
    const std::string path = dir.file("m.safetensors");
    const std::vector<float> w = test::random_vector(6, 1);
    const std::vector<float> bias = test::random_vector(3, 2);
    const float nan = std::numeric_limits<float>::quiet_NaN();
    const std::vector<io::TensorToWrite> tensors = {
        tensor("z.weight", {2, 3}, w),
        tensor("a.bias", {3}, bias),
        tensor("scalar", {}, {nan}),
        tensor("empty", {0, 4}, {}),
    };
    const std::map<std::string, std::string> meta = {{"format", "pt"}, {"note", "héllo"}};
    io::write_safetensors(path, tensors, io::TensorDtype::F32, meta);

    const Bytes raw = read_bytes(path);
    uint64_t header_len;
    std::memcpy(&header_len, raw.data(), 8);
    EXPECT_EQ((8 + header_len) % 8, 0u) << "data must start at a multiple of 8";

    const io::SafetensorsFile f = io::SafetensorsFile::open(path);
    EXPECT_EQ(f.metadata(), meta);
    ASSERT_EQ(f.tensors().size(), 4u);
    // In data-offset order, which is the order written; "empty" takes no bytes.
    EXPECT_EQ(f.tensors()[0].name, "z.weight");
    EXPECT_EQ(f.tensors()[1].name, "a.bias");
    EXPECT_EQ(f.tensors()[2].name, "scalar");
    EXPECT_EQ(f.tensors()[3].name, "empty");
    EXPECT_EQ(f.tensors()[1].data, f.tensors()[0].data + 24);

    std::vector<float> got(6);
    io::tensor_to_f32(*f.find("z.weight"), got.data());
    for (size_t i = 0; i < w.size(); ++i) EXPECT_TRUE(file_test::same_bits(got[i], w[i]));
    io::tensor_to_f32(*f.find("a.bias"), got.data());
    for (size_t i = 0; i < bias.size(); ++i) EXPECT_TRUE(file_test::same_bits(got[i], bias[i]));
    const io::SafetensorsTensor* s = f.find("scalar");
    EXPECT_TRUE(s->shape.empty());
    EXPECT_EQ(s->numel(), 1);
    io::tensor_to_f32(*s, got.data());
    EXPECT_TRUE(std::isnan(got[0]));
    EXPECT_EQ(f.find("empty")->numel(), 0);
    EXPECT_EQ(f.find("empty")->bytes, 0u);
    EXPECT_EQ(f.find("empty")->shape, (std::vector<int64_t>{0, 4}));
}

// --- rounding against a brute-force reference ----------------------------------------------------

// The value of every non-negative finite encoding of a 16-bit format with `mantissa_bits`
// fraction bits and exponent bias `bias`, in encoding order (which is value order), computed
// from the definition; the first infinite encoding is appended with the value 2^(emax+1), the
// overflow threshold that round-to-nearest-even uses.
struct HalfTable {
    std::vector<double> value;  // index = encoding
};

HalfTable half_table(int mantissa_bits, int exponent_bits) {
    const int bias = (1 << (exponent_bits - 1)) - 1;
    const uint32_t inf_code = ((1u << exponent_bits) - 1) << mantissa_bits;
    HalfTable t;
    for (uint32_t code = 0; code <= inf_code; ++code) {
        const uint32_t e = code >> mantissa_bits;
        const double m = code & ((1u << mantissa_bits) - 1);
        t.value.push_back(e == 0 ? std::ldexp(m, 1 - bias - mantissa_bits)
                                 : std::ldexp(std::ldexp(1.0, mantissa_bits) + m,
                                              static_cast<int>(e) - bias - mantissa_bits));
    }
    return t;
}

// Nearest encoding to x (finite or infinite, not NaN), ties to the even encoding.
uint16_t nearest_encoding(float x, const HalfTable& t, uint16_t sign_bit) {
    const uint16_t sign = std::signbit(x) ? sign_bit : 0;
    const double a = std::fabs(static_cast<double>(x));
    if (std::isinf(a)) return static_cast<uint16_t>(sign | (t.value.size() - 1));
    const auto hi = std::lower_bound(t.value.begin(), t.value.end(), a);
    if (hi == t.value.end()) return static_cast<uint16_t>(sign | (t.value.size() - 1));
    size_t code = static_cast<size_t>(hi - t.value.begin());
    if (*hi != a && code > 0) {
        const double up = *hi - a, down = a - t.value[code - 1];
        if (down < up || (down == up && (code - 1) % 2 == 0)) --code;
    }
    return static_cast<uint16_t>(sign | code);
}

// Random floats over the whole range, specials, float denormals and exact ties of `t`.
std::vector<float> rounding_probes(const HalfTable& t) {
    std::vector<float> v = {0.0f,
                            -0.0f,
                            1.0f,
                            -2.5f,
                            std::numeric_limits<float>::infinity(),
                            -std::numeric_limits<float>::infinity(),
                            std::numeric_limits<float>::max(),
                            -std::numeric_limits<float>::max(),
                            std::numeric_limits<float>::min(),
                            std::numeric_limits<float>::denorm_min(),
                            -3 * std::numeric_limits<float>::denorm_min(),
                            1e-40f,
                            65504.0f,
                            65519.99f,
                            65520.0f,
                            1e6f};
    Rng rng(7);
    for (int i = 0; i < 3000; ++i) {
        const float f = std::bit_cast<float>(static_cast<uint32_t>(rng.next_u64()));
        if (!std::isnan(f)) v.push_back(f);
    }
    for (size_t code = 0; code + 1 < t.value.size(); code += 37) {
        const double mid = (t.value[code] + t.value[code + 1]) / 2;  // exact in float
        v.push_back(static_cast<float>(mid));
        v.push_back(-static_cast<float>(mid));
        v.push_back(std::nextafter(static_cast<float>(mid), 0.0f));
    }
    return v;
}

void check_rounding(io::TensorDtype dtype, int mantissa_bits, int exponent_bits) {
    ScratchDir dir;
    const std::string path = dir.file("r.safetensors");
    const HalfTable table = half_table(mantissa_bits, exponent_bits);
    std::vector<float> probes = rounding_probes(table);
    const float nan = std::numeric_limits<float>::quiet_NaN();
    probes.push_back(nan);
    probes.push_back(-nan);
    probes.push_back(std::bit_cast<float>(0x7f800001u));  // a NaN whose payload is all low bits
    const int64_t n = static_cast<int64_t>(probes.size());
    io::write_safetensors(path, {tensor("x", {n}, probes)}, dtype);

    const io::SafetensorsFile f = io::SafetensorsFile::open(path);
    const io::SafetensorsTensor& t = *f.find("x");
    ASSERT_EQ(t.dtype, dtype);
    ASSERT_EQ(t.bytes, static_cast<uint64_t>(2 * n));
    std::vector<float> widened(probes.size());
    io::tensor_to_f32(t, widened.data());
    const uint16_t inf_code = static_cast<uint16_t>(table.value.size() - 1);
    for (size_t i = 0; i < probes.size(); ++i) {
        uint16_t code;
        std::memcpy(&code, t.data + 2 * i, 2);
        if (std::isnan(probes[i])) {
            EXPECT_EQ(code & inf_code, inf_code) << "NaN must stay NaN";
            EXPECT_NE(code & ~inf_code & 0x7fff, 0) << "NaN must stay NaN, not become inf";
            EXPECT_TRUE(std::isnan(widened[i]));
            continue;
        }
        const uint16_t want = nearest_encoding(probes[i], table, 0x8000);
        EXPECT_EQ(code, want) << std::hexfloat << probes[i] << " as " << std::hex << code;
        // Widening back is exact: the table's value of the stored encoding.
        const double magnitude = (code & 0x7fff) == inf_code
                                     ? std::numeric_limits<double>::infinity()
                                     : table.value[code & 0x7fff];
        EXPECT_EQ(static_cast<double>(widened[i]), (code & 0x8000) ? -magnitude : magnitude);
    }
}

TEST(SafetensorsWrite, Bf16RoundsToNearestEvenLikeTheReference) {
    check_rounding(io::TensorDtype::BF16, 7, 8);
}

TEST(SafetensorsWrite, F16RoundsToNearestEvenLikeTheReference) {
    check_rounding(io::TensorDtype::F16, 10, 5);
}

// --- unaligned data ------------------------------------------------------------------------------

TEST(SafetensorsFile, ReadsUnalignedTensorsAndSkipsUnsupportedDtypes) {
    ScratchDir dir;
    const std::string path = dir.file("odd.safetensors");
    // One U8 byte first, so the BF16, F16 and F32 tensors after it start at odd offsets; the
    // header is padded to an even length only (the data region at an even file offset), so the
    // tensors sit at odd addresses in the page-aligned mapping.
    const std::string header =
        header_of({entry("flag", "U8", "[1]", 0, 1), entry("h", "BF16", "[2]", 1, 5),
                   entry("g", "F16", "[2]", 5, 9), entry("w", "F32", "[2]", 9, 17)});
    Bytes data = {0xAB};
    for (uint16_t h : {uint16_t{0x3f80}, uint16_t{0xc040}})  // bf16 1.0, -3.0
        file_test::append(data, h);
    for (uint16_t h : {uint16_t{0x3c00}, uint16_t{0x0001}})  // f16 1.0, 2^-24
        file_test::append(data, h);
    for (float x : {0.25f, -7.5f}) file_test::append(data, x);
    Bytes raw = raw_safetensors(header, data, /*pad=*/false);
    if (header.size() % 2 == 1) raw = raw_safetensors(header + " ", data, false);
    write_bytes(path, raw);

    const io::SafetensorsFile f = io::SafetensorsFile::open(path);
    ASSERT_EQ(f.tensors().size(), 3u);
    EXPECT_EQ(f.find("flag"), nullptr);
    ASSERT_NE(f.unsupported_dtype("flag"), nullptr);
    EXPECT_EQ(*f.unsupported_dtype("flag"), "U8");
    EXPECT_EQ(f.tensors()[0].name, "h");
    EXPECT_EQ(reinterpret_cast<uintptr_t>(f.find("h")->data) % 2, 1u);
    EXPECT_NE(reinterpret_cast<uintptr_t>(f.find("w")->data) % 4, 0u);
    float out[2];
    io::tensor_to_f32(*f.find("h"), out);
    EXPECT_EQ(out[0], 1.0f);
    EXPECT_EQ(out[1], -3.0f);
    io::tensor_to_f32(*f.find("g"), out);
    EXPECT_EQ(out[0], 1.0f);
    EXPECT_EQ(out[1], std::ldexp(1.0f, -24));
    io::tensor_to_f32(*f.find("w"), out);
    EXPECT_EQ(out[0], 0.25f);
    EXPECT_EQ(out[1], -7.5f);
}

TEST(SafetensorsFile, IsMovable) {
    ScratchDir dir;
    const std::string path = dir.file("m.safetensors");
    io::write_safetensors(path, {tensor("a", {2}, {1.0f, 2.0f})}, io::TensorDtype::BF16);
    io::SafetensorsFile f = io::SafetensorsFile::open(path);
    const uint8_t* data = f.find("a")->data;
    io::SafetensorsFile g = std::move(f);
    EXPECT_EQ(g.find("a")->data, data);
    EXPECT_EQ(g.metadata().at("format"), "pt");
}

// --- writer errors and crash safety --------------------------------------------------------------

TEST(SafetensorsWrite, FailingFillLeavesTheOldFileAndNoTemporary) {
    ScratchDir dir;
    const std::string path = dir.file("keep.safetensors");
    io::write_safetensors(path, {tensor("a", {2}, {1.0f, 2.0f})}, io::TensorDtype::F32);
    const Bytes before = read_bytes(path);
    std::vector<io::TensorToWrite> tensors = {
        tensor("a", {1000}, std::vector<float>(1000, 3.0f)),
        {"b", {4}, [](float*) { throw std::runtime_error("disk on fire"); }}};
    file_test::expect_error_about(
        "writing", [&] { io::write_safetensors(path, tensors, io::TensorDtype::BF16); }, path,
        {"while producing tensor 'b'", "disk on fire"});
    EXPECT_EQ(read_bytes(path), before);
    EXPECT_FALSE(std::filesystem::exists(io::atomic_temp_path(path)));
    size_t files = 0;
    for (const auto& e : std::filesystem::directory_iterator(dir.path())) {
        (void)e;
        ++files;
    }
    EXPECT_EQ(files, 1u);
}

TEST(SafetensorsWrite, RefusesBadTensorLists) {
    ScratchDir dir;
    const std::string path = dir.file("bad.safetensors");
    auto expect_refused = [&](const std::vector<io::TensorToWrite>& tensors,
                              const std::string& phrase) {
        file_test::expect_error_about(
            "writing", [&] { io::write_safetensors(path, tensors, io::TensorDtype::F32); }, path,
            {phrase});
        EXPECT_FALSE(std::filesystem::exists(path));
    };
    expect_refused({tensor("a", {1}, {1}), tensor("a", {1}, {2})}, "tensor 'a' is listed twice");
    expect_refused({tensor("a", {2, -1}, {})}, "negative dimension in shape [2, -1]");
    expect_refused({tensor("", {1}, {1})}, "empty name");
    expect_refused({tensor("__metadata__", {1}, {1})}, "'__metadata__'");
    expect_refused({io::TensorToWrite{"a", {1}, nullptr}}, "tensor 'a' has no fill");
    expect_refused({tensor("a", {int64_t{1} << 40, int64_t{1} << 40}, {})}, "too large");
    file_test::expect_error_about("writing",
                                  [&] {
                                      io::write_safetensors(path, {tensor("a", {1}, {1})},
                                                            io::TensorDtype::F32,
                                                            {{"k", "\xff\xfe"}});
                                  },
                                  path, {"not valid UTF-8"});
}

}  // namespace
}  // namespace tinygpt
