// Expert parallelism for one MoE layer: the E experts are split over a group of P ranks (rank q
// holds experts [q·E/P, (q+1)·E/P), moe/expert_shard.h), everything else is replicated. Each
// rank routes its own N tokens; the rows of its (token, slot) pairs go to the experts' owners
// (counts known to all from one statistics allreduce, then MPI_Alltoallv of the rows), the owner
// runs the same per-expert GEMMs as a single process on its experts' rows (all ranks' rows of an
// expert in rank order, so in global token order), and the outputs come back for the local
// gate-weighted combine. The backward mirrors it.
//
// The contract: P ranks with [B, T] tokens each behave as ONE single-process layer on the P·B
// sequences concatenated in rank order:
//  - aux (the load-balance loss) is the group's, from the group's counts and mean probabilities,
//    on every rank; z is each rank's own (mean over its tokens);
//  - jitter noise is drawn for the global token index (rank offset g·N);
//  - capacity: ⌈cf·P·N·K/E⌉ per expert over the group, pairs kept in global token order;
//  - backward: the router and input gradients of rank r are those of its tokens for
//    Σ_r (loss_r) + P·aux_weight·aux, so that summing the replicated gradients over the group
//    gives P times the single-process gradient of (mean loss + aux_weight·aux); an owner's
//    expert gradients include the rows of every rank (P times the single-process ones, too).
// All ranks of the group must call forward and backward together, with the same N.
#pragma once
#include <cstdint>
#include <vector>

#include "moe/expert_shard.h"
#include "moe/moe_layer.h"

namespace tinygpt {

class Communicator;

// The owner side's buffers that live only within one forward or one backward: shared by the
// layers of a model. They grow with the rows received and never shrink.
struct ExpertParallelScratch {
    std::vector<float> rows;     // [R, C] as received / as sent (source-rank major)
    std::vector<float> grouped;  // [R, C] expert-major outputs and gradients
    std::vector<float> dh;       // [R, pre_width] backward scratch of the experts
};

// One MoE layer's share of a group: whom it exchanges with, and what the owner keeps from the
// forward for the backward. All ranks of the group call forward and backward together.
class ExpertParallelLayer {
  public:
    // `group` and `scratch` must outlive the layer; group.size() must divide `experts`.
    ExpertParallelLayer(Communicator& group, int experts, ExpertParallelScratch& scratch);

    // out[N, C] = Σ_s gate·Expert(x) over the group; fills act (aux = the group's, z and
    // dropped = this rank's, counts = the group's). params.experts holds this rank's experts
    // only (shard()); the dispatch is sparse.
    void forward(float* out, MoeActivations& act, const float* x, const MoeParams& params,
                 const MoeShape& shape, const MoeOptions& options = {});
    // dx[N, C] is overwritten; the router's and this rank's experts' gradients accumulate (the
    // experts' from every rank's rows). aux_weight / z_weight as in moe_backward.
    void backward(float* dx, const MoeGrads& grads, MoeScratch& scratch, const float* dout,
                  const float* x, const MoeActivations& act, const MoeParams& params,
                  const MoeShape& shape, float aux_weight, float z_weight = 0.0f);

    Communicator& group() const { return *group_; }
    const ExpertShard& shard() const { return shard_; }
    // Rows this rank's experts processed in the last forward (all ranks' pairs routed to them).
    int received_rows() const { return expert_offsets_.back(); }
    // Floats this rank sent to the others in the last forward (rows out, outputs back); the
    // backward sends as many again.
    int64_t floats_sent() const;

  private:
    // Rows [from, from + rows) of the received (source-major) buffer are rows [to, to + rows)
    // of the owner's expert-major buffers: one segment per (source rank, local expert).
    struct Segment {
        int from, to, rows;
    };
    void exchange_statistics(MoeActivations& act, const MoeShape& shape, const MoeOptions& options);
    void plan_rows(const MoeShape& shape);
    void to_expert_major(float* grouped, const float* rows, int C) const;
    void to_source_major(float* rows, const float* grouped, int C) const;

    Communicator* group_;
    ExpertShard shard_;
    ExpertParallelScratch* scratch_;
    int rank_ = 0, ranks_ = 1;
    std::vector<double> stats_;          // the statistics allreduce buffer
    std::vector<int> kept_;              // [P, E] pairs of rank h kept for expert e
    std::vector<int64_t> send_counts_;   // [P] floats to each rank
    std::vector<int64_t> recv_counts_;   // [P] floats from each rank
    std::vector<int> expert_offsets_;    // [E/P + 1] the owner's expert-major rows
    std::vector<Segment> segments_;      // source-major → expert-major
    std::vector<float> xe_, h_pre_, h_;  // the owner's expert-major inputs, hidden rows
};

}  // namespace tinygpt
