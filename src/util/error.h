// One exception type for everything a user can get wrong (flags, files, corpora, diverging
// training). The CLI catches it, prints "error: <what>" and exits non-zero.
#pragma once
#include <stdexcept>
#include <string>

namespace tinygpt {

struct Error : std::runtime_error {
    explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// Throws Error(message) unless ok: for validating flags and configs.
inline void require(bool ok, const std::string& message) {
    if (!ok) throw Error(message);
}

}  // namespace tinygpt
