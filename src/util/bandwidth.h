// The memory read bandwidth a benchmark can compare a memory-bound kernel with: decode reads every
// active weight once per token, so bandwidth ÷ bytes per token bounds its speed.
#pragma once
#include <cstddef>

namespace tinygpt {

// GB/s (10^9 bytes) of summing a buffer of `bytes` (make it much larger than the caches) on
// `threads` OpenMP threads, each reading its own contiguous share; the best of `runs` passes.
double measure_read_bandwidth_gbs(size_t bytes = size_t{512} << 20, int threads = 1, int runs = 5);

}  // namespace tinygpt
