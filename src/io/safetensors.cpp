// Safetensors reading and writing (docs/FORMAT.md, "Hugging Face safetensors"). The reader
// validates the whole header before handing out a pointer: every tensor lies inside the data
// region, its byte count matches its shape and dtype, and no two tensors overlap.
#include "io/safetensors.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <new>
#include <set>

#include "io/atomic_write.h"
#include "io/format_internal.h"
#include "io/strict_json.h"
#include "util/half.h"
#include "util/parallel.h"

namespace tinygpt::io {

namespace {

// The Rust reference refuses headers above 100 MB; so do we (a header length read from a file
// that is not safetensors is usually huge).
constexpr uint64_t kMaxSafetensorsHeader = 100'000'000;

// Every dtype the safetensors specification names, with its size in bits, so that tensors we do
// not load are still checked against the data region.
struct DtypeInfo {
    const char* name;
    uint32_t bits;
};
constexpr DtypeInfo kKnownDtypes[] = {
    {"BOOL", 8},    {"U8", 8},   {"I8", 8},   {"F8_E5M2", 8}, {"F8_E4M3", 8},
    {"F8_E8M0", 8}, {"I16", 16}, {"U16", 16}, {"F16", 16},    {"BF16", 16},
    {"I32", 32},    {"U32", 32}, {"F32", 32}, {"F64", 64},    {"I64", 64},
    {"U64", 64},    {"C64", 64}, {"F4", 4},   {"F6_E2M3", 6}, {"F6_E3M2", 6},
};

const DtypeInfo* find_dtype(const std::string& name) {
    for (const DtypeInfo& d : kKnownDtypes)
        if (name == d.name) return &d;
    return nullptr;
}

bool loadable_dtype(const std::string& name, TensorDtype& out) {
    for (TensorDtype d : {TensorDtype::F32, TensorDtype::BF16, TensorDtype::F16})
        if (name == safetensors_dtype_name(d)) {
            out = d;
            return true;
        }
    return false;
}

std::string known_dtype_list() {
    std::string s;
    for (const DtypeInfo& d : kKnownDtypes) s += (s.empty() ? "" : ", ") + std::string(d.name);
    return s;
}

std::string offsets_string(uint64_t begin, uint64_t end) {
    return "[" + std::to_string(begin) + ", " + std::to_string(end) + "]";
}

[[noreturn]] void bad_field(const std::string& tensor, const char* field, const json& v,
                            const std::string& expected) {
    std::string got(v.type_name());
    if (!v.is_null()) got.append(" ").append(excerpt(v));
    throw Error("tensor " + in_quotes(tensor) + ": '" + field + "' must be " + expected + " (got " +
                got + ")");
}

// A JSON integer ≥ 0 that fits int64 (floats such as 2.0 are refused, as the reference does).
uint64_t json_count(const json& v, const std::string& tensor, const char* field) {
    if (v.is_number_unsigned() &&
        v.get<uint64_t>() <= uint64_t{std::numeric_limits<int64_t>::max()})
        return v.get<uint64_t>();
    if (v.is_number_integer() && !v.is_number_unsigned() && v.get<int64_t>() >= 0)
        return static_cast<uint64_t>(v.get<int64_t>());
    bad_field(tensor, field, v, "a list of non-negative integers");
}

// A tensor entry as found in the header, before it is sorted into loadable / unsupported.
struct Entry {
    std::string name;
    std::string dtype;
    std::vector<int64_t> shape;
    uint64_t begin = 0, end = 0;
};

Entry parse_entry(const std::string& name, const json& j, uint64_t data_size) {
    if (!j.is_object())
        throw Error("tensor " + in_quotes(name) + ": its header entry must be an object (got " +
                    std::string(j.type_name()) + " " + excerpt(j) + ")");
    auto field = [&](const char* key) -> const json& {
        auto it = j.find(key);
        if (it == j.end()) throw Error("tensor " + in_quotes(name) + ": '" + key + "' is missing");
        return *it;
    };
    Entry e;
    e.name = name;
    const json& dtype = field("dtype");
    if (!dtype.is_string()) bad_field(name, "dtype", dtype, "a string");
    e.dtype = dtype.get<std::string>();
    const DtypeInfo* info = find_dtype(e.dtype);
    if (info == nullptr)
        throw Error("tensor " + in_quotes(name) + " has an unknown dtype " + in_quotes(e.dtype) +
                    " (safetensors dtypes: " + known_dtype_list() + ")");

    const json& shape = field("shape");
    if (!shape.is_array()) bad_field(name, "shape", shape, "a list of non-negative integers");
    uint64_t numel = 1;
    bool overflow = false;
    for (const json& dim : shape) {
        const uint64_t d = json_count(dim, name, "shape");
        e.shape.push_back(static_cast<int64_t>(d));
        overflow = overflow || __builtin_mul_overflow(numel, d, &numel);
    }
    uint64_t bits = 0;
    overflow = overflow || __builtin_mul_overflow(numel, uint64_t{info->bits}, &bits);
    if (overflow)
        throw Error("tensor " + in_quotes(name) + ": shape " + shape_string(e.shape) + " of " +
                    e.dtype + " holds more bytes than a 64-bit size can count");
    if (bits % 8 != 0)
        throw Error("tensor " + in_quotes(name) + ": shape " + shape_string(e.shape) + " of " +
                    e.dtype + " does not fill a whole number of bytes");

    const json& offsets = field("data_offsets");
    if (!offsets.is_array() || offsets.size() != 2)
        bad_field(name, "data_offsets", offsets, "a list [begin, end] of two byte offsets");
    e.begin = json_count(offsets[0], name, "data_offsets");
    e.end = json_count(offsets[1], name, "data_offsets");
    if (e.begin > e.end)
        throw Error("tensor " + in_quotes(name) + ": data_offsets " +
                    offsets_string(e.begin, e.end) + " run backwards (begin > end)");
    if (e.end > data_size)
        throw Error("truncated or corrupt: tensor " + in_quotes(name) + " has data_offsets " +
                    offsets_string(e.begin, e.end) + " but the data region holds only " +
                    std::to_string(data_size) + " bytes");
    if (e.end - e.begin != bits / 8)
        throw Error("tensor " + in_quotes(name) + ": shape " + shape_string(e.shape) + " of " +
                    e.dtype + " needs " + std::to_string(bits / 8) + " bytes but data_offsets " +
                    offsets_string(e.begin, e.end) + " span " + std::to_string(e.end - e.begin));
    return e;
}

// Two tensors must not share a byte (empty tensors share none, wherever they sit).
void check_no_overlap(std::vector<const Entry*> entries) {
    std::sort(entries.begin(), entries.end(), [](const Entry* a, const Entry* b) {
        return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
    });
    const Entry* reach = nullptr;  // the non-empty tensor that ends last so far
    for (const Entry* e : entries) {
        if (e->begin == e->end) continue;
        if (reach != nullptr && e->begin < reach->end)
            throw Error("tensors " + in_quotes(reach->name) + " " +
                        offsets_string(reach->begin, reach->end) + " and " + in_quotes(e->name) +
                        " " + offsets_string(e->begin, e->end) + " overlap in the data region");
        if (reach == nullptr || e->end > reach->end) reach = e;
    }
}

std::map<std::string, std::string> parse_metadata(const json& j) {
    if (!j.is_object())
        throw Error("'__metadata__' must be an object of strings (got " +
                    std::string(j.type_name()) + " " + excerpt(j) + ")");
    std::map<std::string, std::string> out;
    for (auto it = j.begin(); it != j.end(); ++it) {
        if (!it.value().is_string())
            throw Error("'__metadata__' entry " + in_quotes(it.key()) + " must be a string (got " +
                        std::string(it.value().type_name()) + " " + excerpt(it.value()) + ")");
        out.emplace(it.key(), it.value().get<std::string>());
    }
    return out;
}

}  // namespace

const char* safetensors_dtype_name(TensorDtype dtype) {
    switch (dtype) {
        case TensorDtype::F32:
            return "F32";
        case TensorDtype::BF16:
            return "BF16";
        case TensorDtype::F16:
            return "F16";
    }
    return "?";
}

size_t dtype_size(TensorDtype dtype) {
    return dtype == TensorDtype::F32 ? 4 : 2;
}

int64_t SafetensorsTensor::numel() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;  // validated on open: cannot overflow
    return n;
}

// --- SafetensorsFile ----------------------------------------------------------------------------

SafetensorsFile::SafetensorsFile(SafetensorsFile&&) noexcept = default;
SafetensorsFile& SafetensorsFile::operator=(SafetensorsFile&&) noexcept = default;
SafetensorsFile::~SafetensorsFile() = default;

SafetensorsFile SafetensorsFile::open(const std::string& path) {
    SafetensorsFile f;
    f.path_ = path;
    try {
        f.mapping_ = std::make_unique<MappedFile>(path);
        const uint8_t* p = f.mapping_->data();
        const uint64_t size = f.mapping_->size();
        if (size < 8)
            throw Error("truncated: the file is " + std::to_string(size) +
                        " bytes, shorter than the 8-byte header length of a safetensors file");
        const uint64_t header_len = load_u64(p);
        if (header_len > kMaxSafetensorsHeader)
            throw Error("header length " + std::to_string(header_len) + " bytes exceeds the " +
                        std::to_string(kMaxSafetensorsHeader) +
                        "-byte limit (not a safetensors file?)");
        if (header_len > size - 8)
            throw Error("truncated: the header length says " + std::to_string(header_len) +
                        " bytes of JSON but only " + std::to_string(size - 8) + " bytes follow");
        const json header = parse_json_strict(p + 8, static_cast<size_t>(header_len), "header");
        if (!header.is_object())
            throw Error("header is not a JSON object (got " + std::string(header.type_name()) +
                        " " + excerpt(header) + ")");
        const uint8_t* data = p + 8 + header_len;
        const uint64_t data_size = size - 8 - header_len;

        std::vector<Entry> entries;
        entries.reserve(header.size());
        for (auto it = header.begin(); it != header.end(); ++it) {
            if (it.key() == "__metadata__")
                f.metadata_ = parse_metadata(it.value());
            else
                entries.push_back(parse_entry(it.key(), it.value(), data_size));
        }
        std::vector<const Entry*> by_offset;
        for (const Entry& e : entries) by_offset.push_back(&e);
        check_no_overlap(by_offset);
        std::stable_sort(by_offset.begin(), by_offset.end(),
                         [](const Entry* a, const Entry* b) { return a->begin < b->begin; });
        for (const Entry* e : by_offset) {
            SafetensorsTensor t;
            if (!loadable_dtype(e->dtype, t.dtype)) {
                f.unsupported_.emplace(e->name, e->dtype);
                continue;
            }
            t.name = e->name;
            t.shape = e->shape;
            t.data = data + e->begin;
            t.bytes = e->end - e->begin;
            f.index_.emplace(t.name, f.tensors_.size());
            f.tensors_.push_back(std::move(t));
        }
    } catch (const std::bad_alloc&) {
        throw Error(path + ": out of memory while reading the safetensors header");
    } catch (const std::exception& e) {
        throw Error(path + ": " + e.what());
    }
    return f;
}

const SafetensorsTensor* SafetensorsFile::find(const std::string& name) const {
    auto it = index_.find(name);
    return it == index_.end() ? nullptr : &tensors_[it->second];
}

const std::string* SafetensorsFile::unsupported_dtype(const std::string& name) const {
    auto it = unsupported_.find(name);
    return it == unsupported_.end() ? nullptr : &it->second;
}

uint64_t SafetensorsFile::file_bytes() const {
    return mapping_ ? mapping_->size() : 0;
}

// --- conversion ---------------------------------------------------------------------------------

void tensor_to_f32(const SafetensorsTensor& t, float* dst) {
    const int64_t n = t.numel();
    if (static_cast<uint64_t>(n) * dtype_size(t.dtype) != t.bytes)
        throw Error("tensor " + in_quotes(t.name) + ": " + std::to_string(t.bytes) +
                    " bytes do not hold " + std::to_string(n) + " " +
                    safetensors_dtype_name(t.dtype) + " elements");
    if (t.dtype == TensorDtype::F32) {
        std::memcpy(dst, t.data, static_cast<size_t>(t.bytes));
        return;
    }
    const bool bf16 = t.dtype == TensorDtype::BF16;
    // memcpy per element: the data may sit at an odd address, and a typed unaligned load is
    // undefined behaviour (the compiler turns this into a plain load where that is allowed).
    parallel_for(n, n >= (int64_t{1} << 18), [&](long i) {
        uint16_t h;
        std::memcpy(&h, t.data + 2 * i, 2);
        dst[i] = bf16 ? bf16_to_float(h) : f16_to_float(h);
    });
}

// --- writing ------------------------------------------------------------------------------------

namespace {

// Checks names and shapes, and returns the header text padded with spaces to a multiple of 8.
std::string build_header(const std::vector<TensorToWrite>& tensors, TensorDtype dtype,
                         const std::map<std::string, std::string>& metadata) {
    // ordered_json: __metadata__ first, then the tensors in file order, each with its fields in
    // the reference writer's order (dtype, shape, data_offsets).
    nlohmann::ordered_json header = nlohmann::ordered_json::object();
    if (!metadata.empty()) {
        nlohmann::ordered_json meta = nlohmann::ordered_json::object();
        for (const auto& [key, value] : metadata) meta[key] = value;
        header["__metadata__"] = std::move(meta);
    }
    std::set<std::string> names;
    uint64_t offset = 0;
    for (const TensorToWrite& t : tensors) {
        if (t.name.empty()) throw Error("a tensor has an empty name");
        if (t.name == "__metadata__") throw Error("a tensor cannot be named '__metadata__'");
        if (!names.insert(t.name).second)
            throw Error("tensor " + in_quotes(t.name) + " is listed twice");
        if (!t.fill) throw Error("tensor " + in_quotes(t.name) + " has no fill function");
        uint64_t bytes = dtype_size(dtype);
        for (int64_t d : t.shape) {
            if (d < 0)
                throw Error("tensor " + in_quotes(t.name) + " has a negative dimension in shape " +
                            shape_string(t.shape));
            if (__builtin_mul_overflow(bytes, static_cast<uint64_t>(d), &bytes) ||
                bytes > uint64_t{std::numeric_limits<int64_t>::max()})
                throw Error("tensor " + in_quotes(t.name) + ": shape " + shape_string(t.shape) +
                            " is too large");
        }
        uint64_t end = 0;
        if (__builtin_add_overflow(offset, bytes, &end))
            throw Error("the tensors hold more bytes than a 64-bit size can count");
        header[t.name] = {{"dtype", safetensors_dtype_name(dtype)},
                          {"shape", t.shape},
                          {"data_offsets", {offset, end}}};
        offset = end;
    }
    std::string text;
    try {
        text = header.dump();
    } catch (const nlohmann::json::type_error&) {
        throw Error("a tensor name or a metadata string is not valid UTF-8");
    }
    text.append((8 - text.size() % 8) % 8, ' ');
    return text;
}

void write_converted(FileSink& sink, const float* values, size_t n, TensorDtype dtype) {
    if (dtype == TensorDtype::F32) {
        sink.write(values, n * sizeof(float));
        return;
    }
    constexpr size_t kChunk = 1 << 15;
    uint16_t halves[kChunk];
    for (size_t start = 0; start < n; start += kChunk) {
        const size_t count = std::min(kChunk, n - start);
        for (size_t i = 0; i < count; ++i)
            halves[i] = dtype == TensorDtype::BF16 ? float_to_bf16(values[start + i])
                                                   : float_to_f16(values[start + i]);
        sink.write(halves, count * sizeof(uint16_t));
    }
}

}  // namespace

void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                       TensorDtype dtype, const std::map<std::string, std::string>& metadata) {
    std::string header;
    try {
        header = build_header(tensors, dtype, metadata);
    } catch (const Error& e) {
        throw Error(path + ": cannot write safetensors: " + e.what());
    }
    atomic_write_file(path, [&](FileSink& sink) {
        const uint64_t header_len = header.size();
        sink.write(&header_len, sizeof header_len);
        sink.write(header.data(), header.size());
        std::vector<float> values;  // one tensor at a time, reused
        for (const TensorToWrite& t : tensors) {
            int64_t numel = 1;
            for (int64_t d : t.shape) numel *= d;  // checked by build_header
            values.assign(static_cast<size_t>(numel), 0.0f);
            try {
                t.fill(values.data());
            } catch (const std::exception& e) {
                throw Error("while producing tensor " + in_quotes(t.name) + ": " + e.what());
            }
            write_converted(sink, values.data(), values.size(), dtype);
        }
    });
}

}  // namespace tinygpt::io
