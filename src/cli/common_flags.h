// Flag handling that several subcommands share: thread counts, seeds, file names.
#pragma once
#include <CLI/CLI.hpp>
#include <string>

#include "infer/generate.h"

namespace tinygpt::cli {

// What --threads 0 (the default) means for a command.
enum class DefaultThreads {
    // The cores that other work leaves free (all of them on an idle machine; a note on stderr
    // when fewer): inference runs many short parallel regions, and a thread on a core that
    // another process keeps busy makes each of them wait for a time slice.
    FreeCores,
    // Every core: training's regions are long (whole-batch products), so under a fair scheduler
    // more threads win more of a shared machine (BENCHMARKS.md: next to two busy processes,
    // 2.5 steps/s on 2 threads, 2.0 on 1, of 5.6 idle), and the thread count, which the
    // numbers of a run depend on, does not change with the machine's load.
    AllCores,
};

// Applies --threads (0 = `when_zero`) unless OMP_NUM_THREADS is set; more threads than the
// machine has cores are clamped, with a warning on stderr (oversubscribed OpenMP threads only
// wait for each other). Error if < 0.
void apply_threads_flag(int threads, DefaultThreads when_zero = DefaultThreads::FreeCores);
// The decode threads of `sample` and `bench` for --threads, after apply_threads_flag: N > 0
// runs every decode step on N; 0 lets decode's timing choose, from every core when the count is
// left to tinygpt (no OMP_NUM_THREADS), so that it may take back the cores that the load at
// start kept from the prompt.
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
