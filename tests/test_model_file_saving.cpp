// Random header mutations and fuzzing, and crash-safe saving: failed saves leave nothing behind,
// and a writer SIGKILLed mid-save leaves the old or the new file.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <random>
#include <thread>

#include "io/atomic_write.h"
#include "io/format_internal.h"
#include "io/model_file.h"
#include "model/params.h"
#include "model_file_fixture.h"
#include "sanitizer.h"
#include "util/error.h"
#include "util/rng.h"

namespace tinygpt {
namespace {

using namespace file_test;

TEST_F(ModelFileTest, HostileRandomHeaderMutationsNeverCrash) {
    // v2 headers have no checksum: random single-byte edits must load or give a path-prefixed
    // Error.
    SaveOptions options;
    options.version = 2;
    const Bytes b = read_bytes(save(moe, "m.tinygpt", options));
    uint32_t hl;
    std::memcpy(&hl, b.data() + 8, 4);
    const std::string path = dir.file("mutant.tinygpt");
    std::mt19937 gen(1234);
    int loaded = 0, refused = 0;
    for (int i = 0; i < 400; ++i) {
        Bytes bad = b;
        const size_t pos = std::uniform_int_distribution<size_t>(0, 16 + hl - 1)(gen);
        bad[pos] = static_cast<uint8_t>(std::uniform_int_distribution<int>(0, 255)(gen));
        write_bytes(path, bad);
        try {
            ModelFile f = ModelFile::read(path);
            ++loaded;
        } catch (const Error& e) {
            ASSERT_EQ(std::string(e.what()).rfind(path + ": ", 0), 0u) << e.what();
            ++refused;
        }
    }
    EXPECT_GT(refused, 0);
    EXPECT_EQ(loaded + refused, 400);
}

// Replaces one randomly chosen value anywhere in `j` by a random value of a random type.
void mutate_random_value(json& j, std::mt19937& gen) {
    std::vector<json*> nodes;
    std::vector<json*> stack = {&j};
    while (!stack.empty()) {
        json* node = stack.back();
        stack.pop_back();
        nodes.push_back(node);
        if (node->is_structured())
            for (auto& child : *node) stack.push_back(&child);
    }
    json* target = nodes[std::uniform_int_distribution<size_t>(0, nodes.size() - 1)(gen)];
    switch (std::uniform_int_distribution<int>(0, 9)(gen)) {
        case 0:
            *target = nullptr;
            break;
        case 1:
            *target = "text";
            break;
        case 2:
            *target = -1;
            break;
        case 3:
            *target = std::numeric_limits<uint64_t>::max();
            break;
        case 4:
            *target = 1.5;
            break;
        case 5:
            *target = json::array({1, 2, 3});
            break;
        case 6:
            *target = json::object({{"x", 1}});
            break;
        case 7:
            *target = true;
            break;
        case 8:
            *target = 0;
            break;
        default:
            if (target->is_number_unsigned())
                *target = target->get<uint64_t>() + 64;
            else if (target->is_array() && !target->empty())
                target->erase(target->size() - 1);
            else if (target->is_object() && !target->empty())
                target->erase(target->begin());
            break;
    }
}

TEST_F(ModelFileTest, HostileStructuredHeaderFuzzNeverCrashes) {
    std::mt19937 gen(99);
    int refused = 0;
    // Fewer rounds under the sanitizers (25 ms each there): that build also runs the libFuzzer
    // targets of these readers (fuzz/run.sh), which mutate far more.
    const int rounds = test::kUnderAddressSanitizer ? 100 : 300;
    // v3: valid checksums, so every mutation reaches the structural checks.
    const Bytes v3 = read_bytes(save(moe, "fuzz3.tinygpt"));
    const std::string path = dir.file("fuzzed.tinygpt");
    for (int i = 0; i < rounds; ++i) {
        write_bytes(path, rewrite_v3(v3, [&](json& h) {
                        for (int k = 0; k < 1 + i % 3; ++k) mutate_random_value(h, gen);
                    }));
        try {
            ModelFile f = ModelFile::read(path);
        } catch (const Error& e) {
            ASSERT_EQ(std::string(e.what()).rfind(path + ": ", 0), 0u) << e.what();
            ++refused;
        }
    }
    // v2: the original's header.
    const ModelConfig cfg = small_config(true);
    const Bytes v2 = training_fp32_file(2, cfg, original_manifest(cfg, 70), true, 1);
    uint32_t hl;
    std::memcpy(&hl, v2.data() + 8, 4);
    const json header = json::parse(v2.begin() + 12, v2.begin() + 12 + hl);
    for (int i = 0; i < rounds; ++i) {
        json h = header;
        for (int k = 0; k < 1 + i % 3; ++k) mutate_random_value(h, gen);
        Bytes b = original_file(2, h, 1);
        b.insert(b.end(), v2.begin() + 16 + hl, v2.end());
        write_bytes(path, b);
        try {
            ModelFile f = ModelFile::read(path);
        } catch (const Error& e) {
            ASSERT_EQ(std::string(e.what()).rfind(path + ": ", 0), 0u) << e.what();
            ++refused;
        }
    }
    EXPECT_GT(refused, rounds);
}

// --- saving: failures and crashes
// ---------------------------------------------------------------------

TEST_F(ModelFileTest, SaveErrorsNameThePathAndLeaveNothingBehind) {
    const std::string missing = dir.file("no-such-dir/model.tinygpt");
    expect_save_error([&] { save(dense, "no-such-dir/model.tinygpt"); }, missing,
                      {"No such file or directory"});
    const std::string target_dir = dir.file("a-directory");
    fs::create_directories(target_dir);
    expect_save_error([&] { save(dense, "a-directory"); }, target_dir, {"is a directory"});
    if (geteuid() != 0) {  // root ignores permissions
        const fs::path ro = dir.path() / "read-only";
        fs::create_directories(ro);
        fs::permissions(ro, fs::perms::owner_read | fs::perms::owner_exec);
        const std::string path = (ro / "model.tinygpt").string();
        expect_save_error([&] { save(dense, "read-only/model.tinygpt"); }, path,
                          {"Permission denied"});
        fs::permissions(ro, fs::perms::owner_all);
    }
}

TEST_F(ModelFileTest, SaveFailingMidWriteKeepsTheOldFile) {
    // A file-size limit makes write() fail with EFBIG part-way (as a full disk would with ENOSPC).
    const std::string path = save(dense, "keep.tinygpt");
    const Bytes before = read_bytes(path);
    const FlatModel big = make_model(moe.cfg, 77);
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        // No signal(SIGXFSZ, SIG_IGN) here: the writer must survive the limit on its own.
        struct rlimit lim {};
        lim.rlim_cur = lim.rlim_max = 20000;
        setrlimit(RLIMIT_FSIZE, &lim);
        int code = 0;
        try {
            save_model_file(path, big.cfg, big.w.data(), big.m.data(), big.v.data(), state);
            code = 1;  // should have failed
        } catch (const Error& e) {
            const std::string msg = e.what();
            code = msg.rfind(path + ": ", 0) == 0 && msg.find("cannot write") != std::string::npos
                       ? 0
                       : 2;
        }
        _exit(code);
    }
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0) << "1: the save succeeded, 2: wrong message";
    EXPECT_EQ(read_bytes(path), before);
    for (const auto& entry : fs::directory_iterator(dir.path()))
        EXPECT_EQ(entry.path().filename().string().find(".tmp."), std::string::npos)
            << entry.path();
}

TEST_F(ModelFileTest, SaveThroughASymlinkReplacesItsTargetAndKeepsTheLink) {
    const std::string run3 = save(dense, "run3.tinygpt");
    const std::string latest = dir.file("latest.tinygpt");
    fs::create_symlink("run3.tinygpt", latest);  // relative, as `ln -s` makes it
    save_model_file(latest, moe.cfg, moe.w.data(), moe.m.data(), moe.v.data(), state);
    EXPECT_TRUE(fs::is_symlink(latest));
    EXPECT_EQ(ModelFile::read(run3).config().experts, moe.cfg.experts);
    // A dangling link: its target is created.
    const std::string dangling = dir.file("next.tinygpt");
    fs::create_symlink(dir.file("run4.tinygpt"), dangling);
    save_model_file(dangling, dense.cfg, dense.w.data(), dense.m.data(), dense.v.data(), state);
    EXPECT_TRUE(fs::is_symlink(dangling));
    EXPECT_TRUE(fs::is_regular_file(dir.file("run4.tinygpt")));
}

TEST_F(ModelFileTest, SaveNeverReplacesAFifoOrOtherSpecialFile) {
    const std::string fifo = dir.file("pipe.tinygpt");
    ASSERT_EQ(mkfifo(fifo.c_str(), 0644), 0);
    try {
        save_model_file(fifo, dense.cfg, dense.w.data(), dense.m.data(), dense.v.data(), state);
        FAIL() << "saved over a FIFO";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("not a regular file"), std::string::npos) << e.what();
    }
    struct stat st {};
    ASSERT_EQ(lstat(fifo.c_str(), &st), 0);
    EXPECT_TRUE(S_ISFIFO(st.st_mode));
    // The same through a link to it.
    fs::create_symlink(fifo, dir.file("link.tinygpt"));
    EXPECT_THROW(save_model_file(dir.file("link.tinygpt"), dense.cfg, dense.w.data(),
                                 dense.m.data(), dense.v.data(), state),
                 Error);
}

TEST_F(ModelFileTest, SaveRemovesTheTemporaryFilesOfKilledWriters) {
    const std::string path = save(dense, "m.tinygpt");
    // A process that has exited: its pid is free (and not reused this soon).
    const pid_t dead = fork();
    ASSERT_GE(dead, 0);
    if (dead == 0) _exit(0);
    ASSERT_EQ(waitpid(dead, nullptr, 0), dead);
    const std::string stale = dir.file(".m.tinygpt.tmp." + std::to_string(dead));
    const std::string live = dir.file(".m.tinygpt.tmp." + std::to_string(getppid()));
    const std::string other = dir.file(".other.tinygpt.tmp." + std::to_string(dead));
    for (const std::string& f : {stale, live, other}) std::ofstream(f) << "partial";
    save(moe, "m.tinygpt");
    EXPECT_FALSE(fs::exists(stale)) << "the dead writer's temporary file stays";
    EXPECT_TRUE(fs::exists(live)) << "a live process's temporary file was removed";
    EXPECT_TRUE(fs::exists(other)) << "another name's temporary file was removed";
    EXPECT_EQ(ModelFile::read(path).config().experts, moe.cfg.experts);
}

TEST_F(ModelFileTest, TwoProcessesSavingToOneFileTheSecondIsRefusedByPid) {
    const std::string path = save(dense, "run.tinygpt");
    int ready[2];
    ASSERT_EQ(pipe(ready), 0);
    const pid_t holder = fork();
    ASSERT_GE(holder, 0);
    if (holder == 0) {  // holds the claim (as a training run does) until killed
        io::SaveClaim claim(path);
        (void)!write(ready[1], "x", 1);
        for (;;) pause();
    }
    char byte;
    ASSERT_EQ(read(ready[0], &byte, 1), 1);
    try {
        save_model_file(path, moe.cfg, moe.w.data(), moe.m.data(), moe.v.data(), state);
        FAIL() << "saved over a file another process is saving to";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("pid " + std::to_string(holder)), std::string::npos)
            << e.what();
    }
    EXPECT_EQ(ModelFile::read(path).config().experts, dense.cfg.experts);
    // Killed: the kernel drops its lock, and the next save takes the file over.
    kill(holder, SIGKILL);
    ASSERT_EQ(waitpid(holder, nullptr, 0), holder);
    close(ready[0]);
    close(ready[1]);
    save(moe, "run.tinygpt");
    EXPECT_EQ(ModelFile::read(path).config().experts, moe.cfg.experts);
    // This process's own claim does not block its own saves, and is removed when it ends.
    {
        io::SaveClaim mine(path);
        save(dense, "run.tinygpt");
    }
    for (const auto& entry : fs::directory_iterator(dir.path()))
        EXPECT_EQ(entry.path().filename().string().find(".lock"), std::string::npos)
            << entry.path();
}

TEST_F(ModelFileTest, KillDuringSaveLeavesOldOrNewFile) {
    ModelConfig cfg;
    cfg.layers = 4;
    cfg.d_model = 128;
    cfg.heads = 4;
    cfg.d_mlp = 256;
    cfg.ctx = 64;
    cfg.experts = 4;
    cfg.topk = 2;
    const FlatModel a = make_model(cfg, 100), b = make_model(cfg, 200);
    const TrainingState sa = make_state(1), sb = make_state(2);
    const std::string path = dir.file("killed.tinygpt");
    auto t0 = std::chrono::steady_clock::now();
    save_model_file(path, cfg, a.w.data(), a.m.data(), a.v.data(), sa);
    const double save_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    const int max_sleep_us = static_cast<int>(std::clamp(save_ms * 2000.0, 2000.0, 60000.0));
    std::mt19937 gen(42);
    int saw_old = 0, saw_new = 0, left_temp = 0;
    for (int round = 0; round < 10; ++round) {
        const pid_t pid = fork();
        ASSERT_GE(pid, 0);
        if (pid == 0) {
            const auto start = std::chrono::steady_clock::now();
            for (int i = 0; std::chrono::steady_clock::now() - start < std::chrono::seconds(5);
                 ++i) {
                const bool use_b = i % 2 == 0;
                const FlatModel& m = use_b ? b : a;
                try {
                    save_model_file(path, cfg, m.w.data(), m.m.data(), m.v.data(), use_b ? sb : sa);
                } catch (...) {
                    _exit(3);
                }
            }
            _exit(0);
        }
        std::this_thread::sleep_for(
            std::chrono::microseconds(std::uniform_int_distribution<int>(0, max_sleep_us)(gen)));
        kill(pid, SIGKILL);
        int status = 0;
        ASSERT_EQ(waitpid(pid, &status, 0), pid);
        EXPECT_TRUE(WIFSIGNALED(status)) << "the writer exited by itself (status " << status << ")";

        const ModelFile f = ModelFile::read(path);  // must load: old or new content
        const bool is_a = std::memcmp(f.weights(), a.w.data(), a.n * 4) == 0;
        const bool is_b = std::memcmp(f.weights(), b.w.data(), b.n * 4) == 0;
        ASSERT_TRUE(is_a || is_b) << "round " << round << ": the target is neither version";
        EXPECT_EQ(f.training_state().step, is_a ? 1 : 2);
        EXPECT_EQ(std::memcmp(f.adam_v(), (is_a ? a : b).v.data(), a.n * 4), 0);
        (is_a ? saw_old : saw_new)++;
        // The killed writer's temporary file may remain; it is never the target.
        for (const auto& entry : fs::directory_iterator(dir.path())) {
            const std::string name = entry.path().filename().string();
            if (name.rfind(".killed.tinygpt.tmp.", 0) == 0) {
                ++left_temp;
                fs::remove(entry.path());
            }
        }
    }
    EXPECT_EQ(saw_old + saw_new, 10);
    std::printf(
        "[ kill test ] one save %.1f ms; after 10 kills: %d old, %d new, %d temp files left "
        "behind\n",
        save_ms, saw_old, saw_new, left_temp);
}

}  // namespace
}  // namespace tinygpt
