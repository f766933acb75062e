// Writing a model as a GGUF file: the plan (gguf_arch.cpp), the tensors gathered from our layout
// (q/k rows permuted for llama, dense blocks emulated as experts), the tokenizer, the metadata.
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <filesystem>

#include "gguf/gguf_model.h"
#include "gguf/gguf_vocab.h"
#include "io/gguf_file.h"
#include "io/mapped_file.h"
#include "model/params.h"
#include "util/error.h"

namespace tinygpt::gguf {

namespace {

// The type a tensor is stored in: our policy (stored_tensor_dtype), which is llama.cpp's: 1-D
// tensors, the router, the shared expert's gate and the position table stay F32; a Q8_0 matrix
// with rows not a multiple of 32 long falls back to F16. A GGUF tensor takes its first part's
// type (its parts share role and row length).
WeightDtype storage_type(const GgufTensorSpec& spec, WeightDtype dtype) {
    const std::vector<int64_t> shape(spec.ne.rbegin(), spec.ne.rend());  // outermost first
    return stored_tensor_dtype(dtype, spec.parts.front(), shape);
}

// llama_ftype values (llama.h) for general.file_type.
uint32_t file_type(GgufDtype dtype) {
    switch (dtype) {
        case GgufDtype::F32:
            return 0;  // LLAMA_FTYPE_ALL_F32
        case GgufDtype::F16:
            return 1;  // LLAMA_FTYPE_MOSTLY_F16
        case GgufDtype::Q8_0:
            return 7;  // LLAMA_FTYPE_MOSTLY_Q8_0
        case GgufDtype::BF16:
            return 32;  // LLAMA_FTYPE_MOSTLY_BF16
    }
    return 0;
}

// Refuses to replace anything but a GGUF file (or nothing): a typo in --out must not destroy
// a corpus or a device.
void check_target(const std::string& path) {
    namespace fs = std::filesystem;
    std::error_code ec;
    const fs::file_status st = fs::status(path, ec);
    if (!fs::exists(st)) {
        const fs::path parent = fs::path(path).parent_path();
        if (!parent.empty() && !fs::is_directory(parent, ec))
            throw Error(path + ": the parent directory does not exist");
        return;
    }
    if (fs::is_directory(st)) throw Error(path + ": is a directory");
    if (!fs::is_regular_file(st)) throw Error(path + ": exists and is not a regular file");
    if (!is_gguf_file(path))
        throw Error(path + ": exists and is not a GGUF file; choose a new name (not replacing it)");
}

// Copies one of our tensors into its block of a GGUF tensor: rows × cols at the top left of a
// block of block_rows × block_cols (zeros around it), times `scale`.
void copy_block(const float* src, int64_t rows, int64_t cols, float scale, float* dst,
                int64_t block_rows, int64_t block_cols) {
    std::fill(dst, dst + block_rows * block_cols, 0.0f);
    for (int64_t r = 0; r < rows; ++r)
        for (int64_t k = 0; k < cols; ++k) dst[r * block_cols + k] = scale * src[r * cols + k];
}

// Where a part of a GGUF tensor comes from: one of our tensors (scaled), or a constant.
struct PartSource {
    const ParamInfo* info = nullptr;  // null: the constant
    size_t index = 0;                 // in ParameterLayout order
    float scale = 1.0f;
    float constant = 0.0f;
};

// llama.cpp changes its special-token handling for models whose general.name contains these
// (llama-vocab.cpp): a user's file name must not do that behind their back.
std::string safe_model_name(const std::string& name) {
    std::string lower = name;
    for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    for (const char* trigger : {"phi-3", "phi3", "modern-bert"})
        if (lower.find(trigger) != std::string::npos) return "tinygpt model";
    return name.empty() ? "tinygpt model" : name;
}

}  // namespace

GgufDtype parse_gguf_dtype(const std::string& name) {
    if (name == "f32") return GgufDtype::F32;
    if (name == "f16") return GgufDtype::F16;
    if (name == "bf16") return GgufDtype::BF16;
    if (name == "q8_0") return GgufDtype::Q8_0;
    throw Error("unknown GGUF dtype '" + name + "' (known: f32, f16, bf16, q8_0)");
}

io::GgmlType ggml_type_of(WeightDtype dtype) {
    switch (dtype) {
        case WeightDtype::F32:
            return io::GgmlType::F32;
        case WeightDtype::F16:
            return io::GgmlType::F16;
        case WeightDtype::BF16:
            return io::GgmlType::BF16;
        case WeightDtype::Q8_0:
            return io::GgmlType::Q8_0;
    }
    return io::GgmlType::F32;
}

WeightDtype weight_dtype_of(io::GgmlType type) {
    switch (type) {
        case io::GgmlType::F32:
            return WeightDtype::F32;
        case io::GgmlType::F16:
            return WeightDtype::F16;
        case io::GgmlType::BF16:
            return WeightDtype::BF16;
        case io::GgmlType::Q8_0:
            return WeightDtype::Q8_0;
    }
    throw Error("ggml type " + io::ggml_type_name(static_cast<uint32_t>(type)) +
                " is not one tinygpt stores weights in");
}

const char* gguf_dtype_name(GgufDtype dtype) {
    switch (dtype) {
        case GgufDtype::F32:
            return "f32";
        case GgufDtype::F16:
            return "f16";
        case GgufDtype::BF16:
            return "bf16";
        case GgufDtype::Q8_0:
            return "q8_0";
    }
    return "?";
}

bool is_gguf_file(const std::string& path) {
    return io::file_starts_with(path, "GGUF");
}

GgufExport save_gguf_model(const std::string& path, const ModelWeights& weights,
                           const Tokenizer& tokenizer, GgufDtype dtype, const std::string& name) {
    check_target(path);
    const ModelConfig& cfg = weights.config();
    const ExportPlan plan = plan_export(cfg);
    const ModelConfig& fc = plan.file_config;
    const ParameterLayout& layout = weights.layout();
    // Gates of an emulated dense block: 1/K each after renormalisation, else 1/E.
    const float emulated_down_scale =
        renormalises_gates(plan.arch) ? 1.0f : static_cast<float>(fc.experts) / fc.topk;

    std::vector<std::pair<std::string, io::GgufValue>> metadata;
    metadata.emplace_back("general.architecture", io::GgufValue::string(gguf_arch_name(plan.arch)));
    metadata.emplace_back("general.type", io::GgufValue::string("model"));
    metadata.emplace_back("general.name", io::GgufValue::string(safe_model_name(name)));
    metadata.emplace_back("general.file_type", io::GgufValue::u32(file_type(dtype)));
    metadata.emplace_back("general.quantization_version", io::GgufValue::u32(2));
    for (auto& kv : arch_metadata(plan.arch, fc)) metadata.push_back(std::move(kv));
    for (auto& kv : tokenizer_metadata(tokenizer, cfg.vocab, /*accept_caveats=*/true))
        metadata.push_back(std::move(kv));

    // Where each part of a GGUF tensor comes from.
    const auto part_source = [&](TensorId part) {
        PartSource src;
        if (part.role == TensorRole::OutputHead && plan.untied_head_copy)
            part = TensorId{TensorRole::TokenEmbedding};
        if (part.layer >= 0 && plan.emulated_dense[part.layer]) {
            if (part.role == TensorRole::Router) return src;  // a zero router: uniform gates
            // No shared expert in a dense block: a zero one. Its gate row is ones, not zeros:
            // llama.cpp computes the sigmoid as silu(z)/z, NaN at z = 0.
            if (part.role == TensorRole::SharedExpertGate) {
                src.constant = 1.0f;
                return src;
            }
            if (part.expert == kSharedExpert) return src;
            if (part.is_routed_expert()) {
                if (part.role == TensorRole::FfnDown) src.scale = emulated_down_scale;
                part.expert = kDenseFfn;
            }
        }
        src.info = &layout.at(part);
        src.index = static_cast<size_t>(src.info - layout.entries().data());
        return src;
    };

    std::vector<io::GgufTensorToWrite> tensors;
    for (const GgufTensorSpec& spec : gguf_tensor_specs(plan.arch, fc)) {
        const WeightDtype type = storage_type(spec, dtype);
        io::GgufTensorToWrite t{spec.name, spec.ne, ggml_type_of(type), nullptr};
        int64_t numel = 1;
        for (int64_t d : spec.ne) numel *= d;
        const int64_t block = numel / static_cast<int64_t>(spec.parts.size());
        const int64_t block_cols = spec.ne[0];
        const int64_t block_rows = block / block_cols;
        std::vector<PartSource> sources;
        for (const TensorId& part : spec.parts) sources.push_back(part_source(part));
        const int64_t row_len = spec.ne.size() >= 2 ? spec.ne[0] : 1;
        const int64_t tensor_rows = numel / row_len;
        const int head_dim =
            spec.permute_heads > 0 ? static_cast<int>(tensor_rows / spec.permute_heads) : 0;
        // Bit for bit when every part is one of our tensors, whole, unscaled and already in the
        // type (or a zero block: zero bits are zeros in every type, a Q8_0 block included).
        const bool copy_bits =
            std::all_of(sources.begin(), sources.end(), [&](const PartSource& s) {
                if (!s.info) return s.constant == 0.0f;
                return s.scale == 1.0f && static_cast<int64_t>(s.info->numel) == block &&
                       (s.info->shape.size() < 2 || s.info->shape.back() == block_cols) &&
                       weights.view(s.index).dtype == type;
            });
        if (copy_bits) {
            t.fill_raw = [&weights, sources, type, block, row_len, tensor_rows,
                          head_dim](uint8_t* dst) {
                const size_t block_bytes =
                    dtype_row_bytes(type, row_len) * static_cast<size_t>(block / row_len);
                std::vector<uint8_t> gathered(head_dim > 0 ? block_bytes * sources.size() : 0);
                uint8_t* out = head_dim > 0 ? gathered.data() : dst;
                for (size_t k = 0; k < sources.size(); ++k) {
                    uint8_t* block_dst = out + k * block_bytes;
                    if (sources[k].info)
                        std::memcpy(block_dst, weights.view(sources[k].index).data, block_bytes);
                    else
                        std::memset(block_dst, 0, block_bytes);
                }
                if (head_dim == 0) return;
                const size_t row_bytes = dtype_row_bytes(type, row_len);
                for (int64_t r = 0; r < tensor_rows; ++r)
                    std::memcpy(
                        dst + r * row_bytes,
                        out + llama_rope_source_row(r, head_dim, /*to_llama=*/true) * row_bytes,
                        row_bytes);
            };
            tensors.push_back(std::move(t));
            continue;
        }
        t.fill = [&weights, sources, numel, block, block_rows, block_cols, spec](float* dst) {
            std::vector<float> gathered(spec.permute_heads > 0 ? numel : 0), widened;
            float* out = spec.permute_heads > 0 ? gathered.data() : dst;
            for (size_t k = 0; k < sources.size(); ++k) {
                const PartSource& s = sources[k];
                float* block_dst = out + static_cast<int64_t>(k) * block;
                if (!s.info) {
                    std::fill(block_dst, block_dst + block, s.constant);
                    continue;
                }
                const ParamInfo& p = *s.info;
                const TensorView& v = weights.view(s.index);
                const float* src = static_cast<const float*>(v.data);
                if (v.dtype != WeightDtype::F32) {
                    widened.resize(p.numel);
                    tensor_to_f32(v, p.numel, widened.data());
                    src = widened.data();
                }
                const int64_t rows = p.shape.size() >= 2 ? p.shape[0] : 1;
                const int64_t cols = p.shape.size() >= 2 ? p.shape[1] : p.shape[0];
                if (static_cast<int64_t>(p.numel) == block && cols == block_cols && s.scale == 1.0f)
                    std::memcpy(block_dst, src, p.numel * sizeof(float));
                else
                    copy_block(src, rows, cols, s.scale, block_dst, block_rows, block_cols);
            }
            if (spec.permute_heads > 0) {
                const int64_t rows = spec.ne.size() >= 2 ? spec.ne[1] : spec.ne[0];
                const int64_t cols = spec.ne.size() >= 2 ? spec.ne[0] : 1;
                permute_rows_for_llama(gathered.data(), dst, spec.permute_heads,
                                       static_cast<int>(rows / spec.permute_heads), cols);
            }
        };
        tensors.push_back(std::move(t));
    }
    io::write_gguf(path, metadata, tensors);

    GgufExport result;
    result.arch = plan.arch;
    result.tokenizer_caveats = tokenizer_gguf_caveats(tokenizer);
    result.emulated_dense_layers = static_cast<int>(
        std::count(plan.emulated_dense.begin(), plan.emulated_dense.end(), char{1}));
    result.tensors = static_cast<int>(tensors.size());
    std::error_code ec;
    result.file_bytes = std::filesystem::file_size(path, ec);
    return result;
}

GgufExport save_gguf_model(const std::string& path, const ModelConfig& cfg, const float* weights,
                           const Tokenizer& tokenizer, GgufDtype dtype, const std::string& name) {
    return save_gguf_model(path, ModelWeights::from_f32(cfg, weights), tokenizer, dtype, name);
}

}  // namespace tinygpt::gguf
