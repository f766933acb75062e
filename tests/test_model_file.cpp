// The .tinygpt file layer (docs/FORMAT.md): v3 round trips (f32 bit-exact and memory-mapped,
// bf16/f16 within their precision), the exact TrainingState, and v2 round trips of our writer.
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

#include "io/format_internal.h"
#include "io/model_file.h"
#include "model/params.h"
#include "model_file_fixture.h"
#include "util/error.h"
#include "util/rng.h"

namespace tinygpt {
namespace {

using namespace file_test;

TEST(ModelFileHalf, Bf16RoundsToNearestEven) {
    EXPECT_EQ(float_to_bf16(1.0f), 0x3f80);
    EXPECT_EQ(float_to_bf16(std::bit_cast<float>(0x3f808000u)), 0x3f80);  // tie → even (down)
    EXPECT_EQ(float_to_bf16(std::bit_cast<float>(0x3f818000u)), 0x3f82);  // tie → even (up)
    EXPECT_EQ(float_to_bf16(std::bit_cast<float>(0x3f808001u)), 0x3f81);  // above the tie
    EXPECT_EQ(float_to_bf16(INFINITY), 0x7f80);
    EXPECT_EQ(float_to_bf16(-INFINITY), 0xff80);
    EXPECT_TRUE(std::isnan(bf16_to_float(float_to_bf16(NAN))));
    EXPECT_EQ(float_to_bf16(std::numeric_limits<float>::max()), 0x7f80);  // rounds up to inf
    for (uint32_t h = 0; h < 0x10000; ++h) {  // every finite bf16 survives float and back
        const float f = bf16_to_float(static_cast<uint16_t>(h));
        if (!std::isnan(f)) {
            EXPECT_EQ(float_to_bf16(f), h);
        }
    }
}

TEST(ModelFileHalf, F16RoundsToNearestEvenWithSubnormalsAndOverflow) {
    EXPECT_EQ(float_to_f16(1.0f), 0x3c00);
    EXPECT_EQ(float_to_f16(-2.0f), 0xc000);
    EXPECT_EQ(float_to_f16(65504.0f), 0x7bff);
    EXPECT_EQ(float_to_f16(65519.0f), 0x7bff);
    EXPECT_EQ(float_to_f16(65520.0f), 0x7c00);  // the tie above the largest half → inf
    EXPECT_EQ(float_to_f16(std::ldexp(1.0f, -24)), 0x0001);
    EXPECT_EQ(float_to_f16(std::ldexp(1.0f, -25)), 0x0000);  // tie → even (zero)
    EXPECT_EQ(float_to_f16(std::ldexp(3.0f, -25)), 0x0002);  // 1.5 units → 2 (even)
    EXPECT_EQ(float_to_f16(std::ldexp(1.0f, -26)), 0x0000);
    EXPECT_EQ(float_to_f16(std::ldexp(1023.5f, -24)), 0x0400);      // rounds up into the normals
    EXPECT_EQ(float_to_f16(1.0f + std::ldexp(1.0f, -11)), 0x3c00);  // tie → even
    EXPECT_EQ(float_to_f16(1.0f + std::ldexp(3.0f, -11)), 0x3c02);  // tie → even (up)
    EXPECT_EQ(float_to_f16(-0.0f), 0x8000);
    EXPECT_TRUE(std::isnan(f16_to_float(float_to_f16(NAN))));
    EXPECT_EQ(f16_to_float(0x0001), std::ldexp(1.0f, -24));
    EXPECT_EQ(f16_to_float(0x03ff), std::ldexp(1023.0f, -24));
    for (uint32_t h = 0; h < 0x10000; ++h) {
        const float f = f16_to_float(static_cast<uint16_t>(h));
        if (!std::isnan(f)) {
            EXPECT_EQ(float_to_f16(f), h) << std::hex << h;
        }
    }
    // Midpoints between neighbouring positive halves round to the even one.
    for (uint32_t h = 0; h < 0x7bff; h += 7) {
        const double mid = (static_cast<double>(f16_to_float(static_cast<uint16_t>(h))) +
                            f16_to_float(static_cast<uint16_t>(h + 1))) /
                           2;
        EXPECT_EQ(float_to_f16(static_cast<float>(mid)), (h & 1) ? h + 1 : h) << std::hex << h;
    }
}

// --- v3
// -----------------------------------------------------------------------------------------------

TEST_F(ModelFileTest, V3RoundTripIsBitExactAndMapped) {
    for (const FlatModel* model : {&dense, &moe}) {
        const std::string path =
            save(*model, model->cfg.is_moe() ? "moe.tinygpt" : "dense.tinygpt");
        const ModelFile f = ModelFile::read(path);
        EXPECT_EQ(f.path(), path);
        EXPECT_EQ(f.version(), 3);
        EXPECT_EQ(f.weight_dtype(), WeightDtype::F32);
        expect_config_eq(f.config(), model->cfg);
        EXPECT_EQ(f.config().preset, "test");
        EXPECT_EQ(std::memcmp(f.weights(), model->w.data(), model->n * 4), 0);
        ASSERT_TRUE(f.has_optimizer_state());
        EXPECT_EQ(std::memcmp(f.adam_m(), model->m.data(), model->n * 4), 0);
        EXPECT_EQ(std::memcmp(f.adam_v(), model->v.data(), model->n * 4), 0);
        ASSERT_TRUE(f.has_training_state());
        expect_state_eq(f.training_state(), state);
        expect_histories_eq(f.training_state(), state);
        EXPECT_EQ(f.file_bytes(), fs::file_size(path));

        // Zero copy: the weights are the file's bytes, 64-byte aligned, inside the mapping.
        EXPECT_TRUE(f.weights_mapped());
        EXPECT_EQ(reinterpret_cast<uintptr_t>(f.weights()) % 64, 0u);
        const auto& t = f.tensors();
        const ParameterLayout layout(model->cfg);
        ASSERT_EQ(t.size(), layout.entries().size());
        const uint64_t base = t[0].offset;
        EXPECT_EQ(base % 64, 0u);
        for (size_t i = 0; i < t.size(); ++i) {
            EXPECT_EQ(t[i].name, layout.entries()[i].name);
            EXPECT_EQ(t[i].shape, layout.entries()[i].shape);
            EXPECT_EQ(t[i].offset, base + layout.entries()[i].offset * 4);
            EXPECT_EQ(t[i].bytes, layout.entries()[i].numel * 4);
        }
        const Bytes bytes = read_bytes(path);
        EXPECT_EQ(std::memcmp(bytes.data() + base, model->w.data(), model->n * 4), 0);

        const json& h = f.header();
        EXPECT_EQ(h["config"]["arch"], "gpt");
        EXPECT_FALSE(h["config"].contains("dispatch"));
        EXPECT_EQ(h["tokenizer"]["type"], "bytes");
        EXPECT_EQ(h["tokenizer"]["vocab"], 256);
        EXPECT_EQ(h["sections"].size(), 3u);
    }
}

#ifdef __linux__
bool mapped_in_this_process(const std::string& path) {
    std::ifstream maps("/proc/self/maps");
    std::string line;
    const std::string canonical = fs::canonical(path).string();
    while (std::getline(maps, line))
        if (line.find(canonical) != std::string::npos) return true;
    return false;
}

TEST_F(ModelFileTest, V3MappingIsReleasedWithTheLastOwner) {
    const std::string path = save(dense, "mapped.tinygpt");
    {
        ModelFile a = ModelFile::read(path);
        const float* w = a.weights();
        ModelFile b = std::move(a);  // moving keeps the pointer valid
        EXPECT_EQ(b.weights(), w);
        EXPECT_EQ(w[dense.n - 1], dense.w[dense.n - 1]);
        EXPECT_TRUE(mapped_in_this_process(path));
    }
    EXPECT_FALSE(mapped_in_this_process(path));
}
#endif

TEST_F(ModelFileTest, V3WithoutOptimizerOrTrainingState) {
    SaveOptions options;
    options.include_optimizer = false;
    options.include_training_state = false;
    const std::string path = dir.file("weights-only.tinygpt");
    save_model_file(path, moe.cfg, moe.w.data(), nullptr, nullptr, state, options);
    const ModelFile f = ModelFile::read(path);
    EXPECT_FALSE(f.has_optimizer_state());
    EXPECT_EQ(f.adam_m(), nullptr);
    EXPECT_EQ(f.adam_v(), nullptr);
    EXPECT_FALSE(f.has_training_state());
    EXPECT_EQ(std::memcmp(f.weights(), moe.w.data(), moe.n * 4), 0);
    expect_histories_eq(f.training_state(), state);  // histories are kept either way
    EXPECT_EQ(f.header()["sections"].size(), 1u);
    EXPECT_LT(f.file_bytes(), moe.n * 4 + 64 * 1024);
}

TEST_F(ModelFileTest, V3HalfPrecisionCopiesRoundTripWithinTolerance) {
    // Rounded once to the type (norms, biases, the router and the position table kept in f32);
    // test_model_file_typed.cpp checks the stored bits of every type.
    for (WeightDtype dtype : {WeightDtype::BF16, WeightDtype::F16}) {
        SaveOptions options;
        options.dtype = dtype;
        options.include_optimizer = false;
        const std::string path =
            save(moe, std::string("half-") + dtype_name(dtype) + ".tinygpt", options);
        const ModelFile f = ModelFile::read(path);
        EXPECT_EQ(f.weight_dtype(), dtype);
        EXPECT_TRUE(f.weights_mapped());  // the views are the file's bytes
        EXPECT_LT(f.file_bytes(), moe.n * 2 + 64 * 1024);
        const ParameterLayout layout(moe.cfg);
        const double rel = dtype == WeightDtype::BF16 ? std::ldexp(1.0, -8) : std::ldexp(1.0, -11);
        for (size_t e = 0; e < layout.entries().size(); ++e) {
            const ParamInfo& p = layout.entries()[e];
            const bool kept = p.shape.size() < 2 || p.id.role == TensorRole::Router ||
                              p.id.role == TensorRole::PositionEmbedding;
            EXPECT_EQ(f.tensors()[e].dtype, kept ? WeightDtype::F32 : dtype) << p.name;
            for (size_t k = 0; k < p.numel; ++k) {
                const size_t i = p.offset + k;
                const float want = moe.w[i];
                const float got = f.weights()[i];
                ASSERT_LE(std::fabs(got - want), std::fabs(want) * rel + std::ldexp(1.0, -24)) << i;
                const float again = kept ? want
                                    : dtype == WeightDtype::BF16
                                        ? bf16_to_float(float_to_bf16(want))
                                        : f16_to_float(float_to_f16(want));
                ASSERT_TRUE(same_bits(got, again)) << i;
            }
        }
        expect_state_eq(f.training_state(), state);
    }
}

TEST_F(ModelFileTest, V3SpecialFloatsInTheHeaderRoundTrip) {
    state.loss_history[0].loss = INFINITY;
    state.loss_history[1].aux = -INFINITY;
    state.loss_history[2].loss = NAN;
    state.val_split = std::nextafter(0.25, 1.0);
    state.grad_clip = std::numeric_limits<float>::denorm_min();
    state.seed = std::numeric_limits<uint64_t>::max();
    const ModelFile f = ModelFile::read(save(dense, "special.tinygpt"));
    expect_state_eq(f.training_state(), state);
    const auto& h = f.training_state().loss_history;
    EXPECT_EQ(h[0].loss, INFINITY);
    EXPECT_EQ(h[1].aux, -INFINITY);
    EXPECT_TRUE(std::isnan(h[2].loss));
}

TEST_F(ModelFileTest, V3SaveReplacesTheTargetAndLeavesNoTemporaryFile) {
    const std::string path = save(dense, "model.tinygpt");
    FlatModel other = make_model(dense.cfg, 99);
    save(other, "model.tinygpt");
    const ModelFile f = ModelFile::read(path);
    EXPECT_EQ(std::memcmp(f.weights(), other.w.data(), other.n * 4), 0);
    for (const auto& entry : fs::directory_iterator(dir.path()))
        EXPECT_EQ(entry.path().filename().string().find(".tmp."), std::string::npos)
            << entry.path();
}

// --- v2: our writer
// ---------------------------------------------------------------------------------

TEST_F(ModelFileTest, V2RoundTripOfOurWriter) {
    for (const FlatModel* model : {&dense, &moe}) {
        SaveOptions options;
        options.version = 2;
        const std::string path =
            save(*model, model->cfg.is_moe() ? "moe-v2.tinygpt" : "dense-v2.tinygpt", options);
        const ModelFile f = ModelFile::read(path);
        EXPECT_EQ(f.version(), 2);
        EXPECT_FALSE(f.weights_mapped());
        EXPECT_FALSE(f.has_training_state());
        expect_config_eq(f.config(), model->cfg, model->cfg.is_moe());
        EXPECT_EQ(std::memcmp(f.weights(), model->w.data(), model->n * 4), 0);
        ASSERT_TRUE(f.has_optimizer_state());
        EXPECT_EQ(std::memcmp(f.adam_m(), model->m.data(), model->n * 4), 0);
        EXPECT_EQ(std::memcmp(f.adam_v(), model->v.data(), model->n * 4), 0);
        EXPECT_EQ(f.training_state().step, state.step);
        EXPECT_EQ(f.training_state().batch, state.batch);

        const json& h = f.header();
        const json& c = h["config"];
        EXPECT_EQ(c["backend"], "tinygpt-cpp");
        EXPECT_EQ(c["batchSize"], state.batch);
        EXPECT_EQ(c["dModel"], 16);
        EXPECT_EQ(c["dMlp"], 32);
        EXPECT_FALSE(c.contains("vocabSize"));
        EXPECT_EQ(c.contains("nExperts"), model->cfg.is_moe());
        EXPECT_EQ(c.contains("moeTopK"), model->cfg.is_moe());
        EXPECT_EQ(c.contains("loadBalanceWeight"), model->cfg.is_moe());
        EXPECT_EQ(h["weightDtype"], "fp32");
        EXPECT_EQ(h["includesOptimizerState"], true);
        const ParameterLayout layout(model->cfg);
        EXPECT_EQ(h["stateByteLength"], 4 + 12 * layout.count());
        EXPECT_EQ(f.file_bytes(), 12 + h.dump().size() + 4 + 12 * layout.count());
        ASSERT_TRUE(h.contains("finalLoss"));
        EXPECT_EQ(h["finalLoss"]["step"], 40);
        EXPECT_EQ(h["lossHistory"].size(), 40u);
        // The manifest is the original's order with running floatOffsets.
        const auto order = layout.manifest_order();
        ASSERT_EQ(h["manifest"].size(), order.size());
        uint64_t offset = 0;
        for (size_t i = 0; i < order.size(); ++i) {
            EXPECT_EQ(h["manifest"][i]["name"], order[i]);
            EXPECT_EQ(h["manifest"][i]["shape"].get<std::vector<int64_t>>(),
                      layout.at(order[i]).shape);
            EXPECT_EQ(h["manifest"][i]["floatOffset"], offset);
            offset += layout.at(order[i]).numel;
        }
    }
}

TEST_F(ModelFileTest, V2WriterStoresLinearWeightsTransposedAndStridesTheLossHistory) {
    state.loss_history.clear();
    for (int i = 1; i <= 2000; ++i) state.loss_history.push_back(LossRecord{i, 3.0f, 0.0f, NAN});
    SaveOptions options;
    options.version = 2;
    const std::string path = save(moe, "orient.tinygpt", options);
    const Bytes b = read_bytes(path);
    uint32_t hl;
    std::memcpy(&hl, b.data() + 8, 4);
    const json h = json::parse(b.begin() + 12, b.begin() + 12 + hl);
    EXPECT_EQ(h["lossHistory"].size(), 512u);
    EXPECT_EQ(h["lossHistory"][0]["step"], 1);
    EXPECT_EQ(h["lossHistory"][511]["step"], 2000);
    EXPECT_FALSE(h["lossHistory"][0].contains("val"));
    int32_t step;
    std::memcpy(&step, b.data() + 12 + hl, 4);
    EXPECT_EQ(step, state.step);
    // Walk the body by hand: [w, m, v] per manifest entry; Linear weights as [in, out] bytes.
    const ParameterLayout layout(moe.cfg);
    size_t pos = 16 + hl;
    for (const json& e : h["manifest"]) {
        const std::string name = e["name"];
        const ParamInfo& info = layout.at(name);
        const bool linear = info.shape.size() == 2 && name != "token_embedding.weight" &&
                            name != "position_embedding.weight";
        for (const std::vector<float>* src : {&moe.w, &moe.m, &moe.v}) {
            for (size_t k = 0; k < info.numel; ++k) {
                float got;
                std::memcpy(&got, b.data() + pos + 4 * k, 4);
                size_t mem = k;
                if (linear) {  // k indexes [in, out]
                    const size_t out = static_cast<size_t>(info.shape[0]),
                                 in = static_cast<size_t>(info.shape[1]);
                    mem = (k % out) * in + k / out;
                }
                ASSERT_TRUE(same_bits(got, (*src)[info.offset + mem])) << name << " " << k;
            }
            pos += info.numel * 4;
        }
    }
    EXPECT_EQ(pos, b.size());
}

TEST_F(ModelFileTest, V2WithoutMomentsWritesZerosAndReadsAsNoOptimizerState) {
    SaveOptions options;
    options.version = 2;
    options.include_optimizer = false;
    const std::string path = dir.file("v2-no-moments.tinygpt");
    save_model_file(path, dense.cfg, dense.w.data(), nullptr, nullptr, state, options);
    const ModelFile f = ModelFile::read(path);
    EXPECT_FALSE(f.has_optimizer_state());
    EXPECT_EQ(f.adam_m(), nullptr);
    EXPECT_EQ(f.training_state().adam_steps, 0);
    EXPECT_EQ(std::memcmp(f.weights(), dense.w.data(), dense.n * 4), 0);
}

// --- v1 / v2 built by hand, exactly as the original writes them
// ----------------------------------------

TEST(ModelFileDtype, NamesAndParsing) {
    EXPECT_STREQ(dtype_name(WeightDtype::F32), "f32");
    EXPECT_STREQ(dtype_name(WeightDtype::BF16), "bf16");
    EXPECT_STREQ(dtype_name(WeightDtype::F16), "f16");
    EXPECT_STREQ(dtype_name(WeightDtype::Q8_0), "q8_0");
    EXPECT_EQ(parse_weight_dtype("q8_0"), WeightDtype::Q8_0);
    EXPECT_EQ(parse_weight_dtype("bf16"), WeightDtype::BF16);
    EXPECT_EQ(parse_weight_dtype("fp16"), WeightDtype::F16);
    EXPECT_EQ(parse_weight_dtype("f32"), WeightDtype::F32);
    EXPECT_THROW(parse_weight_dtype("int8"), Error);
}

}  // namespace
}  // namespace tinygpt
