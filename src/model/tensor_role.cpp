#include "model/tensor_role.h"

#include "util/error.h"

namespace tinygpt {

namespace {

using R = TensorRole;

bool is_ffn_role(R role) {
    switch (role) {
        case R::FfnGate:
        case R::FfnUp:
        case R::FfnDown:
        case R::FfnIn:
        case R::FfnInBias:
        case R::FfnOut:
        case R::FfnOutBias:
            return true;
        default:
            return false;
    }
}

// The suffix of a feed-forward matrix's name inside its module.
const char* ffn_suffix(R role) {
    switch (role) {
        case R::FfnGate:
            return "gate_proj.weight";
        case R::FfnUp:
            return "up_proj.weight";
        case R::FfnDown:
            return "down_proj.weight";
        case R::FfnIn:
            return "fc_in.weight";
        case R::FfnInBias:
            return "fc_in.bias";
        case R::FfnOut:
            return "fc_out.weight";
        default:
            return "fc_out.bias";
    }
}

std::string gpt_name(const TensorId& id) {
    const std::string b = "blocks." + std::to_string(id.layer) + ".";
    switch (id.role) {
        case R::TokenEmbedding:
            return "token_embedding.weight";
        case R::PositionEmbedding:
            return "position_embedding.weight";
        case R::FinalNorm:
            return "ln_final.weight";
        case R::FinalNormBias:
            return "ln_final.bias";
        case R::AttnNorm:
            return b + "ln1.weight";
        case R::AttnNormBias:
            return b + "ln1.bias";
        case R::AttnQ:
            return b + "attn.q_proj.weight";
        case R::AttnK:
            return b + "attn.k_proj.weight";
        case R::AttnV:
            return b + "attn.v_proj.weight";
        case R::AttnO:
            return b + "attn.o_proj.weight";
        case R::AttnQBias:
            return b + "attn.q_proj.bias";
        case R::AttnKBias:
            return b + "attn.k_proj.bias";
        case R::AttnVBias:
            return b + "attn.v_proj.bias";
        case R::AttnOBias:
            return b + "attn.o_proj.bias";
        case R::FfnNorm:
            return b + "ln2.weight";
        case R::FfnNormBias:
            return b + "ln2.bias";
        case R::Router:
            return b + "moe.router.weight";
        default:
            break;
    }
    if (is_ffn_role(id.role) && id.expert == kDenseFfn) return b + "mlp." + ffn_suffix(id.role);
    if (is_ffn_role(id.role) && id.expert >= 0)
        return b + "moe.experts." + std::to_string(id.expert) + "." + ffn_suffix(id.role);
    throw Error(std::string("the GPT family has no tensor ") + describe_tensor(id));
}

std::string llama_name(const TensorId& id) {
    const std::string b = "model.layers." + std::to_string(id.layer) + ".";
    switch (id.role) {
        case R::TokenEmbedding:
            return "model.embed_tokens.weight";
        case R::FinalNorm:
            return "model.norm.weight";
        case R::OutputHead:
            return "lm_head.weight";
        case R::AttnNorm:
            return b + "input_layernorm.weight";
        case R::AttnQ:
            return b + "self_attn.q_proj.weight";
        case R::AttnK:
            return b + "self_attn.k_proj.weight";
        case R::AttnV:
            return b + "self_attn.v_proj.weight";
        case R::AttnO:
            return b + "self_attn.o_proj.weight";
        case R::AttnQBias:
            return b + "self_attn.q_proj.bias";
        case R::AttnKBias:
            return b + "self_attn.k_proj.bias";
        case R::AttnVBias:
            return b + "self_attn.v_proj.bias";
        case R::AttnOBias:
            return b + "self_attn.o_proj.bias";
        case R::AttnQNorm:
            return b + "self_attn.q_norm.weight";
        case R::AttnKNorm:
            return b + "self_attn.k_norm.weight";
        case R::FfnNorm:
            return b + "post_attention_layernorm.weight";
        case R::Router:
            return b + "mlp.gate.weight";
        case R::SharedExpertGate:
            return b + "mlp.shared_expert_gate.weight";
        case R::FfnGate:
        case R::FfnUp:
        case R::FfnDown: {
            const std::string module = id.expert == kDenseFfn ? "mlp."
                                       : id.expert == kSharedExpert
                                           ? "mlp.shared_expert."
                                           : "mlp.experts." + std::to_string(id.expert) + ".";
            return b + module + ffn_suffix(id.role);
        }
        default:
            break;
    }
    throw Error(std::string("the Llama family has no tensor ") + describe_tensor(id));
}

// Rank of a role inside its part of a layer, in the family's canonical order.
int role_rank(Arch arch, R role) {
    static constexpr R kGpt[] = {R::AttnNorm,
                                 R::AttnNormBias,
                                 R::AttnQ,
                                 R::AttnQBias,
                                 R::AttnK,
                                 R::AttnKBias,
                                 R::AttnV,
                                 R::AttnVBias,
                                 R::AttnO,
                                 R::AttnOBias,
                                 R::FfnNorm,
                                 R::FfnNormBias,
                                 R::FfnIn,
                                 R::FfnInBias,
                                 R::FfnOut,
                                 R::FfnOutBias,
                                 R::Router,
                                 R::TokenEmbedding,
                                 R::PositionEmbedding,
                                 R::FinalNorm,
                                 R::FinalNormBias};
    static constexpr R kLlama[] = {
        R::AttnNorm,         R::AttnQ,          R::AttnQBias, R::AttnK,
        R::AttnKBias,        R::AttnV,          R::AttnVBias, R::AttnO,
        R::AttnOBias,        R::AttnQNorm,      R::AttnKNorm, R::FfnNorm,
        R::FfnGate,          R::FfnUp,          R::FfnDown,   R::Router,
        R::SharedExpertGate, R::TokenEmbedding, R::FinalNorm, R::OutputHead};
    const R* begin = arch == Arch::Gpt ? std::begin(kGpt) : std::begin(kLlama);
    const R* end = arch == Arch::Gpt ? std::end(kGpt) : std::end(kLlama);
    for (const R* p = begin; p != end; ++p)
        if (*p == role) return static_cast<int>(p - begin);
    return 255;
}

}  // namespace

const char* tensor_role_name(TensorRole role) {
    static constexpr const char* kNames[] = {"token_embedding", "position_embedding",
                                             "final_norm",      "final_norm_bias",
                                             "output_head",     "attn_norm",
                                             "attn_norm_bias",  "attn_q",
                                             "attn_k",          "attn_v",
                                             "attn_o",          "attn_q_bias",
                                             "attn_k_bias",     "attn_v_bias",
                                             "attn_o_bias",     "attn_q_norm",
                                             "attn_k_norm",     "ffn_norm",
                                             "ffn_norm_bias",   "ffn_gate",
                                             "ffn_up",          "ffn_down",
                                             "ffn_in",          "ffn_in_bias",
                                             "ffn_out",         "ffn_out_bias",
                                             "router",          "shared_expert_gate"};
    const size_t i = static_cast<size_t>(role);
    return i < std::size(kNames) ? kNames[i] : "?";
}

std::string describe_tensor(const TensorId& id) {
    std::string out;
    if (id.layer >= 0) out += "layer " + std::to_string(id.layer) + " ";
    if (id.expert >= 0) out += "expert " + std::to_string(id.expert) + " ";
    if (id.expert == kSharedExpert) out += "shared expert ";
    return out + tensor_role_name(id.role);
}

std::string tinygpt_tensor_name(Arch arch, const TensorId& id) {
    return arch == Arch::Gpt ? gpt_name(id) : llama_name(id);
}

uint64_t canonical_order_key(Arch arch, const TensorId& id) {
    // section: 0 before the layers, 1 the layers, 2 after. The GPT manifest puts the final norm
    // first; HF puts it (and the head) last.
    uint64_t section = 1;
    if (id.layer < 0) {
        const bool first =
            id.role == R::TokenEmbedding || id.role == R::PositionEmbedding ||
            (arch == Arch::Gpt && (id.role == R::FinalNorm || id.role == R::FinalNormBias));
        section = first ? 0 : 2;
    }
    // Inside a layer: attention and norms (part 0), then the feed-forward (part 1) in module
    // order: dense MLP, router, routed experts, shared expert, shared gate.
    const bool ffn = is_ffn_role(id.role) || id.role == R::Router || id.role == R::SharedExpertGate;
    uint64_t slot = 0;
    if (ffn) {
        if (id.role == R::Router)
            slot = 1;
        else if (id.role == R::SharedExpertGate)
            slot = 0xFFFF;
        else if (id.expert >= 0)
            slot = 2 + static_cast<uint64_t>(id.expert);
        else if (id.expert == kSharedExpert)
            slot = 0xFFFE;
    }
    const uint64_t layer = static_cast<uint64_t>(id.layer < 0 ? 0 : id.layer);
    return (section << 60) | (layer << 40) | (uint64_t{ffn} << 36) | (slot << 8) |
           static_cast<uint64_t>(role_rank(arch, id.role));
}

}  // namespace tinygpt
