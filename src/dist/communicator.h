// The processes of a distributed run and the collectives training needs, behind one small
// interface: MPI when the build has it (-DTINYGPT_MPI=ON, mpi_communicator.cpp) and the program
// was started by mpirun, a single process otherwise (single_process.cpp, no_mpi.cpp). Code above
// this file never includes <mpi.h> or tests a build flag: it asks size() and calls collectives,
// which are plain copies (or nothing) in one process.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace tinygpt {

// What the collectives of one communicator cost so far (benchmarks): wall time inside the
// calls, bytes this rank sent, and calls.
struct CommunicationStats {
    double seconds = 0.0;
    uint64_t bytes_sent = 0;
    int64_t calls = 0;
};

class Communicator {
  public:
    virtual ~Communicator() = default;
    const CommunicationStats& stats() const { return stats_; }
    void reset_stats() { stats_ = {}; }
    virtual int rank() const = 0;
    virtual int size() const = 0;

    // In place: every rank ends with the element-wise sum over the ranks (the same bits on
    // every rank: the reduction order does not depend on the rank).
    virtual void allreduce_sum(float* data, size_t n) = 0;
    virtual void allreduce_sum(double* data, size_t n) = 0;
    virtual void allreduce_sum(int64_t* data, size_t n) = 0;
    virtual void allreduce_max(int64_t* data, size_t n) = 0;
    // `bytes` from `root` to every rank.
    virtual void broadcast(void* data, size_t bytes, int root) = 0;
    // Every rank sends send_counts[q] ints / floats (its send buffer holds them rank by rank,
    // in rank order) and receives recv_counts[q] from each rank q (likewise laid out). With
    // per-rank counts known, recv_counts must equal what the senders send.
    virtual void alltoall(const int64_t* send, int64_t* recv, size_t per_rank) = 0;
    virtual void alltoallv(const float* send, const int64_t* send_counts, float* recv,
                           const int64_t* recv_counts) = 0;
    // Point to point (checkpoint gathers): blocking, any size.
    virtual void send(const void* data, size_t bytes, int to) = 0;
    virtual void receive(void* data, size_t bytes, int from) = 0;
    virtual void barrier() = 0;
    // The ranks with the same `color` form a new communicator, ordered by `key`.
    virtual std::unique_ptr<Communicator> split(int color, int key) = 0;

  protected:
    CommunicationStats stats_;
};

// One process: size 1, every collective a copy.
std::unique_ptr<Communicator> make_single_process_communicator();

// The process-wide communicator (all ranks of the job): MPI_COMM_WORLD under mpirun in an MPI
// build, a single process otherwise. distributed_start must run first (main does it).
Communicator& world();
// Starts MPI where the build has it (a no-op otherwise). Call once, first thing in main.
void distributed_start(int* argc, char*** argv);
// Ends MPI cleanly (all ranks call it on a normal exit).
void distributed_finish();
// Ends every rank of the job now with `exit_code` (after an error on this rank that the others
// cannot know about: they may be waiting in a collective). Returns only in a single process.
void distributed_abort(int exit_code);
// The ranks of the job on this machine (they share its cores and memory); 1 without MPI.
int ranks_on_this_machine();
// "MPI (Open MPI 4.1.4)" or "no MPI (built without -DTINYGPT_MPI=ON)", for --version.
std::string distributed_summary();

}  // namespace tinygpt
