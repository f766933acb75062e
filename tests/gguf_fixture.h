// Helpers for the GGUF tests (test_gguf_*.cpp): GGUF files built byte by byte from the
// specification, independently of the writer under test, so that hostile variants are easy to
// make and the writer's output can be compared with a hand-built file.
#pragma once
#include <gtest/gtest.h>

#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "io/gguf_file.h"
#include "model_file_fixture.h"

namespace tinygpt::gguf_test {

using file_test::append;
using file_test::Bytes;
using file_test::read_bytes;
using file_test::ScratchDir;
using file_test::write_bytes;

inline void append_bytes(Bytes& b, const Bytes& more) {
    const size_t at = b.size();
    b.resize(at + more.size());
    if (!more.empty()) std::memcpy(b.data() + at, more.data(), more.size());
}

// A GGUF string: u64 length and the bytes.
inline Bytes str(const std::string& s) {
    Bytes b;
    append<uint64_t>(b, s.size());
    file_test::append_text(b, s);
    return b;
}

template <typename T>
inline Bytes le(T v) {
    Bytes b;
    append<T>(b, v);
    return b;
}

// Value types as raw numbers (the GGUF specification's numbering).
enum : uint32_t {
    kU8 = 0,
    kI8 = 1,
    kU16 = 2,
    kI16 = 3,
    kU32 = 4,
    kI32 = 5,
    kF32 = 6,
    kBool = 7,
    kString = 8,
    kArray = 9,
    kU64 = 10,
    kI64 = 11,
    kF64 = 12
};
// ggml types.
enum : uint32_t { kTF32 = 0, kTF16 = 1, kTQ8_0 = 8, kTQ4_K = 12, kTBF16 = 30 };

// A metadata entry: key, value type, value bytes.
inline Bytes kv(const std::string& key, uint32_t type, const Bytes& value) {
    Bytes b = str(key);
    append<uint32_t>(b, type);
    append_bytes(b, value);
    return b;
}
// An array value (after the ARRAY type): element type, count, element bytes.
inline Bytes array_value(uint32_t element_type, uint64_t count, const Bytes& elements) {
    Bytes b;
    append<uint32_t>(b, element_type);
    append<uint64_t>(b, count);
    append_bytes(b, elements);
    return b;
}
// A tensor info.
inline Bytes tensor_info(const std::string& name, const std::vector<int64_t>& ne, uint32_t type,
                         uint64_t offset) {
    Bytes b = str(name);
    append<uint32_t>(b, static_cast<uint32_t>(ne.size()));
    for (int64_t d : ne) append<int64_t>(b, d);
    append<uint32_t>(b, type);
    append<uint64_t>(b, offset);
    return b;
}

// A whole file: header, entries, infos, zero padding to `alignment`, the data region.
struct RawGguf {
    uint32_t version = 3;
    std::optional<uint64_t> n_kv, n_tensors;  // override the counts
    std::vector<Bytes> kvs, infos;
    Bytes data;
    uint32_t alignment = 32;
    bool pad = true;  // pad the infos to `alignment` (only when there is data)
    Bytes tail;       // appended after everything (room that keeps count checks quiet)

    Bytes build() const {
        Bytes b;
        file_test::append_text(b, "GGUF");
        append<uint32_t>(b, version);
        append<uint64_t>(b, n_tensors.value_or(infos.size()));
        append<uint64_t>(b, n_kv.value_or(kvs.size()));
        for (const Bytes& e : kvs) append_bytes(b, e);
        for (const Bytes& e : infos) append_bytes(b, e);
        if (pad && !data.empty()) b.resize((b.size() + alignment - 1) / alignment * alignment, 0);
        append_bytes(b, data);
        append_bytes(b, tail);
        return b;
    }
};

inline Bytes f32_bytes(const std::vector<float>& v) {
    Bytes b(v.size() * 4);
    if (!v.empty()) std::memcpy(b.data(), v.data(), b.size());
    return b;
}

inline void expect_gguf_open_error(const std::string& path,
                                   const std::vector<std::string>& phrases) {
    file_test::expect_error_about(
        "opening", [&] { io::GgufFile::open(path); }, path, phrases);
}

inline io::GgufTensorToWrite tensor(const std::string& name, std::vector<int64_t> ne,
                                    io::GgmlType type, std::vector<float> values) {
    return io::GgufTensorToWrite{name, std::move(ne), type, [values](float* dst) {
                                     std::copy(values.begin(), values.end(), dst);
                                 }};
}

}  // namespace tinygpt::gguf_test
