#include "analysis/expert_stats.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace tinygpt {

namespace {

std::vector<double> row_sums(const std::vector<int64_t>& joint, int n) {
    std::vector<double> sums(n, 0.0);
    for (int i = 0; i < n; ++i)
        for (int j = 0; j < n; ++j) sums[i] += static_cast<double>(joint[i * n + j]);
    return sums;
}

std::vector<double> column_sums(const std::vector<int64_t>& joint, int n) {
    std::vector<double> sums(n, 0.0);
    for (int i = 0; i < n; ++i)
        for (int j = 0; j < n; ++j) sums[j] += static_cast<double>(joint[i * n + j]);
    return sums;
}

double total(const std::vector<int64_t>& counts) {
    return static_cast<double>(std::accumulate(counts.begin(), counts.end(), int64_t{0}));
}

}  // namespace

double entropy(const std::vector<double>& weights) {
    const double sum = std::accumulate(weights.begin(), weights.end(), 0.0);
    if (sum <= 0) return 0;
    double h = 0;
    for (const double w : weights)
        if (w > 0) h -= (w / sum) * std::log(w / sum);
    return h;
}

double normalized_mutual_information(const std::vector<int64_t>& joint, int n) {
    const double N = total(joint);
    if (N <= 0) return 0;
    const std::vector<double> rows = row_sums(joint, n), cols = column_sums(joint, n);
    const double hx = entropy(rows), hy = entropy(cols);
    if (hx <= 0 || hy <= 0) return hx <= 0 && hy <= 0 ? 1.0 : 0.0;
    double mi = 0;
    for (int i = 0; i < n; ++i)
        for (int j = 0; j < n; ++j) {
            const double c = static_cast<double>(joint[i * n + j]);
            if (c > 0) mi += (c / N) * std::log(c * N / (rows[i] * cols[j]));
        }
    // Rounding can leave I a hair above min(H(X), H(Y)) for identical layers.
    return std::clamp(mi / std::sqrt(hx * hy), 0.0, 1.0);
}

double follow_rate(const std::vector<int64_t>& joint, int n) {
    const double N = total(joint);
    if (N <= 0) return 0;
    int64_t followed = 0;
    for (int i = 0; i < n; ++i)
        followed += *std::max_element(joint.begin() + i * n, joint.begin() + (i + 1) * n);
    return static_cast<double>(followed) / N;
}

double follow_baseline(const std::vector<int64_t>& joint, int n) {
    const double N = total(joint);
    if (N <= 0) return 0;
    const std::vector<double> cols = column_sums(joint, n);
    return *std::max_element(cols.begin(), cols.end()) / N;
}

std::vector<double> ExpertLayerStats::load() const {
    const double sum = total(assignments);
    std::vector<double> share(assignments.size(), 0.0);
    if (sum > 0)
        for (size_t e = 0; e < share.size(); ++e)
            share[e] = static_cast<double>(assignments[e]) / sum;
    return share;
}

std::vector<double> ExpertLayerStats::top1_share() const {
    std::vector<double> share(top1.size(), 0.0);
    if (rows > 0)
        for (size_t e = 0; e < share.size(); ++e)
            share[e] = static_cast<double>(top1[e]) / static_cast<double>(rows);
    return share;
}

double ExpertLayerStats::mean_gate(int e) const {
    if (assignments[e] == 0) return std::numeric_limits<double>::quiet_NaN();
    return gate_sum[e] / static_cast<double>(assignments[e]);
}

double ExpertLayerStats::mean_prob(int e) const {
    return rows > 0 ? prob_sum[e] / static_cast<double>(rows) : 0;
}

double ExpertLayerStats::router_entropy() const {
    return rows > 0 ? router_entropy_sum / static_cast<double>(rows) : 0;
}

double ExpertLayerStats::load_entropy() const {
    return entropy(std::vector<double>(assignments.begin(), assignments.end()));
}

std::vector<int> ExpertLayerStats::never_chosen() const {
    std::vector<int> out;
    for (int e = 0; e < experts(); ++e)
        if (assignments[e] == 0) out.push_back(e);
    return out;
}

std::vector<int> ExpertLayerStats::rarely_chosen(double threshold) const {
    const std::vector<double> share = load();
    std::vector<int> out;
    for (int e = 0; e < experts(); ++e)
        if (assignments[e] > 0 && share[e] < threshold) out.push_back(e);
    return out;
}

}  // namespace tinygpt
