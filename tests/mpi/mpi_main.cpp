// The MPI test program: every rank runs every test (each test's collectives need all ranks), so
// run it under mpirun (ctest does: tests/mpi/CMakeLists.txt). A failure on any rank fails the
// run: each rank's exit status reaches mpirun.
#include <gtest/gtest.h>

#include "dist/communicator.h"

int main(int argc, char** argv) {
    tinygpt::distributed_start(&argc, &argv);
    testing::InitGoogleTest(&argc, argv);
    // One report is enough: the other ranks print only their failures.
    if (tinygpt::world().rank() != 0) {
        auto& listeners = testing::UnitTest::GetInstance()->listeners();
        delete listeners.Release(listeners.default_result_printer());
    }
    const int result = RUN_ALL_TESTS();
    // Agree on the outcome so that every rank exits with the same status.
    int64_t failed = result != 0;
    tinygpt::world().allreduce_max(&failed, 1);
    tinygpt::distributed_finish();
    return failed ? 1 : 0;
}
