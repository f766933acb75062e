// The flags shared by `train` and `bench-train`: model family and shape (preset + overrides),
// MoE, and the optimisation recipe. Values are collected as parsed and turned into TrainOptions
// afterwards, so a shape flag overrides only its part of the preset.
#pragma once
#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "train/trainer.h"

namespace tinygpt::cli {

struct TrainFlags {
    std::string arch = "gpt";
    std::string preset = "tiny";
    int layers = 0, d_model = 0, heads = 0, d_mlp = 0, ctx = 0;
    int kv_heads = 0, head_dim = 0;
    float rope_theta = 10000.0f, norm_eps = 1e-5f;
    bool qkv_bias = false, tie_embeddings = false;
    std::string qk_norm;  // "" (flag absent or bare: per head when given), "head", "full"
    int experts = 1, topk = 1;
    int moe_ffn = 0, shared_ffn = 0, moe_every = 1, moe_dense_first = 0;
    std::string norm_topk = "auto";
    float aux_weight = 0.01f, z_loss = 0.0f, jitter = 0.0f, capacity_factor = 0.0f;
    std::string dispatch = "sparse";
    int batch = 0, accum = 1;
    int64_t steps = 500;
    std::string schedule = "cosine";
    int64_t lr_warmup = 0;
    float max_lr = 3e-4f, min_lr = 3e-5f, grad_clip = 1.0f;
    double val_split = 0.0;
    uint64_t seed = 1337;
    int threads = 0;
    std::string max_memory;  // --max-memory: "" = what the system has available
    std::string corpus;

    void add_model_flags(CLI::App* cmd);
    // The MoE flags that shape a model but its expert count and top-K: --moe-ffn,
    // --moe-shared-ffn, --moe-norm-topk, --moe-every, --moe-dense-first (part of
    // add_model_flags; `upcycle` takes them alone).
    void add_moe_layout_flags(CLI::App* cmd);
    // `warmup_flag_is_lr` : whether --warmup names the LR warm-up (train) or not (bench-train,
    // where --warmup is the number of untimed steps and --lr-warmup the LR warm-up).
    void add_training_flags(CLI::App* cmd, bool warmup_flag_is_lr);

    // Applies preset, overrides and defaults; validates. Warnings (e.g. a clamped top-K) are
    // appended to `warnings`. Throws tinygpt::Error.
    TrainOptions build(std::vector<std::string>& warnings) const;
    // Options to continue a saved run: the model comes from the file (a shape or MoE-layout
    // flag is refused), the recipe from its training state unless a flag was given (then with a
    // warning); --steps is the absolute target and defaults to the saved run's.
    TrainOptions build_resumed(const ModelConfig& saved_model, const TrainingState& saved,
                               const std::string& file, std::vector<std::string>& warnings) const;
    // Options for a new run from a loaded model's weights: its architecture (shape flags are
    // refused, except a shorter --ctx for the Llama family, whose positions are not weights),
    // the recipe and the MoE training options from the flags.
    TrainOptions build_initialized(const ModelConfig& loaded, const std::string& file,
                                   std::vector<std::string>& warnings) const;
    std::string corpus_path() const;
    bool given(const std::string& flag) const;  // did the command line set this flag?

  private:
    void apply_model_flags(ModelConfig& m, std::vector<std::string>& warnings) const;
    void apply_recipe(TrainOptions& opt) const;  // batch, schedule, seed, ...: all but the model
    DispatchMode parse_dispatch() const;
    bool lr_warmup_given() const;
    CLI::App* cmd_ = nullptr;
    bool warmup_flag_is_lr_ = true;
};

// "1,234,567"
std::string with_commas(int64_t value);

}  // namespace tinygpt::cli
