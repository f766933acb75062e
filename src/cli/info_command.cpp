// `tinygpt info`: what the engine runs on, the memory available, and the presets of both
// families with their parameter counts and what training them holds in memory.
#include <cstdio>

#include "cli/commands.h"
#include "cli/train_flags.h"
#include "model/config.h"
#include "model/memory_estimate.h"
#include "util/byte_size.h"
#include "util/memory_available.h"
#include "util/sysinfo.h"

namespace tinygpt::cli {

namespace {

// What `train` holds for this model at the default batch, with the default inline samples.
std::string training_memory(const ModelConfig& cfg) {
    TrainingMemoryPlan plan;
    plan.batch = default_batch_for(cfg.d_model);
    plan.sample_prompt_tokens = 6;  // "ROMEO:"
    plan.sample_tokens = 60;
    return format_bytes(estimate_training(cfg, plan).total_bytes());
}

void print_presets(Arch arch) {
    std::printf(
        "presets, %s family (MoE = every block's MLP replaced by 8 experts, top-2; "
        "train memory at the default batch):\n",
        arch_name(arch));
    std::printf("  %-9s %6s %7s %5s %5s %6s %15s %15s %15s %11s %11s\n", "name", "layers",
                "d_model", "heads", "ctx", "d_mlp", "dense params", "MoE params", "MoE active",
                "dense train", "MoE train");
    for (const auto& name : preset_names()) {
        ModelConfig c = preset_config(name, arch);
        if (c.arch != arch) continue;  // `tutorial` is a Llama-family preset
        c.experts = c.topk = 1;
        const int64_t dense = c.total_params();
        const std::string dense_memory = training_memory(c);
        c.experts = 8;
        c.topk = 2;
        std::printf("  %-9s %6d %7d %5d %5d %6d %15s %15s %15s %11s %11s\n", name.c_str(), c.layers,
                    c.d_model, c.heads, c.ctx, c.d_mlp, with_commas(dense).c_str(),
                    with_commas(c.total_params()).c_str(), with_commas(c.active_params()).c_str(),
                    dense_memory.c_str(), training_memory(c).c_str());
    }
}

}  // namespace

void register_info(CLI::App& app) {
    CLI::App* cmd =
        app.add_subcommand("info", "Show BLAS, threads, SIMD level and the model presets");
    cmd->callback([] {
        std::printf("tinygpt %s\n", TINYGPT_VERSION);
        std::printf("  BLAS     %s\n  threads  %d\n  SIMD     %s\n", blas_description().c_str(),
                    num_threads(), simd_description().c_str());
        const AvailableMemory memory = available_memory();
        std::printf("  memory   %s available (%s)\n", format_bytes(memory.bytes).c_str(),
                    memory.source.empty() ? "unknown" : memory.source.c_str());
        print_presets(Arch::Gpt);
        print_presets(Arch::Llama);
    });
}

}  // namespace tinygpt::cli
