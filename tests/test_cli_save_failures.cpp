// Periodic saves that fail must not end a training run: with a file-size limit (always) and a
// full disk (a small tmpfs, where it can be mounted), the run warns, goes on, keeps the last good
// file intact and loadable, and only the failed final save ends it, non-zero, naming that file.
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/resource.h>

#include <cstring>

#include "cli_harness.h"
#include "io/model_file.h"

namespace tinygpt {
namespace {

using namespace test;
namespace fs = std::filesystem;

// RLIMIT_FSIZE (ulimit -f) for the children spawned while it lives: posix_spawn cannot set a
// limit in the child, and this process only reads files meanwhile.
class FileSizeLimit {
  public:
    explicit FileSizeLimit(rlim_t bytes) {
        getrlimit(RLIMIT_FSIZE, &saved_);
        rlimit limit = saved_;
        limit.rlim_cur = bytes;
        ok_ = setrlimit(RLIMIT_FSIZE, &limit) == 0;
    }
    ~FileSizeLimit() { setrlimit(RLIMIT_FSIZE, &saved_); }
    bool ok() const { return ok_; }

  private:
    rlimit saved_{};
    bool ok_ = false;
};

class SaveFailures : public CliTest {
  protected:
    std::string path(const std::string& name) const { return (dir_ / name).string(); }
    // The run ended on its final save: non-zero, with stderr's last line the error that says
    // where the last good file is (`last_good`).
    static void expect_final_save_failure(const RunResult& r, int step,
                                          const std::string& last_good) {
        EXPECT_NE(r.exit_code, 0) << r.describe();
        const std::vector<std::string> lines = split_lines(r.err);
        ASSERT_FALSE(lines.empty()) << r.describe();
        EXPECT_TRUE(starts_with(
            lines.back(), "error: the final save (step " + std::to_string(step) + ") failed: "))
            << r.describe();
        EXPECT_NE(lines.back().find(last_good), std::string::npos) << r.describe();
    }
    // Only the models and the corpus: no temporary file of a failed save is left behind.
    static void expect_no_temporary_files(const fs::path& dir) {
        for (const auto& entry : fs::directory_iterator(dir))
            EXPECT_EQ(entry.path().filename().string().find(".tmp."), std::string::npos)
                << entry.path();
    }
};

TEST_F(SaveFailures, FileSizeLimitWarnsKeepsTheOldFileAndFailsOnlyAtTheEnd) {
    const std::string model = path("m.tinygpt");
    ASSERT_EQ(train({{"--out", model}, {"--steps", "2"}}).exit_code, 0);
    const std::string before = read_file(model);
    ASSERT_GT(before.size(), 16384u);

    RunResult r;
    {
        const FileSizeLimit limit(before.size() / 2);
        ASSERT_TRUE(limit.ok()) << std::strerror(errno);
        r = run({"train", "--resume", model, "--out", model, "--steps", "8", "--save-every", "2",
                 "--corpus", corpus_.string()});
    }
    ASSERT_TRUE(r.exited) << "a file-size limit must not kill the run\n" << r.describe();
    EXPECT_NE(r.exit_code, 0) << r.describe();
    // Both periodic saves were tried, warned about, and the run went on to its last step.
    for (const char* step : {"saving step 4 failed", "saving step 6 failed"})
        EXPECT_NE(r.err.find(step), std::string::npos) << r.describe();
    EXPECT_NE(r.err.find(std::strerror(EFBIG)), std::string::npos) << r.describe();
    EXPECT_NE(r.err.find("training goes on, trying again at step 6"), std::string::npos)
        << r.describe();
    EXPECT_NE(r.out.find("step      8/8"), std::string::npos) << r.describe();
    expect_final_save_failure(r, 8, "'" + model + "' still holds what it held before this run");
    // The good file is untouched and loads.
    EXPECT_EQ(read_file(model), before);
    EXPECT_EQ(ModelFile::read(model).training_state().step, 2);
    expect_no_temporary_files(dir_);
}

TEST_F(SaveFailures, FinalSaveFailureWithoutAnyGoodFileSaysSo) {
    const std::string model = path("fresh.tinygpt");
    RunResult r;
    {
        const FileSizeLimit limit(4096);
        ASSERT_TRUE(limit.ok()) << std::strerror(errno);
        r = train({{"--out", model}, {"--steps", "3"}, {"--save-every", "1"}});
    }
    ASSERT_TRUE(r.exited) << r.describe();
    EXPECT_NE(r.exit_code, 0) << r.describe();
    EXPECT_NE(r.err.find("saving step 2 failed"), std::string::npos) << r.describe();
    EXPECT_NE(r.err.find("there is no saved file"), std::string::npos) << r.describe();
    EXPECT_FALSE(fs::exists(model));
    expect_no_temporary_files(dir_);
}

// A full disk: a tmpfs with room for one model file but not for a second one beside it, so the
// first periodic save succeeds and the next ones (the new file next to the old) cannot.
TEST_F(SaveFailures, FullDiskKeepsTheLastGoodSave) {
    const std::string probe = path("probe.tinygpt");
    ASSERT_EQ(train({{"--out", probe}, {"--steps", "6"}}).exit_code, 0);
    const uintmax_t file_bytes = fs::file_size(probe);
    const fs::path mnt = dir_ / "tmpfs";
    fs::create_directories(mnt);
    const std::string options = "size=" + std::to_string(file_bytes * 3 / 2 + 8192);
    if (mount("tmpfs", mnt.c_str(), "tmpfs", 0, options.c_str()) != 0)
        GTEST_SKIP() << "cannot mount a small tmpfs here (" << std::strerror(errno)
                     << "; needs root); the file-size-limit tests cover the failure path";
    struct Unmount {
        fs::path dir;
        ~Unmount() { umount2(dir.c_str(), MNT_DETACH); }
    } unmount{mnt};

    const std::string model = (mnt / "m.tinygpt").string();
    const RunResult r = train({{"--out", model}, {"--steps", "6"}, {"--save-every", "2"}});
    ASSERT_TRUE(r.exited) << r.describe();
    EXPECT_NE(r.exit_code, 0) << r.describe();
    EXPECT_NE(r.out.find("saved " + model + " (step 2"), std::string::npos) << r.describe();
    EXPECT_NE(r.err.find("saving step 4 failed"), std::string::npos) << r.describe();
    EXPECT_NE(r.err.find("the last good file is '" + model + "' (step 2)"), std::string::npos)
        << r.describe();
    expect_final_save_failure(r, 6, "the last good file is '" + model + "' (step 2)");
    EXPECT_EQ(ModelFile::read(model).training_state().step, 2);
    expect_no_temporary_files(mnt);
}

}  // namespace
}  // namespace tinygpt
