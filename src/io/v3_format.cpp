// The v3 .tinygpt format (docs/FORMAT.md): preamble, JSON header, header checksum, then 64-byte
// aligned sections (weights, adam_m, adam_v), each with its own checksum. An f32 weights section
// is a byte copy of the engine's parameter buffer and is used in place through the mapping.
#include <algorithm>
#include <limits>
#include <string_view>
#include <unordered_set>

#include "io/format_internal.h"

namespace tinygpt::io {

namespace {

constexpr int64_t kIntMax = std::numeric_limits<int>::max();
constexpr int64_t kI64Max = std::numeric_limits<int64_t>::max();

// --- config / training state <-> JSON
// -------------------------------------------------------------

json rng_to_json(const std::array<uint64_t, 4>& words) {
    json a = json::array();
    for (uint64_t w : words) a.push_back("0x" + hex64(w));
    return a;
}

json training_to_json(const TrainingState& s) {
    json adamw = {{"beta1", float_to_json(s.adamw.beta1)},
                  {"beta2", float_to_json(s.adamw.beta2)},
                  {"eps", float_to_json(s.adamw.eps)},
                  {"weight_decay", float_to_json(s.adamw.weight_decay)}};
    json schedule = {{"kind", s.schedule.kind == LrSchedule::Cosine ? "cosine" : "constant"},
                     {"max_lr", float_to_json(s.schedule.max_lr)},
                     {"min_lr", float_to_json(s.schedule.min_lr)},
                     {"warmup", s.schedule.warmup},
                     {"total_steps", s.schedule.total_steps}};
    return json{{"step", s.step},
                {"total_steps", s.total_steps},
                {"batch", s.batch},
                {"accum", s.accum},
                {"seed", "0x" + hex64(s.seed)},
                {"val_split", double_to_json(s.val_split)},
                {"grad_clip", float_to_json(s.grad_clip)},
                {"adamw", adamw},
                {"adam_steps", s.adam_steps},
                {"schedule", schedule},
                {"data_rng", rng_to_json(s.data_rng)}};
}

void training_from_json(const json& j, TrainingState& s) {
    const std::string w = "training";
    as_object(j, w);
    auto i64 = [&](const json& obj, const char* key, const std::string& where, int64_t lo,
                   int64_t hi) {
        return as_int(require_field(obj, key, where), where + "." + key, lo, hi);
    };
    auto f32 = [&](const json& obj, const char* key, const std::string& where) {
        return json_to_float(require_field(obj, key, where), where + "." + key);
    };
    s.step = i64(j, "step", w, 0, kI64Max);
    s.total_steps = i64(j, "total_steps", w, 0, kI64Max);
    s.batch = static_cast<int>(i64(j, "batch", w, 0, kIntMax));
    s.accum = static_cast<int>(i64(j, "accum", w, 0, kIntMax));
    s.seed = as_u64(require_field(j, "seed", w), w + ".seed");
    s.val_split = json_to_double(require_field(j, "val_split", w), w + ".val_split");
    s.grad_clip = f32(j, "grad_clip", w);
    const json& adamw = as_object(require_field(j, "adamw", w), w + ".adamw");
    s.adamw.beta1 = f32(adamw, "beta1", w + ".adamw");
    s.adamw.beta2 = f32(adamw, "beta2", w + ".adamw");
    s.adamw.eps = f32(adamw, "eps", w + ".adamw");
    s.adamw.weight_decay = f32(adamw, "weight_decay", w + ".adamw");
    s.adam_steps = i64(j, "adam_steps", w, 0, kI64Max);
    const std::string ws = w + ".schedule";
    const json& sched = as_object(require_field(j, "schedule", w), ws);
    const std::string& kind = as_string(require_field(sched, "kind", ws), ws + ".kind");
    if (kind == "cosine")
        s.schedule.kind = LrSchedule::Cosine;
    else if (kind == "constant")
        s.schedule.kind = LrSchedule::Constant;
    else
        throw Error("header field '" + ws + ".kind' is an unknown schedule '" + kind +
                    "' (known: cosine, constant)");
    s.schedule.max_lr = f32(sched, "max_lr", ws);
    s.schedule.min_lr = f32(sched, "min_lr", ws);
    s.schedule.warmup = i64(sched, "warmup", ws, 0, kI64Max);
    s.schedule.total_steps = i64(sched, "total_steps", ws, 0, kI64Max);
    const json& rng = as_array(require_field(j, "data_rng", w), w + ".data_rng");
    if (rng.size() != 4)
        throw Error("header field 'training.data_rng' must hold 4 words (got " +
                    std::to_string(rng.size()) + ")");
    for (size_t i = 0; i < 4; ++i)
        s.data_rng[i] = as_u64(rng[i], w + ".data_rng[" + std::to_string(i) + "]");
}

json loss_history_to_json(const std::vector<LossRecord>& records) {
    json a = json::array();
    for (const LossRecord& r : records)
        a.push_back(json::array(
            {r.step, float_to_json(r.loss), float_to_json(r.aux), float_to_json(r.val_loss)}));
    return a;
}

std::vector<LossRecord> loss_history_from_json(const json& j) {
    as_array(j, "loss_history");
    std::vector<LossRecord> out;
    out.reserve(j.size());
    for (size_t i = 0; i < j.size(); ++i) {
        const std::string w = "loss_history[" + std::to_string(i) + "]";
        const json& r = as_array(j[i], w);
        if (r.size() != 4)
            throw Error("header field '" + w + "' must be [step, loss, aux, val_loss]");
        LossRecord rec;
        rec.step = as_int(r[0], w + "[0]", 0, kI64Max);
        rec.loss = json_to_float(r[1], w + "[1]");
        rec.aux = json_to_float(r[2], w + "[2]");
        rec.val_loss = json_to_float(r[3], w + "[3]");
        out.push_back(rec);
    }
    return out;
}

json expert_load_to_json(const std::vector<ExpertLoadRecord>& records) {
    json a = json::array();
    for (const ExpertLoadRecord& r : records) {
        json load = json::array();
        for (const auto& layer : r.load) {
            json row = json::array();
            for (float x : layer) row.push_back(float_to_json(x));
            load.push_back(std::move(row));
        }
        a.push_back(json{{"step", r.step}, {"load", std::move(load)}});
    }
    return a;
}

std::vector<ExpertLoadRecord> expert_load_from_json(const json& j) {
    as_array(j, "expert_load_history");
    std::vector<ExpertLoadRecord> out;
    out.reserve(j.size());
    for (size_t i = 0; i < j.size(); ++i) {
        const std::string w = "expert_load_history[" + std::to_string(i) + "]";
        as_object(j[i], w);
        ExpertLoadRecord rec;
        rec.step = as_int(require_field(j[i], "step", w), w + ".step", 0, kI64Max);
        const json& load = as_array(require_field(j[i], "load", w), w + ".load");
        for (size_t l = 0; l < load.size(); ++l) {
            const std::string wl = w + ".load[" + std::to_string(l) + "]";
            const json& row = as_array(load[l], wl);
            std::vector<float> values;
            values.reserve(row.size());
            for (size_t e = 0; e < row.size(); ++e)
                values.push_back(json_to_float(row[e], wl + "[" + std::to_string(e) + "]"));
            rec.load.push_back(std::move(values));
        }
        out.push_back(std::move(rec));
    }
    return out;
}

// --- sections
// ---------------------------------------------------------------------------------------

struct Section {
    std::string name;
    WeightDtype dtype = WeightDtype::F32;
    uint64_t offset = 0, bytes = 0, checksum = 0;
};

uint64_t parse_checksum(const json& v, const std::string& where) {
    const std::string& s = as_string(v, where);
    if (s.size() != 16 || s.find_first_not_of("0123456789abcdef") != std::string::npos)
        throw Error("header field '" + where + "' must be 16 lowercase hex digits (got \"" +
                    s.substr(0, 40) + "\")");
    return std::stoull(s, nullptr, 16);
}

WeightDtype parse_section_dtype(const json& v, const std::string& where) {
    const std::string& s = as_string(v, where);
    if (s == "f32") return WeightDtype::F32;
    if (s == "bf16") return WeightDtype::BF16;
    if (s == "f16") return WeightDtype::F16;
    throw Error("header field '" + where + "' names an unknown dtype '" + s +
                "' (known: f32, bf16, f16)");
}

std::vector<Section> parse_sections(const json& j, uint64_t data_start, uint64_t file_size) {
    as_array(j, "sections");
    std::vector<Section> out;
    std::unordered_set<std::string> names;
    for (size_t i = 0; i < j.size(); ++i) {
        const std::string w = "sections[" + std::to_string(i) + "]";
        as_object(j[i], w);
        Section s;
        s.name = as_string(require_field(j[i], "name", w), w + ".name");
        const std::string ws = "sections." + s.name;
        if (const json* d = optional_field(j[i], "dtype"))
            s.dtype = parse_section_dtype(*d, ws + ".dtype");
        s.offset = as_u64(require_field(j[i], "offset", w), ws + ".offset");
        s.bytes = as_u64(require_field(j[i], "bytes", w), ws + ".bytes");
        s.checksum = parse_checksum(require_field(j[i], "checksum", w), ws + ".checksum");
        if (!names.insert(s.name).second)
            throw Error("section '" + s.name + "' appears twice in the header");
        if (s.offset % kSectionAlign != 0)
            throw Error("section '" + s.name + "' at offset " + std::to_string(s.offset) +
                        " is not 64-byte aligned");
        if (s.offset < data_start)
            throw Error("section '" + s.name + "' at offset " + std::to_string(s.offset) +
                        " overlaps the header (which ends at byte " + std::to_string(data_start) +
                        ")");
        if (s.offset > file_size || s.bytes > file_size - s.offset)
            throw Error("truncated: section '" + s.name + "' (" + std::to_string(s.bytes) +
                        " bytes at offset " + std::to_string(s.offset) +
                        ") extends past the end of the file (" + std::to_string(file_size) +
                        " bytes)");
        out.push_back(s);
    }
    std::vector<Section> sorted = out;
    std::sort(sorted.begin(), sorted.end(),
              [](const Section& a, const Section& b) { return a.offset < b.offset; });
    uint64_t end = data_start;
    for (size_t i = 0; i < sorted.size(); ++i) {
        if (i > 0 && sorted[i].offset < sorted[i - 1].offset + sorted[i - 1].bytes)
            throw Error("sections '" + sorted[i - 1].name + "' and '" + sorted[i].name +
                        "' overlap");
        end = std::max(end, sorted[i].offset + sorted[i].bytes);
    }
    if (!sorted.empty() && end < file_size)
        throw Error("the file has " + std::to_string(file_size - end) +
                    " unexpected bytes after its last section (corrupted file?)");
    return out;
}

const Section* find_section(const std::vector<Section>& sections, const std::string& name) {
    for (const Section& s : sections)
        if (s.name == name) return &s;
    return nullptr;
}

void check_tensor_table(const json& j, const ParameterLayout& layout, WeightDtype dtype) {
    as_array(j, "tensors");
    const auto& entries = layout.entries();
    const size_t eb = dtype_bytes(dtype);
    if (j.size() != entries.size())
        throw Error("tensor table disagrees with the config: it lists " + std::to_string(j.size()) +
                    " tensors, the config has " + std::to_string(entries.size()));
    for (size_t i = 0; i < entries.size(); ++i) {
        const ParamInfo& want = entries[i];
        const std::string w = "tensors[" + std::to_string(i) + "]";
        as_object(j[i], w);
        const std::string& name = as_string(require_field(j[i], "name", w), w + ".name");
        const json& shape_json = as_array(require_field(j[i], "shape", w), w + ".shape");
        std::vector<int64_t> shape;
        for (size_t d = 0; d < shape_json.size() && d < 8; ++d)
            shape.push_back(as_int(shape_json[d], w + ".shape", 0, kI64Max));
        if (shape_json.size() > 8) shape.push_back(-1);
        const WeightDtype td = parse_section_dtype(require_field(j[i], "dtype", w), w + ".dtype");
        const uint64_t offset = as_u64(require_field(j[i], "offset", w), w + ".offset");
        const uint64_t bytes = as_u64(require_field(j[i], "bytes", w), w + ".bytes");
        const uint64_t want_offset = want.offset * eb, want_bytes = want.numel * eb;
        if (name != want.name || shape != want.shape || td != dtype || offset != want_offset ||
            bytes != want_bytes)
            throw Error("tensor table disagrees with the config: entry " + std::to_string(i) +
                        " is '" + name + "' " + shape_string(shape) + " " + dtype_name(td) +
                        " at byte " + std::to_string(offset) + " (" + std::to_string(bytes) +
                        " bytes), expected '" + want.name + "' " + shape_string(want.shape) + " " +
                        dtype_name(dtype) + " at byte " + std::to_string(want_offset) + " (" +
                        std::to_string(want_bytes) + " bytes)");
    }
}

}  // namespace

// --- reader
// -------------------------------------------------------------------------------------------

LoadedModel read_v3(std::unique_ptr<MappedFile> file, uint64_t header_len, bool want_optimizer) {
    const uint8_t* p = file->data();
    const uint64_t size = file->size();
    const uint64_t json_end = kPreambleBytes + header_len;
    if (size - json_end < 8)
        throw Error("truncated: the 8-byte header checksum after the JSON header is missing");
    if (checksum64(p, json_end) != load_u64(p + json_end))
        throw Error("checksum mismatch in the header (file corrupted?)");
    json h = parse_header(p + kPreambleBytes, static_cast<size_t>(header_len));
    if (!h.is_object()) throw Error("header is not a JSON object");

    if (const json* fmt = optional_field(h, "format")) {
        as_object(*fmt, "format");
        if (const json* v = optional_field(*fmt, "version"))
            if (as_int(*v, "format.version", 0, kI64Max) != 3)
                throw Error("header field 'format.version' disagrees with the file's version 3");
        if (const json* c = optional_field(*fmt, "checksum"))
            if (as_string(*c, "format.checksum") != "xxh3_64")
                throw Error("unsupported checksum '" + c->get<std::string>() +
                            "' (this tinygpt knows: xxh3_64)");
    }

    LoadedModel m;
    m.version = 3;
    m.config = config_from_json(require_field(h, "config", ""));

    // The tokenizer: "bytes" (ids = bytes), or "hf": an HF tokenizer.json kept whole in the
    // section "tokenizer", with tokenizer_config.json's content inline.
    const json& tok = as_object(require_field(h, "tokenizer", ""), "tokenizer");
    const std::string& tok_type =
        as_string(require_field(tok, "type", "tokenizer"), "tokenizer.type");
    if (tok_type != "bytes" && tok_type != "hf")
        throw Error("unsupported tokenizer type '" + tok_type +
                    "' (this tinygpt knows: bytes, hf)");
    if (tok_type == "bytes") {
        if (const json* tv = optional_field(tok, "vocab"))
            if (as_int(*tv, "tokenizer.vocab", 0, kI64Max) != 256)
                throw Error("header field 'tokenizer.vocab' must be 256 for a byte tokenizer");
    } else if (const json* tc = optional_field(tok, "config")) {
        m.tokenizer_config_json = as_object(*tc, "tokenizer.config").dump();
    }

    const uint64_t data_start = json_end + 8;
    const std::vector<Section> sections =
        parse_sections(require_field(h, "sections", ""), data_start, size);
    const Section* ws = find_section(sections, "weights");
    if (ws == nullptr) throw Error("the file has no 'weights' section");
    m.dtype = ws->dtype;
    const Section* ts = find_section(sections, "tokenizer");
    if ((ts != nullptr) != (tok_type == "hf"))
        throw Error(ts ? "the file has a 'tokenizer' section but tokenizer.type is 'bytes'"
                       : "tokenizer.type is 'hf' but the file has no 'tokenizer' section");
    const size_t eb = dtype_bytes(m.dtype);

    try {
        m.config.validate();
    } catch (const Error& e) {
        throw Error(std::string("invalid model config: ") + e.what());
    }
    check_config_fits(m.config, eb, size, "weights");  // before ParameterLayout allocates anything
    const ParameterLayout layout(m.config);
    const uint64_t n = layout.total();
    if (ws->bytes != n * eb)
        throw Error("section 'weights' is " + std::to_string(ws->bytes) +
                    " bytes but the config needs " + std::to_string(n * eb) + " (" +
                    std::to_string(n) + " " + dtype_name(m.dtype) + " values)");
    const Section* ms = find_section(sections, "adam_m");
    const Section* vs = find_section(sections, "adam_v");
    if ((ms == nullptr) != (vs == nullptr))
        throw Error(std::string("the file has section '") + (ms ? "adam_m" : "adam_v") +
                    "' without '" + (ms ? "adam_v" : "adam_m") + "'");
    for (const Section* s : {ms, vs}) {
        if (s == nullptr) continue;
        if (s->dtype != WeightDtype::F32) throw Error("section '" + s->name + "' must be f32");
        if (s->bytes != n * 4)
            throw Error("section '" + s->name + "' is " + std::to_string(s->bytes) +
                        " bytes but the config needs " + std::to_string(n * 4));
    }
    check_tensor_table(require_field(h, "tensors", ""), layout, m.dtype);

    for (const Section& s : sections) {
        const bool optimizer_section = &s == ms || &s == vs;
        if (optimizer_section && !want_optimizer) continue;  // not read, so not verified
        if (checksum64(p + s.offset, static_cast<size_t>(s.bytes)) != s.checksum)
            throw Error("checksum mismatch in section '" + s.name + "' (file corrupted?)");
    }

    if (ts != nullptr)
        m.tokenizer_json.assign(reinterpret_cast<const char*>(p + ts->offset),
                                static_cast<size_t>(ts->bytes));
    if (const json* t = optional_field(h, "training")) {
        training_from_json(*t, m.state);
        m.has_training = true;
    }
    if (const json* lh = optional_field(h, "loss_history"))
        m.state.loss_history = loss_history_from_json(*lh);
    if (const json* eh = optional_field(h, "expert_load_history"))
        m.state.expert_load_history = expert_load_from_json(*eh);

    for (const ParamInfo& info : layout.entries())
        m.tensors.push_back(StoredTensor{info.name, info.shape, m.dtype,
                                         ws->offset + info.offset * eb, info.numel * eb});
    m.has_optimizer = ms != nullptr;

    if (m.dtype == WeightDtype::F32) {
        m.weights = reinterpret_cast<const float*>(p + ws->offset);
        if (ms != nullptr && want_optimizer) {
            m.adam_m = reinterpret_cast<const float*>(p + ms->offset);
            m.adam_v = reinterpret_cast<const float*>(p + vs->offset);
        }
        m.mapping = std::move(file);
    } else {
        m.owned_weights.resize(n);
        const uint8_t* src = p + ws->offset;
        for (size_t i = 0; i < n; ++i) {
            uint16_t h16;
            std::memcpy(&h16, src + 2 * i, 2);
            m.owned_weights[i] =
                m.dtype == WeightDtype::BF16 ? bf16_to_float(h16) : f16_to_float(h16);
        }
        m.weights = m.owned_weights.data();
        if (ms != nullptr && want_optimizer) {
            m.owned_m.resize(n);
            m.owned_v.resize(n);
            std::memcpy(m.owned_m.data(), p + ms->offset, n * 4);
            std::memcpy(m.owned_v.data(), p + vs->offset, n * 4);
            m.adam_m = m.owned_m.data();
            m.adam_v = m.owned_v.data();
        }
        // `file` goes out of scope: the mapping is released.
    }
    m.header = std::move(h);
    return m;
}

// --- writer
// -------------------------------------------------------------------------------------------

void write_v3(FileSink& out, const ModelConfig& cfg, const float* weights, const float* adam_m,
              const float* adam_v, const TrainingState& state, const SaveOptions& options) {
    const ParameterLayout layout(cfg);
    const size_t n = layout.total();
    const WeightDtype dtype = options.dtype;
    const size_t eb = dtype_bytes(dtype);

    std::vector<uint16_t> half;
    const void* wdata = weights;
    if (dtype != WeightDtype::F32) {
        half.resize(n);
        for (size_t i = 0; i < n; ++i)
            half[i] =
                dtype == WeightDtype::BF16 ? float_to_bf16(weights[i]) : float_to_f16(weights[i]);
        wdata = half.data();
    }
    struct Out {
        const char* name;
        const void* data;
        uint64_t bytes;
        WeightDtype dtype;
        uint64_t checksum = 0;
        uint64_t offset = 0;
    };
    std::vector<Out> sections = {{"weights", wdata, n * eb, dtype}};
    if (options.include_optimizer) {
        sections.push_back({"adam_m", adam_m, n * 4, WeightDtype::F32});
        sections.push_back({"adam_v", adam_v, n * 4, WeightDtype::F32});
    }
    if (!options.tokenizer_json.empty())
        sections.push_back({"tokenizer", options.tokenizer_json.data(),
                            options.tokenizer_json.size(), WeightDtype::F32});
    for (Out& s : sections) s.checksum = checksum64(s.data, static_cast<size_t>(s.bytes));

    json h;
    h["format"] = {{"name", "tinygpt"},
                   {"version", 3},
                   {"writer", std::string("tinygpt ") + TINYGPT_VERSION},
                   {"byte_order", "little"},
                   {"alignment", kSectionAlign},
                   {"checksum", "xxh3_64"}};
    h["config"] = config_to_json(cfg);
    if (options.tokenizer_json.empty()) {
        h["tokenizer"] = {{"type", "bytes"}, {"vocab", 256}};
    } else {
        h["tokenizer"] = {{"type", "hf"}, {"section", "tokenizer"}};
        if (!options.tokenizer_config_json.empty())
            h["tokenizer"]["config"] = json::parse(options.tokenizer_config_json);
    }
    h["saved_at"] = iso8601_now();
    if (options.include_training_state) h["training"] = training_to_json(state);
    h["loss_history"] = loss_history_to_json(state.loss_history);
    h["expert_load_history"] = expert_load_to_json(state.expert_load_history);
    json tensors = json::array();
    for (const ParamInfo& info : layout.entries())
        tensors.push_back({{"name", info.name},
                           {"shape", info.shape},
                           {"dtype", dtype_name(dtype)},
                           {"offset", info.offset * eb},
                           {"bytes", info.numel * eb}});
    h["tensors"] = std::move(tensors);

    // Section offsets depend on the header's length, which depends on the offsets' digits: iterate
    // until the header fits in front of the first section (the padding absorbs small changes).
    uint64_t data_start = 0;
    std::string text;
    for (int iter = 0;; ++iter) {
        uint64_t offset = data_start;
        json list = json::array();
        for (Out& s : sections) {
            offset = align_up(offset, kSectionAlign);
            s.offset = offset;
            offset += s.bytes;
            json entry = {{"name", s.name},
                          {"offset", s.offset},
                          {"bytes", s.bytes},
                          {"checksum", hex64(s.checksum)}};
            if (std::string_view(s.name) != "tokenizer") entry["dtype"] = dtype_name(s.dtype);
            list.push_back(std::move(entry));
        }
        h["sections"] = std::move(list);
        text = h.dump();
        const uint64_t need = align_up(kPreambleBytes + text.size() + 8, kSectionAlign);
        if (need <= data_start) break;
        if (iter > 16) throw Error("internal error: the v3 header layout does not converge");
        data_start = need;
    }
    if (text.size() > kMaxHeaderBytes)
        throw Error("the header would be " + std::to_string(text.size()) + " bytes, over the " +
                    std::to_string(kMaxHeaderBytes >> 20) +
                    " MiB limit (loss / expert-load history too long)");

    std::string pre(kMagic, 4);
    const uint32_t version = 3, len = static_cast<uint32_t>(text.size());
    pre.append(reinterpret_cast<const char*>(&version), 4);
    pre.append(reinterpret_cast<const char*>(&len), 4);
    pre += text;
    const uint64_t header_sum = checksum64(pre.data(), pre.size());
    out.write(pre.data(), pre.size());
    out.write(&header_sum, 8);
    for (const Out& s : sections) {
        out.pad_to(s.offset);
        out.write(s.data, static_cast<size_t>(s.bytes));
    }
}

}  // namespace tinygpt::io
