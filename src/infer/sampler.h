// Next-token choice from logits: greedy (temperature <= 0) or seeded sampling with temperature,
// top-k and nucleus (top-p) filtering.
#pragma once
#include <cstdint>
#include <vector>

#include "util/rng.h"

namespace tinygpt {

struct SamplingOptions {
    float temperature = 0.8f;  // <= 0: greedy
    int top_k = 0;             // 0: no limit
    float top_p = 1.0f;        // 1: no nucleus filter
    void validate() const;     // throws tinygpt::Error naming the flag
};

class Sampler {
  public:
    Sampler(const SamplingOptions& options, uint64_t seed);
    int next(const float* logits, int vocab);

  private:
    SamplingOptions opt_;
    Rng rng_;
    std::vector<std::pair<double, int>> candidates_;
};

int argmax(const float* logits, int vocab);

}  // namespace tinygpt
