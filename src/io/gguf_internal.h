// Internals shared by the GGUF reader and writer (src/io/gguf_*.cpp); not part of the public API.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "io/gguf_file.h"

namespace tinygpt::io::gguf_detail {

inline constexpr char kGgufMagic[4] = {'G', 'G', 'U', 'F'};
inline constexpr uint32_t kWriteVersion = 3;
inline constexpr uint32_t kDefaultAlignment = 32;  // GGUF_DEFAULT_ALIGNMENT
inline constexpr uint32_t kMaxDims = 4;            // GGML_MAX_DIMS
inline constexpr size_t kMaxNameBytes = 63;        // ggml: name.length() < GGML_MAX_NAME (64)
inline constexpr const char* kAlignmentKey = "general.alignment";

inline bool is_power_of_two(uint64_t v) {
    return v != 0 && (v & (v - 1)) == 0;
}

// F32, F16, BF16 or Q8_0.
bool loadable_type(uint32_t type);

// The element count of a tensor of dims `ne` and type `type` (a loadable one), after checking
// 1 ≤ dims ≤ 4, every dim ≥ 1, a numel and a byte size that fit int64, and a Q8_0 row that is a
// multiple of 32; throws tinygpt::Error "<what>: ..." saying which.
int64_t checked_numel(const std::vector<int64_t>& ne, GgmlType type, const std::string& what);

// A name for a message: quoted, shortened to 80 characters, control bytes escaped.
std::string quoted_name(const std::string& name);

}  // namespace tinygpt::io::gguf_detail
