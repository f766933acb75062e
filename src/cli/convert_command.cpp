// `tinygpt convert IN OUT`: rewrite a model file — v1/v2/v3 to v3 or v2 (for the original
// TinyGPT), optionally as a bf16/f16 inference copy without optimizer state.
#include <cstdio>
#include <memory>

#include "cli/commands.h"
#include "io/model_file.h"
#include "util/error.h"
#include "util/timer.h"

namespace tinygpt::cli {

namespace {

struct ConvertCommand {
    std::string in, out, format = "v3", dtype = "f32";
    bool no_optimizer = false;

    void run() const {
        if (format != "v2" && format != "v3")
            throw Error("unknown --format '" + format + "' (known: v2, v3)");
        SaveOptions options;
        options.version = format == "v2" ? 2 : 3;
        options.dtype = parse_weight_dtype(dtype);
        const bool inference_copy = options.dtype != WeightDtype::F32;
        if (in == out)
            throw Error("convert writes a new file: OUT must differ from IN ('" + in + "')");
        Timer t;
        const ModelFile file = ModelFile::read(in);
        options.include_optimizer = !no_optimizer && !inference_copy && file.has_optimizer_state();
        options.include_training_state = options.include_optimizer && file.has_training_state();
        save_model_file(out, file.config(), file.weights(), file.adam_m(), file.adam_v(),
                        file.training_state(), options);
        std::printf("wrote %s (format v%d, weights %s%s) from %s (format v%d) in %.0f ms\n",
                    out.c_str(), options.version, dtype_name(options.dtype),
                    options.include_optimizer ? ", with optimizer state" : ", no optimizer state",
                    in.c_str(), file.version(), t.millis());
    }
};

}  // namespace

void register_convert(CLI::App& app) {
    auto state = std::make_shared<ConvertCommand>();
    CLI::App* cmd =
        app.add_subcommand("convert", "Rewrite a model file (format v2/v3, f32/bf16/f16 weights)");
    cmd->add_option("in", state->in, "Model file to read (.tinygpt v1, v2 or v3)")->required();
    cmd->add_option("out", state->out, "File to write")->required();
    cmd->add_option("--format", state->format, "v3 (ours) or v2 (the original TinyGPT's)")
        ->capture_default_str();
    cmd->add_option("--dtype", state->dtype,
                    "Weights: f32, or bf16 / f16 for an inference copy (v3 only)")
        ->capture_default_str();
    cmd->add_flag("--no-optimizer", state->no_optimizer,
                  "Leave out the AdamW moments and training state");
    cmd->callback([state] { state->run(); });
}

}  // namespace tinygpt::cli
