// Shared helpers for the tests: seeded random tensors, naive references and a central-difference
// gradient checker.
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <vector>

#include "model/config.h"
#include "util/rng.h"

namespace tinygpt::test {

// A GPT config of the given shape (byte vocabulary unless `vocab` says otherwise).
struct Shape {
    int vocab = 256, ctx = 16, layers = 2, d_model = 16, heads = 2, d_mlp = 32;
    int experts = 1, topk = 1;
};
inline ModelConfig model_config(const Shape& s) {
    ModelConfig cfg;
    cfg.preset = "test";
    cfg.vocab = s.vocab;
    cfg.ctx = s.ctx;
    cfg.layers = s.layers;
    cfg.d_model = s.d_model;
    cfg.heads = s.heads;
    cfg.d_mlp = s.d_mlp;
    cfg.experts = s.experts;
    cfg.topk = s.topk;
    return cfg;
}

inline std::vector<float> random_vector(size_t n, uint64_t seed, float scale = 1.0f) {
    Rng rng(seed);
    std::vector<float> v(n);
    for (auto& x : v) x = static_cast<float>(rng.normal() * scale);
    return v;
}

inline double max_abs(const std::vector<float>& v) {
    double m = 0;
    for (float x : v) m = std::max(m, static_cast<double>(std::fabs(x)));
    return m;
}

inline double max_abs_diff(const float* a, const float* b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; ++i) m = std::max(m, static_cast<double>(std::fabs(a[i] - b[i])));
    return m;
}

// Σ out ⊙ r: a scalar whose gradient with respect to out is r.
inline double weighted_sum(const float* out, const std::vector<float>& r) {
    double s = 0;
    for (size_t i = 0; i < r.size(); ++i) s += static_cast<double>(out[i]) * r[i];
    return s;
}

// Central differences of `loss` with respect to `x` (modified in place and restored) at up to
// `max_checks` evenly spread coordinates, against `analytic`. The error is normalised by the
// largest analytic gradient of the tensor (as in the original's kernel tests).
inline void expect_gradient_matches(const char* what, std::vector<float>& x,
                                    const std::vector<float>& analytic,
                                    const std::function<double()>& loss, double tolerance = 2e-2,
                                    float h = 1e-2f, size_t max_checks = 48) {
    ASSERT_EQ(x.size(), analytic.size()) << what;
    const double scale = std::max(max_abs(analytic), 1e-3);  // floor: float32 noise
    const size_t stride = std::max<size_t>(1, x.size() / max_checks);
    double worst = 0;
    for (size_t i = 0; i < x.size(); i += stride) {
        const float saved = x[i];
        x[i] = saved + h;
        const double up = loss();
        x[i] = saved - h;
        const double down = loss();
        x[i] = saved;
        const double numeric = (up - down) / (2.0 * h);
        const double err = std::fabs(numeric - analytic[i]) / scale;
        worst = std::max(worst, err);
        EXPECT_LT(err, tolerance) << what << "[" << i << "]: numeric " << numeric << " vs analytic "
                                  << analytic[i] << " (max |grad| " << scale << ")";
    }
    ::testing::Test::RecordProperty(what, std::to_string(worst));
}

}  // namespace tinygpt::test
