#include "model/upcycle.h"

#include <cmath>
#include <cstdio>

#include "model/params.h"
#include "util/error.h"
#include "util/rng.h"

namespace tinygpt {

namespace {

std::string number(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", v);
    return buf;
}

// "K/E = 2/8 = 0.25"
std::string k_over_e(const ModelConfig& moe) {
    return "K/E = " + std::to_string(moe.topk) + "/" + std::to_string(moe.experts) + " = " +
           number(static_cast<double>(moe.topk) / moe.experts);
}

// Why the gates are not renormalised (called only when they are not).
std::string no_renormalisation_reason(const ModelConfig& moe) {
    return moe.norm_topk == NormTopk::Off ? "--moe-norm-topk off"
                                          : "top-1 with --moe-norm-topk auto, as in Switch";
}

}  // namespace

const char* router_init_name(RouterInit init) {
    return init == RouterInit::Zero ? "zero" : "random";
}

RouterInit parse_router_init(const std::string& name) {
    if (name == "zero") return RouterInit::Zero;
    if (name == "random") return RouterInit::Random;
    throw Error("--router-init must be zero or random (got '" + name + "')");
}

ModelConfig upcycled_config(const ModelConfig& dense, const UpcycleOptions& o) {
    // One (E, K, width) per model: a model with MoE layers already has its own, so it is refused
    // rather than partly upcycled.
    require(!dense.is_moe(),
            "upcycling starts from a dense model; this one already has MoE layers (" +
                dense.describe() + ")");
    require(o.experts >= 2, "--experts must be at least 2 (got " + std::to_string(o.experts) + ")");
    require(o.topk >= 1 && o.topk <= o.experts, "--topk must be in [1, --experts " +
                                                    std::to_string(o.experts) + "] (got " +
                                                    std::to_string(o.topk) + ")");
    require(o.moe_ffn == 0 || o.moe_ffn == dense.d_mlp,
            "--moe-ffn " + std::to_string(o.moe_ffn) + " differs from the dense MLP width " +
                std::to_string(dense.d_mlp) +
                ": the experts start as copies of the MLP, so they have its width");
    require(o.shared_ffn == 0 || dense.is_llama(),
            "--moe-shared-ffn needs a Llama-family model (this one is " +
                std::string(arch_name(dense.arch)) + ")");
    require(o.expert_noise >= 0.0f && o.expert_noise < 1e30f,
            "--expert-noise must be a finite number >= 0");
    ModelConfig moe = dense;
    moe.experts = o.experts;
    moe.topk = o.topk;
    moe.moe_ffn = 0;  // the dense width, which is the only one copies can have
    moe.shared_ffn = o.shared_ffn;
    moe.moe_layers = o.moe_every != 1 || o.moe_dense_first != 0
                         ? moe_layout_rule(moe.layers, o.moe_every, o.moe_dense_first)
                         : std::vector<char>{};
    moe.norm_topk = o.norm_topk;
    moe.validate();
    return moe;
}

UpcycledModel upcycle(const ModelWeights& dense, const UpcycleOptions& o) {
    UpcycledModel out;
    out.config = upcycled_config(dense.config(), o);
    const ParameterLayout layout(out.config);
    const ParameterLayout& dense_layout = dense.layout();
    out.weights.assign(layout.total(), 0.0f);
    Rng rng(o.seed);
    for (const ParamInfo& p : layout.entries()) {
        float* dst = out.weights.data() + p.offset;
        const TensorId& id = p.id;
        if (id.role == TensorRole::Router) {
            if (o.router_init == RouterInit::Random) init_tensor(p, dst, rng);
            continue;  // else zeros
        }
        if (id.expert == kSharedExpert || id.role == TensorRole::SharedExpertGate) {
            // A module the dense model has no counterpart for: initialised as `train` would,
            // except the down projection, zero, so that it adds nothing until it is trained.
            if (id.role != TensorRole::FfnDown) init_tensor(p, dst, rng);
            continue;
        }
        // Every other tensor is the dense model's: itself, or for a routed expert the dense MLP
        // of its layer (the same role and shape: the expert width is d_mlp).
        TensorId source = id;
        if (id.is_routed_expert()) source.expert = kDenseFfn;
        const ParamInfo& from = dense_layout.at(source);
        require(from.shape == p.shape,
                "upcycle: " + describe_tensor(id) + " and its source differ in shape");
        tensor_to_f32(dense.view(source), p.numel, dst);
        if (id.is_routed_expert() && o.expert_noise > 0.0f)
            for (size_t i = 0; i < p.numel; ++i)
                dst[i] *= static_cast<float>(1.0 + o.expert_noise * rng.normal());
    }
    return out;
}

UpcycleExactness upcycle_exactness(const ModelConfig& moe, const UpcycleOptions& o) {
    // A layer's output is Σ_{s<K} g_s·Expert_{e_s}(m) (+ the shared expert's term, zero at first).
    // With identical experts that is (Σ g_s)·MLP(m): exact when the gates sum to 1.
    UpcycleExactness x;
    const bool renormalised = moe.renormalize_topk();
    const bool all_chosen = moe.topk == moe.experts;
    const bool zero_router = o.router_init == RouterInit::Zero;
    std::string gate_sum;  // why Σ g_s = 1, or what it is instead
    if (renormalised) {
        gate_sum =
            "the K = " + std::to_string(moe.topk) + " chosen gates are renormalised to sum to 1";
    } else if (all_chosen) {
        gate_sum = "all E = K experts are chosen, so the gates (the whole softmax) sum to 1";
    } else if (zero_router) {
        x.scale = static_cast<double>(moe.topk) / moe.experts;
        gate_sum = "the gates are not renormalised (" + no_renormalisation_reason(moe) +
                   ") and the zero router gives each one 1/E, so each MoE layer's output is " +
                   k_over_e(moe) + " times the dense MLP's";
    } else {
        x.scale = 0.0;
        gate_sum = "the gates are not renormalised (" + no_renormalisation_reason(moe) +
                   "), so each MoE layer's output is the dense MLP's times the sum of the "
                   "token's K chosen router probabilities (at least " +
                   k_over_e(moe) + ", near it for the small random router)";
    }
    const bool gates_sum_to_one = renormalised || all_chosen;
    if (o.expert_noise > 0.0f) {
        x.scale = 0.0;
        std::string line = "not exact: --expert-noise " + number(o.expert_noise) +
                           " perturbs every expert weight (w·(1 + σ·ε), ε ~ N(0, 1)), so the "
                           "experts, and each MoE layer's output, differ from the dense MLP by "
                           "a relative amount of the order of σ";
        if (!gates_sum_to_one) line += "; besides, " + gate_sum;
        x.lines.push_back(line);
    } else if (gates_sum_to_one) {
        x.exact = true;
        x.lines.push_back(
            "exact: at step 0 the model computes the dense model's function (to float "
            "rounding): the experts of each MoE layer are copies of its MLP and " +
            gate_sum);
    } else {
        x.lines.push_back("not exact: " + gate_sum + "; --moe-norm-topk on makes it exact");
    }
    if (moe.shared_ffn > 0)
        x.lines.push_back("the shared expert (width " + std::to_string(moe.shared_ffn) +
                          ") starts with a zero down projection: it adds nothing until trained");
    if (renormalised && moe.topk == 1)
        x.lines.push_back(
            "with top-1 and renormalised gates every gate is 1: the router learns only from the "
            "load-balance and z losses");
    if (zero_router) {
        const std::string first_k =
            moe.topk == 1 ? "expert 0" : "experts 0.." + std::to_string(moe.topk - 1);
        std::string line = "the zero router sends every token to " + first_k +
                           " at step 0 (ties go to the lower index)";
        if (o.expert_noise == 0.0f)
            line +=
                "; identical experts that see the same tokens get the same updates, so they stay "
                "copies until the load-balance loss spreads the tokens (--router-init random or "
                "--expert-noise breaks the symmetry at once)";
        x.lines.push_back(line);
    }
    return x;
}

}  // namespace tinygpt
