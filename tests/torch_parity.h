// Shared by the two PyTorch parity tests: access to the reference dump, the relative error
// measure, and the backward + AdamW half of the check (gradients of every tensor, then ten AdamW
// steps on the dump's batch against the reference's losses and final weights).
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "model/model.h"
#include "tensor_archive.h"
#include "train/adamw.h"

namespace tinygpt::test {

using Archive = std::map<std::string, ArchiveTensor>;

inline const ArchiveTensor& get(const Archive& a, const std::string& name) {
    auto it = a.find(name);
    if (it == a.end()) throw std::runtime_error("reference dump lacks " + name);
    return it->second;
}

// Max |a − b| over a tensor, relative to the reference's largest magnitude.
inline double relative_error(const float* ours, const std::vector<float>& ref) {
    double scale = 1e-6, err = 0;
    for (size_t i = 0; i < ref.size(); ++i) {
        scale = std::max(scale, static_cast<double>(std::fabs(ref[i])));
        err = std::max(err, static_cast<double>(std::fabs(ours[i] - ref[i])));
    }
    return err / scale;
}

// Copies the dump's `param.<name>` tensors into the model (shapes must match).
inline void load_weights(Model& model, const Archive& a) {
    for (const ParamInfo& p : model.layout().entries()) {
        const auto& t = get(a, "param." + p.name);
        ASSERT_EQ(t.shape, p.shape) << p.name;
        std::copy(t.f32.begin(), t.f32.end(), model.params() + p.offset);
    }
}

// `model` holds the dump's weights; the batch is [B, T].
inline void check_gradients_and_adamw(Model& model, const Archive& a,
                                      const std::vector<int>& inputs,
                                      const std::vector<int>& targets, int B, int T) {
    model.zero_grads();
    model.forward(inputs.data(), targets.data(), B, T);
    model.backward();
    for (const ParamInfo& p : model.layout().entries())
        EXPECT_LT(relative_error(model.grads() + p.offset, get(a, "grad." + p.name).f32), 2e-3)
            << "grad." << p.name;

    const float lr = get(a, "config.lr").f32[0], clip = get(a, "config.grad_clip").f32[0];
    const int steps = get(a, "config.adam_steps").i32[0];
    AdamW opt(model.buffer_floats(), model.layout().decay_count(),
              AdamWConfig{0.9f, 0.95f, 1e-8f, get(a, "config.weight_decay").f32[0]});
    const auto& losses = get(a, "adamw.losses").f32;
    model.zero_grads();
    for (int s = 0; s < steps; ++s) {
        const ForwardResult step = model.forward(inputs.data(), targets.data(), B, T);
        EXPECT_NEAR(step.loss, losses[s], 2e-4) << "loss before AdamW step " << s;
        model.backward();
        opt.step(model.params(), model.grads(), lr, clip);
    }
    for (const ParamInfo& p : model.layout().entries())
        EXPECT_LT(relative_error(model.params() + p.offset, get(a, "adamw.param." + p.name).f32),
                  1e-3)
            << "after AdamW: " << p.name;
}

}  // namespace tinygpt::test
