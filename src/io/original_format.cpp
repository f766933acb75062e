// The original TinyGPT's .tinygpt files, versions 1 and 2 (docs/FORMAT.md, "Reading v1 / v2"):
// "TGPT", u32 version, u32 header length, JSON header, i32 step, then either the trainingFP32
// body (per manifest entry: weight, Adam m, Adam v as fp32) or the inferenceFP16 body (one fp16
// buffer sliced by floatOffset). No alignment anywhere. Every 2-D Linear weight is stored
// transposed ([in, out] bytes under an [out, in] manifest shape); this file converts to and from
// the engine's [out, in] layout.
#include <algorithm>
#include <climits>
#include <cmath>

#include "io/format_internal.h"

namespace tinygpt::io {

namespace {

// Linear weights whose bytes are [in, out]: names ending ".weight" except the embeddings and
// the norms (router and expert weights included).
bool stored_transposed(const std::string& name, size_t rank) {
    if (rank != 2) return false;
    auto ends_with = [&](const std::string& suffix) {
        return name.size() >= suffix.size() &&
               name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
    };
    if (!ends_with(".weight")) return false;
    if (name == "token_embedding.weight" || name == "position_embedding.weight") return false;
    if (ends_with("ln1.weight") || ends_with("ln2.weight") || ends_with("ln_final.weight") ||
        ends_with("embed_norm.weight"))
        return false;
    return true;
}

bool truthy(const json& v) {
    if (v.is_null()) return false;
    if (v.is_boolean()) return v.get<bool>();
    if (v.is_number()) return v.get<double>() != 0.0;
    if (v.is_string() || v.is_array() || v.is_object()) return !v.empty();
    return true;
}

// Features of the original that change the model's computation or its tensors: refused, never
// silently dropped.
void refuse_unsupported(const json& h, const json& config) {
    struct Feature {
        const char* key;
        const char* what;
    };
    static const Feature kConfigFeatures[] = {
        {"useMoD", "mixture-of-depths"},
        {"slidingWindow", "sliding-window attention"},
        {"useDifferentialAttention", "differential attention"},
        {"useYOCO", "YOCO cross-layer KV sharing"},
        {"useDeepNorm", "DeepNorm residual scaling"},
        {"useEmbeddingRMSNorm", "embedding RMSNorm"},
        {"useALiBi", "ALiBi attention biases"},
        {"useRoPE", "rotary position embeddings"},
        {"tokenizerSource", "a BPE / Hugging Face tokenizer"},
        {"mtpHorizons", "multi-token prediction heads"},
        {"qatBits", "quantisation-aware training"},
    };
    for (const Feature& f : kConfigFeatures)
        if (const json* v = optional_field(config, f.key); v != nullptr && truthy(*v))
            throw Error(std::string("uses a feature this tinygpt does not support: ") + f.what +
                        " (config." + f.key + " = " + excerpt(*v) + ")");
    if (const json* v = optional_field(config, "tieEmbeddings");
        v != nullptr && v->is_boolean() && !v->get<bool>())
        throw Error(
            "uses a feature this tinygpt does not support: an untied output head "
            "(config.tieEmbeddings = false)");
    if (const json* v = optional_field(config, "attnBias");
        v != nullptr && v->is_boolean() && !v->get<bool>())
        throw Error(
            "uses a feature this tinygpt does not support: attention without biases "
            "(config.attnBias = false)");
    if (const json* kv = optional_field(config, "nKvHeads"); kv != nullptr && kv->is_number()) {
        const json* heads = optional_field(config, "heads");
        const double want = heads != nullptr && heads->is_number() ? heads->get<double>() : 8.0;
        if (kv->get<double>() != want)
            throw Error(
                "uses a feature this tinygpt does not support: grouped-query attention "
                "(config.nKvHeads = " +
                kv->dump() + ")");
    }
    if (const json* pi = optional_field(h, "pruningInfo"); pi != nullptr && pi->is_object()) {
        for (const char* key : {"headsDropped", "layersDropped"})
            if (const json* v = optional_field(*pi, key); v != nullptr && truthy(*v))
                throw Error(std::string("uses a feature this tinygpt does not support: structured "
                                        "pruning (pruningInfo.") +
                            key + ")");
    }
}

// A manifest tensor name we do not have: name the feature it belongs to.
[[noreturn]] void refuse_tensor(const std::string& name) {
    struct Pattern {
        const char* fragment;
        const char* what;
    };
    static const Pattern kPatterns[] = {
        {"diff_attn.", "differential attention"}, {"mod_router.", "mixture-of-depths"},
        {"embed_norm.", "embedding RMSNorm"},     {"lm_head", "an untied output head"},
        {"mtp", "multi-token prediction heads"},  {"lora", "LoRA adapters"},
    };
    for (const Pattern& p : kPatterns)
        if (name.find(p.fragment) != std::string::npos)
            throw Error(std::string("uses a feature this tinygpt does not support: ") + p.what +
                        " (tensor '" + name + "' in the manifest)");
    throw Error("the manifest has a tensor this model does not: '" + name + "'");
}

ModelConfig config_from_original(const json* config, int& batch) {
    ModelConfig cfg;
    static const json kEmpty = json::object();
    const json& c = config != nullptr ? *config : kEmpty;
    auto get = [&](const char* key, int64_t fallback, int64_t hi) -> int {
        const json* v = optional_field(c, key);
        if (v == nullptr) return static_cast<int>(fallback);
        return static_cast<int>(as_int(*v, std::string("config.") + key, 1, hi));
    };
    cfg.layers = get("layers", 12, kMaxLayers);
    cfg.d_model = get("dModel", 256, kMaxDim);
    cfg.ctx = get("ctx", 256, kMaxDim);
    cfg.heads = get("heads", 8, kMaxDim);
    cfg.d_mlp = get("dMlp", 1024, kMaxDim);
    cfg.vocab = get("vocabSize", 256, kMaxDim);
    cfg.experts = get("nExperts", 1, 4096);
    cfg.topk = std::min(get("moeTopK", 1, 4096), cfg.experts);  // the original clamps K to N
    cfg.aux_weight = 0.01f;
    if (const json* v = optional_field(c, "loadBalanceWeight"))
        cfg.aux_weight = static_cast<float>(as_number(*v, "config.loadBalanceWeight"));
    cfg.preset = "custom";
    for (const std::string& name : preset_names()) {
        const ModelConfig p = preset_config(name);
        if (p.layers == cfg.layers && p.d_model == cfg.d_model && p.heads == cfg.heads &&
            p.ctx == cfg.ctx && p.d_mlp == cfg.d_mlp && cfg.vocab == 256)
            cfg.preset = name;
    }
    batch = 0;
    if (const json* v = optional_field(c, "batchSize"); v != nullptr && v->is_number_integer()) {
        const int64_t b = v->get<int64_t>();
        if (b >= 1 && b <= INT_MAX) batch = static_cast<int>(b);
    }
    return cfg;
}

struct ManifestEntry {
    std::string name;
    std::vector<int64_t> shape;
    int64_t float_offset = -1;  // -1: not given
};

std::vector<ManifestEntry> parse_manifest(const json& j) {
    as_array(j, "manifest");
    std::vector<ManifestEntry> out;
    out.reserve(j.size());
    for (size_t i = 0; i < j.size(); ++i) {
        const std::string w = "manifest[" + std::to_string(i) + "]";
        as_object(j[i], w);
        ManifestEntry e;
        e.name = as_string(require_field(j[i], "name", w), w + ".name");
        const json& shape = as_array(require_field(j[i], "shape", w), w + ".shape");
        if (shape.size() > 8)
            throw Error("header field '" + w + ".shape' has " + std::to_string(shape.size()) +
                        " dimensions");
        for (const json& d : shape)
            e.shape.push_back(as_int(d, w + ".shape", 0, kMaxDim * kMaxDim));
        if (const json* fo = optional_field(j[i], "floatOffset"))
            e.float_offset = as_int(*fo, w + ".floatOffset", 0, INT64_MAX / 16);
        out.push_back(std::move(e));
    }
    return out;
}

std::vector<LossRecord> import_loss_history(const json* lh) {
    std::vector<LossRecord> out;
    if (lh == nullptr || !lh->is_array()) return out;
    for (const json& r : *lh) {
        if (!r.is_object()) continue;
        const json* step = optional_field(r, "step");
        const json* train = optional_field(r, "train");
        if (step == nullptr || !step->is_number_integer() || train == nullptr ||
            !train->is_number())
            continue;
        LossRecord rec;
        rec.step = step->get<int64_t>();
        rec.loss = static_cast<float>(train->get<double>());
        if (const json* val = optional_field(r, "val"); val != nullptr && val->is_number())
            rec.val_loss = static_cast<float>(val->get<double>());
        out.push_back(rec);
    }
    return out;
}

}  // namespace

LoadedModel read_original(std::unique_ptr<MappedFile> file, uint32_t version, uint64_t header_len) {
    const uint8_t* p = file->data();
    const uint64_t size = file->size();
    const uint64_t json_end = kPreambleBytes + header_len;
    json h = parse_header(p + kPreambleBytes, static_cast<size_t>(header_len));
    if (!h.is_object()) throw Error("header is not a JSON object");

    const json* config = optional_field(h, "config");
    if (config != nullptr) as_object(*config, "config");
    refuse_unsupported(h, config != nullptr ? *config : json::object());

    LoadedModel m;
    m.version = static_cast<int>(version);
    int batch = 0;
    m.config = config_from_original(config, batch);

    std::string dtype = "fp32";
    if (const json* d = optional_field(h, "weightDtype")) dtype = as_string(*d, "weightDtype");
    if (dtype == "int4")
        throw Error(
            "uses a feature this tinygpt does not support: int4-quantised weights (weightDtype "
            "\"int4\")");
    if (dtype != "fp32" && dtype != "fp16")
        throw Error("header field 'weightDtype' has an unknown value '" + dtype +
                    "' (known: fp32, fp16)");
    bool includes_optimizer = true;
    if (const json* o = optional_field(h, "includesOptimizerState"))
        includes_optimizer = as_bool(*o, "includesOptimizerState");
    const bool fp16 = dtype == "fp16" || !includes_optimizer;  // the original's layout choice
    m.dtype = fp16 ? WeightDtype::F16 : WeightDtype::F32;

    const json* manifest_json = optional_field(h, "manifest");
    if (manifest_json == nullptr && version >= 2)
        throw Error("header field 'manifest' is missing (required in version 2 files)");
    std::vector<ManifestEntry> manifest;
    if (manifest_json != nullptr) manifest = parse_manifest(*manifest_json);

    if (size - json_end < 4)
        throw Error("truncated: the 4-byte step counter after the JSON header is missing");
    int32_t step;
    std::memcpy(&step, p + json_end, 4);
    if (step < 0) throw Error("the step counter is negative (" + std::to_string(step) + ")");
    const uint64_t body_start = json_end + 4;
    const uint64_t body_bytes = size - body_start;
    const uint64_t per_param = fp16 ? 2 : 12;
    try {
        m.config.validate();
    } catch (const Error& e) {
        throw Error(std::string("invalid model config: ") + e.what());
    }
    // A loose bound first (no allocation can be huge once it holds), so a manifest that lacks a
    // tensor is reported by name below; the exact byte count is checked after the manifest.
    check_config_fits(m.config, per_param, 2 * body_bytes + (uint64_t{1} << 20),
                      fp16 ? "fp16 weights" : "fp32 weights and Adam moments");
    const ParameterLayout layout(m.config);

    if (manifest_json == nullptr) {  // v1: the manifest follows from the config
        uint64_t offset = 0;
        for (const std::string& name : layout.manifest_order()) {
            const ParamInfo& info = layout.at(name);
            manifest.push_back({name, info.shape, static_cast<int64_t>(offset)});
            offset += info.numel;
        }
    }
    std::vector<char> seen(layout.entries().size(), 0);
    std::vector<size_t> index;  // manifest entry → layout entry
    for (const ManifestEntry& e : manifest) {
        if (!layout.contains(e.name)) refuse_tensor(e.name);
        const ParamInfo& info = layout.at(e.name);
        const size_t li = static_cast<size_t>(&info - layout.entries().data());
        if (seen[li]) throw Error("the manifest lists tensor '" + e.name + "' twice");
        seen[li] = 1;
        if (e.shape != info.shape)
            throw Error("manifest entry '" + e.name + "' has shape " + shape_string(e.shape) +
                        " but the config needs " + shape_string(info.shape));
        index.push_back(li);
    }
    for (size_t i = 0; i < seen.size(); ++i)
        if (!seen[i])
            throw Error("the manifest lacks tensor '" + layout.entries()[i].name +
                        "' (the config needs it)");

    const uint64_t count = layout.count();
    const uint64_t expected = count * per_param;
    if (body_bytes < expected)
        throw Error("truncated: the tensor data needs " + std::to_string(expected) +
                    " bytes after the step counter but only " + std::to_string(body_bytes) +
                    " follow");
    if (body_bytes > expected)
        throw Error(
            "the file has " + std::to_string(body_bytes - expected) +
            " unexpected bytes after the tensor data (the manifest and the file size disagree)");

    const size_t n = layout.total();
    m.owned_weights.assign(n, 0.0f);
    if (!fp16) {
        if (const json* sbl = optional_field(h, "stateByteLength")) {
            const int64_t v = as_int(*sbl, "stateByteLength", 0, INT64_MAX);
            if (static_cast<uint64_t>(v) != 4 + expected)
                throw Error("header field 'stateByteLength' is " + std::to_string(v) +
                            " but the manifest needs " + std::to_string(4 + expected));
        }
        m.owned_m.assign(n, 0.0f);
        m.owned_v.assign(n, 0.0f);
        std::vector<float>* dsts[3] = {&m.owned_weights, &m.owned_m, &m.owned_v};
        std::vector<float> scratch;
        uint64_t pos = body_start;
        for (size_t k = 0; k < manifest.size(); ++k) {
            const ParamInfo& info = layout.entries()[index[k]];
            const bool t = stored_transposed(info.name, info.shape.size());
            m.tensors.push_back(
                StoredTensor{info.name, info.shape, WeightDtype::F32, pos, info.numel * 4});
            for (std::vector<float>* dst : dsts) {
                float* out = dst->data() + info.offset;
                if (t) {  // bytes [in, out] (unaligned) → [out, in]
                    scratch.resize(info.numel);
                    std::memcpy(scratch.data(), p + pos, info.numel * 4);
                    transpose(scratch.data(), out, static_cast<size_t>(info.shape[1]),
                              static_cast<size_t>(info.shape[0]));
                } else {
                    std::memcpy(out, p + pos, info.numel * 4);
                }
                pos += info.numel * 4;
            }
        }
        bool nonzero = false;
        for (size_t i = 0; i < n && !nonzero; ++i)
            nonzero = m.owned_m[i] != 0.0f || m.owned_v[i] != 0.0f;
        // The Swift original writes zeros for m and v ("not externally readable"): no real state.
        m.has_optimizer = nonzero;
        if (nonzero) {
            m.adam_m = m.owned_m.data();
            m.adam_v = m.owned_v.data();
        } else {
            m.owned_m.clear();
            m.owned_m.shrink_to_fit();
            m.owned_v.clear();
            m.owned_v.shrink_to_fit();
        }
    } else {
        // One fp16 buffer of `count` values; each entry is sliced at floatOffset (else running).
        std::vector<std::pair<uint64_t, uint64_t>> ranges;  // [begin, end) in elements
        uint64_t running = 0;
        std::vector<float> scratch;
        for (size_t k = 0; k < manifest.size(); ++k) {
            const ParamInfo& info = layout.entries()[index[k]];
            const uint64_t off = manifest[k].float_offset >= 0
                                     ? static_cast<uint64_t>(manifest[k].float_offset)
                                     : running;
            running = off + info.numel;
            if (off > count || info.numel > count - off)
                throw Error("manifest entry '" + info.name + "' (floatOffset " +
                            std::to_string(off) + ", " + std::to_string(info.numel) +
                            " values) lies outside the " + std::to_string(count) +
                            "-value fp16 buffer");
            ranges.emplace_back(off, off + info.numel);
            const uint8_t* src = p + body_start + 2 * off;
            m.tensors.push_back(StoredTensor{info.name, info.shape, WeightDtype::F16,
                                             body_start + 2 * off, info.numel * 2});
            scratch.resize(info.numel);
            for (size_t i = 0; i < info.numel; ++i) {
                uint16_t h16;
                std::memcpy(&h16, src + 2 * i, 2);
                scratch[i] = f16_to_float(h16);
            }
            float* out = m.owned_weights.data() + info.offset;
            if (stored_transposed(info.name, info.shape.size())) {
                transpose(scratch.data(), out, static_cast<size_t>(info.shape[1]),
                          static_cast<size_t>(info.shape[0]));
            } else {
                std::copy(scratch.begin(), scratch.end(), out);
            }
        }
        std::sort(ranges.begin(), ranges.end());
        for (size_t i = 1; i < ranges.size(); ++i)
            if (ranges[i].first < ranges[i - 1].second)
                throw Error("manifest entries overlap in the fp16 buffer (floatOffset " +
                            std::to_string(ranges[i].first) + ")");
    }
    m.weights = m.owned_weights.data();
    m.state.step = step;
    m.state.adam_steps = m.has_optimizer ? step : 0;
    m.state.batch = batch;
    m.state.loss_history = import_loss_history(optional_field(h, "lossHistory"));
    m.has_training = false;
    m.header = std::move(h);
    return m;  // `file` goes out of scope: everything was copied, the mapping is released
}

// --- writer
// -------------------------------------------------------------------------------------------

void write_v2(FileSink& out, const ModelConfig& cfg, const float* weights, const float* adam_m,
              const float* adam_v, const TrainingState& state, const SaveOptions& options) {
    const ParameterLayout layout(cfg);
    if (state.step < 0 || state.step > INT32_MAX)
        throw Error("step " + std::to_string(state.step) +
                    " does not fit the v2 format's 32-bit step counter");
    json config = {{"layers", cfg.layers},    {"dModel", cfg.d_model},
                   {"ctx", cfg.ctx},          {"heads", cfg.heads},
                   {"dMlp", cfg.d_mlp},       {"batchSize", state.batch > 0 ? state.batch : 8},
                   {"backend", "tinygpt-cpp"}};
    if (cfg.vocab != 256) config["vocabSize"] = cfg.vocab;
    if (cfg.is_moe()) {
        config["nExperts"] = cfg.experts;
        config["moeTopK"] = cfg.topk;
        config["loadBalanceWeight"] = float_to_json(cfg.aux_weight);
    }
    json manifest = json::array();
    uint64_t float_offset = 0;
    const std::vector<std::string> order = layout.manifest_order();
    for (const std::string& name : order) {
        const ParamInfo& info = layout.at(name);
        manifest.push_back({{"name", name}, {"shape", info.shape}, {"floatOffset", float_offset}});
        float_offset += info.numel;
    }
    json h = {{"config", config},
              {"manifest", manifest},
              {"weightDtype", "fp32"},
              {"includesOptimizerState", true},
              {"stateByteLength", 4 + 12 * static_cast<uint64_t>(layout.count())},
              {"savedAt", iso8601_now()}};
    // Loss history: ≤ 512 evenly strided {step, train, val} points, as the original's browser
    // writer.
    std::vector<const LossRecord*> finite;
    for (const LossRecord& r : state.loss_history)
        if (std::isfinite(r.loss)) finite.push_back(&r);
    auto point = [](const LossRecord& r) {
        json pt = {{"step", r.step}, {"train", float_to_json(r.loss)}};
        if (std::isfinite(r.val_loss)) pt["val"] = float_to_json(r.val_loss);
        return pt;
    };
    if (!finite.empty()) {
        h["finalLoss"] = point(*finite.back());
        json history = json::array();
        const size_t count = finite.size(), keep = std::min<size_t>(count, 512);
        for (size_t i = 0; i < keep; ++i) {
            const size_t k = keep == 1 ? count - 1 : i * (count - 1) / (keep - 1);
            history.push_back(point(*finite[k]));
        }
        h["lossHistory"] = std::move(history);
    }
    const std::string text = h.dump();
    if (text.size() > kMaxHeaderBytes) throw Error("the v2 header would exceed the 64 MiB limit");

    out.write(kMagic, 4);
    const uint32_t version = 2, len = static_cast<uint32_t>(text.size());
    out.write(&version, 4);
    out.write(&len, 4);
    out.write(text.data(), text.size());
    const int32_t step = static_cast<int32_t>(state.step);
    out.write(&step, 4);
    std::vector<float> scratch;
    const bool with_moments = options.include_optimizer && adam_m != nullptr && adam_v != nullptr;
    for (const std::string& name : order) {
        const ParamInfo& info = layout.at(name);
        const bool t = stored_transposed(name, info.shape.size());
        for (const float* src : {weights, adam_m, adam_v}) {
            if (src != weights && !with_moments) {
                out.zeros(info.numel * 4);
                continue;
            }
            const float* s = src + info.offset;
            if (!t) {
                out.write(s, info.numel * 4);
                continue;
            }
            scratch.resize(info.numel);  // [out, in] → bytes [in, out]
            transpose(s, scratch.data(), static_cast<size_t>(info.shape[0]),
                      static_cast<size_t>(info.shape[1]));
            out.write(scratch.data(), info.numel * 4);
        }
    }
}

}  // namespace tinygpt::io
