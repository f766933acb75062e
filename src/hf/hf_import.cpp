// Reading an HF model directory into our layout, tensor by tensor from the memory map.
#include <algorithm>
#include <cstring>
#include <filesystem>
#include <set>

#include "hf/hf_model.h"
#include "io/hf_checkpoint.h"
#include "io/mapped_file.h"
#include "io/read_file.h"
#include "model/params.h"
#include "util/error.h"
#include "util/half.h"

namespace tinygpt::hf {

namespace fs = std::filesystem;

namespace {

constexpr uintmax_t kMaxTextFile = uintmax_t{512} << 20;

// The whole of a small text file, or nullopt when it does not exist.
std::optional<std::string> read_text_file(const fs::path& path) {
    std::error_code ec;
    if (!fs::exists(path, ec)) return std::nullopt;
    if (!fs::is_regular_file(path, ec)) throw Error(path.string() + ": is not a regular file");
    const uintmax_t size = fs::file_size(path, ec);
    if (ec) throw Error(path.string() + ": cannot read: " + ec.message());
    if (size > kMaxTextFile) throw Error(path.string() + ": too large for a JSON file");
    return read_file_bytes(path.string());
}

nlohmann::json parse_json_file(const fs::path& path, const std::string& text) {
    try {
        return nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception& e) {
        throw Error(path.string() + ": not valid JSON: " + e.what());
    }
}

// Widens `count` 16-bit values (read with memcpy: safetensors data need not be aligned).
template <float (*Widen)(uint16_t)>
void widen(const uint8_t* src, size_t count, float* dst) {
    for (size_t i = 0; i < count; ++i) {
        uint16_t h;
        std::memcpy(&h, src + 2 * i, 2);
        dst[i] = Widen(h);
    }
}

// Converts `count` elements starting at element `first` of a stored tensor to f32.
void convert_range(const io::SafetensorsTensor& t, size_t first, size_t count, float* dst) {
    const uint8_t* src = t.data + first * io::dtype_size(t.dtype);
    if (t.dtype == io::TensorDtype::F32)
        std::memcpy(dst, src, count * sizeof(float));
    else if (t.dtype == io::TensorDtype::BF16)
        widen<bf16_to_float>(src, count, dst);
    else
        widen<f16_to_float>(src, count, dst);
}

const char* dtype_label(io::TensorDtype d) {
    return d == io::TensorDtype::F32 ? "f32" : d == io::TensorDtype::BF16 ? "bf16" : "f16";
}

}  // namespace

bool is_hf_model_dir(const std::string& path) {
    std::error_code ec;
    return fs::is_directory(path, ec) && fs::exists(fs::path(path) / "config.json", ec);
}

HfModel load_hf_model(const std::string& dir) {
    const fs::path root(dir);
    const fs::path config_path = root / "config.json";
    const std::optional<std::string> config_text = read_text_file(config_path);
    if (!config_text) throw Error(dir + ": not a Hugging Face model directory (no config.json)");
    HfModel out;
    ImportedConfig imported;
    try {
        imported = config_from_hf(parse_json_file(config_path, *config_text));
        imported.model.validate();
    } catch (const Error& e) {
        const std::string what = e.what();
        throw Error(what.rfind(config_path.string(), 0) == 0 ? what
                                                             : config_path.string() + ": " + what);
    }
    out.type = imported.type;
    out.config = imported.model;
    const ModelConfig& cfg = out.config;

    const io::HfCheckpoint ckpt = io::HfCheckpoint::open_dir(dir);
    out.files = static_cast<int>(ckpt.files().size());
    out.checkpoint_bytes = ckpt.total_bytes();
    // Every parameter must come from a stored tensor of at least 2 bytes: a config that claims
    // more than the checkpoint holds is refused before anything is allocated.
    const double params = cfg.total_params_estimate();
    if (params * 2.0 > static_cast<double>(ckpt.total_bytes()) * 1.01 + 4096.0)
        throw Error(config_path.string() + ": describes " + std::to_string(params) +
                    " parameters, more than the checkpoint's " +
                    std::to_string(ckpt.total_bytes()) + " bytes can hold");

    // Experts stored per expert, or fused (transformers v5).
    for (int l = 0; l < cfg.layers; ++l) {
        if (!cfg.is_moe_layer(l)) continue;
        if (ckpt.find("model.layers." + std::to_string(l) + ".mlp.experts.gate_up_proj"))
            out.expert_layout = ExpertLayout::Fused;
        break;
    }
    const ParameterLayout layout(cfg);
    out.weights.assign(layout.total(), 0.0f);
    std::set<std::string> used;
    std::set<io::TensorDtype> dtypes;
    for (const TensorSpec& spec : tensor_specs(out.type, cfg, out.expert_layout)) {
        // Hub GPT-2 checkpoints often name tensors without the "transformer." prefix.
        std::string name = spec.name;
        if (out.type == ModelType::Gpt2 && !ckpt.find(name) && name.rfind("transformer.", 0) == 0 &&
            ckpt.find(name.substr(12)))
            name = name.substr(12);
        const io::SafetensorsTensor& t = ckpt.require(name, spec.shape);
        used.insert(name);
        dtypes.insert(t.dtype);
        if (!spec.transposed) {
            size_t first = 0;
            for (const TensorId& part : spec.parts) {
                const ParamInfo& p = layout.at(part);
                convert_range(t, first, p.numel, out.weights.data() + p.offset);
                first += p.numel;
            }
        } else {
            // Conv1D [in, out] → our [out, in]; the parts are consecutive rows of the result.
            const size_t in = static_cast<size_t>(spec.shape[0]);
            const size_t cols = static_cast<size_t>(spec.shape[1]);
            std::vector<float> stored(in * cols);
            convert_range(t, 0, stored.size(), stored.data());
            size_t row = 0;
            for (const TensorId& part : spec.parts) {
                const ParamInfo& p = layout.at(part);
                const size_t rows = p.numel / in;
                float* dst = out.weights.data() + p.offset;
                for (size_t r = 0; r < rows; ++r)
                    for (size_t c = 0; c < in; ++c) dst[r * in + c] = stored[c * cols + row + r];
                row += rows;
            }
        }
        io::release_mapped_pages(t.data, t.bytes);
    }
    for (const std::string& name : ckpt.names()) {
        if (used.count(name) || is_ignored_tensor(out.type, cfg, name)) continue;
        throw Error(dir + ": unexpected tensor '" + name + "' for a " + model_type_name(out.type) +
                    " model of this config (a feature tinygpt does not implement?)");
    }
    for (io::TensorDtype d : dtypes) {
        if (!out.dtypes.empty()) out.dtypes += '+';
        out.dtypes += dtype_label(d);
    }

    const std::optional<std::string> tok = read_text_file(root / "tokenizer.json");
    if (!tok)
        throw Error(dir +
                    ": has no tokenizer.json (tinygpt needs the model's tokenizer; "
                    "copy it into the directory)");
    out.tokenizer_json = *tok;
    if (auto tc = read_text_file(root / "tokenizer_config.json")) out.tokenizer_config_json = *tc;
    return out;
}

}  // namespace tinygpt::hf
