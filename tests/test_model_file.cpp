// The .tinygpt file layer (docs/FORMAT.md): v3 round trips (f32 bit-exact and memory-mapped,
// bf16/f16 within their precision), the exact TrainingState; v2 round trips and v1/v2 files built
// byte by byte as the original writes them (transposed Linear weights, fp16 inference layout,
// v1 without a manifest); every hostile file we can think of (each must give an Error naming the
// path and the problem, never a crash or a huge allocation); crash-safe saving, including a
// writer SIGKILLed mid-save.
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
#include "util/error.h"
#include "util/rng.h"

namespace tinygpt {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Bytes = std::vector<uint8_t>;

// --- fixtures and helpers ------------------------------------------------------------------------

class TempDir {
  public:
    TempDir() {
        std::string tmpl = (fs::temp_directory_path() / "tinygpt-io-XXXXXX").string();
        if (mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
        path_ = tmpl;
    }
    ~TempDir() {
        std::error_code ec;
        fs::permissions(path_, fs::perms::owner_all, fs::perm_options::add, ec);
        fs::remove_all(path_, ec);
    }
    std::string file(const std::string& name) const { return (path_ / name).string(); }
    const fs::path& path() const { return path_; }

  private:
    fs::path path_;
};

ModelConfig small_config(bool moe) {
    ModelConfig cfg;
    cfg.preset = "test";
    cfg.vocab = 256;
    cfg.ctx = 16;
    cfg.layers = 2;
    cfg.d_model = 16;
    cfg.heads = 2;
    cfg.d_mlp = 32;  // ≠ d_model: a wrong transpose cannot go unnoticed
    cfg.experts = moe ? 4 : 1;
    cfg.topk = moe ? 2 : 1;
    cfg.aux_weight = 0.0123f;
    return cfg;
}

// Weights / moments in the engine's layout; padding stays zero.
struct Model {
    ModelConfig cfg;
    size_t n = 0;
    std::vector<float> w, m, v;
};

Model make_model(const ModelConfig& cfg, uint64_t seed) {
    Model model;
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

TrainingState make_state(int64_t step = 123) {
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

Bytes read_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return Bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void write_bytes(const std::string& path, const Bytes& bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(bytes.data()),
              static_cast<std::streamsize>(bytes.size()));
    ASSERT_TRUE(out.good()) << path;
}

template <typename T>
void append(Bytes& b, T value) {
    const auto* p = reinterpret_cast<const uint8_t*>(&value);
    b.insert(b.end(), p, p + sizeof(T));
}
void append_text(Bytes& b, const std::string& s) {
    b.insert(b.end(), s.begin(), s.end());
}

bool same_bits(float a, float b) {
    return std::bit_cast<uint32_t>(a) == std::bit_cast<uint32_t>(b);
}
bool same_bits(double a, double b) {
    return std::bit_cast<uint64_t>(a) == std::bit_cast<uint64_t>(b);
}
bool same_or_both_nan(float a, float b) {
    return (std::isnan(a) && std::isnan(b)) || same_bits(a, b);
}

// Reading `path` must throw a tinygpt::Error whose message starts with the path and contains
// every phrase.
void expect_read_error(const std::string& path, const std::vector<std::string>& phrases) {
    try {
        ModelFile f = ModelFile::read(path);
        ADD_FAILURE() << "reading " << path << " succeeded; expected an error containing '"
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

void expect_save_error(const std::function<void()>& save, const std::string& path,
                       const std::vector<std::string>& phrases) {
    try {
        save();
        ADD_FAILURE() << "saving " << path << " succeeded; expected '" << phrases.front() << "'";
    } catch (const Error& e) {
        const std::string msg = e.what();
        EXPECT_EQ(msg.rfind(path + ": ", 0), 0u) << "message does not start with the path: " << msg;
        for (const std::string& phrase : phrases)
            EXPECT_NE(msg.find(phrase), std::string::npos)
                << "missing '" << phrase << "' in: " << msg;
    }
}

// v3 anatomy of a file in memory.
struct V3View {
    uint32_t header_len = 0;
    json header;
    uint64_t data_start = 0;  // the first section's offset
};

V3View parse_v3(const Bytes& b) {
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
Bytes rewrite_v3(const Bytes& original, const std::function<void(json&)>& mutate,
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
    TempDir dir;
    Model dense = make_model(small_config(false), 1);
    Model moe = make_model(small_config(true), 2);
    TrainingState state = make_state();

    std::string save(const Model& model, const std::string& name, SaveOptions options = {}) {
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
void expect_config_eq(const ModelConfig& a, const ModelConfig& b, bool aux_stored = true) {
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

void expect_state_eq(const TrainingState& a, const TrainingState& b) {
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

void expect_histories_eq(const TrainingState& a, const TrainingState& b) {
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

TEST(ModelFileHalf, Bf16RoundsToNearestEven) {
    using io::bf16_to_float;
    using io::float_to_bf16;
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
    using io::f16_to_float;
    using io::float_to_f16;
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
    for (const Model* model : {&dense, &moe}) {
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
    for (WeightDtype dtype : {WeightDtype::BF16, WeightDtype::F16}) {
        SaveOptions options;
        options.dtype = dtype;
        options.include_optimizer = false;
        const std::string path =
            save(moe, std::string("half-") + dtype_name(dtype) + ".tinygpt", options);
        const ModelFile f = ModelFile::read(path);
        EXPECT_EQ(f.weight_dtype(), dtype);
        EXPECT_FALSE(f.weights_mapped());
        EXPECT_LT(f.file_bytes(), moe.n * 2 + 64 * 1024);
        const double rel = dtype == WeightDtype::BF16 ? std::ldexp(1.0, -8) : std::ldexp(1.0, -11);
        for (size_t i = 0; i < moe.n; ++i) {
            const float want = moe.w[i];
            const float got = f.weights()[i];
            ASSERT_LE(std::fabs(got - want), std::fabs(want) * rel + std::ldexp(1.0, -24)) << i;
            const float again = dtype == WeightDtype::BF16
                                    ? io::bf16_to_float(io::float_to_bf16(want))
                                    : io::f16_to_float(io::float_to_f16(want));
            ASSERT_TRUE(same_bits(got, again)) << i;
        }
        for (const StoredTensor& t : f.tensors()) EXPECT_EQ(t.dtype, dtype);
        expect_state_eq(f.training_state(), state);
    }
    // An inference copy may still carry f32 moments.
    SaveOptions options;
    options.dtype = WeightDtype::BF16;
    const ModelFile f = ModelFile::read(save(dense, "bf16-with-moments.tinygpt", options));
    ASSERT_TRUE(f.has_optimizer_state());
    EXPECT_EQ(std::memcmp(f.adam_m(), dense.m.data(), dense.n * 4), 0);
    EXPECT_EQ(std::memcmp(f.adam_v(), dense.v.data(), dense.n * 4), 0);
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
    Model other = make_model(dense.cfg, 99);
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
    for (const Model* model : {&dense, &moe}) {
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

struct HandTensor {
    std::string name;
    std::vector<int64_t> shape;
    bool transposed;
    std::vector<float> values;  // [out, in] (what the engine must end up with)
};

// The original's manifest (reference §3.4), written out independently of ParameterLayout.
std::vector<HandTensor> original_manifest(const ModelConfig& c, uint64_t seed) {
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
std::vector<float> stored_order(const HandTensor& t, float scale, float shift) {
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

json original_config(const ModelConfig& c) {
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

Bytes original_file(uint32_t version, const json& header, int32_t step) {
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
Bytes training_fp32_file(uint32_t version, const ModelConfig& cfg,
                         const std::vector<HandTensor>& tensors, bool with_manifest, int32_t step,
                         json extra = json::object()) {
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

void expect_hand_values(const ModelFile& f, const std::vector<HandTensor>& tensors, bool moments) {
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

TEST_F(ModelFileTest, OriginalV2TrainingFp32FileBuiltByHand) {
    for (bool is_moe : {false, true}) {
        const ModelConfig cfg = small_config(is_moe);
        const auto tensors = original_manifest(cfg, is_moe ? 11 : 10);
        const std::string path = dir.file(is_moe ? "hand-moe.tinygpt" : "hand-dense.tinygpt");
        write_bytes(path, training_fp32_file(2, cfg, tensors, true, 4321));
        const ModelFile f = ModelFile::read(path);
        EXPECT_EQ(f.version(), 2);
        EXPECT_EQ(f.config().d_model, 16);
        EXPECT_EQ(f.config().d_mlp, 32);
        EXPECT_EQ(f.config().experts, cfg.experts);
        EXPECT_EQ(f.config().topk, cfg.topk);
        EXPECT_EQ(f.config().aux_weight, 0.01f);
        EXPECT_EQ(f.weight_dtype(), WeightDtype::F32);
        EXPECT_EQ(f.training_state().step, 4321);
        EXPECT_EQ(f.training_state().batch, 8);
        ASSERT_TRUE(f.has_optimizer_state());
        expect_hand_values(f, tensors, true);
        // tensors() lists the file's manifest with each weight's position.
        ASSERT_EQ(f.tensors().size(), tensors.size());
        EXPECT_EQ(f.tensors()[0].name, "token_embedding.weight");
        EXPECT_EQ(f.tensors()[1].offset, f.tensors()[0].offset + 3 * f.tensors()[0].bytes);
    }
}

TEST_F(ModelFileTest, OriginalV2WithZeroMomentsHasNoOptimizerState) {
    // The Swift original writes zeros for m and v.
    const ModelConfig cfg = small_config(true);
    auto tensors = original_manifest(cfg, 12);
    json header = {{"config", original_config(cfg)}};
    json manifest = json::array();
    for (const HandTensor& t : tensors) manifest.push_back({{"name", t.name}, {"shape", t.shape}});
    header["manifest"] = manifest;
    Bytes b = original_file(2, header, 7);
    for (const HandTensor& t : tensors) {
        for (float x : stored_order(t, 1, 0)) append(b, x);
        b.resize(b.size() + 8 * t.values.size(), 0);
    }
    const std::string path = dir.file("swift.tinygpt");
    write_bytes(path, b);
    const ModelFile f = ModelFile::read(path);
    EXPECT_FALSE(f.has_optimizer_state());
    EXPECT_EQ(f.adam_m(), nullptr);
    EXPECT_EQ(f.training_state().step, 7);
    expect_hand_values(f, tensors, false);
}

TEST_F(ModelFileTest, OriginalV2InferenceFp16FileBuiltByHand) {
    for (bool is_moe : {false, true}) {
        const ModelConfig cfg = small_config(is_moe);
        const auto tensors = original_manifest(cfg, 20);
        // floatOffsets assigned in reverse manifest order: the reader must slice by floatOffset.
        size_t total = 0;
        for (const HandTensor& t : tensors) total += t.values.size();
        std::vector<uint16_t> buffer(total);
        json manifest = json::array();
        size_t end = total;
        for (const HandTensor& t : tensors) {
            end -= t.values.size();
            manifest.push_back({{"name", t.name}, {"shape", t.shape}, {"floatOffset", end}});
            const auto stored = stored_order(t, 1, 0);
            for (size_t k = 0; k < stored.size(); ++k)
                buffer[end + k] = io::float_to_f16(stored[k]);
        }
        json header = {{"config", original_config(cfg)},
                       {"manifest", manifest},
                       {"weightDtype", "fp16"},
                       {"includesOptimizerState", false}};
        Bytes b = original_file(2, header, 55);
        for (uint16_t h : buffer) append(b, h);
        const std::string path = dir.file(is_moe ? "fp16-moe.bin" : "fp16-dense.bin");
        write_bytes(path, b);
        const ModelFile f = ModelFile::read(path);
        EXPECT_EQ(f.weight_dtype(), WeightDtype::F16);
        EXPECT_FALSE(f.has_optimizer_state());
        EXPECT_EQ(f.training_state().step, 55);
        expect_hand_values(f, tensors, false);
    }
}

TEST_F(ModelFileTest, OriginalV1FileWithoutManifestBuiltByHand) {
    const ModelConfig cfg = small_config(false);
    const auto tensors = original_manifest(cfg, 30);
    const std::string path = dir.file("v1.tinygpt");
    write_bytes(path, training_fp32_file(1, cfg, tensors, false, 99));
    const ModelFile f = ModelFile::read(path);
    EXPECT_EQ(f.version(), 1);
    EXPECT_EQ(f.training_state().step, 99);
    ASSERT_TRUE(f.has_optimizer_state());
    expect_hand_values(f, tensors, true);
}

TEST_F(ModelFileTest, OriginalV1MoeFileWithoutManifestBuiltByHand) {
    const ModelConfig cfg = small_config(true);
    const auto tensors = original_manifest(cfg, 31);
    const std::string path = dir.file("v1-moe.tinygpt");
    write_bytes(path, training_fp32_file(1, cfg, tensors, false, 5));
    const ModelFile f = ModelFile::read(path);
    EXPECT_EQ(f.config().experts, 4);
    expect_hand_values(f, tensors, true);
}

TEST_F(ModelFileTest, OriginalConfigFallbacksAndUnknownKeys) {
    // Missing keys fall back to ctx 256, layers 12, heads 8, dModel 256, dMlp 1024 (the "huge"
    // shape); unknown keys are ignored. Only dModel and layers are given here: a small model.
    ModelConfig cfg = small_config(false);
    cfg.ctx = 256;
    cfg.heads = 8;
    cfg.d_mlp = 1024;
    cfg.layers = 1;
    const auto tensors = original_manifest(cfg, 40);
    json header = {{"config", {{"dModel", 16}, {"layers", 1}, {"someFutureKey", {1, 2, 3}}}},
                   {"unknownTopLevel", "ignored"}};
    json manifest = json::array();
    for (const HandTensor& t : tensors) manifest.push_back({{"name", t.name}, {"shape", t.shape}});
    header["manifest"] = manifest;
    Bytes b = original_file(2, header, 1);
    for (const HandTensor& t : tensors)
        for (auto [scale, shift] :
             {std::pair{1.0f, 0.0f}, std::pair{0.5f, 1.0f}, std::pair{0.25f, 2.0f}})
            for (float x : stored_order(t, scale, shift)) append(b, x);
    const std::string path = dir.file("fallbacks.tinygpt");
    write_bytes(path, b);
    const ModelFile f = ModelFile::read(path);
    EXPECT_EQ(f.config().ctx, 256);
    EXPECT_EQ(f.config().heads, 8);
    EXPECT_EQ(f.config().d_mlp, 1024);
    EXPECT_EQ(f.config().vocab, 256);
    EXPECT_EQ(f.config().experts, 1);
    expect_hand_values(f, tensors, true);
}

// --- refusals
// ---------------------------------------------------------------------------------------

TEST_F(ModelFileTest, RefusesV2WithHalfPrecision) {
    SaveOptions options;
    options.version = 2;
    options.dtype = WeightDtype::BF16;
    const std::string path = dir.file("v2-bf16.tinygpt");
    expect_save_error(
        [&] {
            save_model_file(path, dense.cfg, dense.w.data(), dense.m.data(), dense.v.data(), state,
                            options);
        },
        path, {"v2", "fp32", "v3"});
    EXPECT_FALSE(fs::exists(path));
    options.dtype = WeightDtype::F16;
    expect_save_error(
        [&] {
            save_model_file(path, dense.cfg, dense.w.data(), dense.m.data(), dense.v.data(), state,
                            options);
        },
        path, {"v2"});
}

TEST_F(ModelFileTest, RefusesBadSaveArguments) {
    const std::string path = dir.file("bad-args.tinygpt");
    SaveOptions options;
    options.version = 4;
    expect_save_error(
        [&] {
            save_model_file(path, dense.cfg, dense.w.data(), dense.m.data(), dense.v.data(), state,
                            options);
        },
        path, {"version 4"});
    expect_save_error(
        [&] { save_model_file(path, dense.cfg, dense.w.data(), nullptr, nullptr, state); }, path,
        {"AdamW moments are missing"});
    ModelConfig bad = dense.cfg;
    bad.heads = 3;
    expect_save_error(
        [&] { save_model_file(path, bad, dense.w.data(), dense.m.data(), dense.v.data(), state); },
        path, {"invalid model config", "divisible"});
    EXPECT_FALSE(fs::exists(path));
}

TEST_F(ModelFileTest, RefusesUnknownArchitecture) {
    const std::string path =
        hostile_v3("llama.tinygpt", [](json& h) { h["config"]["arch"] = "llama"; });
    expect_read_error(path, {"unsupported model architecture 'llama'"});
}

TEST_F(ModelFileTest, RefusesUnknownV3ConfigKeyAndTokenizer) {
    expect_read_error(hostile_v3("rope.tinygpt", [](json& h) { h["config"]["rope"] = true; }),
                      {"config key 'rope' is not understood"});
    expect_read_error(hostile_v3("bpe.tinygpt", [](json& h) { h["tokenizer"]["type"] = "bpe"; }),
                      {"unsupported tokenizer type 'bpe'"});
}

TEST_F(ModelFileTest, RefusesUnsupportedOriginalFeatures) {
    const ModelConfig cfg = small_config(false);
    const auto tensors = original_manifest(cfg, 50);
    struct Case {
        const char* name;
        std::function<void(json&)> edit;
        const char* phrase;
    };
    const std::vector<Case> cases = {
        {"mod", [](json& h) { h["config"]["useMoD"] = true; }, "mixture-of-depths"},
        {"window", [](json& h) { h["config"]["slidingWindow"] = 64; }, "sliding-window attention"},
        {"alibi", [](json& h) { h["config"]["useALiBi"] = true; }, "ALiBi"},
        {"bpe", [](json& h) { h["config"]["tokenizerSource"] = "/models/gpt2"; }, "tokenizer"},
        {"deepnorm", [](json& h) { h["config"]["useDeepNorm"] = true; }, "DeepNorm"},
        {"gqa", [](json& h) { h["config"]["nKvHeads"] = 1; }, "grouped-query attention"},
        {"int4", [](json& h) { h["weightDtype"] = "int4"; }, "int4"},
        {"dtype", [](json& h) { h["weightDtype"] = "fp8"; }, "unknown value 'fp8'"},
        {"diff",
         [](json& h) {
             h["manifest"].push_back(
                 {{"name", "blocks.0.diff_attn.q1_proj.weight"}, {"shape", {16, 16}}});
         },
         "differential attention"},
        {"embednorm",
         [](json& h) {
             h["manifest"].push_back({{"name", "embed_norm.weight"}, {"shape", {16}}});
         },
         "embedding RMSNorm"},
        {"unknown",
         [](json& h) {
             h["manifest"].push_back({{"name", "blocks.0.mystery.weight"}, {"shape", {16}}});
         },
         "'blocks.0.mystery.weight'"},
    };
    for (const Case& c : cases) {
        Bytes good = training_fp32_file(2, cfg, tensors, true, 1);
        uint32_t hl;
        std::memcpy(&hl, good.data() + 8, 4);
        json h = json::parse(good.begin() + 12, good.begin() + 12 + hl);
        c.edit(h);
        Bytes b = original_file(2, h, 1);
        b.insert(b.end(), good.begin() + 16 + hl, good.end());
        const std::string path = dir.file(std::string("feature-") + c.name + ".tinygpt");
        write_bytes(path, b);
        SCOPED_TRACE(c.name);
        expect_read_error(path, {c.phrase});
    }
}

// --- hostile files
// ------------------------------------------------------------------------------------

TEST_F(ModelFileTest, HostileNonexistentPath) {
    expect_read_error(dir.file("no-such-file.tinygpt"), {"cannot open", "No such file"});
}

TEST_F(ModelFileTest, HostileDirectory) {
    expect_read_error(dir.path().string(), {"is a directory"});
}

TEST_F(ModelFileTest, HostileFifoDoesNotHang) {
    const std::string path = dir.file("fifo");
    ASSERT_EQ(mkfifo(path.c_str(), 0600), 0);
    expect_read_error(path, {"not a regular file"});
}

TEST_F(ModelFileTest, HostileEmptyFile) {
    const std::string path = dir.file("empty.tinygpt");
    write_bytes(path, {});
    expect_read_error(path, {"empty"});
}

TEST_F(ModelFileTest, HostileBadMagic) {
    const std::string path = dir.file("text.tinygpt");
    write_bytes(path, Bytes{'h', 'e', 'l', 'l', 'o', ' ', 'w', 'o', 'r', 'l', 'd', '!', '\n'});
    expect_read_error(path, {"not a tinygpt model file", "bad magic"});
    write_bytes(path, Bytes{'T', 'G'});  // a prefix of the magic: truncated, not "bad magic"
    expect_read_error(path, {"truncated"});
    write_bytes(path, Bytes{'X'});
    expect_read_error(path, {"bad magic"});
}

TEST_F(ModelFileTest, HostileNewerAndUnknownVersions) {
    Bytes b = read_bytes(save(dense, "v.tinygpt"));
    const std::string path = dir.file("version.tinygpt");
    for (uint32_t version : {4u, 77u, 0xFFFFFFFFu}) {
        std::memcpy(b.data() + 4, &version, 4);
        write_bytes(path, b);
        expect_read_error(path, {"file format version " + std::to_string(version) +
                                 " is newer than this tinygpt understands (up to 3)"});
    }
    const uint32_t zero = 0;
    std::memcpy(b.data() + 4, &zero, 4);
    write_bytes(path, b);
    expect_read_error(path, {"unknown file format version 0"});
}

TEST_F(ModelFileTest, HostileTruncatedPreamble) {
    const Bytes b = read_bytes(save(dense, "t.tinygpt"));
    const std::string path = dir.file("cut.tinygpt");
    for (size_t cut : {4, 7, 11}) {
        write_bytes(path, Bytes(b.begin(), b.begin() + static_cast<std::ptrdiff_t>(cut)));
        expect_read_error(path, {"truncated", "preamble"});
    }
}

TEST_F(ModelFileTest, HostileTruncatedJsonHeader) {
    const Bytes b = read_bytes(save(dense, "t.tinygpt"));
    const std::string path = dir.file("cut.tinygpt");
    write_bytes(path, Bytes(b.begin(), b.begin() + 200));
    expect_read_error(path, {"truncated", "bytes of JSON"});
}

TEST_F(ModelFileTest, HostileTruncatedHeaderChecksum) {
    const Bytes b = read_bytes(save(dense, "t.tinygpt"));
    const V3View v = parse_v3(b);
    const std::string path = dir.file("cut.tinygpt");
    write_bytes(path, Bytes(b.begin(), b.begin() + 12 + v.header_len + 5));
    expect_read_error(path, {"truncated", "checksum"});
}

TEST_F(ModelFileTest, HostileTruncatedSection) {
    const Bytes b = read_bytes(save(dense, "t.tinygpt"));
    const std::string path = dir.file("cut.tinygpt");
    write_bytes(path, Bytes(b.begin(), b.end() - 1000));
    expect_read_error(path, {"truncated", "section 'adam_v'", "extends past the end"});
    const V3View v = parse_v3(b);
    write_bytes(path,
                Bytes(b.begin(), b.begin() + static_cast<std::ptrdiff_t>(v.data_start + 100)));
    expect_read_error(path, {"truncated", "section 'weights'"});
}

TEST_F(ModelFileTest, HostileTruncatedV2) {
    SaveOptions options;
    options.version = 2;
    const Bytes b = read_bytes(save(moe, "t2.tinygpt", options));
    uint32_t hl;
    std::memcpy(&hl, b.data() + 8, 4);
    const std::string path = dir.file("cut2.tinygpt");
    write_bytes(path, Bytes(b.begin(), b.end() - 1));
    expect_read_error(path, {"truncated"});
    write_bytes(path, Bytes(b.begin(), b.begin() + 12 + hl + 2));
    expect_read_error(path, {"truncated", "step counter"});
    write_bytes(path, Bytes(b.begin(), b.begin() + 12 + hl + 4 + 1000));
    expect_read_error(path, {"truncated"});
    write_bytes(path, Bytes(b.begin(), b.begin() + 100));
    expect_read_error(path, {"truncated", "bytes of JSON"});
}

TEST_F(ModelFileTest, HostileEveryTruncationIsAnError) {
    for (int version : {2, 3}) {
        SaveOptions options;
        options.version = version;
        const Bytes b = read_bytes(save(dense, "full.tinygpt", options));
        const std::string path = dir.file("prefix.tinygpt");
        for (size_t cut = 1; cut < b.size(); cut += (cut < 4096 ? 13 : 997)) {
            write_bytes(path, Bytes(b.begin(), b.begin() + static_cast<std::ptrdiff_t>(cut)));
            try {
                ModelFile f = ModelFile::read(path);
                ADD_FAILURE() << "v" << version << " cut at " << cut << " of " << b.size()
                              << " loaded";
            } catch (const Error& e) {
                ASSERT_EQ(std::string(e.what()).rfind(path + ": ", 0), 0u) << e.what();
            }
        }
    }
}

TEST_F(ModelFileTest, HostileHeaderNotJson) {
    const Bytes good = read_bytes(save(dense, "g.tinygpt"));
    const std::string raw = "{\"config\": {\"arch\": \"gpt\", oops";
    const std::string path = dir.file("notjson.tinygpt");
    write_bytes(path, rewrite_v3(
                          good, [](json&) {}, &raw));
    expect_read_error(path, {"header is not valid JSON"});
    const std::string array = "[1, 2, 3]";
    write_bytes(path, rewrite_v3(
                          good, [](json&) {}, &array));
    expect_read_error(path, {"header is not a JSON object"});
    // v2: no checksum, straight to the parser.
    Bytes v2;
    append_text(v2, "TGPT");
    append(v2, uint32_t{2});
    append(v2, uint32_t{5});
    append_text(v2, "{,,,}");
    append(v2, int32_t{0});
    write_bytes(path, v2);
    expect_read_error(path, {"header is not valid JSON"});
    // A million nested arrays: refused before anything recurses.
    const std::string deep = std::string(1000000, '[') + std::string(1000000, ']');
    Bytes nested;
    append_text(nested, "TGPT");
    append(nested, uint32_t{2});
    append(nested, static_cast<uint32_t>(deep.size()));
    append_text(nested, deep);
    append(nested, int32_t{0});
    write_bytes(path, nested);
    expect_read_error(path, {"nested more than 64 levels"});
    write_bytes(path, rewrite_v3(
                          good, [](json&) {}, &deep));
    expect_read_error(path, {"nested more than 64 levels"});
}

TEST_F(ModelFileTest, HostileMissingRequiredFields) {
    expect_read_error(hostile_v3("a.tinygpt", [](json& h) { h["config"].erase("d_model"); }),
                      {"header field 'config.d_model' is missing"});
    expect_read_error(hostile_v3("b.tinygpt", [](json& h) { h.erase("config"); }),
                      {"header field 'config' is missing"});
    expect_read_error(hostile_v3("c.tinygpt", [](json& h) { h.erase("sections"); }),
                      {"header field 'sections' is missing"});
    expect_read_error(hostile_v3("d.tinygpt", [](json& h) { h.erase("tensors"); }),
                      {"header field 'tensors' is missing"});
    expect_read_error(hostile_v3("e.tinygpt", [](json& h) { h["training"].erase("data_rng"); }),
                      {"header field 'training.data_rng' is missing"});
    expect_read_error(
        hostile_v3("f.tinygpt", [](json& h) { h["sections"][0]["name"] = "weightz"; }),
        {"no 'weights' section"});
    expect_read_error(hostile_v3("g.tinygpt", [](json& h) { h["sections"][0].erase("checksum"); }),
                      {"'sections[0].checksum' is missing"});
    expect_read_error(hostile_v3("h.tinygpt", [](json& h) { h["sections"].erase(1); }),
                      {"'adam_v' without 'adam_m'"});
}

TEST_F(ModelFileTest, HostileWrongTypes) {
    expect_read_error(hostile_v3("a.tinygpt", [](json& h) { h["config"]["layers"] = "two"; }),
                      {"header field 'config.layers' must be an integer"});
    expect_read_error(hostile_v3("b.tinygpt", [](json& h) { h["config"]["layers"] = 2.5; }),
                      {"'config.layers' must be an integer"});
    expect_read_error(hostile_v3("c.tinygpt", [](json& h) { h["config"]["layers"] = -2; }),
                      {"'config.layers' must be an integer in [1, "});
    expect_read_error(hostile_v3("d.tinygpt", [](json& h) { h["training"]["data_rng"] = 5; }),
                      {"'training.data_rng' must be an array"});
    expect_read_error(
        hostile_v3("e.tinygpt", [](json& h) { h["training"]["data_rng"][2] = "0xZZ"; }),
        {"'training.data_rng[2]' must be an unsigned 64-bit integer"});
    expect_read_error(hostile_v3("f.tinygpt", [](json& h) { h["sections"] = "weights"; }),
                      {"'sections' must be an array"});
    expect_read_error(hostile_v3("g.tinygpt", [](json& h) { h["sections"][0]["offset"] = "far"; }),
                      {"'sections.weights.offset' must be an unsigned"});
    expect_read_error(hostile_v3("h.tinygpt",
                                 [](json& h) {
                                     h["loss_history"][0] = {1, 2};
                                 }),
                      {"'loss_history[0]' must be [step, loss, aux, val_loss]"});
    expect_read_error(
        hostile_v3("i.tinygpt", [](json& h) { h["config"]["aux_weight"] = json::array(); }),
        {"'config.aux_weight' must be a number"});
    expect_read_error(
        hostile_v3("j.tinygpt", [](json& h) { h["training"]["schedule"]["kind"] = "linear"; }),
        {"unknown schedule 'linear'"});
    expect_read_error(hostile_v3("k.tinygpt", [](json& h) { h["format"] = 3; }),
                      {"'format' must be an object"});

    // v2: wrong types in the config and the manifest.
    const ModelConfig cfg = small_config(false);
    const auto tensors = original_manifest(cfg, 60);
    const std::string path = dir.file("v2-types.tinygpt");
    write_bytes(path,
                training_fp32_file(2, cfg, tensors, true, 1, {{"config", {{"layers", "x"}}}}));
    expect_read_error(path, {"'config.layers' must be an integer"});
    write_bytes(path,
                training_fp32_file(2, cfg, tensors, true, 1, {{"manifest", {{{"name", 5}}}}}));
    expect_read_error(path, {"'manifest[0].name' must be a string"});
    write_bytes(path, training_fp32_file(2, cfg, tensors, true, 1, {{"manifest", "none"}}));
    expect_read_error(path, {"'manifest' must be an array"});
    write_bytes(path,
                training_fp32_file(2, cfg, tensors, true, 1, {{"includesOptimizerState", "yes"}}));
    expect_read_error(path, {"'includesOptimizerState' must be true or false"});
    write_bytes(path, training_fp32_file(2, cfg, tensors, true, 1, {{"config", 7}}));
    expect_read_error(path, {"'config' must be an object"});
}

TEST_F(ModelFileTest, HostileV2MissingManifest) {
    const ModelConfig cfg = small_config(false);
    const auto tensors = original_manifest(cfg, 61);
    const std::string path = dir.file("no-manifest.tinygpt");
    write_bytes(path, training_fp32_file(2, cfg, tensors, false, 1));
    expect_read_error(path, {"'manifest' is missing"});
}

TEST_F(ModelFileTest, HostileShapesDisagreeWithTheConfig) {
    const ModelConfig cfg = small_config(true);
    auto tensors = original_manifest(cfg, 62);
    const std::string path = dir.file("shapes.tinygpt");
    // A manifest shape that disagrees (the byte count stays the same: [32, 16] → [16, 32]).
    auto swapped = tensors;
    for (HandTensor& t : swapped)
        if (t.name == "blocks.1.moe.experts.2.fc_in.weight") t.shape = {16, 32};
    write_bytes(path, training_fp32_file(2, cfg, swapped, true, 1));
    expect_read_error(path,
                      {"manifest entry 'blocks.1.moe.experts.2.fc_in.weight' has shape [16, 32]",
                       "config needs [32, 16]"});
    // A config that disagrees with the manifest (and the bytes).
    write_bytes(path, training_fp32_file(2, cfg, tensors, true, 1,
                                         {{"config",
                                           {{"layers", 2},
                                            {"dModel", 16},
                                            {"ctx", 16},
                                            {"heads", 2},
                                            {"dMlp", 16},
                                            {"nExperts", 4},
                                            {"moeTopK", 2}}}}));
    expect_read_error(path, {"has shape"});
    // A manifest lacking a tensor, and one listing a tensor twice.
    auto fewer = tensors;
    fewer.erase(fewer.begin() + 5);
    write_bytes(path, training_fp32_file(2, cfg, fewer, true, 1));
    expect_read_error(path, {"lacks tensor '" + tensors[5].name + "'"});
    auto twice = tensors;
    twice[6] = twice[4];
    write_bytes(path, training_fp32_file(2, cfg, twice, true, 1));
    expect_read_error(path, {"twice"});
    // v3: the tensor table disagrees with the layout.
    expect_read_error(hostile_v3("table.tinygpt",
                                 [](json& h) {
                                     h["tensors"][3]["shape"] = {1, 2};
                                 }),
                      {"tensor table disagrees with the config"});
    expect_read_error(hostile_v3("table2.tinygpt", [](json& h) { h["tensors"][3]["offset"] = 4; }),
                      {"tensor table disagrees with the config"});
    expect_read_error(hostile_v3("table3.tinygpt", [](json& h) { h["tensors"].erase(0); }),
                      {"tensor table disagrees with the config", "lists"});
    expect_read_error(
        hostile_v3("table4.tinygpt", [](json& h) { h["tensors"][0]["dtype"] = "bf16"; }),
        {"tensor table disagrees with the config"});
}

TEST_F(ModelFileTest, HostileByteLengthsDisagree) {
    expect_read_error(hostile_v3("a.tinygpt",
                                 [](json& h) {
                                     h["sections"][0]["bytes"] =
                                         h["sections"][0]["bytes"].get<uint64_t>() - 64;
                                 }),
                      {"section 'weights' is", "the config needs"});
    expect_read_error(hostile_v3("b.tinygpt",
                                 [](json& h) {
                                     h["config"]["d_mlp"] =
                                         48;  // a bigger model than the sections hold
                                 }),
                      {"section 'weights' is"});
    expect_read_error(hostile_v3("c.tinygpt", [](json& h) { h["sections"][1]["bytes"] = 64; }),
                      {"section 'adam_m' is 64 bytes"});
    // Trailing bytes after the last section / after the v2 body.
    Bytes b = read_bytes(save(dense, "t.tinygpt"));
    b.resize(b.size() + 64, 0);
    const std::string path = dir.file("trailing.tinygpt");
    write_bytes(path, b);
    expect_read_error(path, {"64 unexpected bytes after its last section"});
    SaveOptions options;
    options.version = 2;
    b = read_bytes(save(dense, "t2.tinygpt", options));
    b.push_back(0);
    write_bytes(path, b);
    expect_read_error(path, {"1 unexpected bytes after the tensor data"});
    // A wrong stateByteLength.
    const ModelConfig cfg = small_config(false);
    write_bytes(path, training_fp32_file(2, cfg, original_manifest(cfg, 63), true, 1,
                                         {{"stateByteLength", 12}}));
    expect_read_error(path, {"'stateByteLength' is 12"});
}

TEST_F(ModelFileTest, HostileOffsets) {
    expect_read_error(hostile_v3("misaligned.tinygpt",
                                 [](json& h) {
                                     h["sections"][1]["offset"] =
                                         h["sections"][1]["offset"].get<uint64_t>() + 4;
                                 }),
                      {"section 'adam_m' at offset", "not 64-byte aligned"});
    expect_read_error(hostile_v3("overlap.tinygpt",
                                 [](json& h) {
                                     h["sections"][1]["offset"] =
                                         h["sections"][0]["offset"].get<uint64_t>() + 64;
                                 }),
                      {"sections 'weights' and 'adam_m' overlap"});
    expect_read_error(hostile_v3("header.tinygpt", [](json& h) { h["sections"][0]["offset"] = 0; }),
                      {"section 'weights' at offset 0 overlaps the header"});
    expect_read_error(hostile_v3("range.tinygpt",
                                 [](json& h) { h["sections"][2]["offset"] = uint64_t{1} << 40; }),
                      {"section 'adam_v'", "extends past the end of the file"});
    expect_read_error(hostile_v3("wrap.tinygpt",
                                 [](json& h) {
                                     h["sections"][2]["offset"] =
                                         std::numeric_limits<uint64_t>::max() - 63;
                                 }),
                      {"extends past the end of the file"});
    expect_read_error(
        hostile_v3("dup.tinygpt", [](json& h) { h["sections"][1]["name"] = "weights"; }),
        {"section 'weights' appears twice"});
    // The original's fp16 layout: a floatOffset outside the buffer, and two entries overlapping.
    const ModelConfig cfg = small_config(false);
    const auto tensors = original_manifest(cfg, 64);
    for (int variant = 0; variant < 2; ++variant) {
        json manifest = json::array();
        size_t offset = 0;
        for (const HandTensor& t : tensors) {
            manifest.push_back({{"name", t.name}, {"shape", t.shape}, {"floatOffset", offset}});
            offset += t.values.size();
        }
        if (variant == 0)
            manifest[3]["floatOffset"] = offset;  // past the end
        else
            manifest[3]["floatOffset"] = 0;  // on top of the token embedding
        Bytes b = original_file(
            2, {{"config", original_config(cfg)}, {"manifest", manifest}, {"weightDtype", "fp16"}},
            0);
        b.resize(b.size() + 2 * offset, 0);
        const std::string path = dir.file("fp16-offsets.bin");
        write_bytes(path, b);
        expect_read_error(path, {variant == 0 ? "lies outside" : "overlap"});
    }
}

TEST_F(ModelFileTest, HostileAbsurdSizesAreRefusedBeforeAllocating) {
    Bytes b = read_bytes(save(dense, "t.tinygpt"));
    const std::string path = dir.file("absurd.tinygpt");
    Bytes huge = b;
    const uint32_t len = 0xFFFFFFF0u;
    std::memcpy(huge.data() + 8, &len, 4);
    write_bytes(path, huge);
    expect_read_error(path, {"header length 4294967280 bytes exceeds the 64 MiB limit"});
    const uint32_t mib = 32u << 20;  // under the cap, over the file size
    std::memcpy(huge.data() + 8, &mib, 4);
    write_bytes(path, huge);
    expect_read_error(path, {"truncated", "33554432 bytes of JSON"});
    // Sections and configs claiming terabytes.
    expect_read_error(
        hostile_v3("tb.tinygpt", [](json& h) { h["sections"][0]["bytes"] = uint64_t{1} << 42; }),
        {"section 'weights'", "extends past the end of the file"});
    expect_read_error(hostile_v3("cfg.tinygpt",
                                 [](json& h) {
                                     h["config"]["layers"] = 65536;
                                     h["config"]["d_model"] = 1 << 24;
                                     h["config"]["d_mlp"] = 1 << 24;
                                     h["config"]["heads"] = 1;
                                     h["config"]["experts"] = 4096;
                                     h["config"]["topk"] = 1;
                                 }),
                      {"truncated or inconsistent", "needs"});
    expect_read_error(
        hostile_v3("dim.tinygpt", [](json& h) { h["config"]["d_model"] = int64_t{1} << 40; }),
        {"'config.d_model' must be an integer in [1, 16777216]"});
    const ModelConfig cfg = small_config(false);
    write_bytes(path, training_fp32_file(2, cfg, original_manifest(cfg, 65), true, 1,
                                         {{"config",
                                           {{"layers", 60000},
                                            {"dModel", 16000000},
                                            {"heads", 1},
                                            {"ctx", 16000000},
                                            {"dMlp", 16000000}}}}));
    expect_read_error(path, {"truncated or inconsistent", "needs"});
    write_bytes(path, training_fp32_file(2, cfg, original_manifest(cfg, 66), true, 1,
                                         {{"config",
                                           {{"layers", 2},
                                            {"dModel", 16},
                                            {"heads", 2},
                                            {"ctx", 16},
                                            {"dMlp", 32},
                                            {"vocabSize", 16777216}}}}));
    expect_read_error(path, {"truncated or inconsistent"});
}

TEST_F(ModelFileTest, HostileChecksumMismatches) {
    const std::string good = save(moe, "c.tinygpt");
    const Bytes b = read_bytes(good);
    const V3View v = parse_v3(b);
    const std::string path = dir.file("corrupt.tinygpt");
    for (const json& s : v.header["sections"]) {
        Bytes bad = b;
        bad[s["offset"].get<size_t>() + s["bytes"].get<size_t>() / 2] ^= 0x10;
        write_bytes(path, bad);
        const std::string name = s["name"];
        expect_read_error(path, {"checksum mismatch in section '" + name + "' (file corrupted?)"});
    }
    Bytes bad = b;
    bad[12 + v.header_len / 2] ^= 0x01;  // inside the JSON
    write_bytes(path, bad);
    expect_read_error(path, {"checksum mismatch in the header (file corrupted?)"});
    bad = b;
    bad[12 + v.header_len + 3] ^= 0x01;  // the stored checksum itself
    write_bytes(path, bad);
    expect_read_error(path, {"checksum mismatch in the header"});
    expect_read_error(
        hostile_v3("sum.tinygpt", [](json& h) { h["sections"][0]["checksum"] = "xyz"; }),
        {"'sections.weights.checksum' must be 16 lowercase hex digits"});
}

TEST_F(ModelFileTest, InferenceReadsSkipTheOptimizerSections) {
    const std::string good = save(moe, "i.tinygpt");
    const ModelFile full = ModelFile::read(good), lean = ModelFile::read(good, ReadOptions{false});
    EXPECT_TRUE(lean.has_optimizer_state());
    EXPECT_EQ(lean.adam_m(), nullptr);
    EXPECT_EQ(lean.adam_v(), nullptr);
    EXPECT_NE(full.adam_m(), nullptr);
    // A corrupted moment is not read for inference, and is caught when the moments are wanted.
    const Bytes b = read_bytes(good);
    const V3View v = parse_v3(b);
    for (const json& s : v.header["sections"]) {
        if (s["name"] != "adam_v") continue;
        Bytes bad = b;
        bad[s["offset"].get<size_t>() + 8] ^= 0x10;
        const std::string path = dir.file("bad-moment.tinygpt");
        write_bytes(path, bad);
        EXPECT_NO_THROW(ModelFile::read(path, ReadOptions{false}));
        expect_read_error(path, {"checksum mismatch in section 'adam_v'"});
    }
}

TEST_F(ModelFileTest, HostileInvalidConfigGetsThePathPrefixed) {
    expect_read_error(hostile_v3("heads.tinygpt", [](json& h) { h["config"]["heads"] = 3; }),
                      {"invalid model config", "divisible"});
    expect_read_error(hostile_v3("topk.tinygpt", [](json& h) { h["config"]["topk"] = 5; }),
                      {"invalid model config", "--moe-topk"});
    const ModelConfig cfg = small_config(false);
    const std::string path = dir.file("v2-heads.tinygpt");
    write_bytes(path,
                training_fp32_file(
                    2, cfg, original_manifest(cfg, 67), true, 1,
                    {{"config",
                      {{"layers", 2}, {"dModel", 16}, {"heads", 3}, {"ctx", 16}, {"dMlp", 32}}}}));
    expect_read_error(path, {"invalid model config", "divisible"});
}

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
    // v3: valid checksums, so every mutation reaches the structural checks.
    const Bytes v3 = read_bytes(save(moe, "fuzz3.tinygpt"));
    const std::string path = dir.file("fuzzed.tinygpt");
    for (int i = 0; i < 300; ++i) {
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
    for (int i = 0; i < 300; ++i) {
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
    EXPECT_GT(refused, 300);
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
    const Model big = make_model(moe.cfg, 77);
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        signal(SIGXFSZ, SIG_IGN);
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

TEST_F(ModelFileTest, KillDuringSaveLeavesOldOrNewFile) {
    ModelConfig cfg;
    cfg.layers = 4;
    cfg.d_model = 128;
    cfg.heads = 4;
    cfg.d_mlp = 256;
    cfg.ctx = 64;
    cfg.experts = 4;
    cfg.topk = 2;
    const Model a = make_model(cfg, 100), b = make_model(cfg, 200);
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
                const Model& m = use_b ? b : a;
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

TEST(ModelFileDtype, NamesAndParsing) {
    EXPECT_STREQ(dtype_name(WeightDtype::F32), "f32");
    EXPECT_STREQ(dtype_name(WeightDtype::BF16), "bf16");
    EXPECT_STREQ(dtype_name(WeightDtype::F16), "f16");
    EXPECT_EQ(parse_weight_dtype("bf16"), WeightDtype::BF16);
    EXPECT_EQ(parse_weight_dtype("fp16"), WeightDtype::F16);
    EXPECT_EQ(parse_weight_dtype("f32"), WeightDtype::F32);
    EXPECT_THROW(parse_weight_dtype("int8"), Error);
}

}  // namespace
}  // namespace tinygpt
