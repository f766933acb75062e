#include "infer/sampler.h"

#include <algorithm>
#include <cmath>

#include "util/error.h"

namespace tinygpt {

void SamplingOptions::validate() const {
    if (!std::isfinite(temperature)) throw Error("--temperature must be a finite number");
    if (top_k < 0) throw Error("--top-k must be >= 0 (0 = no limit)");
    if (!(top_p > 0.0f && top_p <= 1.0f)) throw Error("--top-p must be in (0, 1]");
}

int argmax(const float* logits, int vocab) {
    return static_cast<int>(std::max_element(logits, logits + vocab) - logits);
}

Sampler::Sampler(const SamplingOptions& options, uint64_t seed) : opt_(options), rng_(seed) {
    opt_.validate();
}

int Sampler::next(const float* logits, int vocab) {
    if (opt_.temperature <= 0.0f) return argmax(logits, vocab);
    // Probabilities in double, sorted by descending probability (ties: lower id first).
    const double max = *std::max_element(logits, logits + vocab);
    candidates_.resize(vocab);
    for (int v = 0; v < vocab; ++v)
        candidates_[v] = {std::exp((logits[v] - max) / opt_.temperature), v};
    std::stable_sort(candidates_.begin(), candidates_.end(),
                     [](const auto& a, const auto& b) { return a.first > b.first; });
    size_t keep = candidates_.size();
    if (opt_.top_k > 0) keep = std::min<size_t>(keep, static_cast<size_t>(opt_.top_k));
    double total = 0.0;
    for (size_t i = 0; i < keep; ++i) total += candidates_[i].first;
    if (opt_.top_p < 1.0f) {
        // Smallest prefix whose probability mass reaches top_p.
        double mass = 0.0;
        for (size_t i = 0; i < keep; ++i) {
            mass += candidates_[i].first / total;
            if (mass >= opt_.top_p) {
                keep = i + 1;
                break;
            }
        }
        total = 0.0;
        for (size_t i = 0; i < keep; ++i) total += candidates_[i].first;
    }
    double r = rng_.uniform() * total;
    for (size_t i = 0; i < keep; ++i) {
        r -= candidates_[i].first;
        if (r < 0.0) return candidates_[i].second;
    }
    return candidates_[keep - 1].second;
}

}  // namespace tinygpt
