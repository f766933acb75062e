// The build without MPI (-DTINYGPT_MPI=OFF): the world is this one process.
#include "dist/communicator.h"

namespace tinygpt {

Communicator& world() {
    static const std::unique_ptr<Communicator> single = make_single_process_communicator();
    return *single;
}

void distributed_start(int*, char***) {}
void distributed_finish() {}
void distributed_abort(int) {}
int ranks_on_this_machine() {
    return 1;
}
std::string distributed_summary() {
    return "no MPI (built without -DTINYGPT_MPI=ON)";
}

}  // namespace tinygpt
