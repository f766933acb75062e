// Which routed experts of each MoE layer a rank holds under expert parallelism: a contiguous
// range of global expert indices, the same in every layer. Group rank q of P holds experts
// [q·E/P, (q+1)·E/P), so the pairs a rank sends to one owner are contiguous in the dispatch
// plan (which groups pairs by expert).
#pragma once
#include <string>

#include "util/error.h"

namespace tinygpt {

struct ExpertShard {
    int first = 0;
    int count = -1;  // -1: all experts (a single process)
    bool all() const { return count < 0; }
    bool contains(int expert) const { return all() || (expert >= first && expert < first + count); }
    int size(int experts) const { return all() ? experts : count; }  // experts held
};

// The shard of group rank `group_rank` of `group_size` (all experts when the group size is 1).
// Throws Error when the group size does not divide the expert count.
inline ExpertShard expert_shard(int experts, int group_size, int group_rank) {
    if (group_size <= 1) return {};
    require(experts % group_size == 0, "--expert-parallel " + std::to_string(group_size) +
                                           " must divide the number of experts (" +
                                           std::to_string(experts) + ")");
    require(group_rank >= 0 && group_rank < group_size, "group rank " + std::to_string(group_rank) +
                                                            " outside a group of " +
                                                            std::to_string(group_size));
    const int per_rank = experts / group_size;
    return {group_rank * per_rank, per_rank};
}

}  // namespace tinygpt
