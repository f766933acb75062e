// Flag handling that several subcommands share: thread counts, seeds, file names.
#pragma once
#include <CLI/CLI.hpp>
#include <string>

#include "infer/generate.h"

namespace tinygpt::cli {

// Applies --threads (0, the default: every core, shared among the ranks of an MPI run on this
// machine) unless OMP_NUM_THREADS is set; more threads than the machine has cores are clamped,
// with a warning on stderr. Every core also when other processes keep some of them busy: a
// parallel region's shares go to whichever thread claims them (util/parallel/claiming_pool.h),
// so a thread the kernel has not run costs a region its help, not a wait (BENCHMARKS.md, "Decode
// on a shared machine: the engine's own pool"); and for training, the thread count, which a
// run's numbers depend on, does not change with the machine's load. Error if < 0.
void apply_threads_flag(int threads);
// The decode threads of `sample` and `bench` for --threads, after apply_threads_flag: N > 0
// runs every decode step on N; 0 lets decode's timing choose, from every core when the count is
// left to tinygpt (no OMP_NUM_THREADS).
void apply_decode_threads_flag(int threads, GenerateOptions& options);

// --seed: an integer from 0 to 2^64 − 1, refused (not clamped) outside that range.
CLI::Validator seed_validator();

// A file name that must not be empty (`--out ""` would otherwise mean "do not save").
CLI::Validator non_empty_path();

// Refuses (tinygpt::Error naming `flag`) a target that the save at the end could not write: a
// directory, something that is not a regular file (io/atomic_write.h never replaces those), a
// missing or read-only directory. Commands call it before their work, so that a bad output path
// fails at once, not after it.
void check_writable_target(const std::string& path, const std::string& flag = "--out");

}  // namespace tinygpt::cli
