// `tinygpt convert IN [OUT] [--to tinygpt|hf|gguf] [--out OUT]`: rewrite a model in another form.
// IN is any model (.tinygpt v1/v2/v3, a Hugging Face directory or a GGUF file). `--to` defaults
// from OUT's form: a directory (an existing one, or a path ending in '/') is an HF export, `.gguf`
// is GGUF, anything else a .tinygpt file (v3, or v2 for the original TinyGPT with --format v2).
#include <cstdio>
#include <filesystem>
#include <memory>

#include "cli/commands.h"
#include "cli/common_flags.h"
#include "gguf/gguf_model.h"
#include "hf/hf_model.h"
#include "io/model_file.h"
#include "load/model_source.h"
#include "util/error.h"
#include "util/timer.h"

namespace tinygpt::cli {

namespace {

std::string target_form(const std::string& out, const std::string& to) {
    if (!to.empty()) {
        if (to != "tinygpt" && to != "hf" && to != "gguf")
            throw Error("unknown --to '" + to + "' (known: tinygpt, hf, gguf)");
        return to;
    }
    std::error_code ec;
    if (!out.empty() && (out.back() == '/' || std::filesystem::is_directory(out, ec))) return "hf";
    if (out.size() > 5 && out.compare(out.size() - 5, 5, ".gguf") == 0) return "gguf";
    return "tinygpt";
}

struct ConvertCommand {
    std::string in, out_positional, out_flag, to, format = "v3", dtype = "f32";
    bool no_optimizer = false;

    void run() const {
        if (!out_positional.empty() && !out_flag.empty() && out_positional != out_flag)
            throw Error("OUT ('" + out_positional + "') and --out ('" + out_flag +
                        "') name different targets: give one");
        const std::string out = out_flag.empty() ? out_positional : out_flag;
        if (out.empty()) throw Error("convert needs a target: OUT or --out");
        namespace fs = std::filesystem;
        std::error_code ec;
        if (in == out || fs::equivalent(in, out, ec))
            throw Error("convert writes a new file: OUT must differ from IN ('" + in + "')");
        const std::string form = target_form(out, to);
        Timer t;
        if (form == "gguf") {
            if (format != "v3") throw Error("--format applies to .tinygpt files, not to GGUF");
            const gguf::GgufDtype gguf_dtype = gguf::parse_gguf_dtype(dtype);
            const OpenedModel model = open_model(in);
            const std::string name = std::filesystem::path(out).stem().string();
            const gguf::GgufExport result =
                gguf::save_gguf_model(out, model.weights, model.tokenizer, gguf_dtype, name);
            for (const std::string& caveat : result.tokenizer_caveats)
                std::fprintf(stderr, "warning: llama.cpp's tokenizer differs: %s\n",
                             caveat.c_str());
            std::printf("wrote %s (GGUF %s, %s, %d tensors, %.1f MB", out.c_str(),
                        gguf::gguf_arch_name(result.arch), dtype.c_str(), result.tensors,
                        result.file_bytes / 1e6);
            if (result.emulated_dense_layers > 0)
                std::printf(", %d dense block%s written as MoE copies",
                            result.emulated_dense_layers,
                            result.emulated_dense_layers == 1 ? "" : "s");
            std::printf(") from %s (%s) in %.0f ms\n", in.c_str(), model.format.c_str(),
                        t.millis());
            return;
        }
        const OpenedModel model = open_model(in);
        if (form == "hf") {
            if (format != "v3")
                throw Error("--format applies to .tinygpt files, not to a Hugging Face export");
            const hf::HfExport result = hf::save_hf_model(
                out, model.config, model.f32_weights(), model.tokenizer.to_hf_json(),
                model.tokenizer.to_hf_config_json(), model.tokenizer.bos_id(),
                model.tokenizer.eos_id(), hf::parse_hf_dtype(dtype));
            std::printf("wrote %s (Hugging Face %s, %s, %zu files) from %s (%s) in %.0f ms\n",
                        out.c_str(), hf::model_type_name(result.type), dtype.c_str(),
                        result.files.size(), in.c_str(), model.format.c_str(), t.millis());
            return;
        }
        if (format != "v2" && format != "v3")
            throw Error("unknown --format '" + format + "' (known: v2, v3)");
        SaveOptions options;
        options.version = format == "v2" ? 2 : 3;
        options.dtype = parse_weight_dtype(dtype);
        set_tokenizer(options, model.tokenizer);
        const bool inference_copy = options.dtype != WeightDtype::F32;
        const ModelFile* file = model.file.get();
        options.include_optimizer =
            file && !no_optimizer && !inference_copy && file->has_optimizer_state();
        options.include_training_state = options.include_optimizer && file->has_training_state();
        const TrainingState state = file ? file->training_state() : TrainingState{};
        if (options.include_optimizer)  // f32 weights with their moments
            save_model_file(out, model.config, model.f32_weights(), file->adam_m(), file->adam_v(),
                            state, options);
        else  // from the stored types: tensors already in their target type keep every bit
            save_model_file(out, model.weights, state, options);
        std::printf("wrote %s (format v%d, weights %s%s) from %s (%s) in %.0f ms\n", out.c_str(),
                    options.version, dtype_name(options.dtype),
                    options.include_optimizer ? ", with optimizer state" : ", no optimizer state",
                    in.c_str(), model.format.c_str(), t.millis());
    }
};

}  // namespace

void register_convert(CLI::App& app) {
    auto state = std::make_shared<ConvertCommand>();
    CLI::App* cmd = app.add_subcommand(
        "convert",
        "Rewrite a model: .tinygpt v2/v3 (v3: f32/bf16/f16/q8_0), a Hugging Face directory, or "
        "GGUF (f32/f16/bf16/q8_0) for llama.cpp");
    cmd->add_option("in", state->in,
                    "Model to read: a .tinygpt file, a Hugging Face directory or a GGUF file")
        ->required();
    cmd->add_option("out", state->out_positional, "Target (the same as --out)")
        ->check(non_empty_path());
    cmd->add_option("--out", state->out_flag,
                    "Target: a .tinygpt file, a directory (HF) or a .gguf file")
        ->check(non_empty_path());
    cmd->add_option("--to", state->to,
                    "tinygpt, hf or gguf (default: hf for a directory or a path ending in '/', "
                    "gguf for a .gguf name, else tinygpt)");
    cmd->add_option("--format", state->format, ".tinygpt: v3 (ours) or v2 (the original's)")
        ->capture_default_str();
    cmd->add_option("--dtype", state->dtype,
                    "Weights: f32, or bf16 / f16 / q8_0 (a .tinygpt or GGUF inference copy: "
                    "norms, biases and the router stay f32), or bf16 / f16 (the safetensors "
                    "dtype)")
        ->capture_default_str();
    cmd->add_flag("--no-optimizer", state->no_optimizer,
                  "Leave out the AdamW moments and training state");
    cmd->callback([state] { state->run(); });
}

}  // namespace tinygpt::cli
