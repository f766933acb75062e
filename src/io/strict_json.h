// JSON parsing for headers that may be hostile: nesting is capped (our traversals and dump()
// recurse) and a key repeated within one object is an error. nlohmann would silently keep the
// last of two equal keys, so a file could show one tensor to us and another to a different
// reader.
#pragma once
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

namespace tinygpt::io {

// Throws tinygpt::Error (without a path) naming `what` ("header", "index"): "<what> is not valid
// JSON: ...", "<what> JSON is nested more than 64 levels deep", "<what> JSON has the key 'k'
// twice (in 'parent')".
nlohmann::json parse_json_strict(const uint8_t* text, size_t bytes, const std::string& what);

}  // namespace tinygpt::io
