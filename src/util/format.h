// Small text formatting shared by messages and reports.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace tinygpt {

// "[16, 32]": a tensor shape (or ggml's ne, innermost first) as messages and `inspect` show it.
inline std::string shape_string(const std::vector<int64_t>& shape) {
    std::string s = "[";
    for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
    return s + "]";
}

// 'name' in quotes, cut to 80 characters: a name read from a file, in a message.
inline std::string in_quotes(const std::string& name) {
    return "'" + (name.size() > 80 ? name.substr(0, 77) + "..." : name) + "'";
}

}  // namespace tinygpt
