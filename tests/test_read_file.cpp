// io/read_file.h: whole files read in one go, and what bad paths get.
#include <gtest/gtest.h>

#include <fstream>
#include <random>

#include "io/read_file.h"
#include "scratch_dir.h"
#include "util/error.h"

namespace tinygpt::test {
namespace {

std::string read_file_error(const std::string& path) {
    try {
        read_file_bytes(path);
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

TEST(ReadFile, ReadsEveryByteOfFilesWithAndWithoutALength) {
    const ScratchDir dir("read-file");
    std::mt19937 rng(3);
    std::string bytes(200000, '\0');  // several of the growth steps, NULs included
    for (char& c : bytes) c = static_cast<char>(rng());
    std::ofstream(dir.file("big.bin"), std::ios::binary) << bytes;
    EXPECT_EQ(read_file_bytes(dir.file("big.bin")), bytes);
    std::ofstream(dir.file("empty.txt"), std::ios::binary).flush();
    EXPECT_EQ(read_file_bytes(dir.file("empty.txt")), "");
    // /proc files report a length of 0 and still have content.
    EXPECT_NE(read_file_bytes("/proc/self/status").find("Name:"), std::string::npos);
}

TEST(ReadFile, BadPathsNameThePathAndTheReason) {
    const ScratchDir dir("read-file");
    const std::string missing = dir.file("missing.json");
    EXPECT_EQ(read_file_error(missing), missing + ": cannot open: No such file or directory");
    EXPECT_EQ(read_file_error(dir.path().string()), dir.path().string() + ": is a directory");
}

}  // namespace
}  // namespace tinygpt::test
