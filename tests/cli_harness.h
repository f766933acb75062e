// Harness for end-to-end tests of the `tinygpt` binary: runs it as a child process
// (posix_spawn) with stdout and stderr redirected to files in a fresh mkdtemp directory (removed
// afterwards), and checks that bad input ends in one clean `error: ...` line.
#pragma once
#include <fcntl.h>
#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "scratch_dir.h"

extern char** environ;

namespace tinygpt::test {

namespace fs = std::filesystem;

struct RunResult {
    bool exited = false;  // WIFEXITED
    int exit_code = -1;   // WEXITSTATUS when exited
    int signal = 0;       // WTERMSIG when killed by a signal
    bool timed_out = false;
    std::string command, out, err;

    // For failure messages: the command, how it ended and what it printed.
    std::string describe() const {
        std::ostringstream s;
        s << "command: " << command << "\n";
        if (timed_out) s << "timed out (killed)\n";
        if (exited)
            s << "exit code " << exit_code << "\n";
        else
            s << "killed by signal " << signal << " (" << strsignal(signal) << ")\n";
        s << "--- stdout ---\n" << out << "--- stderr ---\n" << err << "--------------";
        return s.str();
    }
};

inline std::string read_file(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

inline void write_file(const fs::path& path, const std::string& contents) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << contents;
    ASSERT_TRUE(out.good()) << "cannot write " << path;
}

inline std::vector<std::string> split_lines(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
}

inline bool starts_with(const std::string& s, const std::string& prefix) {
    return s.rfind(prefix, 0) == 0;
}

// Runs `binary` (run_tinygpt: TINYGPT_BINARY) with `args`, stdout/stderr to files under `dir`,
// stdin from /dev/null. OMP_NUM_THREADS=1 in the child: the models are tiny, and the machine may be
// shared. signal_after_ms >= 0 sends `signal_to_send` (default SIGINT: Ctrl-C) to the child after
// that many milliseconds and, if `signal_after_output` is not empty, once its stdout holds that
// text (a loaded machine can take longer than any fixed delay to reach the point under test).
inline RunResult run_program(const std::string& binary, const std::vector<std::string>& args,
                             const fs::path& dir, int timeout_s = 120, int signal_after_ms = -1,
                             int signal_to_send = SIGINT,
                             const std::string& signal_after_output = "") {
    RunResult r;
    r.command = binary;
    for (const auto& a : args) r.command += " " + a;
    const fs::path out_path = dir / "child.stdout", err_path = dir / "child.stderr";

    std::vector<std::string> argv_storage{binary};
    argv_storage.insert(argv_storage.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : argv_storage) argv.push_back(a.data());
    argv.push_back(nullptr);

    std::vector<std::string> env_storage;
    for (char** e = environ; *e; ++e)
        if (!starts_with(*e, "OMP_NUM_THREADS=") && !starts_with(*e, "OPENBLAS_NUM_THREADS="))
            env_storage.emplace_back(*e);
    env_storage.emplace_back("OMP_NUM_THREADS=1");
    env_storage.emplace_back("OPENBLAS_NUM_THREADS=1");
    std::vector<char*> envp;
    for (auto& e : env_storage) envp.push_back(e.data());
    envp.push_back(nullptr);

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0644);
    posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0644);
    pid_t pid = 0;
    const int rc = posix_spawn(&pid, binary.c_str(), &actions, nullptr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) {
        r.err = "posix_spawn failed: " + std::string(std::strerror(rc));
        r.exited = true;
        r.exit_code = -1;
        return r;
    }

    const auto start = std::chrono::steady_clock::now();
    const auto deadline = start + std::chrono::seconds(timeout_s);
    bool interrupted = false;
    int status = 0;
    for (;;) {
        if (signal_after_ms >= 0 && !interrupted &&
            std::chrono::steady_clock::now() - start > std::chrono::milliseconds(signal_after_ms) &&
            (signal_after_output.empty() ||
             read_file(out_path).find(signal_after_output) != std::string::npos)) {
            kill(pid, signal_to_send);
            interrupted = true;
        }
        const pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid) break;
        if (w < 0 && errno != EINTR) break;
        if (std::chrono::steady_clock::now() > deadline) {
            r.timed_out = true;
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    r.exited = WIFEXITED(status);
    if (r.exited) r.exit_code = WEXITSTATUS(status);
    if (WIFSIGNALED(status)) r.signal = WTERMSIG(status);
    r.out = read_file(out_path);
    r.err = read_file(err_path);
    return r;
}

inline RunResult run_tinygpt(const std::vector<std::string>& args, const fs::path& dir,
                             int timeout_s = 120, int signal_after_ms = -1,
                             int signal_to_send = SIGINT,
                             const std::string& signal_after_output = "") {
    return run_program(TINYGPT_BINARY, args, dir, timeout_s, signal_after_ms, signal_to_send,
                       signal_after_output);
}

// Some readable text, long enough for many ctx-16 windows.
inline std::string make_corpus_text(size_t bytes) {
    static const char* kLines[] = {
        "First Citizen:\nBefore we proceed any further, hear me speak.\n\n",
        "All:\nSpeak, speak.\n\n",
        "First Citizen:\nYou are all resolved rather to die than to famish?\n\n",
        "ROMEO:\nBut, soft! what light through yonder window breaks?\n\n",
    };
    std::string text;
    for (size_t i = 0; text.size() < bytes; ++i) text += kLines[i % 4];
    text.resize(bytes);
    return text;
}

class CliTest : public ::testing::Test {
  protected:
    void SetUp() override { write_file(corpus_, make_corpus_text(8192)); }

    RunResult run(const std::vector<std::string>& args) { return run_tinygpt(args, dir_); }

    // `<subcommand> --corpus <corpus> <tiny shape> <overrides>`: each tiny flag is left out when
    // `overrides` sets it (the CLI rejects a flag given twice). Overrides keep their order; a
    // pair with an empty value is a bare flag (e.g. {"--json", ""}).
    static std::vector<std::string> tiny_args(
        const std::string& subcommand, const fs::path& corpus,
        const std::vector<std::pair<std::string, std::string>>& overrides) {
        std::vector<std::pair<std::string, std::string>> base = {{"--corpus", corpus.string()},
                                                                 {"--layers", "1"},
                                                                 {"--d-model", "16"},
                                                                 {"--heads", "2"},
                                                                 {"--d-mlp", "32"},
                                                                 {"--ctx", "16"},
                                                                 {"--batch", "2"},
                                                                 {"--steps", "1"}};
        if (subcommand == "train") base.emplace_back("--sample-tokens", "0");
        std::vector<std::string> args{subcommand};
        auto overridden = [&](const std::string& flag) {
            for (const auto& [f, v] : overrides)
                if (f == flag) return true;
            return false;
        };
        for (const auto& [flag, value] : base) {
            if (overridden(flag)) continue;
            args.push_back(flag);
            args.push_back(value);
        }
        for (const auto& [flag, value] : overrides) {
            args.push_back(flag);
            if (!value.empty()) args.push_back(value);
        }
        return args;
    }

    RunResult train(const std::vector<std::pair<std::string, std::string>>& overrides) {
        return run(tiny_args("train", corpus_, overrides));
    }

    test::ScratchDir scratch_{"cli"};
    const fs::path& dir_ = scratch_.path();
    const fs::path corpus_ = dir_ / "corpus.txt";
};

class CliErrors : public CliTest {};
class CliRuns : public CliTest {};

// A bad input: exited (no signal), non-zero, and stderr holds exactly one line (besides
// "warning: " lines), which starts with "error: " and contains every string of `names`.
inline void expect_clean_error(const RunResult& r, const std::vector<std::string>& names) {
    EXPECT_FALSE(r.timed_out) << r.describe();
    ASSERT_TRUE(r.exited) << "the process crashed instead of reporting an error\n" << r.describe();
    EXPECT_NE(r.exit_code, 0) << "bad input must give a non-zero exit\n" << r.describe();
    std::vector<std::string> lines;
    for (const auto& line : split_lines(r.err))
        if (!line.empty() && !starts_with(line, "warning: ")) lines.push_back(line);
    EXPECT_EQ(lines.size(), 1u) << "expected exactly one 'error: ...' line on stderr\n"
                                << r.describe();
    ASSERT_FALSE(lines.empty()) << "nothing on stderr\n" << r.describe();
    const std::string& line = lines[0];
    EXPECT_TRUE(starts_with(line, "error: ")) << "the message must start with 'error: '\n"
                                              << r.describe();
    for (const auto& name : names)
        EXPECT_NE(line.find(name), std::string::npos)
            << "the message should name '" << name << "'\n"
            << r.describe();
    EXPECT_EQ(r.out.find("\ndone"), std::string::npos) << "a failed run must not report done\n"
                                                       << r.describe();
}

}  // namespace tinygpt::test
