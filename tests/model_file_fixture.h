// Shared fixtures for the .tinygpt file tests (test_model_file*.cpp): temporary directories,
// small models, raw byte access to v3 files, and hand-built files in the original TinyGPT's
// exact v1/v2 byte layouts (written independently of the writer under test).
#pragma once
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
#include "scratch_dir.h"
#include "test_util.h"
#include "util/error.h"
#include "util/rng.h"

namespace tinygpt::file_test {

namespace fs = std::filesystem;
using nlohmann::json;
using Bytes = std::vector<uint8_t>;

// --- fixtures and helpers ------------------------------------------------------------------------

using test::ScratchDir;

inline ModelConfig small_config(bool moe) {
    // d_mlp ≠ d_model: a wrong transpose cannot go unnoticed.
    ModelConfig cfg = test::model_config({.experts = moe ? 4 : 1, .topk = moe ? 2 : 1});
    cfg.aux_weight = 0.0123f;
    return cfg;
}

// Weights / moments in the engine's layout as flat arrays (not a tinygpt::Model, hence the name);
// padding stays zero.
struct FlatModel {
    ModelConfig cfg;
    size_t n = 0;
    std::vector<float> w, m, v;
};

inline FlatModel make_model(const ModelConfig& cfg, uint64_t seed) {
    FlatModel model;
    model.cfg = cfg;
    const ParameterLayout layout(cfg);
    model.n = layout.total();
    model.w.assign(model.n, 0.0f);
    model.m.assign(model.n, 0.0f);
    model.v.assign(model.n, 0.0f);
    Rng rng(seed);
    for (const ParamInfo& p : layout.entries()) {
        for (size_t i = 0; i < p.numel; ++i) {
            model.w[p.offset + i] = static_cast<float>(rng.normal() * 0.5);
            model.m[p.offset + i] = static_cast<float>(rng.normal() * 1e-3);
            model.v[p.offset + i] = static_cast<float>(rng.uniform() * 1e-5);
        }
    }
    return model;
}

inline TrainingState make_state(int64_t step = 123) {
    TrainingState s;
    s.step = step;
    s.total_steps = 1000;
    s.batch = 4;
    s.accum = 3;
    s.seed = 0xFEDCBA9876543210ull;  // > 2^63
    s.val_split = 0.1 + 0.2;         // 0.30000000000000004: needs all 17 digits
    s.grad_clip = 0.1f;
    s.adamw = AdamWConfig{0.85f, 0.975f, 1e-7f, 0.05f};
    s.adam_steps = step - 1;
    s.schedule = ScheduleConfig{LrSchedule::Constant, 3.3e-3f, 1.1e-5f, 17, 1000};
    s.data_rng = {0xFFFFFFFFFFFFFFFFull, (1ull << 53) + 1, 0x8000000000000001ull, 12345};
    for (int i = 1; i <= 40; ++i) {
        LossRecord r;
        r.step = i;
        r.loss = 5.0f / static_cast<float>(i) + 1e-7f * static_cast<float>(i);
        r.aux = i % 2 ? 1.0f + 1.0f / static_cast<float>(i) : 0.0f;
        r.val_loss = i % 10 == 0 ? 2.0f + 1.0f / 3.0f : NAN;
        s.loss_history.push_back(r);
    }
    s.loss_history[3].loss = 1e-40f;  // a subnormal float
    for (int i = 0; i < 3; ++i) {
        ExpertLoadRecord r;
        r.step = 10 * (i + 1);
        r.load = {{0.1f, 0.2f, 0.3f, 0.4f}, {0.25f, 0.25f, 1.0f / 3.0f, 1.0f / 6.0f}};
        s.expert_load_history.push_back(r);
    }
    return s;
}

inline Bytes read_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return Bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

inline void write_bytes(const std::string& path, const Bytes& bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(bytes.data()),
              static_cast<std::streamsize>(bytes.size()));
    ASSERT_TRUE(out.good()) << path;
}

template <typename T>
inline void append(Bytes& b, T value) {
    // resize + memcpy, as append_text: GCC 12 warns falsely (-Wstringop-overflow) on insert().
    const size_t at = b.size();
    b.resize(at + sizeof(T));
    std::memcpy(b.data() + at, &value, sizeof(T));
}
inline void append_text(Bytes& b, const std::string& s) {
    // resize + memcpy rather than insert(): GCC 12 warns falsely (-Wstringop-overflow) on the
    // latter.
    const size_t at = b.size();
    b.resize(at + s.size());
    if (!s.empty()) std::memcpy(b.data() + at, s.data(), s.size());
}

inline bool same_bits(float a, float b) {
    return std::bit_cast<uint32_t>(a) == std::bit_cast<uint32_t>(b);
}
inline bool same_bits(double a, double b) {
    return std::bit_cast<uint64_t>(a) == std::bit_cast<uint64_t>(b);
}
inline bool same_or_both_nan(float a, float b) {
    return (std::isnan(a) && std::isnan(b)) || same_bits(a, b);
}

// Reading `path` must throw a tinygpt::Error whose message starts with the path and contains
// every phrase.
// `what` failed with an Error whose message starts with "<path>: " and contains every phrase.
inline void expect_error_about(const std::string& what, const std::function<void()>& action,
                               const std::string& path, const std::vector<std::string>& phrases) {
    try {
        action();
        ADD_FAILURE() << what << " " << path << " succeeded; expected an error containing '"
                      << phrases.front() << "'";
    } catch (const Error& e) {
        const std::string msg = e.what();
        EXPECT_EQ(msg.rfind(path + ": ", 0), 0u) << "message does not start with the path: " << msg;
        for (const std::string& phrase : phrases)
            EXPECT_NE(msg.find(phrase), std::string::npos)
                << "missing '" << phrase << "' in: " << msg;
    } catch (const std::exception& e) {
        ADD_FAILURE() << "not a tinygpt::Error: " << e.what();
    }
}

inline void expect_read_error(const std::string& path, const std::vector<std::string>& phrases) {
    expect_error_about(
        "reading", [&] { ModelFile::read(path); }, path, phrases);
}

inline void expect_save_error(const std::function<void()>& save, const std::string& path,
                              const std::vector<std::string>& phrases) {
    expect_error_about("saving", save, path, phrases);
}

// v3 anatomy of a file in memory.
struct V3View {
    uint32_t header_len = 0;
    json header;
    uint64_t data_start = 0;  // the first section's offset
};

inline V3View parse_v3(const Bytes& b) {
    V3View v;
    std::memcpy(&v.header_len, b.data() + 8, 4);
    v.header = json::parse(b.begin() + 12, b.begin() + 12 + v.header_len);
    v.data_start = std::numeric_limits<uint64_t>::max();
    for (const json& s : v.header["sections"])
        v.data_start = std::min(v.data_start, s["offset"].get<uint64_t>());
    return v;
}

// Re-serialises a v3 file after `mutate` changed its header, with a correct header checksum (so
// the reader gets past it and meets the problem under test). Section offsets keep their meaning:
// when the new header no longer fits in front of the data, the data moves by a multiple of 64
// and every section offset (as mutated) moves with it.
inline Bytes rewrite_v3(const Bytes& original, const std::function<void(json&)>& mutate,
                        const std::string* raw = nullptr) {
    V3View view = parse_v3(original);
    json h = view.header;
    mutate(h);
    std::vector<std::pair<size_t, uint64_t>> offsets;
    if (h.contains("sections") && h["sections"].is_array())
        for (size_t i = 0; i < h["sections"].size(); ++i)
            if (h["sections"][i].is_object() && h["sections"][i].contains("offset") &&
                h["sections"][i]["offset"].is_number_unsigned())
                offsets.emplace_back(i, h["sections"][i]["offset"].get<uint64_t>());
    uint64_t delta = 0;
    std::string text;
    for (;;) {
        for (auto [i, off] : offsets) h["sections"][i]["offset"] = off + delta;
        text = raw ? *raw : h.dump();
        const uint64_t need = 12 + text.size() + 8;
        if (need <= view.data_start + delta) break;
        delta = io::align_up(need - view.data_start, 64);
    }
    Bytes out(original.begin(), original.begin() + 8);
    append(out, static_cast<uint32_t>(text.size()));
    append_text(out, text);
    append(out, io::checksum64(out.data(), out.size()));
    out.resize(view.data_start + delta, 0);
    out.insert(out.end(), original.begin() + static_cast<std::ptrdiff_t>(view.data_start),
               original.end());
    return out;
}

class ModelFileTest : public ::testing::Test {
  protected:
    ScratchDir dir;
    FlatModel dense = make_model(small_config(false), 1);
    FlatModel moe = make_model(small_config(true), 2);
    TrainingState state = make_state();

    std::string save(const FlatModel& model, const std::string& name, SaveOptions options = {}) {
        const std::string path = dir.file(name);
        save_model_file(path, model.cfg, model.w.data(), model.m.data(), model.v.data(), state,
                        options);
        return path;
    }
    // A valid v3 file's bytes, mutated and written to `name`.
    std::string hostile_v3(const std::string& name, const std::function<void(json&)>& mutate) {
        const Bytes good = read_bytes(save(moe, "good.tinygpt"));
        const std::string path = dir.file(name);
        write_bytes(path, rewrite_v3(good, mutate));
        return path;
    }
};

// v2 stores the aux weight only for MoE models (as the original); dense models read back 0.01.
inline void expect_config_eq(const ModelConfig& a, const ModelConfig& b, bool aux_stored = true) {
    EXPECT_EQ(a.vocab, b.vocab);
    EXPECT_EQ(a.ctx, b.ctx);
    EXPECT_EQ(a.layers, b.layers);
    EXPECT_EQ(a.d_model, b.d_model);
    EXPECT_EQ(a.heads, b.heads);
    EXPECT_EQ(a.d_mlp, b.d_mlp);
    EXPECT_EQ(a.experts, b.experts);
    EXPECT_EQ(a.topk, b.topk);
    if (aux_stored) {
        EXPECT_TRUE(same_bits(a.aux_weight, b.aux_weight));
    }
}

inline void expect_state_eq(const TrainingState& a, const TrainingState& b) {
    EXPECT_EQ(a.step, b.step);
    EXPECT_EQ(a.total_steps, b.total_steps);
    EXPECT_EQ(a.batch, b.batch);
    EXPECT_EQ(a.accum, b.accum);
    EXPECT_EQ(a.seed, b.seed);
    EXPECT_TRUE(same_bits(a.val_split, b.val_split)) << a.val_split << " vs " << b.val_split;
    EXPECT_TRUE(same_bits(a.grad_clip, b.grad_clip));
    EXPECT_TRUE(same_bits(a.adamw.beta1, b.adamw.beta1));
    EXPECT_TRUE(same_bits(a.adamw.beta2, b.adamw.beta2));
    EXPECT_TRUE(same_bits(a.adamw.eps, b.adamw.eps));
    EXPECT_TRUE(same_bits(a.adamw.weight_decay, b.adamw.weight_decay));
    EXPECT_EQ(a.adam_steps, b.adam_steps);
    EXPECT_EQ(a.schedule.kind, b.schedule.kind);
    EXPECT_TRUE(same_bits(a.schedule.max_lr, b.schedule.max_lr));
    EXPECT_TRUE(same_bits(a.schedule.min_lr, b.schedule.min_lr));
    EXPECT_EQ(a.schedule.warmup, b.schedule.warmup);
    EXPECT_EQ(a.schedule.total_steps, b.schedule.total_steps);
    EXPECT_EQ(a.data_rng, b.data_rng);
}

inline void expect_histories_eq(const TrainingState& a, const TrainingState& b) {
    ASSERT_EQ(a.loss_history.size(), b.loss_history.size());
    for (size_t i = 0; i < a.loss_history.size(); ++i) {
        EXPECT_EQ(a.loss_history[i].step, b.loss_history[i].step);
        EXPECT_TRUE(same_bits(a.loss_history[i].loss, b.loss_history[i].loss)) << i;
        EXPECT_TRUE(same_bits(a.loss_history[i].aux, b.loss_history[i].aux)) << i;
        EXPECT_TRUE(same_or_both_nan(a.loss_history[i].val_loss, b.loss_history[i].val_loss)) << i;
    }
    ASSERT_EQ(a.expert_load_history.size(), b.expert_load_history.size());
    for (size_t i = 0; i < a.expert_load_history.size(); ++i) {
        EXPECT_EQ(a.expert_load_history[i].step, b.expert_load_history[i].step);
        EXPECT_EQ(a.expert_load_history[i].load, b.expert_load_history[i].load);
    }
}

// --- half-precision conversions
// ---------------------------------------------------------------------

struct HandTensor {
    std::string name;
    std::vector<int64_t> shape;
    bool transposed;
    std::vector<float> values;  // [out, in] (what the engine must end up with)
};

// The original's manifest (reference §3.4), written out independently of ParameterLayout.
inline std::vector<HandTensor> original_manifest(const ModelConfig& c, uint64_t seed) {
    std::vector<HandTensor> t;
    const int64_t V = c.vocab, C = c.d_model, M = c.d_mlp, T = c.ctx, E = c.experts;
    auto add = [&](const std::string& name, std::vector<int64_t> shape, bool transposed) {
        t.push_back({name, std::move(shape), transposed, {}});
    };
    add("token_embedding.weight", {V, C}, false);
    add("position_embedding.weight", {T, C}, false);
    add("ln_final.weight", {C}, false);
    add("ln_final.bias", {C}, false);
    for (int i = 0; i < c.layers; ++i) {
        const std::string b = "blocks." + std::to_string(i) + ".";
        add(b + "ln1.weight", {C}, false);
        add(b + "ln1.bias", {C}, false);
        for (const char* p : {"q", "k", "v", "o"}) {
            add(b + "attn." + p + "_proj.weight", {C, C}, true);
            add(b + "attn." + p + "_proj.bias", {C}, false);
        }
        add(b + "ln2.weight", {C}, false);
        add(b + "ln2.bias", {C}, false);
        auto mlp = [&](const std::string& p) {
            add(p + "fc_in.weight", {M, C}, true);
            add(p + "fc_in.bias", {M}, false);
            add(p + "fc_out.weight", {C, M}, true);
            add(p + "fc_out.bias", {C}, false);
        };
        if (E == 1) {
            mlp(b + "mlp.");
        } else {
            add(b + "moe.router.weight", {E, C}, true);
            for (int e = 0; e < E; ++e) mlp(b + "moe.experts." + std::to_string(e) + ".");
        }
    }
    Rng rng(seed);
    for (HandTensor& h : t) {
        size_t n = 1;
        for (int64_t d : h.shape) n *= static_cast<size_t>(d);
        h.values.resize(n);
        // Multiples of 1/128 in [-4, 4): exact in fp16 as well.
        for (float& x : h.values)
            x = static_cast<float>(static_cast<int>(rng.uniform_index(1024)) - 512) / 128.0f;
    }
    return t;
}

// Bytes of one tensor as stored by the original: [in, out] for transposed Linear weights.
inline std::vector<float> stored_order(const HandTensor& t, float scale, float shift) {
    std::vector<float> out(t.values.size());
    if (!t.transposed) {
        for (size_t k = 0; k < out.size(); ++k) out[k] = t.values[k] * scale + shift;
        return out;
    }
    const size_t rows = static_cast<size_t>(t.shape[0]), cols = static_cast<size_t>(t.shape[1]);
    for (size_t r = 0; r < rows; ++r)
        for (size_t c = 0; c < cols; ++c)
            out[c * rows + r] = t.values[r * cols + c] * scale + shift;
    return out;
}

inline json original_config(const ModelConfig& c) {
    json config = {{"layers", c.layers},    {"dModel", c.d_model}, {"ctx", c.ctx},
                   {"heads", c.heads},      {"dMlp", c.d_mlp},     {"batchSize", 8},
                   {"backend", "mlx-swift"}};
    if (c.is_moe()) {
        config["nExperts"] = c.experts;
        config["moeTopK"] = c.topk;
        config["loadBalanceWeight"] = 0.01;
    }
    return config;
}

inline Bytes original_file(uint32_t version, const json& header, int32_t step) {
    Bytes b;
    append_text(b, "TGPT");
    append(b, version);
    const std::string text = header.dump();
    append(b, static_cast<uint32_t>(text.size()));
    append_text(b, text);
    append(b, step);
    return b;
}

// trainingFP32 body: per entry weight, m (= 0.5·w + 1), v (= 0.25·w + 2).
inline Bytes training_fp32_file(uint32_t version, const ModelConfig& cfg,
                                const std::vector<HandTensor>& tensors, bool with_manifest,
                                int32_t step, json extra = json::object()) {
    json header = {{"config", original_config(cfg)}, {"savedAt", "2026-05-31T12:00:00Z"}};
    if (with_manifest) {
        json manifest = json::array();
        uint64_t offset = 0;
        size_t total = 0;
        for (const HandTensor& t : tensors) {
            manifest.push_back({{"name", t.name}, {"shape", t.shape}, {"floatOffset", offset}});
            offset += t.values.size();
            total += t.values.size();
        }
        header["manifest"] = manifest;
        header["weightDtype"] = "fp32";
        header["includesOptimizerState"] = true;
        header["stateByteLength"] = 4 + 12 * total;
    }
    header.update(extra);
    Bytes b = original_file(version, header, step);
    for (const HandTensor& t : tensors)
        for (auto [scale, shift] :
             {std::pair{1.0f, 0.0f}, std::pair{0.5f, 1.0f}, std::pair{0.25f, 2.0f}})
            for (float x : stored_order(t, scale, shift)) append(b, x);
    return b;
}

inline void expect_hand_values(const ModelFile& f, const std::vector<HandTensor>& tensors,
                               bool moments) {
    const ParameterLayout layout(f.config());
    for (const HandTensor& t : tensors) {
        const ParamInfo& info = layout.at(t.name);
        ASSERT_EQ(info.shape, t.shape) << t.name;
        for (size_t k = 0; k < t.values.size(); ++k) {
            ASSERT_EQ(f.weights()[info.offset + k], t.values[k]) << t.name << " [" << k << "]";
            if (moments) {
                ASSERT_EQ(f.adam_m()[info.offset + k], t.values[k] * 0.5f + 1.0f) << t.name;
                ASSERT_EQ(f.adam_v()[info.offset + k], t.values[k] * 0.25f + 2.0f) << t.name;
            }
        }
    }
}

}  // namespace tinygpt::file_test
