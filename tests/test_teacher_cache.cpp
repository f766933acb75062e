// The teacher's top-K kept on disk (train/teacher_cache.h): a warm cache gives the distillation
// loss the same bits without running the teacher; files are keyed by teacher, K and temperature;
// a record cut short by a killed run is dropped, a corrupt one refused; a file another run holds
// is left to it.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <vector>

#include "model/model_weights.h"
#include "scratch_dir.h"
#include "test_util.h"
#include "train/teacher.h"
#include "train/teacher_cache.h"
#include "util/error.h"

namespace tinygpt {
namespace {

namespace fs = std::filesystem;

constexpr int kB = 3, kT = 16, kK = 4;

class TeacherCacheTest : public ::testing::Test {
  protected:
    void SetUp() override {
        cfg_ = test::model_config({.experts = 4, .topk = 2});
        cfg_.ctx = kT;
        teacher_ = ModelWeights::random(cfg_, WeightDtype::F32, 7);
        std::mt19937 rng(3);
        inputs_.resize(kB * kT);
        for (int& t : inputs_) t = static_cast<int>(rng() % cfg_.vocab);
        // The third window repeats the first: found in the cache within the same batch.
        std::copy_n(inputs_.begin(), kT, inputs_.begin() + 2 * kT);
        targets_.resize(inputs_.size());
        for (int& t : targets_) t = static_cast<int>(rng() % cfg_.vocab);
        student_.resize(inputs_.size() * cfg_.vocab);
        std::normal_distribution<float> normal(0.0f, 2.0f);
        for (float& z : student_) z = normal(rng);
    }

  public:
    struct Outcome {
        LogitLoss::Result result;
        std::vector<float> grad;
        int64_t teacher_windows;
    };

  protected:
    // The loss of the batch through a TeacherLoss, with a cache in `dir` unless it is empty.
    Outcome apply(const std::string& dir, int topk = kK, double temperature = 2.0) {
        TeacherLoss loss(teacher_, DistillLossOptions{0.5, temperature}, topk);
        if (!dir.empty())
            loss.set_cache(std::make_unique<TeacherCache>(dir, teacher_, topk, temperature));
        Outcome o;
        o.grad.resize(student_.size());
        o.result = loss.apply(inputs_.data(), targets_.data(), kB, kT, student_.data(),
                              o.grad.data(), 1.0f / (kB * kT));
        o.teacher_windows = loss.teacher_windows();
        return o;
    }
    std::string cache_file() const {
        for (const auto& e : fs::directory_iterator(dir_)) return e.path().string();
        return "";
    }

    test::ScratchDir root_{"cache"};
    const std::string dir_ = root_.file("cache");
    ModelConfig cfg_;
    ModelWeights teacher_;
    std::vector<int> inputs_, targets_;
    std::vector<float> student_;
};

void expect_same(const TeacherCacheTest::Outcome& a, const TeacherCacheTest::Outcome& b) {
    EXPECT_EQ(a.result.loss, b.result.loss);
    EXPECT_EQ(a.result.kl, b.result.kl);
    EXPECT_EQ(a.result.ce, b.result.ce);
    ASSERT_EQ(a.grad.size(), b.grad.size());
    EXPECT_EQ(0, std::memcmp(a.grad.data(), b.grad.data(), a.grad.size() * sizeof(float)));
}

TEST_F(TeacherCacheTest, AWarmCacheSkipsTheTeacherAndChangesNoBit) {
    const Outcome plain = apply("");
    EXPECT_EQ(plain.teacher_windows, kB);
    const Outcome cold = apply(dir_);
    EXPECT_EQ(cold.teacher_windows, 2);  // the repeated window was found already
    expect_same(plain, cold);
    const Outcome warm = apply(dir_);
    EXPECT_EQ(warm.teacher_windows, 0);
    expect_same(plain, warm);

    TeacherCache cache(dir_, teacher_, kK, 2.0);
    EXPECT_TRUE(cache.usable());
    EXPECT_EQ(cache.windows(), 2);
    EXPECT_EQ(cache.note(), "");
    EXPECT_EQ(cache.file_bytes(), fs::file_size(cache.path()));
}

TEST_F(TeacherCacheTest, EachTeacherKAndTemperatureHasItsOwnFile) {
    const std::string path = TeacherCache(dir_, teacher_, kK, 2.0).path();
    EXPECT_EQ(TeacherCache(dir_, teacher_, kK, 2.0).path(), path);
    EXPECT_NE(TeacherCache(dir_, teacher_, kK + 1, 2.0).path(), path);
    EXPECT_NE(TeacherCache(dir_, teacher_, kK, 1.5).path(), path);
    const ModelWeights other = ModelWeights::random(cfg_, WeightDtype::F32, 8);
    EXPECT_NE(TeacherCache(dir_, other, kK, 2.0).path(), path);
    // The same weights in another type are another teacher.
    EXPECT_NE(TeacherCache(dir_, teacher_.converted(WeightDtype::BF16), kK, 2.0).path(), path);
}

TEST_F(TeacherCacheTest, ARecordCutShortIsDroppedAndACorruptOneRefused) {
    const Outcome plain = apply("");
    apply(dir_);  // two records
    const std::string file = cache_file();
    const auto size = fs::file_size(file);
    const auto record = (size - 32) / 2;

    // A killed run leaves the last record cut short: dropped, the first still found.
    fs::resize_file(file, size - 5);
    {
        TeacherCache cache(dir_, teacher_, kK, 2.0);
        EXPECT_EQ(cache.windows(), 1);
        EXPECT_NE(cache.note().find("interrupted write"), std::string::npos) << cache.note();
        EXPECT_EQ(fs::file_size(file), 32 + record);
    }
    const Outcome again = apply(dir_);
    EXPECT_EQ(again.teacher_windows, 1);
    expect_same(plain, again);
    EXPECT_EQ(fs::file_size(file), size);

    // Zeros at the end (a file system that extended the file but never wrote it): dropped too.
    {
        std::ofstream f(file, std::ios::binary | std::ios::app);
        f << std::string(100, '\0');
    }
    EXPECT_EQ(TeacherCache(dir_, teacher_, kK, 2.0).windows(), 2);
    EXPECT_EQ(fs::file_size(file), size);

    // A length no writer gives, in the first record: corruption, not a cut (cutting there would
    // drop the second record).
    {
        std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
        const uint32_t huge = 1u << 30;
        f.seekp(32);
        f.write(reinterpret_cast<const char*>(&huge), 4);
    }
    try {
        TeacherCache cache(dir_, teacher_, kK, 2.0);
        FAIL() << "a record of an impossible length was accepted";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("corrupt at byte 32"), std::string::npos) << e.what();
    }
    EXPECT_EQ(fs::file_size(file), size) << "nothing cut";
    {
        std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
        const uint32_t tokens = kT;
        f.seekp(32);
        f.write(reinterpret_cast<const char*>(&tokens), 4);
    }
    EXPECT_EQ(TeacherCache(dir_, teacher_, kK, 2.0).windows(), 2);

    // A flipped byte inside the first record is corruption, not an interrupted write.
    {
        std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
        f.seekp(32 + 40);
        char c = 0;
        f.read(&c, 1);
        f.seekp(32 + 40);
        c = static_cast<char>(c ^ 0x10);
        f.write(&c, 1);
    }
    try {
        TeacherCache cache(dir_, teacher_, kK, 2.0);
        FAIL() << "a corrupt record was accepted";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("corrupt at byte 32"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find(file), std::string::npos) << e.what();
    }
}

TEST_F(TeacherCacheTest, AFileAnotherRunHoldsIsLeftToIt) {
    TeacherCache first(dir_, teacher_, kK, 2.0);
    ASSERT_TRUE(first.usable());
    const Outcome plain = apply("");
    TeacherLoss loss(teacher_, DistillLossOptions{0.5, 2.0}, kK);
    loss.set_cache(std::make_unique<TeacherCache>(dir_, teacher_, kK, 2.0));
    EXPECT_FALSE(loss.cache()->usable());
    EXPECT_NE(loss.cache()->note().find("in use"), std::string::npos);
    std::vector<float> grad(student_.size());
    const LogitLoss::Result r = loss.apply(inputs_.data(), targets_.data(), kB, kT, student_.data(),
                                           grad.data(), 1.0f / (kB * kT));
    EXPECT_EQ(r.loss, plain.result.loss);
    EXPECT_EQ(loss.teacher_windows(), kB);
    EXPECT_EQ(fs::file_size(first.path()), 32u);  // nothing written by the second
}

TEST_F(TeacherCacheTest, WhatIsNotACacheIsRefused) {
    const std::string path = TeacherCache(dir_, teacher_, kK, 2.0).path();
    {
        std::ofstream f(path, std::ios::binary | std::ios::trunc);
        f << "these are not the bytes of a teacher cache, but they are long enough";
    }
    EXPECT_THROW(TeacherCache(dir_, teacher_, kK, 2.0), Error);
    fs::remove(path);
    fs::create_directory(path);
    EXPECT_THROW(TeacherCache(dir_, teacher_, kK, 2.0), Error);
    const std::string plain_file = root_.file("file");
    std::ofstream(plain_file) << "x";
    EXPECT_THROW(TeacherCache(plain_file, teacher_, kK, 2.0), Error);  // not a directory
    EXPECT_THROW(TeacherCache(dir_, teacher_, 0, 2.0), Error);         // no top-K to keep
    TeacherLoss full(teacher_, DistillLossOptions{0.5, 2.0}, 0);
    fs::remove_all(path);
    EXPECT_THROW(full.set_cache(std::make_unique<TeacherCache>(dir_, teacher_, kK, 2.0)), Error);
}

}  // namespace
}  // namespace tinygpt
