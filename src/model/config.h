// Model configuration: the two families (the original's GPT block and the Llama/Qwen block),
// their presets, shape overrides, MoE options and validation. docs/MODEL.md gives the semantics.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "moe/moe_layer.h"

namespace tinygpt {

enum class Arch {
    Gpt,    // the original TinyGPT: LayerNorm, learned positions, GELU MLP with biases, tied head
    Llama,  // Llama/Qwen/Mixtral: RMSNorm, RoPE, GQA, SwiGLU, no biases, untied head
};
const char* arch_name(Arch arch);          // "gpt", "llama"
Arch parse_arch(const std::string& name);  // throws tinygpt::Error naming the known ones

// Renormalise the K selected gates to sum to 1? Auto: yes for K ≥ 2 (Mixtral), no for K = 1
// (Switch: the gate is the probability, so the router still learns from the loss).
enum class NormTopk { Auto, On, Off };
const char* norm_topk_name(NormTopk mode);          // "auto", "on", "off"
NormTopk parse_norm_topk(const std::string& name);  // throws tinygpt::Error

// RMSNorm on q and k before RoPE: per head over head_dim (Qwen3), or over the whole projection,
// heads·head_dim for q and kv_heads·head_dim for k (OLMoE).
enum class QkNorm { None, PerHead, Full };
const char* qk_norm_name(QkNorm mode);          // "none", "head", "full"
QkNorm parse_qk_norm(const std::string& name);  // throws tinygpt::Error

// The per-layer layout that the --moe-every / --moe-dense-first rule gives: layer i is MoE when
// (i + 1) % every == 0 and i >= dense_first (Qwen2-MoE's decoder_sparse_step, dense-first).
std::vector<char> moe_layout_rule(int layers, int every, int dense_first);

struct ModelConfig {
    Arch arch = Arch::Gpt;
    std::string preset = "tiny";
    int vocab = 256;  // byte-level
    int ctx = 128;
    int layers = 4;
    int d_model = 128;
    int heads = 4;
    int d_mlp = 512;  // dense MLP width (SwiGLU width for the Llama family)

    // Llama family only.
    int kv_heads = 0;             // grouped-query attention; 0 = heads
    int head_size = 0;            // per-head width; 0 = d_model / heads (Qwen3 sets it apart)
    float norm_eps = 1e-5f;       // RMSNorm eps
    float rope_theta = 10000.0f;  // RoPE base
    bool qkv_bias = false;        // Qwen2
    bool o_bias = false;          // a bias on o_proj too (HF attention_bias of Llama, Qwen3)
    QkNorm qk_norm = QkNorm::None;
    bool tie_embeddings = false;  // output head = token embedding (always so for GPT)

    // Mixture of experts.
    int experts = 1;  // 1 = dense feed-forward in every block
    int topk = 1;
    int moe_ffn = 0;     // expert width; 0 = d_mlp
    int shared_ffn = 0;  // Qwen2-MoE always-on shared expert width (Llama family); 0 = none
    // Which layers are MoE (1) or dense (0), one entry per layer; empty = every layer is MoE.
    // moe_layout_rule() builds it from the --moe-every / --moe-dense-first rule; an imported
    // checkpoint may have any pattern (Qwen's mlp_only_layers).
    std::vector<char> moe_layers;
    NormTopk norm_topk = NormTopk::Auto;
    float aux_weight = 0.01f;      // load-balance loss weight
    float z_loss_weight = 0.0f;    // router z-loss weight (ST-MoE)
    float jitter = 0.0f;           // training only: router input × U(1 − ε, 1 + ε)
    float capacity_factor = 0.0f;  // training only: > 0 drops pairs over ⌈cf·N·K/E⌉ per expert
    DispatchMode dispatch = DispatchMode::Sparse;

    bool is_llama() const { return arch == Arch::Llama; }
    bool is_moe() const { return experts > 1; }  // some block is MoE
    bool is_moe_layer(int layer) const {
        return experts > 1 &&
               (moe_layers.empty() || (layer >= 0 && layer < static_cast<int>(moe_layers.size()) &&
                                       moe_layers[layer] != 0));
    }
    int moe_layer_count() const;
    bool all_layers_moe() const { return experts > 1 && moe_layer_count() == layers; }
    int head_dim() const { return head_size > 0 ? head_size : d_model / heads; }
    int kv_head_count() const { return kv_heads > 0 ? kv_heads : heads; }
    int q_width() const { return heads * head_dim(); }
    int kv_width() const { return kv_head_count() * head_dim(); }
    int qkv_width() const { return q_width() + 2 * kv_width(); }
    int expert_width() const { return moe_ffn > 0 ? moe_ffn : d_mlp; }
    bool renormalize_topk() const {
        return norm_topk == NormTopk::Auto ? topk > 1 : norm_topk == NormTopk::On;
    }
    bool tied_head() const { return arch == Arch::Gpt || tie_embeddings; }
    bool has_position_table() const { return arch == Arch::Gpt; }
    MoeShape moe_shape(int tokens) const;
    MoeOptions moe_options() const;

    // Throws tinygpt::Error naming the offending flag.
    void validate() const;

    // Parameters of one expert / of the dense feed-forward.
    int64_t expert_params() const;
    int64_t dense_ffn_params() const;
    int64_t total_params() const;
    // The same count in floating point: cannot overflow for absurd configs read from a file.
    double total_params_estimate() const;
    // Parameters that touch one token: all but the (E − K) experts of each MoE block it is not
    // routed to.
    int64_t active_params() const;

    // "llama · tiny · 4 layers · d_model 128 · 4 heads (2 kv) · … · MoE 8 experts top-2 …"
    std::string describe() const;
};

// Presets by name: the original's (tiny, small, huge, mega, behemoth, titan) for either family
// (the Llama family takes the SwiGLU width 8/3·d rounded up to a multiple of 32), and
// "tutorial" (d 768, 12 layers, 8 experts top-2; Llama family). Throws for others.
ModelConfig preset_config(const std::string& name, Arch arch = Arch::Gpt);
std::vector<std::string> preset_names();

// The SwiGLU width that keeps a Llama MLP's parameters near a 4·d GELU MLP's: 8/3·d, rounded up
// to a multiple of 32 (Llama rounds to 256, too coarse for these widths).
int swiglu_width(int d_model);

// Default micro-batch by width, as the original: d ≥ 1024 → 2, ≥ 512 → 4, ≥ 256 → 8, else 16.
int default_batch_for(int d_model);

// FLOPs of one training step per token (forward + backward = 3 × forward): 6 × the matrix
// parameters a token touches (attention projections, routers, its K experts and the shared
// expert, the output head) + the causal attention products (6·L·ctx·C: q·kᵀ and p·v over half
// the positions).
double training_flops_per_token(const ModelConfig& cfg);

}  // namespace tinygpt
