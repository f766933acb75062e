// GGUF container (src/io/gguf_file.h): GgufValue, round trips of every value type and of the four
// tensor types through write_gguf / GgufFile, the writer's bytes against a file built by hand
// from the specification, alignments, version 2, and crash-safe writing.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>

#include "gguf_fixture.h"
#include "io/atomic_write.h"
#include "io/gguf_file.h"
#include "quant/q8_0.h"
#include "util/half.h"
#include "util/rng.h"

namespace tinygpt {
namespace {

using namespace gguf_test;
using io::GgmlType;
using io::GgufFile;
using io::GgufTensor;
using io::GgufType;
using io::GgufValue;
using Metadata = std::vector<std::pair<std::string, GgufValue>>;

bool exists(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0;
}

void expect_error(const std::function<void()>& action, const std::vector<std::string>& phrases) {
    try {
        action();
        ADD_FAILURE() << "no error; expected one containing '" << phrases.front() << "'";
    } catch (const Error& e) {
        const std::string msg = e.what();
        for (const std::string& p : phrases)
            EXPECT_NE(msg.find(p), std::string::npos) << "missing '" << p << "' in: " << msg;
    }
}

uint32_t f32_bits(double v) {
    return std::bit_cast<uint32_t>(static_cast<float>(v));
}
uint64_t f64_bits(double v) {
    return std::bit_cast<uint64_t>(v);
}

// Same type and the same value, bit for bit for floats.
void expect_same_value(const GgufValue& a, const GgufValue& b, const std::string& key) {
    SCOPED_TRACE(key);
    ASSERT_EQ(a.type(), b.type());
    switch (a.type()) {
        case GgufType::U8:
        case GgufType::U16:
        case GgufType::U32:
        case GgufType::U64:
            EXPECT_EQ(a.as_uint(key), b.as_uint(key));
            return;
        case GgufType::I8:
        case GgufType::I16:
        case GgufType::I32:
        case GgufType::I64:
            EXPECT_EQ(a.as_int(key), b.as_int(key));
            return;
        case GgufType::F32:
            EXPECT_EQ(f32_bits(a.as_float(key)), f32_bits(b.as_float(key)));
            return;
        case GgufType::F64:
            EXPECT_EQ(f64_bits(a.as_float(key)), f64_bits(b.as_float(key)));
            return;
        case GgufType::Bool:
            EXPECT_EQ(a.as_bool(key), b.as_bool(key));
            return;
        case GgufType::String:
            EXPECT_EQ(a.as_string(key), b.as_string(key));
            return;
        case GgufType::Array:
            break;
    }
    ASSERT_EQ(a.array_type(), b.array_type());
    ASSERT_EQ(a.array_size(), b.array_size());
    switch (a.array_type()) {
        case GgufType::String:
            EXPECT_EQ(a.as_string_array(key), b.as_string_array(key));
            return;
        case GgufType::F32:
        case GgufType::F64: {
            const auto x = a.as_float_array(key), y = b.as_float_array(key);
            for (size_t i = 0; i < x.size(); ++i)
                EXPECT_EQ(std::bit_cast<uint32_t>(x[i]), std::bit_cast<uint32_t>(y[i])) << i;
            return;
        }
        case GgufType::Bool:
            EXPECT_EQ(a.array_size(), b.array_size());  // as_int_array refuses bools; bytes below
            return;
        default:
            EXPECT_EQ(a.as_int_array(key), b.as_int_array(key));
            return;
    }
}

Metadata every_value_type() {
    const float nan_payload = std::bit_cast<float>(0x7fc12345u);
    return {
        {"u8", GgufValue::u8(255)},
        {"i8", GgufValue::i8(-128)},
        {"u16", GgufValue::u16(65535)},
        {"i16", GgufValue::i16(-32768)},
        {"u32", GgufValue::u32(4294967295u)},
        {"i32", GgufValue::i32(std::numeric_limits<int32_t>::min())},
        {"u64", GgufValue::u64(std::numeric_limits<uint64_t>::max())},
        {"i64", GgufValue::i64(std::numeric_limits<int64_t>::min())},
        {"f32", GgufValue::f32(-0.0f)},
        {"f32.subnormal", GgufValue::f32(1e-40f)},
        {"f32.nan", GgufValue::f32(nan_payload)},
        {"f64", GgufValue::f64(0.1 + 0.2)},
        {"bool.true", GgufValue::boolean(true)},
        {"bool.false", GgufValue::boolean(false)},
        {"string", GgufValue::string(std::string("h\xc3\xa9llo\0world", 12))},
        {"string.empty", GgufValue::string("")},
        {"a.string", GgufValue::string_array({"", "a", "b c", "\xff\xfe", std::string(300, 'x')})},
        {"a.i32", GgufValue::i32_array({0, -1, std::numeric_limits<int32_t>::max()})},
        {"a.u32", GgufValue::u32_array({0, 4294967295u})},
        {"a.f32", GgufValue::f32_array({1.5f, -INFINITY, nan_payload, 1e-45f})},
        {"a.f64", GgufValue::f64_array({0.1, -1e300})},
        {"a.u8", GgufValue::int_array(GgufType::U8, {0, 255})},
        {"a.i8", GgufValue::int_array(GgufType::I8, {-128, 127})},
        {"a.u16", GgufValue::int_array(GgufType::U16, {65535})},
        {"a.i16", GgufValue::int_array(GgufType::I16, {-32768, 32767})},
        {"a.u64", GgufValue::int_array(GgufType::U64, {0, std::numeric_limits<int64_t>::max()})},
        {"a.i64", GgufValue::int_array(GgufType::I64, {std::numeric_limits<int64_t>::min()})},
        {"a.bool", GgufValue::int_array(GgufType::Bool, {1, 0, 1})},
        {"a.empty", GgufValue::i32_array({})},
        {"a.strings.empty", GgufValue::string_array({})},
    };
}

// --- GgufValue ---------------------------------------------------------------------------------

TEST(GgufValue, TypeNames) {
    EXPECT_STREQ(io::gguf_type_name(GgufType::U8), "uint8");
    EXPECT_STREQ(io::gguf_type_name(GgufType::I16), "int16");
    EXPECT_STREQ(io::gguf_type_name(GgufType::U32), "uint32");
    EXPECT_STREQ(io::gguf_type_name(GgufType::F32), "float32");
    EXPECT_STREQ(io::gguf_type_name(GgufType::Bool), "bool");
    EXPECT_STREQ(io::gguf_type_name(GgufType::String), "string");
    EXPECT_STREQ(io::gguf_type_name(GgufType::Array), "array");
    EXPECT_STREQ(io::gguf_type_name(GgufType::U64), "uint64");
    EXPECT_STREQ(io::gguf_type_name(GgufType::F64), "float64");
}

TEST(GgufValue, IntegersConvertWhenTheValueFits) {
    EXPECT_EQ(GgufValue::u8(200).as_uint("k"), 200u);
    EXPECT_EQ(GgufValue::u8(200).as_int("k"), 200);
    EXPECT_EQ(GgufValue::i8(-5).as_int("k"), -5);
    EXPECT_EQ(GgufValue::i32(7).as_uint("k"), 7u);
    EXPECT_EQ(GgufValue::u64(~0ull).as_uint("k"), ~0ull);
    EXPECT_EQ(GgufValue::i64(-1).as_float("k"), -1.0);
    EXPECT_EQ(GgufValue::u32(3).as_float("k"), 3.0);
    EXPECT_EQ(GgufValue::f32(0.1f).as_float("k"), static_cast<double>(0.1f));
    EXPECT_EQ(GgufValue::f64(0.1).as_float("k"), 0.1);
    EXPECT_TRUE(GgufValue::boolean(true).as_bool("k"));
    EXPECT_EQ(GgufValue::string("abc").as_string("k"), "abc");
    const GgufValue def;
    EXPECT_EQ(def.type(), GgufType::U32);
    EXPECT_EQ(def.as_uint("k"), 0u);
    EXPECT_EQ(def.array_size(), 0u);
}

TEST(GgufValue, MismatchesNameTheKeyAndBothTypes) {
    expect_error([] { GgufValue::i32(-1).as_uint("llama.block_count"); },
                 {"llama.block_count: expected an unsigned integer, found int32 -1"});
    expect_error([] { GgufValue::u64(~0ull).as_int("k"); },
                 {"k: expected an integer, found uint64 18446744073709551615"});
    expect_error([] { GgufValue::string("x").as_float("k"); },
                 {"k: expected a number, found string"});
    expect_error([] { GgufValue::u32(7).as_string("k"); }, {"k: expected string, found uint32 7"});
    expect_error([] { GgufValue::u8(1).as_bool("k"); }, {"expected bool, found uint8 1"});
    expect_error([] { GgufValue::f32(1.0f).as_int("k"); }, {"expected an integer, found float32"});
    expect_error([] { GgufValue::boolean(true).as_uint("k"); }, {"found bool 1"});
    expect_error([] { GgufValue::f32_array({1.0f}).as_string_array("tokenizer.ggml.tokens"); },
                 {"tokenizer.ggml.tokens: expected array of string, found array of float32"});
    expect_error([] { GgufValue::string_array({"a"}).as_int_array("k"); },
                 {"expected array of integers, found array of string"});
    expect_error([] { GgufValue::int_array(GgufType::Bool, {1}).as_int_array("k"); },
                 {"found array of bool"});
    expect_error([] { GgufValue::u32(1).as_float_array("k"); },
                 {"expected array of numbers, found uint32 1"});
}

TEST(GgufValue, Arrays) {
    const GgufValue s = GgufValue::string_array({"a", "bb"});
    EXPECT_EQ(s.type(), GgufType::Array);
    EXPECT_EQ(s.array_type(), GgufType::String);
    EXPECT_EQ(s.array_size(), 2u);
    EXPECT_EQ(s.as_string_array("k")[1], "bb");
    const GgufValue u = GgufValue::u32_array({1, 4294967295u});
    EXPECT_EQ(u.array_type(), GgufType::U32);
    EXPECT_EQ(u.as_int_array("k"), (std::vector<int64_t>{1, 4294967295ll}));
    EXPECT_EQ(GgufValue::i32_array({-3, 4}).as_float_array("k"), (std::vector<float>{-3.0f, 4.0f}));
    EXPECT_EQ(GgufValue::f64_array({0.5}).as_float_array("k"), (std::vector<float>{0.5f}));
    EXPECT_EQ(GgufValue::f32_array({}).array_size(), 0u);
    EXPECT_EQ(GgufValue::u32(5).array_size(), 0u);
    expect_error(
        [] {
            GgufValue::int_array(GgufType::I8, {1, 300});
        },
        {"element 1 (300) does not fit int8"});
    expect_error([] { GgufValue::int_array(GgufType::U64, {-1}); }, {"does not fit uint64"});
    expect_error([] { GgufValue::int_array(GgufType::Bool, {2}); }, {"does not fit bool"});
    expect_error([] { GgufValue::int_array(GgufType::F32, {1}); }, {"not an integer type"});
    expect_error([] { GgufValue::int_array(GgufType::String, {}); }, {"not an integer type"});
}

// --- ggml types ---------------------------------------------------------------------------------

TEST(GgufTypes, GgmlNamesAndSizes) {
    EXPECT_EQ(io::ggml_type_name(0), "F32");
    EXPECT_EQ(io::ggml_type_name(1), "F16");
    EXPECT_EQ(io::ggml_type_name(8), "Q8_0");
    EXPECT_EQ(io::ggml_type_name(12), "Q4_K");
    EXPECT_EQ(io::ggml_type_name(14), "Q6_K");
    EXPECT_EQ(io::ggml_type_name(30), "BF16");
    EXPECT_EQ(io::ggml_type_name(39), "MXFP4");
    EXPECT_EQ(io::ggml_type_name(42), "Q2_0");
    EXPECT_EQ(io::ggml_type_name(43), "type 43");
    EXPECT_EQ(io::ggml_type_name(0xffffffffu), "type 4294967295");
    EXPECT_EQ(io::ggml_tensor_bytes(GgmlType::F32, 10), 40u);
    EXPECT_EQ(io::ggml_tensor_bytes(GgmlType::F16, 10), 20u);
    EXPECT_EQ(io::ggml_tensor_bytes(GgmlType::BF16, 10), 20u);
    EXPECT_EQ(io::ggml_tensor_bytes(GgmlType::Q8_0, 64), 68u);
    expect_error([] { io::ggml_tensor_bytes(static_cast<GgmlType>(12), 256); }, {"Q4_K"});
}

// --- round trips --------------------------------------------------------------------------------

class GgufFileTest : public ::testing::Test {
  protected:
    ScratchDir dir;
    std::string path = dir.file("model.gguf");
};

TEST_F(GgufFileTest, EveryValueTypeRoundTrips) {
    const Metadata md = every_value_type();
    io::write_gguf(path, md, {});
    const GgufFile f = GgufFile::open(path);
    EXPECT_EQ(f.path(), path);
    EXPECT_EQ(f.version(), 3u);
    EXPECT_EQ(f.alignment(), 32u);
    EXPECT_TRUE(f.tensors().empty());
    ASSERT_EQ(f.metadata().size(), md.size());
    for (size_t i = 0; i < md.size(); ++i) {
        EXPECT_EQ(f.metadata()[i].first, md[i].first);  // file order kept
        expect_same_value(f.metadata()[i].second, md[i].second, md[i].first);
        ASSERT_NE(f.find(md[i].first), nullptr);
        EXPECT_EQ(f.find(md[i].first), &f.at(md[i].first));
    }
    EXPECT_EQ(f.at("string").as_string("string").size(), 12u);  // the NUL is kept
    EXPECT_EQ(f.at("a.string").as_string_array("a")[4], std::string(300, 'x'));
    EXPECT_EQ(f.find("absent"), nullptr);
    file_test::expect_error_about("at", [&] { f.at("general.architecture"); }, path,
                                  {"metadata key 'general.architecture' is missing"});
    EXPECT_EQ(f.file_bytes(), read_bytes(path).size());
}

TEST_F(GgufFileTest, WriterBytesMatchAFileBuiltFromTheSpecification) {
    const Metadata md = {
        {"general.architecture", GgufValue::string("llama")},
        {"u8", GgufValue::u8(0xab)},
        {"i8", GgufValue::i8(-2)},
        {"u16", GgufValue::u16(0x1234)},
        {"i16", GgufValue::i16(-3)},
        {"u32", GgufValue::u32(0xdeadbeef)},
        {"i32", GgufValue::i32(-4)},
        {"f32", GgufValue::f32(1.5f)},
        {"bool", GgufValue::boolean(true)},
        {"u64", GgufValue::u64(0x0102030405060708ull)},
        {"i64", GgufValue::i64(-5)},
        {"f64", GgufValue::f64(-2.25)},
        {"tokens", GgufValue::string_array({"a", "bc"})},
        {"types", GgufValue::i32_array({1, -1})},
        {"flags", GgufValue::int_array(GgufType::Bool, {0, 1})},
    };
    const std::vector<float> a = {1.0f, -2.0f, 3.5f};  // 12 bytes, padded to 32
    const std::vector<float> b = {1.0f, 0.5f, -2.0f, 65504.0f};
    io::write_gguf(
        path, md,
        {tensor("a", {3}, GgmlType::F32, a), tensor("b.weight", {2, 2}, GgmlType::F16, b)});

    RawGguf raw;
    raw.kvs = {
        kv("general.architecture", kString, str("llama")),
        kv("u8", kU8, le<uint8_t>(0xab)),
        kv("i8", kI8, le<int8_t>(-2)),
        kv("u16", kU16, le<uint16_t>(0x1234)),
        kv("i16", kI16, le<int16_t>(-3)),
        kv("u32", kU32, le<uint32_t>(0xdeadbeef)),
        kv("i32", kI32, le<int32_t>(-4)),
        kv("f32", kF32, le<float>(1.5f)),
        kv("bool", kBool, le<uint8_t>(1)),
        kv("u64", kU64, le<uint64_t>(0x0102030405060708ull)),
        kv("i64", kI64, le<int64_t>(-5)),
        kv("f64", kF64, le<double>(-2.25)),
        kv("tokens", kArray,
           [] {
               Bytes e = str("a");
               append_bytes(e, str("bc"));
               return array_value(kString, 2, e);
           }()),
        kv("types", kArray,
           [] {
               Bytes e = le<int32_t>(1);
               append_bytes(e, le<int32_t>(-1));
               return array_value(kI32, 2, e);
           }()),
        kv("flags", kArray, array_value(kBool, 2, Bytes{0, 1})),
    };
    raw.infos = {tensor_info("a", {3}, kTF32, 0), tensor_info("b.weight", {2, 2}, kTF16, 32)};
    raw.data = f32_bytes(a);
    raw.data.resize(32, 0);
    for (uint16_t h : {0x3C00, 0x3800, 0xC000, 0x7BFF}) append<uint16_t>(raw.data, h);
    raw.data.resize(64, 0);  // ggml pads after the last tensor too
    EXPECT_EQ(read_bytes(path), raw.build());
}

TEST_F(GgufFileTest, TensorsOfAllFourTypes) {
    Rng rng(3);
    std::vector<float> f32 = {0.0f, -0.0f, 1e-40f, 3.4e38f, -1.0f, 0.1f};
    std::vector<float> f16 = {1.0f, 0.1f, 65504.0f, 6e-8f, -2.0f, 1e-5f, 70000.0f, 0.0f};
    std::vector<float> bf16 = {1.0f, 0.1f, -3.0e38f, 1e-40f};
    std::vector<float> q8(64 * 3);
    for (auto& v : q8) v = static_cast<float>(rng.normal());
    io::write_gguf(
        path, {{"general.architecture", GgufValue::string("test")}},
        {tensor("f32", {3, 2}, GgmlType::F32, f32), tensor("f16", {8}, GgmlType::F16, f16),
         tensor("bf16", {1, 2, 1, 2}, GgmlType::BF16, bf16),
         tensor("q8", {64, 3}, GgmlType::Q8_0, q8)});
    const GgufFile f = GgufFile::open(path);
    ASSERT_EQ(f.tensors().size(), 4u);
    const char* names[] = {"f32", "f16", "bf16", "q8"};
    for (size_t i = 0; i < 4; ++i) {
        EXPECT_EQ(f.tensors()[i].name, names[i]);
        EXPECT_EQ(f.find_tensor(names[i]), &f.tensors()[i]);
        EXPECT_EQ(f.tensors()[i].offset % 32, 0u);
        if (i > 0) {
            EXPECT_GT(f.tensors()[i].offset, f.tensors()[i - 1].offset);
        }
    }
    EXPECT_EQ(f.find_tensor("absent"), nullptr);

    const GgufTensor& t32 = *f.find_tensor("f32");
    EXPECT_EQ(t32.ne, (std::vector<int64_t>{3, 2}));
    EXPECT_EQ(t32.type, GgmlType::F32);
    EXPECT_EQ(t32.numel(), 6);
    EXPECT_EQ(t32.bytes, 24u);
    std::vector<float> out(6);
    io::gguf_tensor_to_f32(t32, out.data());
    for (size_t i = 0; i < 6; ++i) EXPECT_TRUE(file_test::same_bits(out[i], f32[i])) << i;

    const GgufTensor& t16 = *f.find_tensor("f16");
    EXPECT_EQ(t16.bytes, 16u);
    std::vector<uint16_t> h(8);
    std::memcpy(h.data(), t16.data, 16);
    EXPECT_EQ(h[0], 0x3C00);
    EXPECT_EQ(h[1], 0x2E66);  // 0.1 to nearest
    EXPECT_EQ(h[2], 0x7BFF);  // the largest f16
    EXPECT_EQ(h[3], 0x0001);  // 6e-8 → the smallest subnormal (2^-24 ≈ 5.96e-8)
    EXPECT_EQ(h[6], 0x7C00);  // beyond the f16 range: inf, as ggml converts
    out.resize(8);
    io::gguf_tensor_to_f32(t16, out.data());
    for (size_t i = 0; i < 8; ++i) {
        EXPECT_EQ(h[i], float_to_f16(f16[i])) << i;
        EXPECT_TRUE(file_test::same_bits(out[i], f16_to_float(h[i]))) << i;
    }

    const GgufTensor& tb = *f.find_tensor("bf16");
    EXPECT_EQ(tb.ne, (std::vector<int64_t>{1, 2, 1, 2}));
    std::vector<uint16_t> bh(4);
    std::memcpy(bh.data(), tb.data, 8);
    EXPECT_EQ(bh[0], 0x3F80);
    EXPECT_EQ(bh[1], 0x3DCD);  // 0x3DCCCCCD rounds up
    io::gguf_tensor_to_f32(tb, out.data());
    for (size_t i = 0; i < 4; ++i) {
        EXPECT_EQ(bh[i], float_to_bf16(bf16[i])) << i;
        EXPECT_TRUE(file_test::same_bits(out[i], bf16_to_float(bh[i]))) << i;
    }

    const GgufTensor& tq = *f.find_tensor("q8");
    EXPECT_EQ(tq.type, GgmlType::Q8_0);
    EXPECT_EQ(tq.bytes, 6u * 34u);
    std::vector<uint8_t> expected(tq.bytes);
    quant::quantize_q8_0(q8.data(), 192, expected.data());
    EXPECT_EQ(std::vector<uint8_t>(tq.data, tq.data + tq.bytes), expected);
    std::vector<float> deq(192), want(192);
    io::gguf_tensor_to_f32(tq, deq.data());
    quant::dequantize_q8_0(expected.data(), 192, want.data());
    EXPECT_EQ(deq, want);
}

TEST_F(GgufFileTest, LargeTensorsCrossTheWritersChunks) {
    // The writer converts in chunks of 32768 values: a tensor of 38400 values crosses one.
    Rng rng(5);
    std::vector<float> x(64 * 600);
    for (auto& v : x) v = static_cast<float>(rng.normal());
    io::write_gguf(
        path, {},
        {tensor("q", {64, 600}, GgmlType::Q8_0, x), tensor("h", {64, 600}, GgmlType::F16, x)});
    const GgufFile f = GgufFile::open(path);
    std::vector<uint8_t> q(600 * 2 * 34);
    quant::quantize_q8_0(x.data(), static_cast<int64_t>(x.size()), q.data());
    const GgufTensor& tq = *f.find_tensor("q");
    EXPECT_EQ(std::vector<uint8_t>(tq.data, tq.data + tq.bytes), q);
    const GgufTensor& th = *f.find_tensor("h");
    for (size_t i = 0; i < x.size(); ++i) {
        uint16_t v;
        std::memcpy(&v, th.data + 2 * i, 2);
        ASSERT_EQ(v, float_to_f16(x[i])) << i;
    }
}

TEST_F(GgufFileTest, OtherAlignments) {
    for (uint32_t alignment : {1u, 8u, 64u, 4096u}) {
        SCOPED_TRACE(alignment);
        const std::vector<float> a = {1, 2, 3}, b = {4, 5};
        io::write_gguf(path, {{"general.name", GgufValue::string("x")}},
                       {tensor("a", {3}, GgmlType::F32, a), tensor("b", {2}, GgmlType::F32, b)},
                       alignment);
        const Bytes raw = read_bytes(path);
        EXPECT_EQ(raw.size() % alignment, 0u);
        const GgufFile f = GgufFile::open(path);
        EXPECT_EQ(f.alignment(), alignment);
        ASSERT_EQ(f.metadata().size(), 2u);
        EXPECT_EQ(f.metadata()[1].first, "general.alignment");  // appended after the others
        EXPECT_EQ(f.metadata()[1].second.type(), GgufType::U32);
        EXPECT_EQ(f.at("general.alignment").as_uint("a"), alignment);
        auto align_up = [&](uint64_t x) { return (x + alignment - 1) / alignment * alignment; };
        const GgufTensor& tb = f.tensors()[1];
        EXPECT_EQ(tb.offset, align_up(12));
        std::vector<float> out(2);
        io::gguf_tensor_to_f32(tb, out.data());
        EXPECT_EQ(out, b);
        // The data region starts at a multiple of the alignment; the file ends padded.
        const uint64_t data_start = raw.size() - align_up(tb.offset + 8);
        EXPECT_EQ(data_start % alignment, 0u);
        EXPECT_EQ(std::memcmp(raw.data() + data_start, a.data(), 12), 0);
        EXPECT_EQ(std::memcmp(raw.data() + data_start + tb.offset, b.data(), 8), 0);
    }
    // An explicit general.alignment that agrees is written once.
    io::write_gguf(path, {{"general.alignment", GgufValue::u32(64)}},
                   {tensor("a", {1}, GgmlType::F32, {1})}, 64);
    EXPECT_EQ(GgufFile::open(path).metadata().size(), 1u);
    EXPECT_EQ(GgufFile::open(path).alignment(), 64u);
    // The default writes no key.
    io::write_gguf(path, {}, {tensor("a", {1}, GgmlType::F32, {1})});
    EXPECT_TRUE(GgufFile::open(path).metadata().empty());
}

TEST_F(GgufFileTest, ReadsVersion2) {
    RawGguf raw;
    raw.version = 2;
    raw.kvs = {kv("general.architecture", kString, str("llama")), kv("n", kU32, le<uint32_t>(7))};
    raw.infos = {tensor_info("w", {2, 2}, kTF32, 0)};
    raw.data = f32_bytes({1, 2, 3, 4});
    write_bytes(path, raw.build());
    const GgufFile f = GgufFile::open(path);
    EXPECT_EQ(f.version(), 2u);
    EXPECT_EQ(f.at("n").as_uint("n"), 7u);
    std::vector<float> out(4);
    io::gguf_tensor_to_f32(f.tensors()[0], out.data());
    EXPECT_EQ(out, (std::vector<float>{1, 2, 3, 4}));
}

TEST_F(GgufFileTest, AcceptsLayoutsGgmlsWriterDoesNotProduce) {
    // No padding after the last tensor (the data ends the file), tensors out of offset order with
    // a gap, a file without tensors that ends right after its metadata.
    RawGguf raw;
    raw.infos = {tensor_info("late", {1}, kTF32, 64), tensor_info("early", {3}, kTF32, 0)};
    raw.data = f32_bytes({1, 2, 3});
    raw.data.resize(64, 0);
    append_bytes(raw.data, f32_bytes({9}));
    write_bytes(path, raw.build());
    const GgufFile f = GgufFile::open(path);
    float v = 0;
    io::gguf_tensor_to_f32(*f.find_tensor("late"), &v);
    EXPECT_EQ(v, 9.0f);
    RawGguf empty;
    empty.kvs = {kv("k", kBool, le<uint8_t>(0))};
    write_bytes(path, empty.build());
    EXPECT_FALSE(GgufFile::open(path).at("k").as_bool("k"));
}

TEST_F(GgufFileTest, MovedFileKeepsItsTensorsValid) {
    io::write_gguf(path, {}, {tensor("a", {2}, GgmlType::F32, {1.5f, 2.5f})});
    GgufFile f = GgufFile::open(path);
    GgufFile g = std::move(f);
    std::vector<float> out(2);
    io::gguf_tensor_to_f32(*g.find_tensor("a"), out.data());
    EXPECT_EQ(out, (std::vector<float>{1.5f, 2.5f}));
    GgufFile h = GgufFile::open(path);
    h = std::move(g);
    io::gguf_tensor_to_f32(h.tensors()[0], out.data());
    EXPECT_EQ(out[1], 2.5f);
}

// --- writer errors and crash safety -------------------------------------------------------------

TEST_F(GgufFileTest, WriterRefusesBadInputBeforeCreatingAFile) {
    auto t = [](std::string name, std::vector<int64_t> ne, GgmlType type = GgmlType::F32) {
        size_t n = 1;  // values only for small valid shapes (the others never reach fill)
        for (int64_t d : ne) n = d >= 1 && d <= 1000 ? n * static_cast<size_t>(d) : 0;
        return tensor(std::move(name), std::move(ne), type, std::vector<float>(n, 0.0f));
    };
    struct Case {
        Metadata md;
        std::vector<io::GgufTensorToWrite> tensors;
        uint32_t alignment;
        std::vector<std::string> phrases;
    };
    const std::string n63(63, 'n'), n64(64, 'n');
    std::vector<Case> cases = {
        {{{"", GgufValue::u32(1)}}, {}, 32, {"empty metadata key"}},
        {{{"k", GgufValue::u32(1)}, {"k", GgufValue::u8(1)}},
         {},
         32,
         {"duplicate metadata key 'k'"}},
        {{{"general.alignment", GgufValue::u32(32)}}, {}, 64, {"general.alignment", "uint32 64"}},
        {{{"general.alignment", GgufValue::u64(64)}}, {}, 64, {"general.alignment"}},
        {{}, {}, 48, {"alignment 48 is not a power of two"}},
        {{}, {}, 0, {"alignment 0 is not a power of two"}},
        {{}, {t("", {1})}, 32, {"empty tensor name"}},
        {{}, {t(n64, {1})}, 32, {"is 64 bytes; ggml allows at most 63"}},
        {{}, {t("a", {1}), t("a", {2})}, 32, {"duplicate tensor name 'a'"}},
        {{}, {t("a", {})}, 32, {"tensor 'a'", "0 dimensions"}},
        {{}, {t("a", {1, 1, 1, 1, 1})}, 32, {"tensor 'a'", "5 dimensions"}},
        {{}, {t("a", {4, 0})}, 32, {"tensor 'a'", "dimension 1 of [4, 0] is 0"}},
        {{}, {t("a", {-1})}, 32, {"dimension 0 of [-1] is -1"}},
        {{}, {t("a", {1ll << 32, 1ll << 32})}, 32, {"element count", "overflows int64"}},
        {{}, {t("a", {1ll << 62})}, 32, {"byte size", "overflows int64"}},
        {{}, {t("q", {48, 2}, GgmlType::Q8_0)}, 32, {"tensor 'q'", "multiple of 32", "48"}},
        {{}, {t("k", {256}, static_cast<GgmlType>(12))}, 32, {"tensor 'k'", "Q4_K"}},
        {{}, {io::GgufTensorToWrite{"f", {1}, GgmlType::F32, nullptr}}, 32, {"no fill"}},
    };
    for (const Case& c : cases) {
        SCOPED_TRACE(c.phrases.front());
        const std::string p = dir.file("new.gguf");
        file_test::expect_error_about(
            "writing", [&] { io::write_gguf(p, c.md, c.tensors, c.alignment); }, p, c.phrases);
        EXPECT_FALSE(exists(p));
        EXPECT_FALSE(exists(io::atomic_temp_path(p)));
    }
    // The limits themselves are fine.
    io::write_gguf(path, {}, {t(n63, {1, 1, 1, 1}), t("q", {32}, GgmlType::Q8_0)});
    EXPECT_NE(GgufFile::open(path).find_tensor(n63), nullptr);
}

TEST_F(GgufFileTest, FailedWriteLeavesTheOldFileIntact) {
    io::write_gguf(path, {{"v", GgufValue::u32(1)}}, {tensor("a", {2}, GgmlType::F32, {1, 2})});
    const Bytes before = read_bytes(path);
    int calls = 0;
    const std::vector<io::GgufTensorToWrite> throwing = {
        tensor("a", {2}, GgmlType::F32, {3, 4}),
        {"b", {2}, GgmlType::F32, [&](float*) {
             ++calls;
             throw std::runtime_error("fill failed on purpose");
         }}};
    file_test::expect_error_about("writing",
                                  [&] {
                                      io::write_gguf(path, {{"v", GgufValue::u32(2)}}, throwing);
                                  },
                                  path, {"fill failed on purpose"});
    EXPECT_EQ(calls, 1);
    EXPECT_EQ(read_bytes(path), before);
    EXPECT_FALSE(exists(io::atomic_temp_path(path)));

    // Non-finite values cannot be quantised: refused, naming the tensor and the index.
    std::vector<float> bad(64, 1.0f);
    bad[37] = NAN;
    file_test::expect_error_about(
        "writing",
        [&] {
            io::write_gguf(path, {}, {tensor("blk.0.ffn_up.weight", {64}, GgmlType::Q8_0, bad)});
        },
        path, {"tensor 'blk.0.ffn_up.weight'", "value 37", "non-finite"});
    bad[37] = -INFINITY;
    file_test::expect_error_about(
        "writing", [&] { io::write_gguf(path, {}, {tensor("q", {64}, GgmlType::Q8_0, bad)}); },
        path, {"tensor 'q'", "value 37 is -inf"});
    EXPECT_EQ(read_bytes(path), before);
    EXPECT_FALSE(exists(io::atomic_temp_path(path)));
    EXPECT_EQ(GgufFile::open(path).at("v").as_uint("v"), 1u);
}

TEST_F(GgufFileTest, FillIsCalledOnceWithTheTensorsBuffer) {
    int calls = 0;
    io::write_gguf(path, {}, {{"a", {5, 3}, GgmlType::BF16, [&](float* dst) {
                                   ++calls;
                                   for (int i = 0; i < 15; ++i) dst[i] = static_cast<float>(i);
                               }}});
    EXPECT_EQ(calls, 1);
    std::vector<float> out(15);
    io::gguf_tensor_to_f32(GgufFile::open(path).tensors()[0], out.data());
    for (int i = 0; i < 15; ++i) EXPECT_EQ(out[i], static_cast<float>(i));
}

}  // namespace
}  // namespace tinygpt
