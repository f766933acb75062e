#include "moe/expert_parallel.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "dist/communicator.h"
#include "util/error.h"

namespace tinygpt {

namespace {

// The buffer's first n floats, growing it when needed (never shrinking: a later, smaller call
// reuses the memory without allocating or clearing it).
float* at_least(std::vector<float>& buffer, size_t n) {
    if (buffer.size() < n) buffer.resize(n);
    return buffer.data();
}

}  // namespace

ExpertParallelLayer::ExpertParallelLayer(Communicator& group, int experts,
                                         ExpertParallelScratch& scratch)
    : group_(&group),
      shard_(expert_shard(experts, group.size(), group.rank())),
      scratch_(&scratch),
      rank_(group.rank()),
      ranks_(group.size()),
      stats_(static_cast<size_t>(ranks_) * (experts + 1) + experts),
      kept_(static_cast<size_t>(ranks_) * experts),
      send_counts_(ranks_),
      recv_counts_(ranks_),
      expert_offsets_(shard_.size(experts) + 1, 0) {
    if (shard_.all()) shard_ = {0, experts};  // a group of one holds every expert
}

int64_t ExpertParallelLayer::floats_sent() const {
    int64_t sent = 0;
    for (int q = 0; q < ranks_; ++q)
        if (q != rank_) sent += send_counts_[q] + recv_counts_[q];
    return sent;
}

// One allreduce gives every rank what the group's routing needs: each rank's token count and
// per-expert pair counts (a [P, E + 1] matrix, each rank filling its row) and the sums of the
// router probabilities. From them every rank computes the same aux, the group's counts and,
// under a capacity, which pairs of which rank each expert keeps: so no further count exchange.
void ExpertParallelLayer::exchange_statistics(MoeActivations& act, const MoeShape& s,
                                              const MoeOptions& options) {
    const int N = s.tokens, E = s.experts, K = s.topk, P = ranks_;
    std::fill(stats_.begin(), stats_.end(), 0.0);
    double* row = stats_.data() + static_cast<size_t>(rank_) * (E + 1);
    row[0] = N;
    for (int e = 0; e < E; ++e) row[1 + e] = act.counts[e];
    double* prob_sums = stats_.data() + static_cast<size_t>(P) * (E + 1);
    router_prob_sums(prob_sums, act.probs, N, E);
    group_->allreduce_sum(stats_.data(), stats_.size());

    for (int h = 0; h < P; ++h) {
        const double tokens = stats_[static_cast<size_t>(h) * (E + 1)];
        // Every rank sees the same matrix, so all of them throw together.
        require(tokens == N,
                "expert parallelism needs the same number of tokens on every rank "
                "of the group (rank " +
                    std::to_string(h) + " has " + std::to_string(static_cast<long>(tokens)) +
                    ", rank " + std::to_string(rank_) + " has " + std::to_string(N) + ")");
    }
    // The group's counts replace the local ones: aux, its gradient and the expert load use them.
    std::fill(act.counts, act.counts + E, 0);
    for (int h = 0; h < P; ++h)
        for (int e = 0; e < E; ++e) {
            const int routed = static_cast<int>(stats_[static_cast<size_t>(h) * (E + 1) + 1 + e]);
            kept_[static_cast<size_t>(h) * E + e] = routed;
            act.counts[e] += routed;
        }
    const long group_tokens = static_cast<long>(P) * N;
    act.aux = load_balance_loss_from_sums(prob_sums, act.counts, group_tokens, K, E);
    if (options.capacity_factor <= 0.0f) return;
    // Capacity over the group's tokens, pairs kept in global token order: rank h keeps what the
    // ranks before it left of each expert's capacity.
    const int capacity = expert_capacity(options.capacity_factor, P * N, K, E);
    for (int e = 0; e < E; ++e) {
        int left = capacity;
        for (int h = 0; h < P; ++h) {
            int& kept = kept_[static_cast<size_t>(h) * E + e];
            kept = std::min(kept, left);
            left -= kept;
        }
    }
}

// Who sends how many rows to whom, and where the received rows go on the owner: from rank h,
// the rows of local expert i come as one block (h's plan is sorted by expert), and belong after
// the rows of the same expert from ranks before h.
void ExpertParallelLayer::plan_rows(const MoeShape& s) {
    const int E = s.experts, P = ranks_, local = shard_.count;
    const int* kept = kept_.data();
    for (int q = 0; q < P; ++q) {
        long to_q = 0, from_q = 0;
        for (int i = 0; i < local; ++i) {
            to_q += kept[static_cast<size_t>(rank_) * E + q * local + i];
            from_q += kept[static_cast<size_t>(q) * E + shard_.first + i];
        }
        send_counts_[q] = to_q * s.C;
        recv_counts_[q] = from_q * s.C;
    }
    for (int i = 0; i < local; ++i) {
        int rows = 0;
        for (int h = 0; h < P; ++h) rows += kept[static_cast<size_t>(h) * E + shard_.first + i];
        expert_offsets_[i + 1] = expert_offsets_[i] + rows;
    }
    // Segment (h, i): where it sits in the received buffer (rank-major) ...
    segments_.resize(static_cast<size_t>(P) * local);
    int from = 0;
    for (int h = 0; h < P; ++h)
        for (int i = 0; i < local; ++i) {
            Segment& segment = segments_[static_cast<size_t>(h) * local + i];
            segment.from = from;
            segment.rows = kept[static_cast<size_t>(h) * E + shard_.first + i];
            from += segment.rows;
        }
    // ... and in the expert-major buffers (expert by expert, ranks in order).
    for (int i = 0; i < local; ++i) {
        int to = expert_offsets_[i];
        for (int h = 0; h < P; ++h) {
            Segment& segment = segments_[static_cast<size_t>(h) * local + i];
            segment.to = to;
            to += segment.rows;
        }
    }
}

void ExpertParallelLayer::to_expert_major(float* grouped, const float* rows, int C) const {
    for (const Segment& g : segments_)
        std::memcpy(grouped + static_cast<size_t>(g.to) * C, rows + static_cast<size_t>(g.from) * C,
                    sizeof(float) * g.rows * C);
}

void ExpertParallelLayer::to_source_major(float* rows, const float* grouped, int C) const {
    for (const Segment& g : segments_)
        std::memcpy(rows + static_cast<size_t>(g.from) * C, grouped + static_cast<size_t>(g.to) * C,
                    sizeof(float) * g.rows * C);
}

void ExpertParallelLayer::forward(float* out, MoeActivations& act, const float* x,
                                  const MoeParams& params, const MoeShape& s,
                                  const MoeOptions& options) {
    const int N = s.tokens, C = s.C, E = s.experts, K = s.topk;
    require(static_cast<int>(params.experts.size()) == shard_.count &&
                kept_.size() == static_cast<size_t>(ranks_) * E,
            "expert parallelism: the layer needs exactly this rank's experts");
    // The noise of the global tokens rank·N + t: what one process draws for the whole batch.
    moe_route(act, x, params.router, s, options, static_cast<long>(rank_) * N);
    exchange_statistics(act, s, options);
    const int rows = dispatch_plan_build(act.plan, act.topk, N, K, E,
                                         kept_.data() + static_cast<size_t>(rank_) * E);
    act.dropped = N * K - rows;
    plan_rows(s);

    // Rows out to the experts' owners (this rank's plan is sorted by expert, so by owner) ...
    dispatch_gather(act.xg, x, act.plan, rows, C);
    const size_t R = static_cast<size_t>(received_rows());
    float* received = at_least(scratch_->rows, R * C);
    group_->alltoallv(act.xg, send_counts_.data(), received, recv_counts_.data());
    // ... the owner runs its experts on each expert's rows in global token order ...
    float* xe = at_least(xe_, R * C);
    to_expert_major(xe, received, C);
    float* ye = at_least(scratch_->grouped, R * C);
    experts_forward(ye, at_least(h_pre_, R * s.pre_width()), at_least(h_, R * s.M), xe,
                    expert_offsets_.data(), params.experts, s);
    // ... and the outputs go back to their tokens' ranks for the gate-weighted combine.
    to_source_major(received, ye, C);
    group_->alltoallv(received, recv_counts_.data(), act.y, send_counts_.data());
    dispatch_combine(out, act.y, act.gates, act.plan, N, K, C);
}

void ExpertParallelLayer::backward(float* dx, const MoeGrads& grads, MoeScratch& sc,
                                   const float* dout, const float* x, const MoeActivations& act,
                                   const MoeParams& params, const MoeShape& s, float aux_weight,
                                   float z_weight) {
    const int N = s.tokens, C = s.C, K = s.topk;
    const size_t R = static_cast<size_t>(received_rows());
    dispatch_combine_backward(sc.dy, sc.d_gates, dout, act.y, act.gates, act.plan, N, K, C);
    // The output gradients to the owners, the experts' backward there (their gradients gather
    // every rank's rows), the input gradients back: the forward's exchanges in reverse.
    float* received = at_least(scratch_->rows, R * C);
    float* grouped = at_least(scratch_->grouped, R * C);
    group_->alltoallv(sc.dy, send_counts_.data(), received, recv_counts_.data());
    to_expert_major(grouped, received, C);
    // The input gradients overwrite `received` (expert-major), then go back to source order.
    experts_backward(received, grads.experts, at_least(scratch_->dh, R * s.pre_width()), grouped,
                     xe_.data(), h_pre_.data(), h_.data(), expert_offsets_.data(), params.experts,
                     s);
    to_source_major(grouped, received, C);
    group_->alltoallv(grouped, recv_counts_.data(), sc.dxg, send_counts_.data());

    RouterShape router = s.router();
    router.group = ranks_;  // act.counts are the group's
    moe_router_backward(dx, grads.router, sc, x, act, params.router, router, aux_weight, z_weight);
    dispatch_gather_backward(dx, sc.dxg, act.plan, N, K, C);
}

}  // namespace tinygpt
