// How long OpenMP threads spin at a barrier before they sleep, set for the CLI's process.
#pragma once
#include <string>

namespace tinygpt::cli {

// OpenMP threads that wait spin before they sleep: libgomp (GCC) about 300,000 times, LLVM's
// libomp 200 ms. Idle, that makes the next parallel region start at once. On a machine whose
// cores are busy with other work it is a disaster: the waiting thread burns the time slice that
// the thread it waits for needs, and training on 2 threads ran 3-8× slower than on 1 (see
// BENCHMARKS.md, "A shared machine"). A short spin keeps nearly all of the idle speed and none
// of the collapse.
//
// libgomp reads its spin count from GOMP_SPINCOUNT once, when it loads, before main(): so when
// neither GOMP_SPINCOUNT nor OMP_WAIT_POLICY is set, this sets GOMP_SPINCOUNT and executes the
// program again (same pid, same arguments; nothing has run yet). libomp takes it at run time
// (kmp_set_blocktime). A user's own GOMP_SPINCOUNT / OMP_WAIT_POLICY / KMP_BLOCKTIME wins.
void limit_openmp_spinning(char** argv);

// For `info`: the spin setting in force and whose it is, e.g. "GOMP_SPINCOUNT=10000 (tinygpt's)".
std::string openmp_wait_description();

}  // namespace tinygpt::cli
