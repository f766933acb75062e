// Binding a model's tensors to the fields of ModelTensors by their role: one switch for both
// families, shared by the training buffers (f32 pointers, model/params.cpp) and inference's
// typed weights (infer/inference_tensors.cpp). Fused operands rely on the layout's adjacency (k, v
// after q; up after gate): only the first of each group is bound.
#pragma once
#include <cstddef>

#include "model/params.h"

namespace tinygpt {

// resolve(entry index) gives the F* of that entry of layout.entries().
template <typename F, typename Resolve>
ModelTensors<F> bind_tensors_with(const ParameterLayout& layout, const ModelConfig& cfg,
                                  Resolve&& resolve) {
    using R = TensorRole;
    ModelTensors<F> t;
    const int first_expert = layout.shard().all() ? 0 : layout.shard().first;
    t.blocks.resize(cfg.layers);
    for (int i = 0; i < cfg.layers; ++i) {
        t.blocks[i].moe = cfg.is_moe_layer(i);
        if (t.blocks[i].moe) t.blocks[i].experts.resize(layout.shard().size(cfg.experts));
    }
    for (size_t index = 0; index < layout.entries().size(); ++index) {
        const TensorId& id = layout.entries()[index].id;
        if (layout.entries()[index].joins_previous) continue;  // read with the one before
        F* ptr = resolve(index);
        if (id.layer < 0) {
            switch (id.role) {
                case R::TokenEmbedding:
                    t.wte = ptr;
                    break;
                case R::PositionEmbedding:
                    t.wpe = ptr;
                    break;
                case R::FinalNorm:
                    t.lnf_w = ptr;
                    break;
                case R::FinalNormBias:
                    t.lnf_b = ptr;
                    break;
                case R::OutputHead:
                    t.head = ptr;
                    break;
                default:
                    break;
            }
            continue;
        }
        BlockTensors<F>& b = t.blocks[id.layer];
        MlpTensors<F>& mlp = id.expert == kDenseFfn       ? b.mlp
                             : id.expert == kSharedExpert ? b.shared.mlp
                                                          : b.experts[id.expert - first_expert];
        switch (id.role) {
            case R::AttnNorm:
                b.ln1_w = ptr;
                break;
            case R::AttnNormBias:
                b.ln1_b = ptr;
                break;
            case R::AttnQ:
                b.qkv_w = ptr;
                break;
            case R::AttnQBias:
                b.qkv_b = ptr;
                break;
            case R::AttnO:
                b.o_w = ptr;
                break;
            case R::AttnOBias:
                b.o_b = ptr;
                break;
            case R::AttnQNorm:
                b.q_norm = ptr;
                break;
            case R::AttnKNorm:
                b.k_norm = ptr;
                break;
            case R::FfnNorm:
                b.ln2_w = ptr;
                break;
            case R::FfnNormBias:
                b.ln2_b = ptr;
                break;
            case R::Router:
                b.router = ptr;
                break;
            case R::SharedExpertGate:
                b.shared.gate = ptr;
                break;
            case R::FfnGate:
            case R::FfnIn:
                mlp.w_in = ptr;
                break;
            case R::FfnInBias:
                mlp.b_in = ptr;
                break;
            case R::FfnDown:
            case R::FfnOut:
                mlp.w_out = ptr;
                break;
            case R::FfnOutBias:
                mlp.b_out = ptr;
                break;
            default:  // k, v (and their biases), up: contiguous after q / gate
                break;
        }
    }
    if (!t.head) t.head = t.wte;  // tied
    return t;
}

}  // namespace tinygpt
