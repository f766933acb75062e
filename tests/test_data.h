// Paths of the checked-in test data (tests/data) that several test files read. Defined once here:
// the test files are compiled in batches as one translation unit each (UNITY_BUILD,
// tests/CMakeLists.txt), where two files' definitions of the same name would clash.
#pragma once
#include <filesystem>

namespace tinygpt::test {

// The small Hugging Face checkpoints and their expected outputs.
inline const std::filesystem::path kHfData = std::filesystem::path(TINYGPT_TEST_DATA) / "hf";

}  // namespace tinygpt::test
