// Reading a GGUF file into our layout: the architecture's keys into a ModelConfig, every tensor
// checked against the table before anything is allocated, then copied one by one, in its type,
// into one buffer.
#include <algorithm>
#include <cstring>
#include <set>
#include <unordered_set>

#include "gguf/gguf_model.h"
#include "gguf/gguf_vocab.h"
#include "io/gguf_file.h"
#include "io/mapped_file.h"
#include "model/params.h"
#include "util/arena.h"
#include "util/error.h"
#include "util/format.h"

namespace tinygpt::gguf {

namespace {

struct Destination {
    const std::vector<WeightDtype>& types;
    const std::vector<size_t>& offsets;
    uint8_t* base;
};

// One GGUF tensor into its parts of our buffer. Rows (ne[0] values; single values of a 1-D
// tensor) are the unit: the parts are runs of whole rows, and llama's q/k permutation moves whole
// rows, so a tensor whose parts keep its type is copied as bytes (Q8_0 rows as their blocks).
void copy_tensor(const io::GgufTensor& t, const GgufTensorSpec& spec,
                 const std::vector<size_t>& part_index, const Destination& to) {
    const WeightDtype src_type = weight_dtype_of(t.type);
    const int64_t numel = t.numel();
    const int64_t row_len = spec.ne.size() >= 2 ? spec.ne[0] : 1;
    const int64_t rows = numel / row_len;
    const int64_t part_rows = rows / static_cast<int64_t>(part_index.size());
    const int head_dim = spec.permute_heads > 0 ? static_cast<int>(rows / spec.permute_heads) : 0;
    const auto source_row = [&](int64_t r) {
        return head_dim > 0 ? llama_rope_source_row(r, head_dim, /*to_llama=*/false) : r;
    };
    const bool same_type = std::all_of(part_index.begin(), part_index.end(),
                                       [&](size_t i) { return to.types[i] == src_type; });
    if (same_type) {
        const size_t row_bytes = dtype_row_bytes(src_type, row_len);
        for (size_t k = 0; k < part_index.size(); ++k) {
            uint8_t* dst = to.base + to.offsets[part_index[k]];
            const int64_t first = static_cast<int64_t>(k) * part_rows;
            if (head_dim == 0) {
                std::memcpy(dst, t.data + first * row_bytes, part_rows * row_bytes);
                continue;
            }
            for (int64_t r = 0; r < part_rows; ++r)
                std::memcpy(dst + r * row_bytes, t.data + source_row(first + r) * row_bytes,
                            row_bytes);
        }
        return;
    }
    // Widened to f32 (exact), rows moved, then stored in each part's type (f32: the only type
    // load_gguf_model gives a part that differs from its source).
    std::vector<float> values(static_cast<size_t>(numel)), moved;
    io::gguf_tensor_to_f32(t, values.data());
    const float* src = values.data();
    if (head_dim > 0) {
        moved.resize(values.size());
        unpermute_rows_from_llama(values.data(), moved.data(), spec.permute_heads, head_dim,
                                  row_len);
        src = moved.data();
    }
    const size_t block = static_cast<size_t>(part_rows * row_len);
    for (size_t k = 0; k < part_index.size(); ++k)
        f32_to_tensor(src + k * block, block, to.types[part_index[k]],
                      to.base + to.offsets[part_index[k]]);
}

}  // namespace

GgufModel load_gguf_model(const std::string& path) {
    const io::GgufFile file = io::GgufFile::open(path);
    GgufModel m;
    m.version = file.version();
    m.file_bytes = file.file_bytes();
    m.arch = [&] {
        try {
            return parse_gguf_arch(file.at("general.architecture")
                                       .as_string(path + ": metadata key 'general.architecture'"));
        } catch (const Error& e) {
            const std::string what = e.what();
            if (what.rfind(path, 0) == 0) throw;
            throw Error(path + ": " + what);
        }
    }();
    m.config = config_from_gguf(file, m.arch);
    const ModelConfig& cfg = m.config;

    // Every tensor the architecture has, with its shape; nothing else.
    const std::vector<GgufTensorSpec> specs = gguf_tensor_specs(m.arch, cfg);
    std::unordered_set<std::string> expected;
    for (const GgufTensorSpec& spec : specs) {
        expected.insert(spec.name);
        const io::GgufTensor* t = file.find_tensor(spec.name);
        if (!t)
            throw Error(path + ": tensor '" + spec.name + "' is missing (a " +
                        gguf_arch_name(m.arch) + " model of this configuration has it)");
        if (t->ne != spec.ne)
            throw Error(path + ": tensor '" + spec.name + "' has shape " + shape_string(t->ne) +
                        ", expected " + shape_string(spec.ne) + " from the metadata");
    }
    for (const io::GgufTensor& t : file.tensors())
        if (!expected.count(t.name))
            throw Error(path + ": tensor '" + t.name + "' is not part of a " +
                        gguf_arch_name(m.arch) +
                        " model as tinygpt computes it (this configuration has no such tensor)");

    m.tokenizer = tokenizer_from_gguf(file);

    // Which of our tensors each GGUF tensor holds, and each one's type.
    const ParameterLayout layout(cfg);
    const auto& entries = layout.entries();
    std::vector<std::vector<size_t>> parts(specs.size());
    std::vector<WeightDtype> types(entries.size(), WeightDtype::F32);
    std::set<std::string> type_names;
    for (size_t s = 0; s < specs.size(); ++s) {
        const io::GgufTensor& t = *file.find_tensor(specs[s].name);
        type_names.insert(io::ggml_type_name(static_cast<uint32_t>(t.type)));
        const size_t block = static_cast<size_t>(t.numel()) / specs[s].parts.size();
        for (const TensorId& id : specs[s].parts) {
            const ParamInfo& p = layout.at(id);
            if (p.numel != block)
                throw Error(path + ": tensor '" + specs[s].name + "' does not split into " +
                            describe_tensor(id));
            const auto index = static_cast<size_t>(&p - entries.data());
            parts[s].push_back(index);
            // Inference reads norms, biases, the router and the position table as f32.
            types[index] = always_f32(p) ? WeightDtype::F32 : weight_dtype_of(t.type);
        }
    }
    // A group we read as one matrix (q|k|v, gate|up) comes from separate GGUF tensors, which may
    // differ in type (q in Q8_0, k in F16): such a group is stored in f32, the one type every
    // member converts to exactly (llama-quantize's own mixes do not arise at Q8_0).
    for (size_t g = 0; g < entries.size();) {
        size_t end = g + 1;
        while (end < entries.size() && entries[end].joins_previous) ++end;
        if (std::any_of(types.begin() + g, types.begin() + end,
                        [&](WeightDtype d) { return d != types[g]; }))
            std::fill(types.begin() + g, types.begin() + end, WeightDtype::F32);
        g = end;
    }
    size_t total = 0;
    const std::vector<size_t> offsets = pack_tensors(layout, types, &total);
    auto buffer = std::make_shared<AlignedBuffer>(aligned_alloc_bytes(total));
    auto* base = reinterpret_cast<uint8_t*>(buffer->get());
    std::memset(base, 0, total);  // padding, and any tensor no GGUF tensor holds
    const Destination to{types, offsets, base};
    for (size_t s = 0; s < specs.size(); ++s) {
        const io::GgufTensor& t = *file.find_tensor(specs[s].name);
        copy_tensor(t, specs[s], parts[s], to);
        io::release_mapped_pages(t.data, t.bytes);  // read once: peak memory ≈ the copy
    }
    std::vector<TensorView> views;
    views.reserve(entries.size());
    for (size_t i = 0; i < entries.size(); ++i)
        views.push_back(TensorView{base + offsets[i], types[i]});
    m.weights = ModelWeights(cfg, std::move(views), std::move(buffer));
    for (const std::string& t : type_names) m.types += (m.types.empty() ? "" : "+") + t;
    m.tensors = static_cast<int>(specs.size());
    return m;
}

}  // namespace tinygpt::gguf
