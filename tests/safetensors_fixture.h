// Helpers for the safetensors tests (test_safetensors*.cpp): raw files built byte by byte, written
// independently of the writer under test, and the error-message check shared with the .tinygpt
// tests.
#pragma once
#include <gtest/gtest.h>

#include <cstring>
#include <initializer_list>
#include <string>
#include <vector>

#include "io/hf_checkpoint.h"
#include "io/safetensors.h"
#include "model_file_fixture.h"

namespace tinygpt::safetensors_test {

using file_test::Bytes;
using file_test::ScratchDir;

// u64 header length, the header (padded with spaces to a multiple of 8 when `pad`), then data.
inline Bytes raw_safetensors(const std::string& header, const Bytes& data, bool pad = true) {
    std::string text = header;
    if (pad) text.append((8 - text.size() % 8) % 8, ' ');
    // resize + memcpy rather than insert(): GCC 12 warns falsely (-Wstringop-overflow) on the
    // latter.
    const uint64_t header_len = text.size();
    Bytes b(8 + text.size() + data.size());
    std::memcpy(b.data(), &header_len, 8);
    if (!text.empty()) std::memcpy(b.data() + 8, text.data(), text.size());
    if (!data.empty()) std::memcpy(b.data() + 8 + text.size(), data.data(), data.size());
    return b;
}

// A header entry: "name":{"dtype":..,"shape":..,"data_offsets":[begin,end]}.
inline std::string entry(const std::string& name, const std::string& dtype,
                         const std::string& shape, uint64_t begin, uint64_t end) {
    return "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape +
           ",\"data_offsets\":[" + std::to_string(begin) + "," + std::to_string(end) + "]}";
}

// A header object of entries, built with append (GCC 12 warns falsely, -Wrestrict, on
// "literal" + std::string).
inline std::string header_of(std::initializer_list<std::string> entries) {
    std::string s = "{";
    for (const std::string& e : entries) {
        if (s.size() > 1) s.append(",");
        s.append(e);
    }
    return s.append("}");
}

inline void expect_safetensors_open_error(const std::string& path,
                                          const std::vector<std::string>& phrases) {
    file_test::expect_error_about(
        "opening", [&] { io::SafetensorsFile::open(path); }, path, phrases);
}

inline void expect_checkpoint_error(const std::string& dir, const std::string& message_path,
                                    const std::vector<std::string>& phrases) {
    file_test::expect_error_about(
        "opening", [&] { io::HfCheckpoint::open_dir(dir); }, message_path, phrases);
}

// A TensorToWrite whose values are `values` (copied into the fill).
inline io::TensorToWrite tensor(const std::string& name, std::vector<int64_t> shape,
                                std::vector<float> values) {
    return io::TensorToWrite{name, std::move(shape), [values](float* dst) {
                                 std::copy(values.begin(), values.end(), dst);
                             }};
}

}  // namespace tinygpt::safetensors_test
