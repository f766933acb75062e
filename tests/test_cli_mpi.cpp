// `tinygpt train` under mpirun (builds with -DTINYGPT_MPI=ON; skipped otherwise): a run saved
// by 2 ranks resumes exactly on 2 and continues on 1, output comes from rank 0 only, and a
// failing or dying rank ends the whole run with an error instead of a hang.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "cli_harness.h"
#include "io/model_file.h"

namespace tinygpt {
namespace {

using namespace test;
namespace fs = std::filesystem;

#ifdef TINYGPT_MPIRUN

class CliMpi : public CliTest {
  protected:
    static std::vector<std::string> mpirun_flags() {
        std::vector<std::string> f = {"--oversubscribe"};
        if (geteuid() == 0) f.push_back("--allow-run-as-root");
        return f;
    }
    // mpirun -np `ranks` tinygpt <args>
    RunResult mpirun(int ranks, const std::vector<std::string>& args, int timeout_s = 120) {
        std::vector<std::string> all = mpirun_flags();
        all.insert(all.end(), {"-np", std::to_string(ranks), TINYGPT_BINARY});
        all.insert(all.end(), args.begin(), args.end());
        return run_program(TINYGPT_MPIRUN, all, dir_, timeout_s);
    }
    std::vector<std::string> moe_train(int steps, const std::string& out,
                                       std::vector<std::string> extra = {}) const {
        std::vector<std::string> a = {"train",
                                      "--corpus",
                                      corpus_.string(),
                                      "--layers",
                                      "2",
                                      "--d-model",
                                      "16",
                                      "--heads",
                                      "2",
                                      "--d-mlp",
                                      "24",
                                      "--ctx",
                                      "16",
                                      "--batch",
                                      "2",
                                      "--moe-experts",
                                      "4",
                                      "--moe-topk",
                                      "2",
                                      "--moe-jitter",
                                      "0.05",
                                      "--max-lr",
                                      "3e-3",
                                      "--steps",
                                      std::to_string(steps),
                                      "--sample-tokens",
                                      "0",
                                      "--val-split",
                                      "0.1",
                                      "--val-every",
                                      "3",
                                      "--out",
                                      path(out)};
        a.insert(a.end(), extra.begin(), extra.end());
        return a;
    }
    std::string path(const std::string& name) const { return (dir_ / name).string(); }
    static std::vector<nlohmann::json> read_log(const fs::path& p) {
        std::vector<nlohmann::json> records;
        for (const auto& line : split_lines(read_file(p)))
            if (!line.empty()) records.push_back(nlohmann::json::parse(line));
        return records;
    }
    void check_save_and_resume(const std::vector<std::string>& parallel,
                               const std::string& summary);
    static size_t count(const std::string& text, const std::string& what) {
        size_t n = 0;
        for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1))
            ++n;
        return n;
    }
};

// 6 steps on 2 ranks (with `parallel` flags), against 3 steps saved and resumed on 2 ranks (bit
// for bit) and on 1 process (to float tolerance); the file is an ordinary model.
void CliMpi::check_save_and_resume(const std::vector<std::string>& parallel,
                                   const std::string& summary) {
    // Uninterrupted: 6 steps on 2 ranks.
    std::vector<std::string> logged = parallel;
    logged.insert(logged.end(), {"--log", path("full.jsonl")});
    RunResult r = mpirun(2, moe_train(6, "full.tinygpt", logged));
    ASSERT_EQ(r.exit_code, 0) << r.describe();
    EXPECT_EQ(count(r.out, "tinygpt train\n"), 1u) << "one banner: only rank 0 prints\n" << r.out;
    EXPECT_NE(r.out.find(summary), std::string::npos) << r.out;
    // 3 steps, saved, then resumed to 6 on 2 ranks and (a copy) on 1 process.
    std::vector<std::string> stop = parallel;
    stop.insert(stop.end(), {"--stop-at", "3"});
    r = mpirun(2, moe_train(6, "half.tinygpt", stop));
    ASSERT_EQ(r.exit_code, 0) << r.describe();
    fs::copy_file(path("half.tinygpt"), path("half1.tinygpt"));
    std::vector<std::string> resume = {"train",
                                       "--corpus",
                                       corpus_.string(),
                                       "--resume",
                                       path("half.tinygpt"),
                                       "--out",
                                       path("half.tinygpt"),
                                       "--sample-tokens",
                                       "0",
                                       "--log",
                                       path("half.jsonl")};
    resume.insert(resume.end(), parallel.begin(), parallel.end());
    r = mpirun(2, resume);
    ASSERT_EQ(r.exit_code, 0) << r.describe();
    const RunResult one =
        run({"train", "--corpus", corpus_.string(), "--resume", path("half1.tinygpt"), "--out",
             path("half1.tinygpt"), "--sample-tokens", "0", "--log", path("half1.jsonl")});
    ASSERT_EQ(one.exit_code, 0) << one.describe();

    const auto full = read_log(dir_ / "full.jsonl"), two = read_log(dir_ / "half.jsonl"),
               single = read_log(dir_ / "half1.jsonl");
    ASSERT_EQ(full.size(), 6u);
    ASSERT_EQ(two.size(), 3u);
    ASSERT_EQ(single.size(), 3u);
    for (size_t i = 0; i < 3; ++i) {
        // Same ranks: bit for bit. One process with the saved accum 2: to float tolerance.
        EXPECT_EQ(two[i]["loss"].get<double>(), full[i + 3]["loss"].get<double>()) << i;
        EXPECT_NEAR(single[i]["loss"].get<double>(), full[i + 3]["loss"].get<double>(), 1e-4) << i;
    }
    const ModelFile a = ModelFile::read(path("full.tinygpt")),
                    b = ModelFile::read(path("half.tinygpt"));
    const size_t n = ParameterLayout(a.config()).total();
    EXPECT_EQ(std::memcmp(a.weights(), b.weights(), n * sizeof(float)), 0)
        << "resuming on the same ranks is exact";
    EXPECT_EQ(a.training_state().batch * a.training_state().accum, 4)
        << "saved as the one-process equivalent (2 ranks × batch 2)";
    // The 2-rank file is an ordinary model: one process samples from it.
    const RunResult s =
        run({"sample", path("full.tinygpt"), "--tokens", "8", "--temperature", "0"});
    EXPECT_EQ(s.exit_code, 0) << s.describe();
}

TEST_F(CliMpi, SavedOnTwoRanksResumesExactlyOnTwoAndContinuesOnOne) {
    check_save_and_resume({}, "2 ranks: data-parallel 2 × expert-parallel 1");
}

TEST_F(CliMpi, ExpertParallelRunSavesOneFileThatResumesOnTwoAndOne) {
    check_save_and_resume({"--expert-parallel", "2"},
                          "2 ranks: data-parallel 1 × expert-parallel 2 (2 of 4 experts");
}

TEST_F(CliMpi, AnErrorOnOneRankEndsEveryRankNamingIt) {
    // Rank 1 runs in a directory without the corpus (a file missing on one machine).
    const fs::path elsewhere = dir_ / "elsewhere";
    fs::create_directory(elsewhere);
    fs::copy_file(corpus_, dir_ / "c.txt");
    std::vector<std::string> train = {
        "train", "--corpus", "c.txt", "--layers", "1",      "--d-model",       "16", "--heads",
        "2",     "--ctx",    "16",    "--steps",  "100000", "--sample-tokens", "0"};
    std::vector<std::string> args = mpirun_flags();
    args.insert(args.end(), {"-np", "1", "-wdir", dir_.string(), TINYGPT_BINARY});
    args.insert(args.end(), train.begin(), train.end());
    args.insert(args.end(), {":", "-np", "1", "-wdir", elsewhere.string(), TINYGPT_BINARY});
    args.insert(args.end(), train.begin(), train.end());
    const RunResult r = run_program(TINYGPT_MPIRUN, args, dir_, 60);
    EXPECT_FALSE(r.timed_out) << r.describe();
    EXPECT_NE(r.exit_code, 0) << r.describe();
    EXPECT_NE(r.err.find("error (rank 1 of 2): "), std::string::npos) << r.describe();
    EXPECT_NE(r.err.find("c.txt"), std::string::npos) << r.describe();
}

TEST_F(CliMpi, ADeadRankEndsTheRun) {
    // Rank 1 is killed (a crashed machine) while the ranks train: the other must not hang.
    std::string cmd = std::string(TINYGPT_MPIRUN);
    for (const auto& f : mpirun_flags()) cmd += " " + f;
    cmd += " -np 2 " + std::string(TINYGPT_BINARY);
    for (const auto& a : moe_train(100000, "dead.tinygpt")) cmd += " '" + a + "'";
    const std::string script = cmd +
                               " & MP=$!; sleep 3; kill -9 $(awk -v p=$MP '$4 == p {print $1}' "
                               "/proc/[0-9]*/stat | tail -n 1); wait $MP";
    const RunResult r = run_program("/bin/bash", {"-c", script}, dir_, 60);
    EXPECT_FALSE(r.timed_out) << r.describe();
    EXPECT_NE(r.exit_code, 0) << r.describe();
}

TEST_F(CliMpi, RanksWithDifferentCommandsAreRefused) {
    std::vector<std::string> args = mpirun_flags();
    const auto first = moe_train(5, "a.tinygpt"), second = moe_train(6, "a.tinygpt");
    args.insert(args.end(), {"-np", "1", TINYGPT_BINARY});
    args.insert(args.end(), first.begin(), first.end());
    args.insert(args.end(), {":", "-np", "1", TINYGPT_BINARY});
    args.insert(args.end(), second.begin(), second.end());
    const RunResult r = run_program(TINYGPT_MPIRUN, args, dir_, 60);
    EXPECT_NE(r.exit_code, 0) << r.describe();
    EXPECT_NE(r.err.find("differs from rank 0's"), std::string::npos) << r.describe();
    EXPECT_FALSE(fs::exists(path("a.tinygpt")));
}

TEST_F(CliMpi, ExpertParallelMustDivideRanksAndExperts) {
    RunResult r = mpirun(2, moe_train(2, "e.tinygpt", {"--expert-parallel", "3"}));
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.err.find("--expert-parallel 3 must divide the number of ranks (2)"),
              std::string::npos)
        << r.describe();
    EXPECT_FALSE(fs::exists(path("e.tinygpt")));
}

#else

TEST(CliMpi, NeedsAnMpiBuild) {
    GTEST_SKIP() << "built without -DTINYGPT_MPI=ON";
}

#endif

}  // namespace
}  // namespace tinygpt
