// One exception type for everything a user can get wrong (flags, files, corpora, diverging
// training). The CLI catches it, prints "error: <what>" and exits non-zero.
#pragma once
#include <stdexcept>
#include <string>

namespace tinygpt {

struct Error : std::runtime_error {
    explicit Error(const std::string& what) : std::runtime_error(what) {}
};

}  // namespace tinygpt
