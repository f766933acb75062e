// Model configuration: the original TinyGPT's presets, shape overrides and validation.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "moe/moe_layer.h"

namespace tinygpt {

struct ModelConfig {
    std::string preset = "tiny";
    int vocab = 256;  // byte-level
    int ctx = 128;
    int layers = 4;
    int d_model = 128;
    int heads = 4;
    int d_mlp = 512;
    int experts = 1;  // 1 = dense MLP in every block
    int topk = 1;
    float aux_weight = 0.01f;
    DispatchMode dispatch = DispatchMode::Sparse;

    bool is_moe() const { return experts > 1; }
    int head_dim() const { return d_model / heads; }

    // Throws tinygpt::Error naming the offending field.
    void validate() const;

    // Parameters of one expert (or of the dense MLP).
    int64_t mlp_params() const;
    int64_t total_params() const;
    // Parameters that touch one token: all but the (E − K) experts it is not routed to.
    int64_t active_params() const;

    std::string describe() const;  // "tiny · 4 layers · d_model 128 · … · MoE 4 experts top-2"
};

// The original's presets by name (tiny, small, huge, mega, behemoth, titan). Throws for others.
ModelConfig preset_config(const std::string& name);
std::vector<std::string> preset_names();

// Default micro-batch by width, as the original: d ≥ 1024 → 2, ≥ 512 → 4, ≥ 256 → 8, else 16.
int default_batch_for(int d_model);

// FLOPs of one training step per token (forward + backward = 3 × forward): 6 × the matrix
// parameters a token touches (attention projections, router, its K experts, the tied output
// head) + the causal attention products (6·L·ctx·C: q·kᵀ and p·v over half the positions).
double training_flops_per_token(const ModelConfig& cfg);

}  // namespace tinygpt
