// The GGUF reader (src/io/gguf_file.h): maps the file and validates every byte of the header
// before handing out a pointer. Each read is bounds-checked against the bytes left in the file,
// and every count is checked against those bytes before anything is reserved, so a hostile file
// costs at most memory proportional to its size. Also the ggml type table and the conversion of
// tensors to float32.
#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>
#include <new>
#include <unordered_map>

#include "io/gguf_file.h"
#include "io/gguf_internal.h"
#include "io/mapped_file.h"
#include "quant/q8_0.h"
#include "util/error.h"
#include "util/format.h"
#include "util/half.h"

static_assert(std::endian::native == std::endian::little,
              "the GGUF reader maps little-endian files in place");

namespace tinygpt::io {

using namespace gguf_detail;

namespace gguf_detail {

bool loadable_type(uint32_t type) {
    return type == static_cast<uint32_t>(GgmlType::F32) ||
           type == static_cast<uint32_t>(GgmlType::F16) ||
           type == static_cast<uint32_t>(GgmlType::BF16) ||
           type == static_cast<uint32_t>(GgmlType::Q8_0);
}

std::string quoted_name(const std::string& name) {
    std::string s = "'";
    const size_t shown = name.size() > 80 ? 77 : name.size();
    for (size_t i = 0; i < shown; ++i) {
        const auto c = static_cast<unsigned char>(name[i]);
        if (c < 0x20 || c == 0x7f) {
            static const char* hex = "0123456789abcdef";
            s += "\\x";
            s += hex[c >> 4];
            s += hex[c & 15];
        } else {
            s += static_cast<char>(c);
        }
    }
    if (shown < name.size()) s += "...";
    return s + "'";
}

int64_t checked_numel(const std::vector<int64_t>& ne, GgmlType type, const std::string& what) {
    if (ne.empty() || ne.size() > kMaxDims)
        throw Error(what + ": " + std::to_string(ne.size()) +
                    " dimensions (ggml tensors have 1 to 4)");
    constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
    int64_t numel = 1;
    for (size_t i = 0; i < ne.size(); ++i) {
        if (ne[i] <= 0)
            throw Error(what + ": dimension " + std::to_string(i) + " of " + shape_string(ne) +
                        " is " + std::to_string(ne[i]) + " (must be at least 1)");
        if (numel > kMax / ne[i])
            throw Error(what + ": the element count of " + shape_string(ne) + " overflows int64");
        numel *= ne[i];
    }
    if (type == GgmlType::Q8_0 && ne[0] % quant::kQ8_0BlockSize != 0)
        throw Error(what + ": Q8_0 rows must be a multiple of 32 values, but dimension 0 of " +
                    shape_string(ne) + " is " + std::to_string(ne[0]));
    const bool too_big =
        type == GgmlType::Q8_0
            ? numel / quant::kQ8_0BlockSize > kMax / static_cast<int64_t>(quant::kQ8_0BlockBytes)
            : numel > kMax / (type == GgmlType::F32 ? 4 : 2);
    if (too_big) throw Error(what + ": the byte size of " + shape_string(ne) + " overflows int64");
    return numel;
}

}  // namespace gguf_detail

namespace {

// Bounds-checked little-endian reads over the mapping. `context` names what is being read (the
// key or tensor) for error messages.
class Cursor {
  public:
    Cursor(const uint8_t* data, uint64_t size) : data_(data), size_(size) {}
    uint64_t pos() const { return pos_; }
    uint64_t left() const { return size_ - pos_; }
    std::string context;

    template <typename T>
    T scalar(const char* field) {
        need(sizeof(T), field);
        T v;
        std::memcpy(&v, data_ + pos_, sizeof(T));
        pos_ += sizeof(T);
        return v;
    }

    std::string string(const char* field) {
        const uint64_t at = pos_;
        const uint64_t len = scalar<uint64_t>(field);
        if (len > left())
            fail(std::string(field) + " at byte " + std::to_string(at) + " has length " +
                 std::to_string(len) + ", more than the " + std::to_string(left()) +
                 " bytes left in the file");
        std::string s(reinterpret_cast<const char*>(data_ + pos_), static_cast<size_t>(len));
        pos_ += len;
        return s;
    }

    [[noreturn]] void fail(const std::string& message) const {
        throw Error(context + ": " + message);
    }

  private:
    void need(uint64_t n, const char* field) const {
        if (n > left())
            fail(std::string("truncated: ") + field + " at byte " + std::to_string(pos_) +
                 " needs " + std::to_string(n) + " bytes, " + std::to_string(left()) + " left");
    }

    const uint8_t* data_;
    uint64_t size_;
    uint64_t pos_ = 0;
};

constexpr uint32_t kNumValueTypes = 13;  // GgufType::U8 … F64

// The smallest encoding of one value of `type` (a string is at least its 8-byte length).
uint64_t min_value_bytes(GgufType type) {
    switch (type) {
        case GgufType::U8:
        case GgufType::I8:
        case GgufType::Bool:
            return 1;
        case GgufType::U16:
        case GgufType::I16:
            return 2;
        case GgufType::U32:
        case GgufType::I32:
        case GgufType::F32:
            return 4;
        default:
            return 8;  // U64, I64, F64, String (length), Array (type + count ≥ 12)
    }
}

// Smallest metadata entry: key length (8) + a one-byte key + value type (4) + a one-byte value.
constexpr uint64_t kMinKvBytes = 14;
// Smallest tensor info: name length (8) + a one-byte name + n_dims (4) + one dim (8) + type (4) +
// offset (8).
constexpr uint64_t kMinTensorInfoBytes = 33;

GgufType read_type(Cursor& c, const char* field) {
    const uint64_t at = c.pos();
    const uint32_t t = c.scalar<uint32_t>(field);
    if (t >= kNumValueTypes)
        c.fail("unknown " + std::string(field) + " " + std::to_string(t) + " at byte " +
               std::to_string(at));
    return static_cast<GgufType>(t);
}

bool read_bool(Cursor& c, const char* field) {
    const uint64_t at = c.pos();
    const uint8_t b = c.scalar<uint8_t>(field);
    if (b > 1)
        c.fail("bool " + std::string(field) + " at byte " + std::to_string(at) + " is " +
               std::to_string(b) + " (must be 0 or 1)");
    return b != 0;
}

GgufValue read_scalar(Cursor& c, GgufType type) {
    const char* f = "value";
    switch (type) {
        case GgufType::U8:
            return GgufValue::u8(c.scalar<uint8_t>(f));
        case GgufType::I8:
            return GgufValue::i8(c.scalar<int8_t>(f));
        case GgufType::U16:
            return GgufValue::u16(c.scalar<uint16_t>(f));
        case GgufType::I16:
            return GgufValue::i16(c.scalar<int16_t>(f));
        case GgufType::U32:
            return GgufValue::u32(c.scalar<uint32_t>(f));
        case GgufType::I32:
            return GgufValue::i32(c.scalar<int32_t>(f));
        case GgufType::F32:
            return GgufValue::f32(c.scalar<float>(f));
        case GgufType::Bool:
            return GgufValue::boolean(read_bool(c, f));
        case GgufType::String:
            return GgufValue::string(c.string(f));
        case GgufType::U64:
            return GgufValue::u64(c.scalar<uint64_t>(f));
        case GgufType::I64:
            return GgufValue::i64(c.scalar<int64_t>(f));
        case GgufType::F64:
            return GgufValue::f64(c.scalar<double>(f));
        case GgufType::Array:
            break;
    }
    c.fail("internal error: read_scalar of an array");
}

template <typename T>
std::vector<int64_t> read_ints(Cursor& c, uint64_t count) {
    std::vector<int64_t> v;
    v.reserve(count);
    for (uint64_t i = 0; i < count; ++i) v.push_back(static_cast<int64_t>(c.scalar<T>("element")));
    return v;
}

GgufValue read_array(Cursor& c) {
    const GgufType et = read_type(c, "array element type");
    if (et == GgufType::Array) c.fail("arrays of arrays are not supported");
    const uint64_t count = c.scalar<uint64_t>("array length");
    const uint64_t unit = min_value_bytes(et);
    if (count > c.left() / unit)
        c.fail("array of " + std::to_string(count) + " " + gguf_type_name(et) +
               " values needs at least " + std::to_string(unit) + " bytes each, but only " +
               std::to_string(c.left()) + " bytes are left in the file");
    switch (et) {
        case GgufType::U8:
            return GgufValue::int_array(et, read_ints<uint8_t>(c, count));
        case GgufType::I8:
            return GgufValue::int_array(et, read_ints<int8_t>(c, count));
        case GgufType::U16:
            return GgufValue::int_array(et, read_ints<uint16_t>(c, count));
        case GgufType::I16:
            return GgufValue::int_array(et, read_ints<int16_t>(c, count));
        case GgufType::U32:
            return GgufValue::int_array(et, read_ints<uint32_t>(c, count));
        case GgufType::I32:
            return GgufValue::int_array(et, read_ints<int32_t>(c, count));
        case GgufType::I64:
            return GgufValue::int_array(et, read_ints<int64_t>(c, count));
        case GgufType::U64: {
            std::vector<int64_t> v;
            v.reserve(count);
            for (uint64_t i = 0; i < count; ++i) {
                const uint64_t x = c.scalar<uint64_t>("element");
                if (x > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
                    c.fail("uint64 array element " + std::to_string(i) + " is " +
                           std::to_string(x) + ", beyond the int64 range tinygpt supports");
                v.push_back(static_cast<int64_t>(x));
            }
            return GgufValue::int_array(et, std::move(v));
        }
        case GgufType::Bool: {
            std::vector<int64_t> v;
            v.reserve(count);
            for (uint64_t i = 0; i < count; ++i) v.push_back(read_bool(c, "element") ? 1 : 0);
            return GgufValue::int_array(et, std::move(v));
        }
        case GgufType::F32: {
            std::vector<float> v;
            v.reserve(count);
            for (uint64_t i = 0; i < count; ++i) v.push_back(c.scalar<float>("element"));
            return GgufValue::f32_array(std::move(v));
        }
        case GgufType::F64: {
            std::vector<double> v;
            v.reserve(count);
            for (uint64_t i = 0; i < count; ++i) v.push_back(c.scalar<double>("element"));
            return GgufValue::f64_array(std::move(v));
        }
        case GgufType::String: {
            std::vector<std::string> v;
            v.reserve(count);
            for (uint64_t i = 0; i < count; ++i) v.push_back(c.string("string element"));
            return GgufValue::string_array(std::move(v));
        }
        case GgufType::Array:
            break;
    }
    c.fail("internal error: read_array");
}

std::string byte_at(uint64_t pos) {
    return " at byte " + std::to_string(pos);
}

struct Parsed {
    uint32_t version = 0;
    uint32_t alignment = kDefaultAlignment;
    std::vector<std::pair<std::string, GgufValue>> metadata;
    std::vector<GgufTensor> tensors;
};

void read_header(Cursor& c, uint32_t& version, uint64_t& n_tensors, uint64_t& n_kv) {
    c.context = "GGUF header";
    if (c.left() < 4)
        c.fail("file too short for the magic (" + std::to_string(c.left()) + " bytes)");
    char magic[4];
    for (char& m : magic) m = static_cast<char>(c.scalar<uint8_t>("magic"));
    if (std::memcmp(magic, kGgufMagic, 4) != 0) {
        std::string shown;
        for (char m : magic) shown += (m >= 0x20 && m < 0x7f) ? m : '?';
        c.fail("not a GGUF file (magic '" + shown + "', expected 'GGUF')");
    }
    version = c.scalar<uint32_t>("version");
    if (version == 1)
        c.fail(
            "GGUF version 1 is not supported (llama.cpp dropped it too); convert the file with "
            "a current llama.cpp");
    if (version != 0 && (version & 0xffffu) == 0)
        c.fail("GGUF version " + std::to_string(version) +
               " looks byte-swapped: a big-endian file, which tinygpt does not read");
    if (version != 2 && version != 3)
        c.fail("unsupported GGUF version " + std::to_string(version) + " (tinygpt reads 2 and 3)");
    n_tensors = c.scalar<uint64_t>("tensor count");
    n_kv = c.scalar<uint64_t>("metadata count");
    if (n_kv > c.left() / kMinKvBytes)
        c.fail("metadata count " + std::to_string(n_kv) + " cannot fit in the " +
               std::to_string(c.left()) + " bytes left in the file");
    if (n_tensors > c.left() / kMinTensorInfoBytes)
        c.fail("tensor count " + std::to_string(n_tensors) + " cannot fit in the " +
               std::to_string(c.left()) + " bytes left in the file");
}

void read_metadata(Cursor& c, uint64_t n_kv, Parsed& p) {
    std::unordered_map<std::string, uint64_t> seen;
    p.metadata.reserve(n_kv);
    for (uint64_t i = 0; i < n_kv; ++i) {
        const uint64_t at = c.pos();
        c.context = "metadata entry " + std::to_string(i) + byte_at(at);
        std::string key = c.string("key");
        if (key.empty()) c.fail("empty key");
        c.context = "metadata key " + quoted_name(key) + byte_at(at);
        const auto [it, inserted] = seen.emplace(key, i);
        if (!inserted)
            c.fail("duplicate key (entries " + std::to_string(it->second) + " and " +
                   std::to_string(i) + ")");
        const GgufType type = read_type(c, "value type");
        GgufValue value = type == GgufType::Array ? read_array(c) : read_scalar(c, type);
        p.metadata.emplace_back(std::move(key), std::move(value));
    }
    c.context = "metadata key '" + std::string(kAlignmentKey) + "'";
    const auto it = seen.find(kAlignmentKey);
    if (it != seen.end()) {
        const GgufValue& v = p.metadata[it->second].second;
        if (v.type() != GgufType::U32)
            c.fail(std::string("must be uint32, found ") + gguf_type_name(v.type()));
        const uint64_t a = v.as_uint(kAlignmentKey);
        if (!is_power_of_two(a)) c.fail(std::to_string(a) + " is not a power of two");
        p.alignment = static_cast<uint32_t>(a);
    }
}

void read_tensor_infos(Cursor& c, uint64_t n_tensors, Parsed& p) {
    c.context = "tensor infos";
    if (n_tensors > c.left() / kMinTensorInfoBytes)
        c.fail("tensor count " + std::to_string(n_tensors) + " cannot fit in the " +
               std::to_string(c.left()) + " bytes left after the metadata");
    std::unordered_map<std::string, uint64_t> seen;
    p.tensors.reserve(n_tensors);
    for (uint64_t i = 0; i < n_tensors; ++i) {
        const uint64_t at = c.pos();
        c.context = "tensor info " + std::to_string(i) + byte_at(at);
        GgufTensor t;
        t.name = c.string("name");
        if (t.name.empty()) c.fail("empty tensor name");
        if (t.name.size() > kMaxNameBytes)
            c.fail("tensor name " + quoted_name(t.name) + " is " + std::to_string(t.name.size()) +
                   " bytes; ggml allows at most " + std::to_string(kMaxNameBytes));
        c.context = "tensor " + quoted_name(t.name) + byte_at(at);
        const auto [it, inserted] = seen.emplace(t.name, i);
        if (!inserted)
            c.fail("duplicate tensor name (tensor infos " + std::to_string(it->second) + " and " +
                   std::to_string(i) + ")");
        const uint32_t n_dims = c.scalar<uint32_t>("n_dims");
        if (n_dims == 0 || n_dims > kMaxDims)
            c.fail("n_dims is " + std::to_string(n_dims) + " (ggml tensors have 1 to 4)");
        for (uint32_t d = 0; d < n_dims; ++d) t.ne.push_back(c.scalar<int64_t>("dimension"));
        const uint32_t type = c.scalar<uint32_t>("ggml type");
        if (!loadable_type(type)) {
            const std::string name = ggml_type_name(type);  // "type 99" when ggml has none
            c.fail((name.rfind("type ", 0) == 0 ? "unknown ggml " : "type ") + name +
                   " is not supported (tinygpt reads F32, F16, BF16 and Q8_0 tensors)");
        }
        t.type = static_cast<GgmlType>(type);
        const int64_t numel = checked_numel(t.ne, t.type, c.context);
        t.bytes = ggml_tensor_bytes(t.type, numel);
        t.offset = c.scalar<uint64_t>("data offset");
        if (t.offset % p.alignment != 0)
            c.fail("data offset " + std::to_string(t.offset) +
                   " is not a multiple of the alignment " + std::to_string(p.alignment));
        p.tensors.push_back(std::move(t));
    }
}

// Every tensor inside the file, none overlapping another.
void check_layout(const uint8_t* base, uint64_t file_bytes, uint64_t data_start, Parsed& p) {
    const uint64_t region = file_bytes > data_start ? file_bytes - data_start : 0;
    for (GgufTensor& t : p.tensors) {
        if (t.offset > region || t.bytes > region - t.offset)
            throw Error("tensor " + quoted_name(t.name) + ": its " + std::to_string(t.bytes) +
                        " bytes at data offset " + std::to_string(t.offset) +
                        " (data region starts at byte " + std::to_string(data_start) +
                        ") extend past the end of the file (" + std::to_string(file_bytes) +
                        " bytes)");
        t.data = base + data_start + t.offset;
    }
    std::vector<const GgufTensor*> order;
    order.reserve(p.tensors.size());
    for (const GgufTensor& t : p.tensors) order.push_back(&t);
    std::sort(order.begin(), order.end(),
              [](const GgufTensor* a, const GgufTensor* b) { return a->offset < b->offset; });
    for (size_t i = 1; i < order.size(); ++i) {
        const GgufTensor& a = *order[i - 1];
        const GgufTensor& b = *order[i];
        if (a.offset + a.bytes > b.offset)
            throw Error("tensors " + quoted_name(a.name) + " (data bytes [" +
                        std::to_string(a.offset) + ", " + std::to_string(a.offset + a.bytes) +
                        ")) and " + quoted_name(b.name) + " (data bytes [" +
                        std::to_string(b.offset) + ", " + std::to_string(b.offset + b.bytes) +
                        ")) overlap");
    }
}

Parsed parse(const uint8_t* data, uint64_t size) {
    Cursor c(data, size);
    Parsed p;
    uint64_t n_tensors = 0, n_kv = 0;
    read_header(c, p.version, n_tensors, n_kv);
    read_metadata(c, n_kv, p);
    read_tensor_infos(c, n_tensors, p);
    const uint64_t data_start = (c.pos() + p.alignment - 1) / p.alignment * p.alignment;
    check_layout(data, size, data_start, p);
    return p;
}

template <typename T>
std::vector<std::pair<std::string, size_t>> sorted_index(const std::vector<T>& items,
                                                         const std::string& (*name)(const T&)) {
    std::vector<std::pair<std::string, size_t>> index;
    index.reserve(items.size());
    for (size_t i = 0; i < items.size(); ++i) index.emplace_back(name(items[i]), i);
    std::sort(index.begin(), index.end());
    return index;
}

const size_t* lookup(const std::vector<std::pair<std::string, size_t>>& index,
                     const std::string& name) {
    const auto it = std::lower_bound(
        index.begin(), index.end(), name,
        [](const std::pair<std::string, size_t>& e, const std::string& n) { return e.first < n; });
    return it != index.end() && it->first == name ? &it->second : nullptr;
}

}  // namespace

// --- ggml types ---------------------------------------------------------------------------------

std::string ggml_type_name(uint32_t type) {
    // ggml.h's enum ggml_type, in order (removed types keep their old names).
    static const char* const kNames[] = {
        "F32",   "F16",        "Q4_0",       "Q4_1",       "Q4_2",     "Q4_3",     "Q5_0",
        "Q5_1",  "Q8_0",       "Q8_1",       "Q2_K",       "Q3_K",     "Q4_K",     "Q5_K",
        "Q6_K",  "Q8_K",       "IQ2_XXS",    "IQ2_XS",     "IQ3_XXS",  "IQ1_S",    "IQ4_NL",
        "IQ3_S", "IQ2_S",      "IQ4_XS",     "I8",         "I16",      "I32",      "I64",
        "F64",   "IQ1_M",      "BF16",       "Q4_0_4_4",   "Q4_0_4_8", "Q4_0_8_8", "TQ1_0",
        "TQ2_0", "IQ4_NL_4_4", "IQ4_NL_4_8", "IQ4_NL_8_8", "MXFP4",    "NVFP4",    "Q1_0",
        "Q2_0",
    };
    if (type < std::size(kNames)) return kNames[type];
    return "type " + std::to_string(type);
}

uint64_t ggml_tensor_bytes(GgmlType type, int64_t numel) {
    const auto n = static_cast<uint64_t>(numel);
    switch (type) {
        case GgmlType::F32:
            return n * 4;
        case GgmlType::F16:
        case GgmlType::BF16:
            return n * 2;
        case GgmlType::Q8_0:
            return n / quant::kQ8_0BlockSize * quant::kQ8_0BlockBytes;
    }
    throw Error("ggml_tensor_bytes: unsupported type " +
                ggml_type_name(static_cast<uint32_t>(type)));
}

int64_t GgufTensor::numel() const {
    int64_t n = 1;
    for (int64_t d : ne) n *= d;
    return n;
}

void gguf_tensor_to_f32(const GgufTensor& t, float* dst) {
    const int64_t n = t.numel();
    switch (t.type) {
        case GgmlType::F32:
            std::memcpy(dst, t.data, static_cast<size_t>(n) * 4);
            return;
        case GgmlType::F16:
        case GgmlType::BF16: {
            const bool f16 = t.type == GgmlType::F16;
            for (int64_t i = 0; i < n; ++i) {
                uint16_t h;
                std::memcpy(&h, t.data + 2 * i, 2);
                dst[i] = f16 ? f16_to_float(h) : bf16_to_float(h);
            }
            return;
        }
        case GgmlType::Q8_0:
            quant::dequantize_q8_0(t.data, n, dst);
            return;
    }
    throw Error("tensor " + quoted_name(t.name) + ": cannot convert type " +
                ggml_type_name(static_cast<uint32_t>(t.type)) + " to float32");
}

// --- GgufFile -----------------------------------------------------------------------------------

GgufFile::GgufFile(GgufFile&&) noexcept = default;
GgufFile& GgufFile::operator=(GgufFile&&) noexcept = default;
GgufFile::~GgufFile() = default;

GgufFile GgufFile::open(const std::string& path) {
    GgufFile f;
    f.path_ = path;
    try {
        f.mapping_ = std::make_unique<MappedFile>(path);
        Parsed p = parse(f.mapping_->data(), f.mapping_->size());
        f.version_ = p.version;
        f.alignment_ = p.alignment;
        f.metadata_ = std::move(p.metadata);
        f.tensors_ = std::move(p.tensors);
        f.key_index_ = sorted_index<std::pair<std::string, GgufValue>>(
            f.metadata_, [](const std::pair<std::string, GgufValue>& kv) -> const std::string& {
                return kv.first;
            });
        f.tensor_index_ = sorted_index<GgufTensor>(
            f.tensors_, [](const GgufTensor& t) -> const std::string& { return t.name; });
    } catch (const Error& e) {
        throw Error(path + ": " + e.what());
    } catch (const std::bad_alloc&) {
        throw Error(path + ": out of memory while reading the GGUF header");
    }
    return f;
}

const GgufValue* GgufFile::find(const std::string& key) const {
    const size_t* i = lookup(key_index_, key);
    return i ? &metadata_[*i].second : nullptr;
}

const GgufValue& GgufFile::at(const std::string& key) const {
    const GgufValue* v = find(key);
    if (!v) throw Error(path_ + ": metadata key '" + key + "' is missing");
    return *v;
}

const GgufTensor* GgufFile::find_tensor(const std::string& name) const {
    const size_t* i = lookup(tensor_index_, name);
    return i ? &tensors_[*i] : nullptr;
}

uint64_t GgufFile::file_bytes() const {
    return mapping_ ? mapping_->size() : 0;
}

}  // namespace tinygpt::io
