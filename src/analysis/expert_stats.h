// What `tinygpt experts` measures about a MoE model's routing over a text: per MoE layer the
// experts' load, gates, router entropy, co-selection, the tokens and byte classes each expert
// takes, and how the top-1 choice of one MoE layer predicts the next one's. docs/EXPERTS.md
// defines every statistic; the counts are gathered by analysis/expert_recorder.h.
#pragma once
#include <cstdint>
#include <optional>
#include <vector>

#include "analysis/token_text.h"

namespace tinygpt {

struct TokenCount {
    int id = 0;
    int64_t count = 0;          // routed to this expert (any slot) this many times
    double share_of_token = 0;  // count / the token's occurrences in the text
};

// From one MoE layer to the next MoE layer (dense layers between them are skipped), by the
// tokens' top-1 experts.
struct LayerAgreement {
    int to_layer = -1;
    std::vector<int64_t> joint;  // [E·E]: tokens with top-1 expert i here and j there
    double nmi = 0;              // normalized_mutual_information(joint)
    double follow = 0;           // follow_rate(joint)
    double follow_baseline = 0;  // follow_baseline(joint)
};

struct ExpertLayerStats {
    int layer = 0;                     // the block's index in the model (0-based)
    int64_t rows = 0;                  // tokens routed
    std::vector<int64_t> assignments;  // [E] (token, slot) pairs that chose the expert
    std::vector<int64_t> top1;         // [E] tokens whose first choice it is
    std::vector<double> gate_sum;      // [E] Σ of the gates over its assignments
    std::vector<double> prob_sum;      // [E] Σ over all tokens of the router probability
    double router_entropy_sum = 0;     // Σ over tokens of H(router softmax), nats
    // [E·E] tokens whose top-K holds both a and b; the diagonal: tokens choosing a. Symmetric.
    std::vector<int64_t> coselection;
    std::vector<ByteClassCounts> byte_classes;        // [E] its assignments by the token's class
    std::vector<std::vector<TokenCount>> top_tokens;  // [E] most often taken first
    std::optional<LayerAgreement> next;               // none for the last MoE layer

    int experts() const { return static_cast<int>(assignments.size()); }
    std::vector<double> load() const;        // assignments / Σ assignments (sums to 1)
    std::vector<double> top1_share() const;  // top1 / rows
    double mean_gate(int e) const;           // gate_sum / assignments; NaN when never chosen
    double mean_prob(int e) const;           // prob_sum / rows
    double router_entropy() const;           // mean over tokens of H(router softmax), nats
    double load_entropy() const;             // H(load), nats
    std::vector<int> never_chosen() const;   // experts with no assignment
    // Experts chosen, but with a load share below `threshold`.
    std::vector<int> rarely_chosen(double threshold) const;
};

// The first tokens of the text with their routing, for the token-by-token view.
struct RoutedPassage {
    std::vector<int> ids;
    std::vector<std::vector<int>> topk;     // [MoE layer index][t·K + slot] expert ids
    std::vector<std::vector<float>> gates;  // [MoE layer index][t·K + slot]
};

struct ExpertStats {
    int experts = 0, topk = 0;
    bool renormalized = false;  // gates renormalised over the top-K (else the probabilities)
    int64_t tokens = 0;         // tokens routed (per MoE layer)
    int windows = 0;
    ByteClassCounts text_classes{};        // the text's tokens by class
    std::vector<ExpertLayerStats> layers;  // the MoE layers, in order
    RoutedPassage passage;

    // "Almost never chosen": a load share below a tenth of the balanced share 1/E.
    double rare_threshold() const { return 1.0 / (10.0 * experts); }
};

// H(p) = −Σ p_i ln p_i in nats of the distribution proportional to `weights` (0 when they sum
// to 0).
double entropy(const std::vector<double>& weights);
// I(X; Y) / sqrt(H(X)·H(Y)) of the joint counts [n·n] (X the row, Y the column): 1 when each
// determines the other, 0 when independent. When a marginal is constant: 1 if both are, else 0.
double normalized_mutual_information(const std::vector<int64_t>& joint, int n);
// The fraction of tokens whose column is the most common column of their row: how often the
// best rule "row i → column j" is right.
double follow_rate(const std::vector<int64_t>& joint, int n);
// The same rule without the row: the share of the most common column.
double follow_baseline(const std::vector<int64_t>& joint, int n);

}  // namespace tinygpt
