// ModelFile / save_model_file: the public entry points, version dispatch, error wrapping, and the
// helpers the format files share. The formats themselves: src/io/v3_format.cpp (ours) and
// src/io/original_format.cpp (the original TinyGPT's v1 / v2). Byte layouts: docs/FORMAT.md.
#include "io/model_file.h"

#include <xxhash.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <limits>
#include <map>
#include <mutex>
#include <new>

#include "io/atomic_write.h"
#include "io/format_internal.h"

namespace tinygpt {

namespace io {

size_t dtype_bytes(WeightDtype dtype) {
    if (dtype == WeightDtype::Q8_0) throw Error("q8_0 weights cannot be stored in this layout");
    return dtype == WeightDtype::F32 ? 4 : 2;
}

uint64_t checksum64(const void* data, size_t bytes) {
    return XXH3_64bits(data, bytes);
}

std::string hex64(uint64_t v) {
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
    return buf;
}

std::string iso8601_now() {
    const std::time_t now = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&now, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

void check_config_fits(const ModelConfig& cfg, uint64_t bytes_per_param, uint64_t available,
                       const std::string& what) {
    // Dimensions are capped by the header parsers (int ranges); a double cannot overflow.
    const double params = cfg.total_params_estimate();
    const double needed = params * static_cast<double>(bytes_per_param);
    if (needed > available) {
        char buf[160];
        std::snprintf(buf, sizeof buf,
                      "the config (%.4g parameters) needs %.4g bytes of %s but only %llu are there",
                      params, needed, what.c_str(), static_cast<unsigned long long>(available));
        throw Error(std::string("truncated or inconsistent file: ") + buf);
    }
}

std::string excerpt(const json& v) {
    // Containers are summarised, never dumped: dumping recurses, and a header may be hostile.
    if (v.is_array() || v.is_object()) {
        std::string s(v.is_array() ? "[" : "{");
        s.append(std::to_string(v.size())).append(v.is_array() ? " elements]" : " keys}");
        return s;
    }
    std::string s = v.dump(-1, ' ', false, json::error_handler_t::replace);
    if (s.size() > 40) s = s.substr(0, 37) + "...";
    return s;
}

json parse_header(const uint8_t* text, size_t bytes) {
    // Bound the nesting before parsing: nlohmann parses iteratively, but dump() and our own
    // traversals recurse, so a header of a million '[' must not get through.
    constexpr int kMaxDepth = 64;
    int depth = 0;
    bool in_string = false, escape = false;
    for (size_t i = 0; i < bytes; ++i) {
        const uint8_t c = text[i];
        if (in_string) {
            if (escape)
                escape = false;
            else if (c == '\\')
                escape = true;
            else if (c == '"')
                in_string = false;
        } else if (c == '"') {
            in_string = true;
        } else if (c == '[' || c == '{') {
            if (++depth > kMaxDepth)
                throw Error("header JSON is nested more than " + std::to_string(kMaxDepth) +
                            " levels deep");
        } else if (c == ']' || c == '}') {
            --depth;
        }
    }
    try {
        return json::parse(text, text + bytes);
    } catch (const json::parse_error& e) {
        throw Error(std::string("header is not valid JSON: ") + e.what());
    }
}

namespace {

[[noreturn]] void type_error(const json& v, const std::string& where, const std::string& expected) {
    std::string got(v.type_name());
    if (!v.is_null()) got.append(" ").append(excerpt(v));
    throw Error("header field '" + where + "' must be " + expected + " (got " + got + ")");
}

}  // namespace

const json& require_field(const json& obj, const char* key, const std::string& where) {
    const std::string name = where.empty() ? std::string(key) : where + "." + key;
    if (!obj.is_object()) type_error(obj, where, "an object");
    auto it = obj.find(key);
    if (it == obj.end()) throw Error("header field '" + name + "' is missing");
    return *it;
}

const json* optional_field(const json& obj, const char* key) {
    if (!obj.is_object()) return nullptr;
    auto it = obj.find(key);
    return it == obj.end() ? nullptr : &*it;
}

int64_t as_int(const json& v, const std::string& where, int64_t lo, int64_t hi) {
    const std::string range =
        hi >= (int64_t{1} << 53)
            ? (lo == 0 ? std::string("a non-negative integer")
                       : "an integer >= " + std::to_string(lo))
            : "an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
    int64_t x;
    if (v.is_number_unsigned()) {
        const uint64_t u = v.get<uint64_t>();
        if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
            type_error(v, where, range);
        x = static_cast<int64_t>(u);
    } else if (v.is_number_integer()) {
        x = v.get<int64_t>();
    } else if (v.is_number_float()) {
        const double d = v.get<double>();
        if (!(d == std::floor(d)) || d < -9.2e18 || d > 9.2e18) type_error(v, where, range);
        x = static_cast<int64_t>(d);
    } else {
        type_error(v, where, range);
    }
    if (x < lo || x > hi) type_error(v, where, range);
    return x;
}

uint64_t as_u64(const json& v, const std::string& where) {
    if (v.is_number_unsigned()) return v.get<uint64_t>();
    if (v.is_number_integer() && v.get<int64_t>() >= 0)
        return static_cast<uint64_t>(v.get<int64_t>());
    if (v.is_string()) {  // decimal or 0x-prefixed hex
        const std::string& s = v.get_ref<const std::string&>();
        const bool hex = s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X');
        const size_t start = hex ? 2 : 0;
        if (s.size() > start && s.size() - start <= (hex ? 16u : 20u)) {
            unsigned long long out = 0;
            bool ok = true;
            for (size_t i = start; i < s.size() && ok; ++i) {
                const char c = s[i];
                int d = -1;
                if (c >= '0' && c <= '9')
                    d = c - '0';
                else if (hex && c >= 'a' && c <= 'f')
                    d = c - 'a' + 10;
                else if (hex && c >= 'A' && c <= 'F')
                    d = c - 'A' + 10;
                if (d < 0)
                    ok = false;
                else {
                    const unsigned long long base = hex ? 16 : 10;
                    if (out > (std::numeric_limits<unsigned long long>::max() - d) / base)
                        ok = false;
                    else
                        out = out * base + static_cast<unsigned long long>(d);
                }
            }
            if (ok) return out;
        }
    }
    type_error(v, where, "an unsigned 64-bit integer (a number, or a decimal or 0x-hex string)");
}

double as_number(const json& v, const std::string& where) {
    if (!v.is_number()) type_error(v, where, "a number");
    return v.get<double>();
}

bool as_bool(const json& v, const std::string& where) {
    if (!v.is_boolean()) type_error(v, where, "true or false");
    return v.get<bool>();
}

const std::string& as_string(const json& v, const std::string& where) {
    if (!v.is_string()) type_error(v, where, "a string");
    return v.get_ref<const std::string&>();
}

const json& as_object(const json& v, const std::string& where) {
    if (!v.is_object()) type_error(v, where, "an object");
    return v;
}

const json& as_array(const json& v, const std::string& where) {
    if (!v.is_array()) type_error(v, where, "an array");
    return v;
}

json double_to_json(double x) {
    if (std::isnan(x)) return nullptr;
    if (std::isinf(x)) return x > 0 ? "inf" : "-inf";
    return x;  // nlohmann prints the shortest text that reads back as exactly this double
}

double json_to_double(const json& v, const std::string& where) {
    if (v.is_null()) return std::numeric_limits<double>::quiet_NaN();
    if (v.is_number()) return v.get<double>();
    if (v.is_string()) {
        const std::string& s = v.get_ref<const std::string&>();
        if (s == "inf" || s == "+inf") return std::numeric_limits<double>::infinity();
        if (s == "-inf") return -std::numeric_limits<double>::infinity();
        if (s == "nan") return std::numeric_limits<double>::quiet_NaN();
    }
    type_error(v, where, "a number, null (NaN), \"inf\" or \"-inf\"");
}

json float_to_json(float x) {
    return double_to_json(static_cast<double>(x));
}

float json_to_float(const json& v, const std::string& where) {
    const double d = json_to_double(v, where);
    if (std::isfinite(d) && std::fabs(d) > static_cast<double>(std::numeric_limits<float>::max()))
        type_error(v, where, "a number in float range");
    return static_cast<float>(d);
}

}  // namespace io

// Why the original's v2 format cannot hold this model ("" when it can): it knows only the GPT
// block with every block MoE (or none), experts as wide as the dense MLP, and the original's
// routing rule.
std::string v2_cannot_describe(const ModelConfig& cfg) {
    if (cfg.is_llama()) return "the Llama family (--arch llama)";
    if (!cfg.is_moe()) return "";
    if (!cfg.all_layers_moe()) return "a per-layer MoE layout (--moe-every / --moe-dense-first)";
    if (cfg.expert_width() != cfg.d_mlp) return "experts of their own width (--moe-ffn)";
    if (cfg.renormalize_topk() != (cfg.topk > 1))
        return "--moe-norm-topk " + std::string(norm_topk_name(cfg.norm_topk));
    if (cfg.z_loss_weight > 0) return "the router z-loss (--moe-z-loss)";
    if (cfg.jitter > 0) return "router jitter (--moe-jitter)";
    if (cfg.capacity_factor > 0) return "an expert capacity (--moe-capacity-factor)";
    return "";
}

// --- ModelFile -----------------------------------------------------------------------------------

struct ModelFile::Impl {
    std::string path;
    uint64_t file_bytes = 0;
    io::LoadedModel m;
    // weights() of typed weights: made on the first call.
    std::once_flag f32_once;
    std::vector<float> f32_copy;
    std::atomic<bool> has_f32_copy{false};
};

ModelFile::ModelFile(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ModelFile::ModelFile(ModelFile&&) noexcept = default;
ModelFile& ModelFile::operator=(ModelFile&&) noexcept = default;
ModelFile::~ModelFile() = default;

namespace {

io::LoadedModel load(const std::string& path, uint64_t& file_bytes, bool want_optimizer) {
    using namespace io;
    auto file = std::make_unique<MappedFile>(path);
    const uint8_t* p = file->data();
    const uint64_t size = file->size();
    file_bytes = size;
    const uint64_t head = std::min<uint64_t>(size, 4);
    if (std::memcmp(p, kMagic, head) != 0) {
        std::string found;
        for (uint64_t i = 0; i < head; ++i) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "%02x", p[i]);
            found += buf;
        }
        throw Error("not a tinygpt model file (bad magic: expected \"TGPT\" = 54475054, found " +
                    found + ")");
    }
    if (size < kPreambleBytes)
        throw Error("truncated: the file is " + std::to_string(size) +
                    " bytes, shorter than the 12-byte preamble (magic, version, header length)");
    const uint32_t version = load_u32(p + 4);
    if (version > kNewestVersion)
        throw Error("file format version " + std::to_string(version) +
                    " is newer than this tinygpt understands (up to " +
                    std::to_string(kNewestVersion) + ")");
    if (version == 0) throw Error("unknown file format version 0 (known: 1, 2, 3)");
    const uint64_t header_len = load_u32(p + 8);
    if (header_len > kMaxHeaderBytes)
        throw Error("header length " + std::to_string(header_len) + " bytes exceeds the " +
                    std::to_string(kMaxHeaderBytes >> 20) + " MiB limit (corrupted file?)");
    if (header_len > size - kPreambleBytes)
        throw Error("truncated: the header claims " + std::to_string(header_len) +
                    " bytes of JSON but only " + std::to_string(size - kPreambleBytes) +
                    " bytes follow the preamble");
    if (version == 3) return read_v3(std::move(file), header_len, want_optimizer);
    return read_original(std::move(file), version, header_len);
}

}  // namespace

ModelFile ModelFile::read(const std::string& path, const ReadOptions& options) {
    auto impl = std::make_unique<Impl>();
    impl->path = path;
    try {
        impl->m = load(path, impl->file_bytes, options.optimizer);
        io::LoadedModel& m = impl->m;
        if (m.stored.empty()) {  // v1/v2: converted into owned f32, shared with the views
            auto owned = std::make_shared<std::vector<float>>(std::move(m.owned_weights));
            m.weights = owned->data();
            m.stored = ModelWeights::from_f32(m.config, m.weights, std::move(owned));
        }
    } catch (const nlohmann::json::exception& e) {
        throw Error(path + ": malformed header: " + e.what());
    } catch (const std::bad_alloc&) {
        throw Error(path + ": out of memory while reading the model file");
    } catch (const std::exception& e) {
        throw Error(path + ": " + e.what());
    }
    return ModelFile(std::move(impl));
}

const std::string& ModelFile::path() const {
    return impl_->path;
}
int ModelFile::version() const {
    return impl_->m.version;
}
const ModelConfig& ModelFile::config() const {
    return impl_->m.config;
}
const ModelWeights& ModelFile::stored_weights() const {
    return impl_->m.stored;
}
const float* ModelFile::weights() const {
    if (const float* base = impl_->m.stored.f32_base()) return base;
    Impl& impl = *impl_;
    std::call_once(impl.f32_once, [&impl] {
        impl.f32_copy = impl.m.stored.to_f32();
        impl.has_f32_copy.store(true);
    });
    return impl.f32_copy.data();
}
bool ModelFile::has_f32_copy() const {
    return impl_->has_f32_copy.load();
}
bool ModelFile::weights_mapped() const {
    return impl_->m.mapping != nullptr;
}
bool ModelFile::has_optimizer_state() const {
    return impl_->m.has_optimizer;
}
const float* ModelFile::adam_m() const {
    return impl_->m.has_optimizer ? impl_->m.adam_m : nullptr;
}
const float* ModelFile::adam_v() const {
    return impl_->m.has_optimizer ? impl_->m.adam_v : nullptr;
}
bool ModelFile::has_training_state() const {
    return impl_->m.has_training;
}
const TrainingState& ModelFile::training_state() const {
    return impl_->m.state;
}
const nlohmann::json& ModelFile::header() const {
    return impl_->m.header;
}
const std::vector<StoredTensor>& ModelFile::tensors() const {
    return impl_->m.tensors;
}
WeightDtype ModelFile::weight_dtype() const {
    return impl_->m.dtype;
}
std::string ModelFile::stored_types() const {
    std::map<WeightDtype, uint64_t> bytes;
    for (const StoredTensor& t : impl_->m.tensors) bytes[t.dtype] += t.bytes;
    std::vector<std::pair<uint64_t, WeightDtype>> sorted;
    for (const auto& [dtype, n] : bytes) sorted.emplace_back(n, dtype);
    std::stable_sort(sorted.begin(), sorted.end(),
                     [](const auto& a, const auto& b) { return a.first > b.first; });
    std::string s;
    for (const auto& [n, dtype] : sorted) {
        if (!s.empty()) s += '+';
        s += dtype_name(dtype);
    }
    return s;
}
uint64_t ModelFile::stored_weight_bytes() const {
    uint64_t bytes = 0;
    for (const StoredTensor& t : impl_->m.tensors) bytes += t.bytes;
    return bytes;
}
const std::string& ModelFile::tokenizer_json() const {
    return impl_->m.tokenizer_json;
}
const std::string& ModelFile::tokenizer_config_json() const {
    return impl_->m.tokenizer_config_json;
}
uint64_t ModelFile::file_bytes() const {
    return impl_->file_bytes;
}

// --- saving --------------------------------------------------------------------------------------

namespace {

void check_save_options(const std::string& path, const ModelConfig& cfg,
                        const SaveOptions& options) {
    try {
        cfg.validate();
    } catch (const Error& e) {
        throw Error(path + ": cannot save an invalid model config: " + e.what());
    }
    if (options.version != 2 && options.version != 3)
        throw Error(path + ": cannot write file format version " + std::to_string(options.version) +
                    " (this tinygpt writes 2 and 3)");
    if (options.version == 2 && options.dtype != WeightDtype::F32)
        throw Error(
            path + ": the v2 (original TinyGPT) format is written as fp32 training weights only; " +
            "save " + dtype_name(options.dtype) + " copies as v3");
    if (options.version == 2) {
        std::string why = v2_cannot_describe(cfg);
        if (why.empty() && !options.tokenizer_json.empty()) why = "a BPE tokenizer";
        if (!why.empty())
            throw Error(path + ": the v2 (original TinyGPT) format cannot describe " + why +
                        "; save it as v3 (--format v3)");
    }
    if (options.include_optimizer && options.dtype != WeightDtype::F32)
        throw Error(path + ": a " + dtype_name(options.dtype) +
                    " file is an inference copy: the AdamW moments are saved with f32 weights "
                    "only (leave out the optimizer state, or save f32)");
}

}  // namespace

void save_model_file(const std::string& path, const ModelConfig& cfg, const float* weights,
                     const float* adam_m, const float* adam_v, const TrainingState& state,
                     const SaveOptions& options) {
    check_save_options(path, cfg, options);
    if (weights == nullptr) throw Error(path + ": no weights to save (null pointer)");
    if (options.include_optimizer && (adam_m == nullptr || adam_v == nullptr))
        throw Error(path + ": include_optimizer is set but the AdamW moments are missing");
    io::atomic_write_file(path, [&](io::FileSink& sink) {
        if (options.version == 3) {
            ModelWeights typed = ModelWeights::from_f32(cfg, weights);
            if (options.dtype != WeightDtype::F32) typed = typed.converted(options.dtype);
            io::write_v3(sink, typed, adam_m, adam_v, state, options);
        } else {
            io::write_v2(sink, cfg, weights, adam_m, adam_v, state, options);
        }
    });
}

void save_model_file(const std::string& path, const ModelWeights& weights,
                     const TrainingState& state, const SaveOptions& options) {
    if (weights.empty()) throw Error(path + ": no weights to save (an empty model)");
    check_save_options(path, weights.config(), options);
    if (options.include_optimizer)
        throw Error(path + ": saving typed weights takes no AdamW moments (include_optimizer)");
    io::atomic_write_file(path, [&](io::FileSink& sink) {
        if (options.version == 2) {
            std::vector<float> f32;
            const float* base = weights.f32_base();
            if (base == nullptr) {
                f32 = weights.to_f32();
                base = f32.data();
            }
            io::write_v2(sink, weights.config(), base, nullptr, nullptr, state, options);
        } else if (weights.has_stored_types(options.dtype)) {  // every bit as it is
            io::write_v3(sink, weights, nullptr, nullptr, state, options);
        } else {
            io::write_v3(sink, weights.converted(options.dtype), nullptr, nullptr, state, options);
        }
    });
}

}  // namespace tinygpt
