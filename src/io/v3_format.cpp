// The v3 .tinygpt format (docs/FORMAT.md): preamble, JSON header, header checksum, then 64-byte
// aligned sections (weights, adam_m, adam_v, tokenizer), each with its own checksum. The weights
// are used in place through the mapping, in the types they are stored in (src/io/v3_tensors.cpp:
// the tensor table); an f32 weights section is a byte copy of the engine's parameter buffer.
#include <algorithm>
#include <limits>
#include <string_view>
#include <unordered_set>

#include "io/format_internal.h"

namespace tinygpt::io {

namespace {

// --- sections
// ---------------------------------------------------------------------------------------

struct Section {
    std::string name;
    WeightDtype dtype = WeightDtype::F32;
    bool mixed = false;  // weights only: each tensor in its own type (the tensor table says)
    uint64_t offset = 0, bytes = 0, checksum = 0;
};

uint64_t parse_checksum(const json& v, const std::string& where) {
    const std::string& s = as_string(v, where);
    if (s.size() != 16 || s.find_first_not_of("0123456789abcdef") != std::string::npos)
        throw Error("header field '" + where + "' must be 16 lowercase hex digits (got \"" +
                    s.substr(0, 40) + "\")");
    return std::stoull(s, nullptr, 16);
}

// A section's dtype: f32, bf16 or f16 (one type for the whole section), or, for the weights,
// "mixed" (per-tensor types).
void parse_section_dtype(const json& v, const std::string& where, Section& s) {
    const std::string& text = as_string(v, where);
    const std::optional<WeightDtype> d = parse_file_dtype(text);
    if (d && *d != WeightDtype::Q8_0) {
        s.dtype = *d;
        return;
    }
    if (text == "mixed" && s.name == "weights") {
        s.mixed = true;
        return;
    }
    if (text == "mixed" || d)
        throw Error("header field '" + where + "' is '" + text +
                    "', which only the tensor table can say (and 'mixed' only of section "
                    "'weights')");
    throw Error("header field '" + where + "' names an unknown dtype '" + text.substr(0, 40) +
                "' (known: f32, bf16, f16, and mixed for the weights)");
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
            parse_section_dtype(*d, ws + ".dtype", s);
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
    const Section* ts = find_section(sections, "tokenizer");
    if ((ts != nullptr) != (tok_type == "hf"))
        throw Error(ts ? "the file has a 'tokenizer' section but tokenizer.type is 'bytes'"
                       : "tokenizer.type is 'hf' but the file has no 'tokenizer' section");

    try {
        m.config.validate();
    } catch (const Error& e) {
        throw Error(std::string("invalid model config: ") + e.what());
    }
    // Before ParameterLayout allocates anything: at least one byte per parameter (q8_0 is 1.06).
    check_config_fits(m.config, ws->mixed ? 1 : dtype_bytes(ws->dtype), size, "weights");
    const ParameterLayout layout(m.config);
    const uint64_t n = layout.total();
    if (!ws->mixed && ws->bytes != n * dtype_bytes(ws->dtype))
        throw Error("section 'weights' is " + std::to_string(ws->bytes) +
                    " bytes but the config needs " + std::to_string(n * dtype_bytes(ws->dtype)) +
                    " (" + std::to_string(n) + " " + dtype_name(ws->dtype) + " values)");
    const Section* ms = find_section(sections, "adam_m");
    const Section* vs = find_section(sections, "adam_v");
    if ((ms == nullptr) != (vs == nullptr))
        throw Error(std::string("the file has section '") + (ms ? "adam_m" : "adam_v") +
                    "' without '" + (ms ? "adam_v" : "adam_m") + "'");
    for (const Section* s : {ms, vs}) {
        if (s == nullptr) continue;
        if (s->dtype != WeightDtype::F32 || s->mixed)
            throw Error("section '" + s->name + "' must be f32");
        if (s->bytes != n * 4)
            throw Error("section '" + s->name + "' is " + std::to_string(s->bytes) +
                        " bytes but the config needs " + std::to_string(n * 4));
    }
    const std::vector<TensorPlace> places = read_tensor_table(
        require_field(h, "tensors", ""), layout,
        ws->mixed ? std::nullopt : std::optional<WeightDtype>(ws->dtype), ws->bytes);

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

    const auto& entries = layout.entries();
    for (size_t i = 0; i < entries.size(); ++i)
        m.tensors.push_back(StoredTensor{entries[i].name, entries[i].shape, places[i].dtype,
                                         ws->offset + places[i].offset, places[i].bytes});
    m.has_optimizer = ms != nullptr;

    // The weights stay in the mapping, in their stored types: no copy, no conversion. The views
    // share the mapping's ownership.
    m.mapping = std::shared_ptr<MappedFile>(std::move(file));
    const uint8_t* base = p + ws->offset;
    if (!ws->mixed && ws->dtype == WeightDtype::F32) {
        m.stored =
            ModelWeights::from_f32(m.config, reinterpret_cast<const float*>(base), m.mapping);
    } else {
        std::vector<TensorView> views;
        views.reserve(places.size());
        for (const TensorPlace& t : places) views.push_back(TensorView{base + t.offset, t.dtype});
        const ModelWeights as_stored(m.config, std::move(views), m.mapping);
        m.dtype = as_stored.main_dtype();
        // Files written before per-tensor types hold norms, biases, the router and the position
        // table in bf16/f16 too: those (small) tensors are widened, as inference reads them f32.
        m.stored = as_stored.with_f32_vectors();
    }
    if (ms != nullptr && want_optimizer) {
        m.adam_m = reinterpret_cast<const float*>(p + ms->offset);
        m.adam_v = reinterpret_cast<const float*>(p + vs->offset);
    }
    m.header = std::move(h);
    return m;
}

// --- writer
// -------------------------------------------------------------------------------------------

void write_v3(FileSink& out, const ModelWeights& weights, const float* adam_m, const float* adam_v,
              const TrainingState& state, const SaveOptions& options) {
    const ModelConfig& cfg = weights.config();
    const ParameterLayout& layout = weights.layout();
    const size_t n = layout.total();
    const WeightsSection ws = plan_weights_section(weights);
    struct Out {
        const char* name;
        const void* data;  // null for the weights (written tensor by tensor)
        uint64_t bytes;
        const char* dtype;  // null: no dtype (the tokenizer)
        uint64_t checksum = 0;
        uint64_t offset = 0;
    };
    std::vector<Out> sections = {
        {"weights", nullptr, ws.bytes, ws.mixed ? "mixed" : "f32", ws.checksum}};
    if (options.include_optimizer) {
        sections.push_back({"adam_m", adam_m, n * 4, "f32"});
        sections.push_back({"adam_v", adam_v, n * 4, "f32"});
    }
    if (!options.tokenizer_json.empty())
        sections.push_back(
            {"tokenizer", options.tokenizer_json.data(), options.tokenizer_json.size(), nullptr});
    for (Out& s : sections)
        if (s.data != nullptr) s.checksum = checksum64(s.data, static_cast<size_t>(s.bytes));

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
    h["tensors"] = tensor_table_json(layout, ws.places);

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
            if (s.dtype != nullptr) entry["dtype"] = s.dtype;
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
        if (s.data == nullptr)
            write_weights_section(out, weights, ws);
        else
            out.write(s.data, static_cast<size_t>(s.bytes));
    }
}

}  // namespace tinygpt::io
