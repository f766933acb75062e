// Sparse upcycling (Komatsuzaki et al., 2022): a dense model becomes a mixture of experts whose
// experts start as copies of the MLP they replace, so that training goes on from what the dense
// model learned instead of from scratch. Everything but the chosen layers' feed-forward is
// copied as it is; each chosen layer gets E copies of its MLP, a new router and (Llama family,
// optionally) a shared expert that starts silent. docs/UPCYCLE.md states when the result computes
// exactly the dense model's function; upcycle_exactness() says it for one configuration.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "model/config.h"
#include "model/model_weights.h"

namespace tinygpt {

// The new router's weights: zeros (every token's softmax is uniform, 1/E per expert, and top-K
// takes experts 0..K−1 on the tie) or N(0, 0.02), the router's initialisation in `train`.
enum class RouterInit { Zero, Random };
const char* router_init_name(RouterInit init);          // "zero", "random"
RouterInit parse_router_init(const std::string& name);  // throws tinygpt::Error

struct UpcycleOptions {
    int experts = 8;  // E ≥ 2 copies of each chosen layer's MLP
    int topk = 2;     // K ≤ E experts per token
    int moe_ffn = 0;  // the expert width: 0 or the dense d_mlp (copies have the MLP's width)
    // Llama family: an always-on shared expert of this width (0 = none). Its gate and up
    // projections start random and its down projection at zero, so it adds nothing at first.
    int shared_ffn = 0;
    int moe_every = 1, moe_dense_first = 0;  // which layers: moe_layout_rule()
    NormTopk norm_topk = NormTopk::Auto;
    RouterInit router_init = RouterInit::Random;
    // σ ≥ 0: every weight w of every expert becomes w·(1 + σ·ε), ε ~ N(0, 1) drawn per weight,
    // so that the copies differ from the start (relative, so it suits any weight scale).
    float expert_noise = 0.0f;
    uint64_t seed = 1337;  // the random router and the noise
};

// The MoE model's config: `dense` with the options' experts, top-K, widths, layer layout and
// gate rule; the training-only MoE options (aux and z-loss weights, jitter, capacity) keep their
// defaults. Throws tinygpt::Error (one line) when `dense` already has MoE layers, when the
// expert width differs from the dense MLP's, or for options ModelConfig::validate() refuses.
ModelConfig upcycled_config(const ModelConfig& dense, const UpcycleOptions& options);

struct UpcycledModel {
    ModelConfig config;          // upcycled_config(dense, options)
    std::vector<float> weights;  // f32, ParameterLayout(config) order (padding zero)
};

// Upcycles a dense model whose weights may be stored in any type (bf16, q8_0, … are widened to
// f32: the result is for training). Deterministic for options.seed.
UpcycledModel upcycle(const ModelWeights& dense, const UpcycleOptions& options);

// What the upcycled model computes at step 0 compared with the dense one, derived from the MoE
// formula (docs/MODEL.md). With identical experts a layer's output is (Σ_K gates)·MLP(m): the
// dense output exactly when the gates sum to 1 (renormalised gates, or K = E), else scaled.
struct UpcycleExactness {
    bool exact = false;  // the same logits as the dense model, float rounding aside
    // Each MoE layer's output ÷ the dense MLP's at step 0: 1 when exact; K/E for a zero router
    // without renormalisation; 0 when it is not one number (per token with a random router
    // without renormalisation, or experts perturbed by noise).
    double scale = 1.0;
    // For the command's output: the statement ("exact: …" / "not exact: …"), then notes on
    // what training will see (the routing of a zero router, a shared expert that starts silent).
    std::vector<std::string> lines;
};

// `moe` is upcycled_config(dense, options).
UpcycleExactness upcycle_exactness(const ModelConfig& moe, const UpcycleOptions& options);

}  // namespace tinygpt
