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

bool ends_with(const std::string& s, const std::string& suffix) {
    return s.size() >= suffix.size() &&
           s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The type a tensor is stored in, as llama.cpp's converter and llama-quantize choose it: 1-D
// tensors, the router and the position table stay F32; a Q8_0 matrix with rows not a multiple of
// 32 long falls back to F16.
io::GgmlType storage_type(const GgufTensorSpec& spec, GgufDtype dtype) {
    if (spec.ne.size() < 2 || ends_with(spec.name, "ffn_gate_inp.weight") ||
        spec.name == "position_embd.weight")
        return io::GgmlType::F32;
    switch (dtype) {
        case GgufDtype::F32:
            return io::GgmlType::F32;
        case GgufDtype::F16:
            return io::GgmlType::F16;
        case GgufDtype::BF16:
            return io::GgmlType::BF16;
        case GgufDtype::Q8_0:
            return spec.ne[0] % 32 == 0 ? io::GgmlType::Q8_0 : io::GgmlType::F16;
    }
    return io::GgmlType::F32;
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

GgufExport save_gguf_model(const std::string& path, const ModelConfig& cfg, const float* weights,
                           const Tokenizer& tokenizer, GgufDtype dtype, const std::string& name) {
    check_target(path);
    const ExportPlan plan = plan_export(cfg);
    const ModelConfig& fc = plan.file_config;
    const ParameterLayout layout(cfg);
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

    std::vector<io::GgufTensorToWrite> tensors;
    for (const GgufTensorSpec& spec : gguf_tensor_specs(plan.arch, fc)) {
        io::GgufTensorToWrite t{spec.name, spec.ne, storage_type(spec, dtype), nullptr};
        t.fill = [&, spec](float* dst) {
            int64_t numel = 1;
            for (int64_t d : spec.ne) numel *= d;
            const int64_t block = numel / static_cast<int64_t>(spec.parts.size());
            const int64_t block_cols = spec.ne[0];
            const int64_t block_rows = block / block_cols;
            std::vector<float> gathered(spec.permute_heads > 0 ? numel : 0);
            float* out = spec.permute_heads > 0 ? gathered.data() : dst;
            for (size_t k = 0; k < spec.parts.size(); ++k) {
                TensorId part = spec.parts[k];
                float* block_dst = out + static_cast<int64_t>(k) * block;
                float scale = 1.0f;
                if (part.role == TensorRole::OutputHead && plan.untied_head_copy)
                    part = TensorId{TensorRole::TokenEmbedding};
                if (part.layer >= 0 && plan.emulated_dense[part.layer]) {
                    if (part.role == TensorRole::Router) {  // a zero router: uniform gates
                        std::fill(block_dst, block_dst + block, 0.0f);
                        continue;
                    }
                    // No shared expert in a dense block: a zero one. Its gate row is ones, not
                    // zeros: llama.cpp computes the sigmoid as silu(z)/z, NaN at z = 0.
                    if (part.role == TensorRole::SharedExpertGate || part.expert == kSharedExpert) {
                        const float v = part.role == TensorRole::SharedExpertGate ? 1.0f : 0.0f;
                        std::fill(block_dst, block_dst + block, v);
                        continue;
                    }
                    if (part.is_routed_expert()) {
                        if (part.role == TensorRole::FfnDown) scale = emulated_down_scale;
                        part.expert = kDenseFfn;
                    }
                }
                const ParamInfo& p = layout.at(part);
                const int64_t rows = p.shape.size() >= 2 ? p.shape[0] : 1;
                const int64_t cols = p.shape.size() >= 2 ? p.shape[1] : p.shape[0];
                if (static_cast<int64_t>(p.numel) == block && cols == block_cols && scale == 1.0f)
                    std::memcpy(block_dst, weights + p.offset, p.numel * sizeof(float));
                else
                    copy_block(weights + p.offset, rows, cols, scale, block_dst, block_rows,
                               block_cols);
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

}  // namespace tinygpt::gguf
