// The GGUF writer (src/io/gguf_file.h): validates names, dims and metadata before creating the
// temporary file, then streams header, tensor infos and data through io::atomic_write_file. The
// layout is ggml's (gguf_write_to_file): each tensor at the next multiple of the alignment, the
// data region and every tensor padded to the alignment with zeros. Tensors are produced one at a
// time into a float buffer and converted in chunks, so the whole model is never held twice.
#include <cmath>
#include <cstring>
#include <unordered_set>

#include "io/atomic_write.h"
#include "io/format_internal.h"
#include "io/gguf_file.h"
#include "io/gguf_internal.h"
#include "quant/q8_0.h"
#include "util/error.h"
#include "util/half.h"

namespace tinygpt::io {

using namespace gguf_detail;

// The writer's view of a GgufValue's storage (a friend of GgufValue).
struct GgufWriterAccess {
    static void write(FileSink& out, const GgufValue& v);

    template <typename T>
    static void put(FileSink& out, T x) {
        out.write(&x, sizeof(T));
    }
    static void put_string(FileSink& out, const std::string& s) {
        put<uint64_t>(out, s.size());
        out.write(s.data(), s.size());
    }
    static void put_int(FileSink& out, GgufType type, int64_t x);
};

void GgufWriterAccess::put_int(FileSink& out, GgufType type, int64_t x) {
    switch (type) {
        case GgufType::U8:
        case GgufType::Bool:
            put(out, static_cast<uint8_t>(x));
            return;
        case GgufType::I8:
            put(out, static_cast<int8_t>(x));
            return;
        case GgufType::U16:
            put(out, static_cast<uint16_t>(x));
            return;
        case GgufType::I16:
            put(out, static_cast<int16_t>(x));
            return;
        case GgufType::U32:
            put(out, static_cast<uint32_t>(x));
            return;
        case GgufType::I32:
            put(out, static_cast<int32_t>(x));
            return;
        case GgufType::U64:
            put(out, static_cast<uint64_t>(x));
            return;
        case GgufType::I64:
            put(out, x);
            return;
        default:
            throw Error("internal error: put_int of a non-integer type");
    }
}

void GgufWriterAccess::write(FileSink& out, const GgufValue& v) {
    put(out, static_cast<uint32_t>(v.type_));
    switch (v.type_) {
        case GgufType::U8:
        case GgufType::U16:
        case GgufType::U32:
        case GgufType::U64:
        case GgufType::Bool:
            put_int(out, v.type_, static_cast<int64_t>(v.u_));
            return;
        case GgufType::I8:
        case GgufType::I16:
        case GgufType::I32:
        case GgufType::I64:
            put_int(out, v.type_, v.i_);
            return;
        case GgufType::F32:
            put(out, static_cast<float>(v.f_));
            return;
        case GgufType::F64:
            put(out, v.f_);
            return;
        case GgufType::String:
            put_string(out, v.s_);
            return;
        case GgufType::Array:
            break;
    }
    const GgufType et = v.array_type_;
    put(out, static_cast<uint32_t>(et));
    put<uint64_t>(out, v.array_size());
    if (et == GgufType::String) {
        for (const std::string& s : v.strings_) put_string(out, s);
    } else if (et == GgufType::F32) {
        for (double x : v.floats_) put(out, static_cast<float>(x));
    } else if (et == GgufType::F64) {
        for (double x : v.floats_) put(out, x);
    } else {
        for (int64_t x : v.ints_) put_int(out, et, x);
    }
}

namespace {

struct PlannedTensor {
    const GgufTensorToWrite* source;
    int64_t numel;
    uint64_t bytes;
    uint64_t offset;
};

// Everything checked before the temporary file exists.
std::vector<PlannedTensor> plan(const std::vector<std::pair<std::string, GgufValue>>& metadata,
                                const std::vector<GgufTensorToWrite>& tensors, uint32_t alignment,
                                bool& add_alignment_key) {
    if (!is_power_of_two(alignment))
        throw Error("alignment " + std::to_string(alignment) + " is not a power of two");
    std::unordered_set<std::string> keys;
    add_alignment_key = alignment != kDefaultAlignment;
    for (const auto& [key, value] : metadata) {
        if (key.empty()) throw Error("empty metadata key");
        if (!keys.insert(key).second) throw Error("duplicate metadata key " + quoted_name(key));
        if (key == kAlignmentKey) {
            if (value.type() != GgufType::U32 || value.as_uint(key) != alignment)
                throw Error(std::string("metadata key '") + kAlignmentKey +
                            "' must be the uint32 " + std::to_string(alignment) +
                            " (the alignment written)");
            add_alignment_key = false;
        }
    }
    std::unordered_set<std::string> names;
    std::vector<PlannedTensor> planned;
    planned.reserve(tensors.size());
    uint64_t offset = 0;
    for (const GgufTensorToWrite& t : tensors) {
        const std::string what = "tensor " + quoted_name(t.name);
        if (t.name.empty()) throw Error("empty tensor name");
        if (t.name.size() > kMaxNameBytes)
            throw Error(what + ": name is " + std::to_string(t.name.size()) +
                        " bytes; ggml allows at most " + std::to_string(kMaxNameBytes));
        if (!names.insert(t.name).second)
            throw Error("duplicate tensor name " + quoted_name(t.name));
        if (!loadable_type(static_cast<uint32_t>(t.type)))
            throw Error(what + ": cannot write type " +
                        ggml_type_name(static_cast<uint32_t>(t.type)) +
                        " (tinygpt writes F32, F16, BF16 and Q8_0)");
        if (!t.fill && !t.fill_raw) throw Error(what + ": no fill function");
        const int64_t numel = checked_numel(t.ne, t.type, what);
        const uint64_t bytes = ggml_tensor_bytes(t.type, numel);
        planned.push_back({&t, numel, bytes, offset});
        const uint64_t padded = (bytes + alignment - 1) / alignment * alignment;
        if (padded > (uint64_t{1} << 62) - offset)
            throw Error(what + ": the tensors add up to more than 2^62 bytes");
        offset += padded;
    }
    return planned;
}

// `values` (n floats) as `type` into the sink, in chunks.
void write_converted(FileSink& out, const float* values, int64_t n, GgmlType type) {
    if (type == GgmlType::F32) {
        out.write(values, static_cast<size_t>(n) * 4);
        return;
    }
    constexpr int64_t kChunk = 1 << 15;  // a multiple of the Q8_0 block size
    std::vector<uint8_t> buf(static_cast<size_t>(kChunk) * 2);
    for (int64_t start = 0; start < n; start += kChunk) {
        const int64_t m = std::min(kChunk, n - start);
        const float* x = values + start;
        size_t bytes = 0;
        if (type == GgmlType::Q8_0) {
            quant::quantize_q8_0(x, m, buf.data());
            bytes = static_cast<size_t>(m / quant::kQ8_0BlockSize) * quant::kQ8_0BlockBytes;
        } else {
            const bool f16 = type == GgmlType::F16;
            for (int64_t i = 0; i < m; ++i) {
                const uint16_t h = f16 ? float_to_f16(x[i]) : float_to_bf16(x[i]);
                std::memcpy(buf.data() + 2 * i, &h, 2);
            }
            bytes = static_cast<size_t>(m) * 2;
        }
        out.write(buf.data(), bytes);
    }
}

}  // namespace

void write_gguf(const std::string& path,
                const std::vector<std::pair<std::string, GgufValue>>& metadata,
                const std::vector<GgufTensorToWrite>& tensors, uint32_t alignment) {
    bool add_alignment_key = false;
    std::vector<PlannedTensor> planned;
    try {
        planned = plan(metadata, tensors, alignment, add_alignment_key);
    } catch (const Error& e) {
        throw Error(path + ": " + e.what());
    }
    atomic_write_file(path, [&](FileSink& out) {
        out.write(kGgufMagic, 4);
        GgufWriterAccess::put<uint32_t>(out, kWriteVersion);
        GgufWriterAccess::put<uint64_t>(out, planned.size());
        GgufWriterAccess::put<uint64_t>(out, metadata.size() + (add_alignment_key ? 1 : 0));
        for (const auto& [key, value] : metadata) {
            GgufWriterAccess::put_string(out, key);
            GgufWriterAccess::write(out, value);
        }
        if (add_alignment_key) {
            GgufWriterAccess::put_string(out, kAlignmentKey);
            GgufWriterAccess::write(out, GgufValue::u32(alignment));
        }
        for (const PlannedTensor& p : planned) {
            GgufWriterAccess::put_string(out, p.source->name);
            GgufWriterAccess::put<uint32_t>(out, static_cast<uint32_t>(p.source->ne.size()));
            for (int64_t d : p.source->ne) GgufWriterAccess::put<int64_t>(out, d);
            GgufWriterAccess::put<uint32_t>(out, static_cast<uint32_t>(p.source->type));
            GgufWriterAccess::put<uint64_t>(out, p.offset);
        }
        const uint64_t data_start = align_up(out.offset(), alignment);
        out.pad_to(data_start);
        std::vector<float> values;
        std::vector<uint8_t> raw;
        for (const PlannedTensor& p : planned) {
            const GgufTensorToWrite& t = *p.source;
            out.pad_to(data_start + p.offset);
            if (t.fill_raw) {
                raw.assign(static_cast<size_t>(p.bytes), 0);
                t.fill_raw(raw.data());
                out.write(raw.data(), raw.size());
                out.pad_to(align_up(out.offset(), alignment));
                continue;
            }
            values.assign(static_cast<size_t>(p.numel), 0.0f);
            t.fill(values.data());
            if (t.type == GgmlType::Q8_0)
                for (size_t i = 0; i < values.size(); ++i)
                    if (!std::isfinite(values[i]))
                        throw Error("tensor " + quoted_name(t.name) + ": value " +
                                    std::to_string(i) + " is " + std::to_string(values[i]) +
                                    "; Q8_0 cannot store non-finite values");
            write_converted(out, values.data(), p.numel, t.type);
            out.pad_to(align_up(out.offset(), alignment));
        }
    });
}

}  // namespace tinygpt::io
