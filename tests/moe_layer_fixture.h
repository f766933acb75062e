// Random weights of one MoE layer (router and every expert in one buffer) with views of any
// range of its experts: the single-process layer takes all of them, a rank of an expert-parallel
// group its shard. Shared by tests/test_expert_shard.cpp and tests/mpi/test_expert_parallel.cpp.
#pragma once
#include <vector>

#include "moe/moe_layer.h"
#include "test_util.h"

namespace tinygpt::test {

// Floats of one expert's tensors, stored back to back: GELU w_in, b_in, w_out, b_out; SwiGLU
// gate|up, down.
inline size_t expert_floats(const MoeShape& s) {
    const size_t C = s.C, M = s.M;
    return s.ffn == FfnKind::SwiGlu ? 3 * M * C : 2 * M * C + M + C;
}

// Views of experts [first, first + count) of a buffer of such experts.
template <typename F, typename Vec>
std::vector<MlpTensors<F>> expert_views(Vec& base, const MoeShape& s, int first, int count) {
    std::vector<MlpTensors<F>> list;
    F* p = base.data() + expert_floats(s) * first;
    const size_t MC = static_cast<size_t>(s.M) * s.C;
    for (int e = 0; e < count; ++e) {
        MlpTensors<F> t;
        if (s.ffn == FfnKind::SwiGlu) {
            t.w_in = p, p += 2 * MC;
            t.w_out = p, p += MC;
        } else {
            t.w_in = p, p += MC;
            t.b_in = p, p += s.M;
            t.w_out = p, p += MC;
            t.b_out = p, p += s.C;
        }
        list.push_back(t);
    }
    return list;
}

struct MoeLayerWeights {
    MoeShape shape;
    std::vector<float> router, experts;  // expert_floats(shape) per expert

    MoeLayerWeights(const MoeShape& s, uint64_t seed)
        : shape(s),
          router(random_vector(static_cast<size_t>(s.experts) * s.C, seed, 1.5f)),
          experts(random_vector(expert_floats(s) * s.experts, seed + 1, 0.4f)) {}

    size_t per_expert() const { return expert_floats(shape); }
    MoeParams params(int first, int count) const {
        return {router.data(), expert_views<const float>(experts, shape, first, count)};
    }
    MoeParams params() const { return params(0, shape.experts); }
};

// Gradient buffers shaped like MoeLayerWeights.
struct MoeLayerGrads {
    std::vector<float> router, experts;
    explicit MoeLayerGrads(const MoeLayerWeights& w)
        : router(w.router.size(), 0.0f), experts(w.experts.size(), 0.0f) {}
    MoeGrads grads(const MoeLayerWeights& w, int first, int count) {
        return {router.data(), expert_views<float>(experts, w.shape, first, count)};
    }
};

}  // namespace tinygpt::test
