// .tinygpt v3 with per-tensor types (docs/FORMAT.md, "The weights section"): bf16 / f16 / q8_0
// copies round trip bit for bit in their types (q8_0 rows as ggml quantises them, norms and the
// router in f32), the weights stay in the memory map, f32 is made only when asked, typed models
// save without going through f32, files written before per-tensor types still read, NaN/inf is
// found in the stored types, and broken tensor tables are refused by name.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "load/model_source.h"
#include "model/model_weights.h"
#include "model/weight_check.h"
#include "model_file_fixture.h"
#include "quant/q8_0.h"

namespace tinygpt {
namespace {

using namespace file_test;

// GPT: q/k/v [32, 32] and fc_in [48, 32] in q8_0, fc_out [32, 48] falls back to f16 (rows of
// 48); the position table and the router stay f32.
ModelConfig typed_gpt() {
    return test::model_config({.d_model = 32, .heads = 2, .d_mlp = 48, .experts = 4, .topk = 2});
}

// Llama: q|k|v and gate|up fused, an untied head, a shared expert, experts whose down
// projection has rows of 48 (f16 under q8_0), q/k/v biases (f32, fused too).
ModelConfig typed_llama() {
    ModelConfig c;
    c.preset = "test";
    c.arch = Arch::Llama;
    c.vocab = 256;
    c.ctx = 16;
    c.layers = 2;
    c.d_model = 64;
    c.heads = 4;
    c.kv_heads = 2;
    c.d_mlp = 96;
    c.experts = 4;
    c.topk = 2;
    c.moe_ffn = 48;
    c.shared_ffn = 32;
    c.norm_topk = NormTopk::Off;
    c.qkv_bias = true;
    c.tie_embeddings = false;
    c.moe_layers = {0, 1};
    c.validate();
    return c;
}

const WeightDtype kTyped[] = {WeightDtype::BF16, WeightDtype::F16, WeightDtype::Q8_0};

class TypedFile : public ModelFileTest {
  protected:
    std::string save_typed(const FlatModel& model, const std::string& name, WeightDtype dtype) {
        SaveOptions options;
        options.dtype = dtype;
        options.include_optimizer = false;
        return save(model, name, options);
    }
};

// The bytes of tensor i as a view.
const uint8_t* bytes_of(const ModelWeights& w, size_t i) {
    return static_cast<const uint8_t*>(w.view(i).data);
}

TEST_F(TypedFile, EveryDtypeRoundTripsBitExactInItsTypes) {
    for (const ModelConfig& cfg : {typed_gpt(), typed_llama()}) {
        const FlatModel model = make_model(cfg, 7);
        const ParameterLayout layout(cfg);
        const auto& entries = layout.entries();
        for (WeightDtype dtype : kTyped) {
            SCOPED_TRACE(std::string(arch_name(cfg.arch)) + " " + dtype_name(dtype));
            const std::string path = save_typed(model, "typed.tinygpt", dtype);
            const ModelFile f = ModelFile::read(path);
            const ModelWeights& got = f.stored_weights();
            const ModelWeights want = ModelWeights::from_f32(cfg, model.w.data()).converted(dtype);
            const std::vector<WeightDtype> types = stored_types(layout, dtype);
            ASSERT_EQ(f.tensors().size(), entries.size());
            const uint64_t section = f.header()["sections"][0]["offset"].get<uint64_t>();
            EXPECT_EQ(f.header()["sections"][0]["dtype"], "mixed");
            std::vector<uint8_t> q;
            for (size_t i = 0; i < entries.size(); ++i) {
                const ParamInfo& p = entries[i];
                const WeightDtype d = got.view(i).dtype;
                const size_t bytes = dtype_tensor_bytes(d, p.shape);
                ASSERT_EQ(d, types[i]) << p.name;
                EXPECT_EQ(f.tensors()[i].dtype, d) << p.name;
                EXPECT_EQ(f.tensors()[i].bytes, bytes) << p.name;
                if (p.joins_previous)
                    EXPECT_EQ(f.tensors()[i].offset,
                              f.tensors()[i - 1].offset + f.tensors()[i - 1].bytes)
                        << p.name;
                else
                    EXPECT_EQ((f.tensors()[i].offset - section) % 64, 0u) << p.name;
                EXPECT_EQ(std::memcmp(bytes_of(got, i), bytes_of(want, i), bytes), 0) << p.name;
                // Each type checked against its own definition, not only against converted().
                const float* w = model.w.data() + p.offset;
                if (always_f32(p)) {
                    EXPECT_EQ(d, WeightDtype::F32) << p.name;
                    EXPECT_EQ(std::memcmp(bytes_of(got, i), w, p.numel * 4), 0) << p.name;
                } else if (d == WeightDtype::Q8_0) {
                    q.resize(bytes);
                    quant::quantize_q8_0(w, static_cast<int64_t>(p.numel), q.data());
                    EXPECT_EQ(std::memcmp(bytes_of(got, i), q.data(), bytes), 0) << p.name;
                } else if (d != WeightDtype::F32) {
                    const auto* h = reinterpret_cast<const uint16_t*>(bytes_of(got, i));
                    for (size_t k = 0; k < p.numel; ++k)
                        ASSERT_EQ(h[k],
                                  d == WeightDtype::BF16 ? float_to_bf16(w[k]) : float_to_f16(w[k]))
                            << p.name << " [" << k << "]";
                }
            }
            if (dtype == WeightDtype::Q8_0) {  // the fallback happened where rows are 48 long
                EXPECT_NE(got.type_summary().find("f16"), std::string::npos);
                EXPECT_EQ(f.stored_types(), "q8_0+f16+f32");
            } else {
                EXPECT_EQ(f.stored_types(), std::string(dtype_name(dtype)) + "+f32");
            }
            EXPECT_EQ(f.weight_dtype(), want.main_dtype());
            EXPECT_EQ(f.stored_weight_bytes(), want.stored_bytes());
            EXPECT_TRUE(f.weights_mapped());
            EXPECT_LT(f.file_bytes(), want.stored_bytes() + 64 * 1024);

            // f32 on demand: the stored values widened, nothing else.
            EXPECT_FALSE(f.has_f32_copy());
            const std::vector<float> f32 = want.to_f32();
            EXPECT_EQ(std::memcmp(f.weights(), f32.data(), f32.size() * 4), 0);
            EXPECT_TRUE(f.has_f32_copy());
            EXPECT_EQ(f.weights(), f.weights());  // made once

            const OpenedModel m = open_model(path);
            EXPECT_EQ(m.format, "tinygpt v3 (" + f.stored_types() + ")");
        }
    }
}

TEST_F(TypedFile, ATypedModelSavesWithoutF32AndSameTypesKeepEveryBit) {
    const FlatModel model = make_model(typed_llama(), 8);
    const std::string q8 = save_typed(model, "q8.tinygpt", WeightDtype::Q8_0);
    const ModelFile f = ModelFile::read(q8);
    SaveOptions options;
    options.dtype = WeightDtype::Q8_0;
    options.include_optimizer = false;
    const std::string again = dir.file("again.tinygpt");
    save_model_file(again, f.stored_weights(), state, options);
    const ModelFile g = ModelFile::read(again);
    EXPECT_FALSE(f.has_f32_copy());
    // The same tensor table and the same weights section, byte for byte.
    EXPECT_EQ(g.header()["tensors"], f.header()["tensors"]);
    EXPECT_EQ(g.header()["sections"][0]["checksum"], f.header()["sections"][0]["checksum"]);
    const Bytes a = read_bytes(q8), b = read_bytes(again);
    const auto section = [](const ModelFile& m, const Bytes& bytes) {
        const json& s = m.header()["sections"][0];
        const auto at = static_cast<std::ptrdiff_t>(s["offset"].get<uint64_t>());
        return Bytes(bytes.begin() + at,
                     bytes.begin() + at + static_cast<std::ptrdiff_t>(s["bytes"].get<uint64_t>()));
    };
    EXPECT_EQ(section(f, a), section(g, b));

    // Other types convert from the stored ones: q8_0 → f32 is the dequantised model, q8_0 →
    // bf16 rounds those values.
    options.dtype = WeightDtype::F32;
    save_model_file(dir.file("f32.tinygpt"), f.stored_weights(), state, options);
    const ModelFile h = ModelFile::read(dir.file("f32.tinygpt"));
    EXPECT_EQ(h.stored_types(), "f32");
    EXPECT_NE(h.stored_weights().f32_base(), nullptr);
    const size_t n = ParameterLayout(model.cfg).total();
    EXPECT_EQ(std::memcmp(h.weights(), f.weights(), n * 4), 0);
    options.dtype = WeightDtype::BF16;
    save_model_file(dir.file("bf16.tinygpt"), f.stored_weights(), state, options);
    const ModelFile k = ModelFile::read(dir.file("bf16.tinygpt"));
    for (const ParamInfo& p : k.stored_weights().layout().entries())
        for (size_t i = p.offset; i < p.offset + p.numel; ++i) {
            const float x = f.weights()[i];
            ASSERT_TRUE(
                same_bits(k.weights()[i], always_f32(p) ? x : bf16_to_float(float_to_bf16(x))))
                << p.name << " " << i;
        }
    // And as the original's v2 (f32 only).
    options.dtype = WeightDtype::F32;
    options.version = 2;
    const FlatModel gpt = make_model(typed_gpt(), 9);
    const ModelFile gq = ModelFile::read(save_typed(gpt, "gq.tinygpt", WeightDtype::Q8_0));
    save_model_file(dir.file("v2.tinygpt"), gq.stored_weights(), state, options);
    EXPECT_EQ(std::memcmp(ModelFile::read(dir.file("v2.tinygpt")).weights(), gq.weights(),
                          ParameterLayout(gpt.cfg).total() * 4),
              0);
}

TEST_F(TypedFile, OptimizerStateIsSavedWithF32WeightsOnly) {
    for (WeightDtype dtype : kTyped) {
        SaveOptions options;
        options.dtype = dtype;
        const std::string path = dir.file("moments.tinygpt");
        expect_save_error([&] { save(dense, "moments.tinygpt", options); }, path,
                          {"inference copy", "f32"});
        EXPECT_FALSE(fs::exists(path));
    }
    const ModelFile f = ModelFile::read(save(moe, "f32.tinygpt"));
    SaveOptions typed;
    typed.dtype = WeightDtype::BF16;
    expect_save_error(
        [&] { save_model_file(dir.file("x.tinygpt"), f.stored_weights(), state, typed); },
        dir.file("x.tinygpt"), {"AdamW moments"});
}

#ifdef __linux__
// The address ranges at which `path` is mapped in this process.
std::vector<std::pair<uintptr_t, uintptr_t>> mappings_of(const std::string& path) {
    std::ifstream maps("/proc/self/maps");
    std::vector<std::pair<uintptr_t, uintptr_t>> out;
    const std::string canonical = fs::canonical(path).string();
    std::string line;
    while (std::getline(maps, line)) {
        if (line.size() < canonical.size() ||
            line.compare(line.size() - canonical.size(), canonical.size(), canonical) != 0)
            continue;
        std::istringstream in(line);
        std::string range;
        in >> range;
        const size_t dash = range.find('-');
        out.emplace_back(std::stoull(range.substr(0, dash), nullptr, 16),
                         std::stoull(range.substr(dash + 1), nullptr, 16));
    }
    return out;
}

TEST_F(TypedFile, TheViewsArePlacesInTheMemoryMapAndKeepItAlive) {
    const FlatModel model = make_model(typed_gpt(), 10);
    const std::string path = save_typed(model, "mapped.tinygpt", WeightDtype::Q8_0);
    ModelWeights kept;
    {
        const ModelFile f = ModelFile::read(path);
        const auto maps = mappings_of(path);
        ASSERT_EQ(maps.size(), 1u);
        const auto [lo, hi] = maps[0];
        ASSERT_EQ(hi - lo, (f.file_bytes() + 4095) / 4096 * 4096);
        const ModelWeights& w = f.stored_weights();
        for (size_t i = 0; i < w.views().size(); ++i) {
            const auto at = reinterpret_cast<uintptr_t>(w.view(i).data);
            // No copy: each tensor is where the table says, in the file's mapping.
            EXPECT_EQ(at, lo + f.tensors()[i].offset) << i;
            if (!w.layout().entries()[i].joins_previous) {
                EXPECT_EQ(at % 64, 0u) << i;
            }
        }
        kept = w;
    }
    // A copy of the views keeps the mapping (not the ModelFile) alive, and is released with it.
    EXPECT_EQ(mappings_of(path).size(), 1u);
    std::vector<uint8_t> q(dtype_tensor_bytes(WeightDtype::Q8_0, {256, 32}));
    quant::quantize_q8_0(model.w.data(), 256 * 32, q.data());
    EXPECT_EQ(std::memcmp(kept.view(0).data, q.data(), q.size()), 0);
    kept = ModelWeights();
    EXPECT_TRUE(mappings_of(path).empty());
}
#endif

TEST_F(TypedFile, F32IsMadeOnlyWhenAsked) {
    // f32 files: weights() is the mapping itself, never a copy.
    const ModelFile f32 = ModelFile::read(save(moe, "f32.tinygpt"));
    EXPECT_EQ(f32.weights(), f32.stored_weights().f32_base());
    EXPECT_FALSE(f32.has_f32_copy());
    // Typed files: opening one (the NaN check included) and reading its views make no copy.
    const FlatModel model = make_model(typed_gpt(), 11);
    const std::string path = save_typed(model, "q8.tinygpt", WeightDtype::Q8_0);
    const OpenedModel m = open_model(path);
    ASSERT_TRUE(m.file);
    EXPECT_FALSE(m.file->has_f32_copy());
    EXPECT_EQ(m.weights.view(0).data, m.file->stored_weights().view(0).data);
    EXPECT_EQ(m.weights.f32_base(), nullptr);
    const float* w = m.f32_weights();  // the file's copy, made now
    EXPECT_TRUE(m.file->has_f32_copy());
    EXPECT_EQ(w, m.file->weights());
    EXPECT_EQ(w, m.f32_weights());
}

// The files v3 writers made before per-tensor types: every tensor (norms too) in bf16 or f16 at
// its ParameterLayout offset × 2, the weights section of that dtype, possibly with f32 moments.
Bytes legacy_half_file(const ModelConfig& cfg, const FlatModel& model, WeightDtype dtype,
                       bool moments) {
    const ParameterLayout layout(cfg);
    const size_t n = layout.total();
    Bytes weights(n * 2);
    for (size_t i = 0; i < n; ++i) {
        const uint16_t h =
            dtype == WeightDtype::BF16 ? float_to_bf16(model.w[i]) : float_to_f16(model.w[i]);
        std::memcpy(weights.data() + 2 * i, &h, 2);
    }
    json h;
    h["format"] = {{"name", "tinygpt"}, {"version", 3}, {"checksum", "xxh3_64"}};
    h["config"] = io::config_to_json(cfg);
    h["tokenizer"] = {{"type", "bytes"}, {"vocab", 256}};
    json tensors = json::array();
    for (const ParamInfo& p : layout.entries())
        tensors.push_back({{"name", p.name},
                           {"shape", p.shape},
                           {"dtype", dtype_name(dtype)},
                           {"offset", p.offset * 2},
                           {"bytes", p.numel * 2}});
    h["tensors"] = tensors;
    std::vector<std::pair<const char*, Bytes>> sections = {{"weights", weights}};
    if (moments) {
        Bytes m(n * 4), v(n * 4);
        std::memcpy(m.data(), model.m.data(), n * 4);
        std::memcpy(v.data(), model.v.data(), n * 4);
        sections.emplace_back("adam_m", m);
        sections.emplace_back("adam_v", v);
    }
    uint64_t start = 0;
    std::string text;
    for (;;) {
        json list = json::array();
        uint64_t at = start;
        for (const auto& [name, data] : sections) {
            at = io::align_up(at, 64);
            list.push_back({{"name", name},
                            {"dtype", std::string(name) == "weights" ? dtype_name(dtype) : "f32"},
                            {"offset", at},
                            {"bytes", data.size()},
                            {"checksum", io::hex64(io::checksum64(data.data(), data.size()))}});
            at += data.size();
        }
        h["sections"] = list;
        text = h.dump();
        const uint64_t need = io::align_up(12 + text.size() + 8, 64);
        if (need <= start) break;
        start = need;
    }
    Bytes out = {'T', 'G', 'P', 'T'};
    append(out, uint32_t{3});
    append(out, static_cast<uint32_t>(text.size()));
    append_text(out, text);
    append(out, io::checksum64(out.data(), out.size()));
    for (const auto& [name, data] : sections) {
        out.resize(io::align_up(out.size(), 64), 0);
        out.insert(out.end(), data.begin(), data.end());
    }
    return out;
}

TEST_F(TypedFile, FilesWrittenBeforePerTensorTypesStillRead) {
    for (WeightDtype dtype : {WeightDtype::BF16, WeightDtype::F16}) {
        SCOPED_TRACE(dtype_name(dtype));
        const std::string path = dir.file("legacy.tinygpt");
        write_bytes(path, legacy_half_file(moe.cfg, moe, dtype, /*moments=*/true));
        const ModelFile f = ModelFile::read(path);
        EXPECT_EQ(f.weight_dtype(), dtype);
        EXPECT_EQ(f.stored_types(), dtype_name(dtype));
        EXPECT_TRUE(f.weights_mapped());
        const ParameterLayout layout(moe.cfg);
        const uint64_t section = f.tensors()[0].offset;
        const ModelWeights& w = f.stored_weights();
        const auto* base = static_cast<const uint8_t*>(w.view(0).data);
        for (size_t i = 0; i < layout.entries().size(); ++i) {
            const ParamInfo& p = layout.entries()[i];
            const StoredTensor& t = f.tensors()[i];
            EXPECT_EQ(t.dtype, dtype) << p.name;  // as the file stores it
            EXPECT_EQ(t.offset, section + p.offset * 2) << p.name;
            if (always_f32(p)) {  // widened exactly into memory of its own
                EXPECT_EQ(w.view(i).dtype, WeightDtype::F32) << p.name;
                const auto* v = static_cast<const float*>(w.view(i).data);
                for (size_t k = 0; k < p.numel; ++k) {
                    const float want = dtype == WeightDtype::BF16
                                           ? bf16_to_float(float_to_bf16(moe.w[p.offset + k]))
                                           : f16_to_float(float_to_f16(moe.w[p.offset + k]));
                    ASSERT_TRUE(same_bits(v[k], want)) << p.name << " [" << k << "]";
                }
            } else {  // a view into the mapping
                EXPECT_EQ(w.view(i).dtype, dtype) << p.name;
                EXPECT_EQ(static_cast<const uint8_t*>(w.view(i).data), base + p.offset * 2)
                    << p.name;
            }
        }
        for (size_t i = 0; i < moe.n; ++i) {
            const float want = dtype == WeightDtype::BF16 ? bf16_to_float(float_to_bf16(moe.w[i]))
                                                          : f16_to_float(float_to_f16(moe.w[i]));
            ASSERT_TRUE(same_bits(f.weights()[i], want)) << i;
        }
        ASSERT_TRUE(f.has_optimizer_state());
        EXPECT_EQ(std::memcmp(f.adam_m(), moe.m.data(), moe.n * 4), 0);
        EXPECT_EQ(std::memcmp(f.adam_v(), moe.v.data(), moe.n * 4), 0);
        EXPECT_EQ(open_model(path).format, std::string("tinygpt v3 (") + dtype_name(dtype) + ")");
        // Saved again as its own dtype: the matrices keep every bit, the norms are f32 now.
        SaveOptions options;
        options.dtype = dtype;
        options.include_optimizer = false;
        save_model_file(dir.file("resaved.tinygpt"), f.stored_weights(), state, options);
        const ModelFile g = ModelFile::read(dir.file("resaved.tinygpt"));
        EXPECT_EQ(std::memcmp(g.weights(), f.weights(), moe.n * 4), 0);
        EXPECT_EQ(g.stored_types(), std::string(dtype_name(dtype)) + "+f32");
    }
}

// Two files the v3 writer made before per-tensor types (fuzz seeds, committed then).
TEST_F(TypedFile, CommittedFilesFromBeforePerTensorTypesRead) {
    const fs::path seeds = fs::path(TINYGPT_SOURCE_DIR) / "fuzz" / "corpus" / "model_file";
    for (const char* name : {"gpt_moe_f16_legacy.tinygpt", "llama_moe_bpe_bf16_legacy.tinygpt"}) {
        SCOPED_TRACE(name);
        const std::string path = (seeds / name).string();
        const ModelFile f = ModelFile::read(path);
        const std::string want = f.header()["sections"][0]["dtype"];
        ASSERT_TRUE(want == "f16" || want == "bf16") << want;
        const WeightDtype dtype = parse_weight_dtype(want);
        EXPECT_EQ(f.weight_dtype(), dtype);
        EXPECT_EQ(f.stored_types(), want);
        const Bytes b = read_bytes(path);
        const ModelWeights& w = f.stored_weights();
        const auto& entries = w.layout().entries();
        for (size_t i = 0; i < entries.size(); ++i) {
            const ParamInfo& p = entries[i];
            const StoredTensor& t = f.tensors()[i];
            EXPECT_EQ(t.dtype, dtype) << p.name;
            EXPECT_EQ(w.view(i).dtype, always_f32(p) ? WeightDtype::F32 : dtype) << p.name;
            for (size_t k = 0; k < p.numel; ++k) {
                uint16_t h;
                std::memcpy(&h, b.data() + t.offset + 2 * k, 2);
                const float x = dtype == WeightDtype::BF16 ? bf16_to_float(h) : f16_to_float(h);
                ASSERT_TRUE(same_bits(f.weights()[p.offset + k], x)) << p.name << " " << k;
            }
        }
        EXPECT_NO_THROW(open_model(path));
    }
}

TEST_F(TypedFile, NonFiniteValuesAreFoundInTheStoredTypes) {
    // Views over buffers of our own: one tensor per type with two non-finite values.
    const ModelConfig cfg = typed_gpt();
    const ParameterLayout layout(cfg);
    const FlatModel model = make_model(cfg, 12);
    const ModelWeights q8 =
        ModelWeights::from_f32(cfg, model.w.data()).converted(WeightDtype::Q8_0);
    EXPECT_TRUE(find_non_finite(q8).empty());
    std::vector<TensorView> views = q8.views();
    const auto& e = layout.entries();
    const auto index = [&](TensorId id) { return static_cast<size_t>(&layout.at(id) - e.data()); };
    // bf16 token embedding with +inf at 3 and NaN at 40.
    std::vector<uint16_t> bf(e[0].numel);
    for (size_t k = 0; k < bf.size(); ++k) bf[k] = float_to_bf16(model.w[k]);
    bf[3] = 0x7f80;
    bf[40] = 0xffc1;
    views[0] = TensorView{bf.data(), WeightDtype::BF16};
    // f16 fc_out of expert 1 with -inf at 7.
    const size_t out = index(TensorId{TensorRole::FfnOut, 1, 1});
    std::vector<uint16_t> f16(e[out].numel);
    for (size_t k = 0; k < f16.size(); ++k) f16[k] = float_to_f16(model.w[e[out].offset + k]);
    f16[7] = 0xfc00;
    views[out] = TensorView{f16.data(), WeightDtype::F16};
    // q8_0 fc_in of expert 2: block 5's scale is NaN, block 9's +inf.
    const size_t in = index(TensorId{TensorRole::FfnIn, 0, 2});
    std::vector<uint8_t> q(dtype_tensor_bytes(WeightDtype::Q8_0, e[in].shape));
    std::memcpy(q.data(), views[in].data, q.size());
    const uint16_t nan = 0x7e00, inf = 0x7c00;
    std::memcpy(q.data() + 5 * quant::kQ8_0BlockBytes, &nan, 2);
    std::memcpy(q.data() + 9 * quant::kQ8_0BlockBytes, &inf, 2);
    views[in] = TensorView{q.data(), WeightDtype::Q8_0};
    const ModelWeights bad(cfg, views, nullptr);
    const std::vector<NonFiniteTensor> found = find_non_finite(bad);
    ASSERT_EQ(found.size(), 3u);
    EXPECT_EQ(found[0].name, e[0].name);
    EXPECT_EQ(found[0].count, 2u);
    EXPECT_EQ(found[0].first, 3u);
    EXPECT_EQ(found[1].name, e[in].name);
    EXPECT_EQ(found[1].count, 64u);  // two blocks of 32 values
    EXPECT_EQ(found[1].first, 5u * 32);
    EXPECT_EQ(found[2].name, e[out].name);
    EXPECT_EQ(found[2].count, 1u);
    EXPECT_EQ(found[2].first, 7u);
    // The same counts as the f32 values they stand for.
    const std::vector<float> f32 = bad.to_f32();
    const std::vector<NonFiniteTensor> widened = find_non_finite(cfg, f32.data());
    ASSERT_EQ(widened.size(), 3u);
    for (size_t i = 0; i < 3; ++i) EXPECT_EQ(widened[i].count, found[i].count);

    // Through a file: a q8_0 scale set to inf (checksum repaired) is refused by name at open,
    // and reported without an f32 copy.
    const std::string good = save_typed(model, "good.tinygpt", WeightDtype::Q8_0);
    const ModelFile f = ModelFile::read(good);
    Bytes b = read_bytes(good);
    const StoredTensor& t = f.tensors()[in];
    std::memcpy(b.data() + t.offset + 2 * quant::kQ8_0BlockBytes, &inf, 2);
    const json& ws = f.header()["sections"][0];
    const uint64_t sum =
        io::checksum64(b.data() + ws["offset"].get<uint64_t>(), ws["bytes"].get<uint64_t>());
    const std::string path = dir.file("inf.tinygpt");
    write_bytes(path,
                rewrite_v3(b, [&](json& h) { h["sections"][0]["checksum"] = io::hex64(sum); }));
    try {
        open_model(path);
        ADD_FAILURE() << "a model with an inf scale was opened";
    } catch (const Error& err) {
        EXPECT_NE(std::string(err.what()).find(t.name), std::string::npos) << err.what();
        EXPECT_NE(std::string(err.what()).find("32 NaN/inf values (the first at index 64)"),
                  std::string::npos)
            << err.what();
    }
    const OpenedModel m = open_model(path, {}, NonFinite::Report);
    ASSERT_EQ(m.non_finite.size(), 1u);
    EXPECT_EQ(m.non_finite[0].count, 32u);
    EXPECT_FALSE(m.file->has_f32_copy());
}

// --- hostile typed files ---------------------------------------------------------------------

class HostileTyped : public TypedFile {
  protected:
    // A valid q8_0 copy of typed_llama() (tensor table entries: see index()), mutated.
    std::string mutated(const std::string& name, const std::function<void(json&)>& mutate) {
        const FlatModel model = make_model(typed_llama(), 13);
        const Bytes good = read_bytes(save_typed(model, "good.tinygpt", WeightDtype::Q8_0));
        const std::string path = dir.file(name);
        write_bytes(path, rewrite_v3(good, mutate));
        return path;
    }
    static size_t index(TensorId id) {
        const ParameterLayout layout(typed_llama());
        return static_cast<size_t>(&layout.at(id) - layout.entries().data());
    }
};

TEST_F(HostileTyped, BrokenTensorTablesAreRefusedByName) {
    const size_t q = index(TensorId{TensorRole::AttnQ, 0}), k = q + 1, o = q + 3;
    const size_t down = index(TensorId{TensorRole::FfnDown, 1, 0});  // f16: rows of 48
    const ParameterLayout layout(typed_llama());
    const std::string qn = layout.entries()[q].name, kn = layout.entries()[k].name,
                      on = layout.entries()[o].name, dn = layout.entries()[down].name;
    expect_read_error(mutated("dtype.tinygpt", [&](json& h) { h["tensors"][o]["dtype"] = "q4_k"; }),
                      {"tensor '" + on + "'", "unknown dtype 'q4_k'", "q8_0"});
    expect_read_error(mutated("bytes.tinygpt", [&](json& h) { h["tensors"][o]["bytes"] = 34; }),
                      {"tensor '" + on + "'", "takes", "the tensor table says 34"});
    expect_read_error(mutated("q8_rows.tinygpt",
                              [&](json& h) {
                                  h["tensors"][down]["dtype"] = "q8_0";
                                  h["tensors"][down]["bytes"] = 64 * 48 / 32 * 34;
                              }),
                      {"tensor '" + dn + "' [64, 48]", "blocks of 32", "48 long"});
    expect_read_error(mutated("misaligned.tinygpt",
                              [&](json& h) {
                                  h["tensors"][o]["offset"] =
                                      h["tensors"][o]["offset"].get<uint64_t>() + 2;
                              }),
                      {"tensor '" + on + "'", "not 64-byte aligned"});
    expect_read_error(mutated("joined.tinygpt",
                              [&](json& h) {
                                  h["tensors"][k]["offset"] =
                                      h["tensors"][k]["offset"].get<uint64_t>() + 34;
                              }),
                      {"tensor '" + kn + "'", "must start where '" + qn + "' ends"});
    expect_read_error(mutated("joined-type.tinygpt",
                              [&](json& h) {
                                  h["tensors"][k]["dtype"] = "f16";
                                  h["tensors"][k]["bytes"] = 32 * 64 * 2;
                              }),
                      {"tensor '" + kn + "'", "is f16 but '" + qn + "'", "q8_0"});
    expect_read_error(mutated("overlap.tinygpt",
                              [&](json& h) {
                                  // o on the last cache line of v, which o follows.
                                  const json& v = h["tensors"][q + 2];
                                  const uint64_t end =
                                      v["offset"].get<uint64_t>() + v["bytes"].get<uint64_t>();
                                  h["tensors"][o]["offset"] = (end - 1) / 64 * 64;
                              }),
                      {"tensors '", on, "overlap in the weights section"});
    expect_read_error(
        mutated("past.tinygpt", [&](json& h) { h["tensors"][o]["offset"] = uint64_t{1} << 40; }),
        {"tensor '" + on + "'", "extends past the end of the weights section"});
    const size_t norm = index(TensorId{TensorRole::FinalNorm});
    expect_read_error(mutated("order.tinygpt", [&](json& h) { h["tensors"][norm]["offset"] = 0; }),
                      {"lies before", "the table is in file order"});
    expect_read_error(mutated("shape.tinygpt",
                              [&](json& h) {
                                  h["tensors"][o]["shape"] = {64, 63};
                              }),
                      {"tensor table disagrees with the config", on});
    // The section's dtype: per-tensor types only as "mixed", and only for the weights.
    expect_read_error(mutated("single.tinygpt", [](json& h) { h["sections"][0]["dtype"] = "f16"; }),
                      {"truncated or inconsistent", "bytes of weights"});
    expect_read_error(
        mutated("q8section.tinygpt", [](json& h) { h["sections"][0]["dtype"] = "q8_0"; }),
        {"'sections.weights.dtype'", "q8_0", "only the tensor table"});
    expect_read_error(
        hostile_v3("mixed-moments.tinygpt", [](json& h) { h["sections"][1]["dtype"] = "mixed"; }),
        {"'sections.adam_m.dtype'", "mixed", "only of section 'weights'"});
    expect_read_error(mutated("int4.tinygpt", [](json& h) { h["sections"][0]["dtype"] = "int4"; }),
                      {"unknown dtype 'int4'"});
}

TEST_F(HostileTyped, EveryTruncationOfATypedFileIsAnError) {
    const FlatModel model = make_model(typed_gpt(), 14);
    const Bytes b = read_bytes(save_typed(model, "full.tinygpt", WeightDtype::Q8_0));
    const std::string path = dir.file("prefix.tinygpt");
    for (size_t cut = 1; cut < b.size(); cut += (cut < 4096 ? 13 : 499)) {
        write_bytes(path, Bytes(b.begin(), b.begin() + static_cast<std::ptrdiff_t>(cut)));
        try {
            ModelFile f = ModelFile::read(path);
            ADD_FAILURE() << "cut at " << cut << " of " << b.size() << " loaded";
        } catch (const Error& e) {
            ASSERT_EQ(std::string(e.what()).rfind(path + ": ", 0), 0u) << e.what();
        }
    }
}

}  // namespace
}  // namespace tinygpt
