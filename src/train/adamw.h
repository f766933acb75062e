// AdamW as torch.optim.AdamW (bias-corrected, decoupled weight decay), with global-norm gradient
// clipping, as one fused, vectorised, threaded pass over the parameter buffer. Weight decay
// applies to [0, decay_count) — ParameterLayout puts every 2-D tensor there.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace tinygpt {

struct AdamWConfig {
    float beta1 = 0.9f;
    float beta2 = 0.95f;
    float eps = 1e-8f;
    float weight_decay = 0.1f;
};

// L2 norm of g[0, n), summed in fixed chunks in double precision: the same value for any thread
// count.
double global_norm(const float* g, size_t n);

class AdamW {
  public:
    AdamW(size_t num_params, size_t decay_count, AdamWConfig cfg = {});

    // Clips grads to `grad_clip` global norm (0 = off), updates params, and zeroes grads for
    // the next accumulation. Returns the norm before clipping. Throws if it is not finite.
    double step(float* params, float* grads, float lr, float grad_clip);
    // The same with the gradient's global norm given (a model split over ranks: the norm of the
    // whole gradient, not of this rank's part). Throws if it is not finite.
    void step_with_norm(float* params, float* grads, float lr, float grad_clip, double norm);

    int64_t steps_taken() const { return t_; }
    const AdamWConfig& config() const { return cfg_; }
    std::vector<float>& m() { return m_; }
    std::vector<float>& v() { return v_; }
    const float* m_data() const { return m_.data(); }
    const float* v_data() const { return v_.data(); }
    void set_steps_taken(int64_t t) { t_ = t; }

  private:
    AdamWConfig cfg_;
    size_t n_, decay_count_;
    int64_t t_ = 0;
    std::vector<float> m_, v_;
};

}  // namespace tinygpt
