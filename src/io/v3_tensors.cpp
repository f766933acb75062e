// The weights section of a v3 file and its tensor table (docs/FORMAT.md, "The weights section"):
// reading the table into checked places, either of a single-type section (f32, or bf16/f16 as
// written before per-tensor types: every tensor in that type at its ParameterLayout offset) or of
// a "mixed" one (each tensor in its own type, each group on a 64-byte boundary), and writing a
// model's tensors in their types.
#include <xxhash.h>

#include <limits>

#include "io/format_internal.h"
#include "quant/q8_0.h"

namespace tinygpt::io {

namespace {

struct TableEntry {
    std::string name;
    std::vector<int64_t> shape;
    WeightDtype dtype = WeightDtype::F32;
    uint64_t offset = 0, bytes = 0;
};

TableEntry parse_entry(const json& e, size_t i) {
    const std::string w = "tensors[" + std::to_string(i) + "]";
    as_object(e, w);
    TableEntry t;
    t.name = as_string(require_field(e, "name", w), w + ".name");
    const json& shape_json = as_array(require_field(e, "shape", w), w + ".shape");
    for (size_t d = 0; d < shape_json.size() && d < 8; ++d)
        t.shape.push_back(as_int(shape_json[d], w + ".shape", 0, kI64Max));
    if (shape_json.size() > 8) t.shape.push_back(-1);
    const std::string& dtype = as_string(require_field(e, "dtype", w), w + ".dtype");
    const std::optional<WeightDtype> parsed = parse_file_dtype(dtype);
    if (!parsed)
        throw Error("tensor '" + t.name + "' has an unknown dtype '" + dtype.substr(0, 40) +
                    "' in the tensor table (known: f32, bf16, f16, q8_0)");
    t.dtype = *parsed;
    t.offset = as_u64(require_field(e, "offset", w), w + ".offset");
    t.bytes = as_u64(require_field(e, "bytes", w), w + ".bytes");
    return t;
}

void check_name_and_shape(const TableEntry& t, const ParamInfo& want, size_t i) {
    if (t.name != want.name || t.shape != want.shape)
        throw Error("tensor table disagrees with the config: entry " + std::to_string(i) + " is '" +
                    t.name + "' " + shape_string(t.shape) + ", expected '" + want.name + "' " +
                    shape_string(want.shape));
}

std::string byte_range(uint64_t offset, uint64_t bytes) {
    return "bytes [" + std::to_string(offset) + ", " + std::to_string(offset + bytes) + ")";
}

// A section written before per-tensor types: every tensor in `dtype` at its layout offset.
std::vector<TensorPlace> single_type_table(const json& j, const ParameterLayout& layout,
                                           WeightDtype dtype) {
    const auto& entries = layout.entries();
    const size_t eb = dtype_bytes(dtype);
    std::vector<TensorPlace> places;
    for (size_t i = 0; i < entries.size(); ++i) {
        const ParamInfo& want = entries[i];
        const TableEntry t = parse_entry(j[i], i);
        const uint64_t want_offset = want.offset * eb, want_bytes = want.numel * eb;
        if (t.name != want.name || t.shape != want.shape || t.dtype != dtype ||
            t.offset != want_offset || t.bytes != want_bytes)
            throw Error("tensor table disagrees with the config: entry " + std::to_string(i) +
                        " is '" + t.name + "' " + shape_string(t.shape) + " " +
                        dtype_name(t.dtype) + " at byte " + std::to_string(t.offset) + " (" +
                        std::to_string(t.bytes) + " bytes), expected '" + want.name + "' " +
                        shape_string(want.shape) + " " + dtype_name(dtype) + " at byte " +
                        std::to_string(want_offset) + " (" + std::to_string(want_bytes) +
                        " bytes)");
        places.push_back(TensorPlace{dtype, want_offset, want_bytes});
    }
    return places;
}

// A "mixed" section: each tensor in its own type, checked one by one.
std::vector<TensorPlace> mixed_table(const json& j, const ParameterLayout& layout,
                                     uint64_t section_bytes) {
    const auto& entries = layout.entries();
    std::vector<TensorPlace> places;
    std::string prev_name;
    for (size_t i = 0; i < entries.size(); ++i) {
        const ParamInfo& want = entries[i];
        const TableEntry t = parse_entry(j[i], i);
        check_name_and_shape(t, want, i);
        const std::string what = "tensor '" + t.name + "' " + shape_string(t.shape);
        if (t.dtype == WeightDtype::Q8_0 && want.shape.back() % quant::kQ8_0BlockSize != 0)
            throw Error(what +
                        " is q8_0, but q8_0 stores rows in blocks of 32 values and its rows "
                        "are " +
                        std::to_string(want.shape.back()) + " long");
        const uint64_t need = dtype_tensor_bytes(t.dtype, want.shape);
        if (t.bytes != need)
            throw Error(what + " in " + dtype_name(t.dtype) + " takes " + std::to_string(need) +
                        " bytes, but the tensor table says " + std::to_string(t.bytes));
        if (t.offset > section_bytes || t.bytes > section_bytes - t.offset)
            throw Error(what + " (" + byte_range(t.offset, t.bytes) +
                        ") extends past the end of the weights section (" +
                        std::to_string(section_bytes) + " bytes)");
        if (want.joins_previous) {
            const TensorPlace& p = places.back();
            if (t.dtype != p.dtype)
                throw Error(what + " is " + dtype_name(t.dtype) + " but '" + prev_name +
                            "', which it follows as one matrix, is " + dtype_name(p.dtype) +
                            " (a fused product reads both in one type)");
            if (t.offset != p.offset + p.bytes)
                throw Error(what + " must start where '" + prev_name + "' ends (byte " +
                            std::to_string(p.offset + p.bytes) +
                            " of the weights section; a fused product reads both as one "
                            "matrix), not at byte " +
                            std::to_string(t.offset));
        } else {
            if (t.offset % kTensorAlignBytes != 0)
                throw Error(what + " at byte " + std::to_string(t.offset) +
                            " of the weights section is not 64-byte aligned");
            if (!places.empty()) {
                const TensorPlace& p = places.back();
                if (t.offset < p.offset + p.bytes) {
                    if (t.offset + t.bytes > p.offset)
                        throw Error("tensors '" + prev_name + "' (" +
                                    byte_range(p.offset, p.bytes) + ") and '" + t.name + "' (" +
                                    byte_range(t.offset, t.bytes) +
                                    ") overlap in the weights section");
                    throw Error(
                        what + " (" + byte_range(t.offset, t.bytes) + ") lies before '" +
                        prev_name + "' (" + byte_range(p.offset, p.bytes) +
                        "), which the tensor table lists first (the table is in file order)");
                }
            }
        }
        places.push_back(TensorPlace{t.dtype, t.offset, t.bytes});
        prev_name = t.name;
    }
    const uint64_t end = places.empty() ? 0 : places.back().offset + places.back().bytes;
    if (end != section_bytes)
        throw Error("section 'weights' is " + std::to_string(section_bytes) +
                    " bytes but its tensors end at byte " + std::to_string(end));
    return places;
}

// The section's bytes, tensor by tensor with zero padding in between, to `sink(data, bytes)`.
template <typename Sink>
void emit_weights(const ModelWeights& w, const std::vector<TensorPlace>& places, Sink&& sink) {
    static const uint8_t kZeros[kTensorAlignBytes] = {};
    uint64_t at = 0;
    for (size_t i = 0; i < places.size(); ++i) {
        while (at < places[i].offset) {
            const uint64_t pad = std::min<uint64_t>(places[i].offset - at, sizeof kZeros);
            sink(kZeros, static_cast<size_t>(pad));
            at += pad;
        }
        sink(w.view(i).data, static_cast<size_t>(places[i].bytes));
        at += places[i].bytes;
    }
}

}  // namespace

std::optional<WeightDtype> parse_file_dtype(const std::string& s) {
    for (WeightDtype d : {WeightDtype::F32, WeightDtype::BF16, WeightDtype::F16, WeightDtype::Q8_0})
        if (s == dtype_name(d)) return d;
    return std::nullopt;
}

std::vector<TensorPlace> read_tensor_table(const json& j, const ParameterLayout& layout,
                                           std::optional<WeightDtype> section_dtype,
                                           uint64_t section_bytes) {
    as_array(j, "tensors");
    if (j.size() != layout.entries().size())
        throw Error("tensor table disagrees with the config: it lists " + std::to_string(j.size()) +
                    " tensors, the config has " + std::to_string(layout.entries().size()));
    return section_dtype ? single_type_table(j, layout, *section_dtype)
                         : mixed_table(j, layout, section_bytes);
}

WeightsSection plan_weights_section(const ModelWeights& w) {
    const ParameterLayout& layout = w.layout();
    const auto& entries = layout.entries();
    std::vector<WeightDtype> types;
    bool all_f32 = true;
    for (size_t i = 0; i < entries.size(); ++i) {
        types.push_back(w.view(i).dtype);
        all_f32 &= types.back() == WeightDtype::F32;
    }
    WeightsSection s;
    s.mixed = !all_f32;
    size_t total = 0;
    const std::vector<size_t> offsets = pack_tensors(layout, types, &total);
    for (size_t i = 0; i < entries.size(); ++i) {
        s.places.push_back(
            TensorPlace{types[i], offsets[i], dtype_tensor_bytes(types[i], entries[i].shape)});
        // An f32 section is the training buffer byte for byte: readers of every v3 version
        // place its tensors at ParameterLayout offset × 4, and so does the packing.
        if (all_f32 && offsets[i] != entries[i].offset * 4)
            throw Error("internal error: the f32 packing of '" + entries[i].name +
                        "' differs from the parameter layout");
    }
    s.bytes = total;
    XXH3_state_t* state = XXH3_createState();
    if (state == nullptr) throw std::bad_alloc();
    XXH3_64bits_reset(state);
    emit_weights(w, s.places, [state](const void* data, size_t bytes) {
        XXH3_64bits_update(state, data, bytes);
    });
    s.checksum = XXH3_64bits_digest(state);
    XXH3_freeState(state);
    return s;
}

json tensor_table_json(const ParameterLayout& layout, const std::vector<TensorPlace>& places) {
    json tensors = json::array();
    for (size_t i = 0; i < places.size(); ++i) {
        const ParamInfo& info = layout.entries()[i];
        tensors.push_back({{"name", info.name},
                           {"shape", info.shape},
                           {"dtype", dtype_name(places[i].dtype)},
                           {"offset", places[i].offset},
                           {"bytes", places[i].bytes}});
    }
    return tensors;
}

void write_weights_section(FileSink& out, const ModelWeights& w, const WeightsSection& s) {
    emit_weights(w, s.places, [&out](const void* data, size_t bytes) { out.write(data, bytes); });
}

}  // namespace tinygpt::io
