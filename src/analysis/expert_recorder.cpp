#include "analysis/expert_recorder.h"

#include <algorithm>
#include <cmath>

#include "infer/session.h"
#include "util/error.h"

namespace tinygpt {

ExpertStatsRecorder::ExpertStatsRecorder(const ModelConfig& cfg, const Tokenizer& tokenizer,
                                         const ExpertStatsOptions& options)
    : tokenizer_(tokenizer),
      options_(options),
      E_(cfg.experts),
      K_(cfg.topk),
      renormalized_(cfg.renormalize_topk()) {
    if (!cfg.is_moe())
        throw Error("model has no MoE layer: `experts` looks inside a Mixture-of-Experts model");
    require(options.top_tokens >= 0, "the number of tokens listed per expert must be >= 0");
    require(options.passage_tokens >= 0, "the passage length must be >= 0");
    const size_t E = E_;
    for (int l = 0; l < cfg.layers; ++l) {
        if (!cfg.is_moe_layer(l)) {
            moe_index_.push_back(-1);
            continue;
        }
        if (!layers_.empty()) {
            layers_.back().stats.next = LayerAgreement{};
            layers_.back().stats.next->to_layer = l;
            layers_.back().stats.next->joint.assign(E * E, 0);
        }
        moe_index_.push_back(static_cast<int>(layers_.size()));
        LayerCounts c;
        c.stats.layer = l;
        c.stats.assignments.assign(E, 0);
        c.stats.top1.assign(E, 0);
        c.stats.gate_sum.assign(E, 0.0);
        c.stats.prob_sum.assign(E, 0.0);
        c.stats.coselection.assign(E * E, 0);
        c.stats.byte_classes.assign(E, ByteClassCounts{});
        layers_.push_back(std::move(c));
    }
    passage_.topk.resize(layers_.size());
    passage_.gates.resize(layers_.size());
    class_cache_.assign(static_cast<size_t>(cfg.vocab), -1);
}

ByteClass ExpertStatsRecorder::class_of(int id) {
    if (static_cast<size_t>(id) >= class_cache_.size()) class_cache_.resize(id + 1, -1);
    int8_t& c = class_cache_[id];
    if (c < 0) c = static_cast<int8_t>(classify_token(tokenizer_.token_bytes(id)));
    return static_cast<ByteClass>(c);
}

void ExpertStatsRecorder::begin_window(const int* ids, int n) {
    window_.assign(ids, ids + n);
    window_start_ = tokens_;
    tokens_ += n;
    windows_ += 1;
    prev_moe_ = -1;
    for (int t = 0; t < n; ++t) {
        occurrences_[ids[t]] += 1;
        text_classes_[static_cast<int>(class_of(ids[t]))] += 1;
        if (window_start_ + t < options_.passage_tokens) passage_.ids.push_back(ids[t]);
    }
}

void ExpertStatsRecorder::observe(int layer, const RouterDecisions& d) {
    const int m =
        layer >= 0 && layer < static_cast<int>(moe_index_.size()) ? moe_index_[layer] : -1;
    const int n = static_cast<int>(window_.size());
    if (m < 0 || d.rows != n || d.experts != E_ || d.k != K_)
        throw Error("routing of block " + std::to_string(layer) +
                    " does not match the model's MoE layers or the window");
    ExpertLayerStats& s = layers_[m].stats;
    auto& token_expert = layers_[m].token_expert;
    const bool follows = m > 0 && prev_moe_ == m - 1;
    LayerAgreement* agreement = follows ? &*layers_[m - 1].stats.next : nullptr;
    std::vector<int> top1(n);
    for (int t = 0; t < n; ++t) {
        const float* p = d.probs + static_cast<size_t>(t) * E_;
        double h = 0;
        for (int e = 0; e < E_; ++e) {
            s.prob_sum[e] += p[e];
            if (p[e] > 0) h -= p[e] * std::log(static_cast<double>(p[e]));
        }
        s.router_entropy_sum += h;
        const int* chosen = d.topk + static_cast<size_t>(t) * K_;
        const float* gates = d.gates + static_cast<size_t>(t) * K_;
        const int id = window_[t];
        const int cls = static_cast<int>(class_of(id));
        for (int k = 0; k < K_; ++k) {
            const int e = chosen[k];
            s.assignments[e] += 1;
            s.gate_sum[e] += gates[k];
            s.byte_classes[e][cls] += 1;
            token_expert[static_cast<int64_t>(id) * E_ + e] += 1;
            for (int j = 0; j < K_; ++j)
                s.coselection[static_cast<size_t>(e) * E_ + chosen[j]] += 1;
        }
        top1[t] = chosen[0];  // the slots come by descending probability
        s.top1[chosen[0]] += 1;
        if (agreement) agreement->joint[static_cast<size_t>(prev_top1_[t]) * E_ + top1[t]] += 1;
        if (window_start_ + t < options_.passage_tokens) {
            passage_.topk[m].insert(passage_.topk[m].end(), chosen, chosen + K_);
            passage_.gates[m].insert(passage_.gates[m].end(), gates, gates + K_);
        }
    }
    s.rows += n;
    prev_top1_ = std::move(top1);
    prev_moe_ = m;
}

ExpertStats ExpertStatsRecorder::finish() const {
    ExpertStats out;
    out.experts = E_;
    out.topk = K_;
    out.renormalized = renormalized_;
    out.tokens = tokens_;
    out.windows = windows_;
    out.text_classes = text_classes_;
    out.passage = passage_;
    for (const LayerCounts& c : layers_) {
        ExpertLayerStats s = c.stats;
        // Each expert's most frequent tokens: by count, then by id.
        std::vector<std::vector<TokenCount>> by_expert(E_);
        for (const auto& [key, count] : c.token_expert) {
            const int id = static_cast<int>(key / E_), e = static_cast<int>(key % E_);
            const double occurrences = static_cast<double>(occurrences_.at(id));
            by_expert[e].push_back(TokenCount{id, count, static_cast<double>(count) / occurrences});
        }
        for (auto& list : by_expert) {
            const size_t keep = std::min(list.size(), static_cast<size_t>(options_.top_tokens));
            std::partial_sort(list.begin(), list.begin() + keep, list.end(),
                              [](const TokenCount& a, const TokenCount& b) {
                                  return a.count != b.count ? a.count > b.count : a.id < b.id;
                              });
            list.resize(keep);
        }
        s.top_tokens = std::move(by_expert);
        if (s.next) {
            LayerAgreement& a = *s.next;
            a.nmi = normalized_mutual_information(a.joint, E_);
            a.follow = follow_rate(a.joint, E_);
            a.follow_baseline = follow_baseline(a.joint, E_);
        }
        out.layers.push_back(std::move(s));
    }
    return out;
}

ExpertStats collect_expert_stats(const ModelWeights& weights, const std::vector<int32_t>& tokens,
                                 const Tokenizer& tokenizer, const ExpertStatsOptions& options) {
    const ModelConfig& cfg = weights.config();
    ExpertStatsRecorder recorder(cfg, tokenizer, options);
    require(options.max_tokens >= 0, "the token limit must be >= 0 (0 = the whole text)");
    int64_t total = static_cast<int64_t>(tokens.size());
    if (options.max_tokens > 0) total = std::min(total, options.max_tokens);
    require(total > 0, "the text has no tokens to route");
    InferenceSession session(weights);
    session.observe_routing(
        [&](int layer, const RouterDecisions& d) { recorder.observe(layer, d); });
    std::vector<int> ids;
    for (int64_t start = 0; start < total; start += cfg.ctx) {
        const int n = static_cast<int>(std::min<int64_t>(cfg.ctx, total - start));
        ids.assign(tokens.begin() + start, tokens.begin() + start + n);
        session.reset();
        recorder.begin_window(ids.data(), n);
        session.forward(ids.data(), n);
    }
    return recorder.finish();
}

}  // namespace tinygpt
