// Writing an HF model directory. The directory is built next to its destination and renamed
// into place, so a crash leaves either the old export or the new one, never a mix.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>

#include "hf/hf_model.h"
#include "io/atomic_write.h"
#include "io/format_internal.h"
#include "io/safetensors.h"
#include "model/params.h"
#include "util/error.h"

namespace tinygpt::hf {

namespace fs = std::filesystem;

namespace {

// What an export directory may hold: replacing a directory with anything else in it would lose
// files that are not ours.
bool is_export_file(const std::string& name) {
    static const char* kNames[] = {"config.json",
                                   "generation_config.json",
                                   "tokenizer.json",
                                   "tokenizer_config.json",
                                   "model.safetensors",
                                   "model.safetensors.index.json",
                                   "special_tokens_map.json"};
    if (std::find_if(std::begin(kNames), std::end(kNames),
                     [&](const char* n) { return name == n; }) != std::end(kNames))
        return true;
    return name.rfind("model-", 0) == 0 && name.size() > 12 &&
           name.compare(name.size() - 12, 12, ".safetensors") == 0;
}

void write_text(const fs::path& path, const std::string& text) {
    io::atomic_write_file(path.string(),
                          [&](io::FileSink& sink) { sink.write(text.data(), text.size()); });
}

void fsync_path(const fs::path& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        ::fsync(fd);
        ::close(fd);
    }
}

io::TensorDtype to_io(HfDtype d) {
    return d == HfDtype::F32    ? io::TensorDtype::F32
           : d == HfDtype::BF16 ? io::TensorDtype::BF16
                                : io::TensorDtype::F16;
}

const char* torch_dtype_name(HfDtype d) {
    return d == HfDtype::F32 ? "float32" : d == HfDtype::BF16 ? "bfloat16" : "float16";
}

}  // namespace

HfDtype parse_hf_dtype(const std::string& name) {
    if (name == "f32" || name == "fp32" || name == "float32") return HfDtype::F32;
    if (name == "bf16" || name == "bfloat16") return HfDtype::BF16;
    if (name == "f16" || name == "fp16" || name == "float16") return HfDtype::F16;
    throw Error("unknown dtype '" + name + "' for a Hugging Face export (known: f32, bf16, f16)");
}

HfExport save_hf_model(const std::string& dir, const ModelConfig& cfg, const float* weights,
                       const std::string& tokenizer_json, const std::string& tokenizer_config_json,
                       std::optional<int> bos, std::optional<int> eos, HfDtype dtype) {
    HfExport result;
    result.type = export_type_for(cfg);
    fs::path target = fs::path(dir).lexically_normal();
    if (target.filename().empty()) target = target.parent_path();  // "out/" names "out"
    const std::string shown = target.string();
    std::error_code ec;
    if (fs::exists(fs::symlink_status(target, ec))) {
        if (!fs::is_directory(fs::symlink_status(target, ec)))
            throw Error(shown + ": exists and is not a directory (a Hugging Face export is one)");
        for (const auto& entry : fs::directory_iterator(target, ec))
            if (!entry.is_regular_file() || !is_export_file(entry.path().filename().string()))
                throw Error(shown + ": holds '" + entry.path().filename().string() +
                            "', which is not part of an export; choose a new or empty directory");
    }
    const fs::path parent = target.has_parent_path() ? target.parent_path() : fs::path(".");
    if (!fs::is_directory(parent, ec)) throw Error(shown + ": the parent directory does not exist");
    const std::string pid = std::to_string(::getpid());
    std::string hidden = ".";  // .NAME.tmp.PID / .NAME.old.PID beside the target
    hidden += target.filename().string();
    const fs::path staging = parent / (hidden + ".tmp." + pid);
    const fs::path old = parent / (hidden + ".old." + pid);
    fs::remove_all(staging, ec);
    if (!fs::create_directory(staging, ec))
        throw Error(shown + ": cannot create " + staging.string() + ": " + ec.message());
    try {
        const ModelConfig view = hf_view(cfg, result.type);
        const ParameterLayout layout(cfg), view_layout(view);
        std::vector<io::TensorToWrite> tensors;
        for (const TensorSpec& spec : tensor_specs(result.type, view, ExpertLayout::PerExpert)) {
            io::TensorToWrite t{spec.name, spec.shape, nullptr};
            t.fill = [&layout, &view_layout, weights, spec](float* dst) {
                size_t numel = 1;
                for (int64_t d : spec.shape) numel *= static_cast<size_t>(d);
                std::vector<float> gathered;
                float* out = dst;
                if (spec.transposed) {
                    gathered.resize(numel);
                    out = gathered.data();
                }
                size_t at = 0;
                for (const TensorId& part : spec.parts) {
                    const ParamInfo* p = layout.find(part);
                    // A tensor the HF type always has and our model lacks: zeros compute the
                    // same function (hf_view).
                    const size_t n = view_layout.at(part).numel;
                    if (p)
                        std::memcpy(out + at, weights + p->offset, n * sizeof(float));
                    else
                        std::fill(out + at, out + at + n, 0.0f);
                    at += n;
                }
                if (spec.transposed) {  // our [out, in] → Conv1D [in, out]
                    const size_t in = static_cast<size_t>(spec.shape[0]);
                    const size_t cols = static_cast<size_t>(spec.shape[1]);
                    for (size_t r = 0; r < cols; ++r)
                        for (size_t c = 0; c < in; ++c) dst[c * cols + r] = gathered[r * in + c];
                }
            };
            tensors.push_back(std::move(t));
        }
        io::write_safetensors((staging / "model.safetensors").string(), tensors, to_io(dtype));
        result.files.push_back("model.safetensors");
        write_text(staging / "config.json",
                   config_to_hf(cfg, result.type, torch_dtype_name(dtype), bos, eos).dump(2));
        nlohmann::json generation = {{"_from_model_config", true}};
        if (bos) generation["bos_token_id"] = *bos;
        if (eos) generation["eos_token_id"] = *eos;
        write_text(staging / "generation_config.json", generation.dump(2));
        write_text(staging / "tokenizer.json", tokenizer_json);
        write_text(staging / "tokenizer_config.json", tokenizer_config_json);
        result.files.insert(result.files.end(), {"config.json", "generation_config.json",
                                                 "tokenizer.json", "tokenizer_config.json"});
        fsync_path(staging);
        // Swap in: the old export (if any) moves aside, the new one takes its name.
        const bool had_old = fs::exists(target, ec);
        if (had_old) fs::rename(target, old);
        fs::rename(staging, target);
        fsync_path(parent);
        if (had_old) fs::remove_all(old, ec);
    } catch (const fs::filesystem_error& e) {
        fs::remove_all(staging, ec);
        throw Error(shown + ": " + e.what());
    } catch (...) {
        fs::remove_all(staging, ec);
        throw;
    }
    return result;
}

}  // namespace tinygpt::hf
