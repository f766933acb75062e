// The MPI build (-DTINYGPT_MPI=ON): the world is MPI_COMM_WORLD when the program was started by
// a launcher (mpirun, mpiexec, srun with PMI). Started on its own it does not initialise MPI at
// all and is a single process: MPI's "singleton" start costs time and writes session files,
// for every command of a tool that mostly runs alone.
#include <mpi.h>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstdlib>

#include "dist/communicator.h"
#include "util/error.h"
#include "util/timer.h"

namespace tinygpt {

namespace {

// MPI counts and displacements are ints: larger messages go in pieces, and a per-rank
// displacement beyond INT_MAX elements is refused with a message instead of overflowing.
int checked_count(int64_t n, const char* what) {
    if (n < 0 || n > INT_MAX)
        throw Error(std::string(what) + ": " + std::to_string(n) +
                    " elements do not fit one MPI message (at most " + std::to_string(INT_MAX) +
                    ")");
    return static_cast<int>(n);
}

void check(int code, const char* call) {
    if (code == MPI_SUCCESS) return;
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(code, text, &len);
    throw Error(std::string(call) + " failed: " + std::string(text, static_cast<size_t>(len)));
}

// Collectives over large buffers, in pieces of at most this many elements.
constexpr size_t kPiece = size_t{1} << 28;

class MpiCommunicator final : public Communicator {
    // Adds one call's time and bytes to stats_ when it ends.
    struct Counted {
        CommunicationStats& stats;
        uint64_t bytes;
        Timer timer;
        ~Counted() {
            stats.seconds += timer.seconds();
            stats.bytes_sent += bytes;
            ++stats.calls;
        }
    };

  public:
    explicit MpiCommunicator(MPI_Comm comm, bool owned) : comm_(comm), owned_(owned) {
        MPI_Comm_rank(comm_, &rank_);
        MPI_Comm_size(comm_, &size_);
    }
    ~MpiCommunicator() override {
        int finalized = 0;
        MPI_Finalized(&finalized);
        if (owned_ && !finalized) MPI_Comm_free(&comm_);
    }
    int rank() const override { return rank_; }
    int size() const override { return size_; }

    void allreduce_sum(float* data, size_t n) override { reduce(data, n, MPI_FLOAT, MPI_SUM); }
    void allreduce_sum(double* data, size_t n) override { reduce(data, n, MPI_DOUBLE, MPI_SUM); }
    void allreduce_sum(int64_t* data, size_t n) override { reduce(data, n, MPI_INT64_T, MPI_SUM); }
    void allreduce_max(int64_t* data, size_t n) override { reduce(data, n, MPI_INT64_T, MPI_MAX); }
    void broadcast(void* data, size_t bytes, int root) override {
        if (size_ == 1) return;
        Counted counted{stats_, rank_ == root ? bytes : 0, {}};
        auto* p = static_cast<char*>(data);
        for (size_t done = 0; done < bytes; done += kPiece) {
            const size_t n = std::min(kPiece, bytes - done);
            check(MPI_Bcast(p + done, static_cast<int>(n), MPI_BYTE, root, comm_), "MPI_Bcast");
        }
    }
    void alltoall(const int64_t* send, int64_t* recv, size_t per_rank) override {
        Counted counted{stats_, per_rank * sizeof(int64_t) * static_cast<size_t>(size_ - 1), {}};
        check(MPI_Alltoall(send, checked_count(static_cast<int64_t>(per_rank), "MPI_Alltoall"),
                           MPI_INT64_T, recv, static_cast<int>(per_rank), MPI_INT64_T, comm_),
              "MPI_Alltoall");
    }
    void alltoallv(const float* send, const int64_t* send_counts, float* recv,
                   const int64_t* recv_counts) override {
        std::vector<int> sc(size_), sd(size_), rc(size_), rd(size_);
        int64_t so = 0, ro = 0, remote = 0;
        for (int q = 0; q < size_; ++q)
            if (q != rank_) remote += send_counts[q];
        Counted counted{stats_, static_cast<uint64_t>(remote) * sizeof(float), {}};
        for (int q = 0; q < size_; ++q) {
            sc[q] = checked_count(send_counts[q], "MPI_Alltoallv");
            rc[q] = checked_count(recv_counts[q], "MPI_Alltoallv");
            sd[q] = checked_count(so, "MPI_Alltoallv");
            rd[q] = checked_count(ro, "MPI_Alltoallv");
            so += send_counts[q];
            ro += recv_counts[q];
        }
        check(MPI_Alltoallv(send, sc.data(), sd.data(), MPI_FLOAT, recv, rc.data(), rd.data(),
                            MPI_FLOAT, comm_),
              "MPI_Alltoallv");
    }
    void send(const void* data, size_t bytes, int to) override {
        Counted counted{stats_, bytes, {}};
        const auto* p = static_cast<const char*>(data);
        for (size_t done = 0; done < bytes || done == 0; done += kPiece) {
            const size_t n = std::min(kPiece, bytes - done);
            check(MPI_Send(p + done, static_cast<int>(n), MPI_BYTE, to, kTag, comm_), "MPI_Send");
            if (bytes == 0) break;
        }
    }
    void receive(void* data, size_t bytes, int from) override {
        Counted counted{stats_, 0, {}};
        auto* p = static_cast<char*>(data);
        for (size_t done = 0; done < bytes || done == 0; done += kPiece) {
            const size_t n = std::min(kPiece, bytes - done);
            check(MPI_Recv(p + done, static_cast<int>(n), MPI_BYTE, from, kTag, comm_,
                           MPI_STATUS_IGNORE),
                  "MPI_Recv");
            if (bytes == 0) break;
        }
    }
    void barrier() override {
        Counted counted{stats_, 0, {}};
        check(MPI_Barrier(comm_), "MPI_Barrier");
    }
    std::unique_ptr<Communicator> split(int color, int key) override {
        MPI_Comm sub;
        check(MPI_Comm_split(comm_, color, key, &sub), "MPI_Comm_split");
        return std::make_unique<MpiCommunicator>(sub, true);
    }

  private:
    static constexpr int kTag = 7;
    void reduce(void* data, size_t n, MPI_Datatype type, MPI_Op op) {
        if (size_ == 1 || n == 0) return;
        int elem = 0;
        MPI_Type_size(type, &elem);
        // A ring allreduce sends 2·(P−1)/P of the buffer from each rank.
        Counted counted{
            stats_,
            static_cast<uint64_t>(2.0 * (size_ - 1) / size_ * static_cast<double>(n) * elem),
            {}};
        auto* p = static_cast<char*>(data);
        for (size_t done = 0; done < n; done += kPiece) {
            const size_t count = std::min(kPiece, n - done);
            check(MPI_Allreduce(MPI_IN_PLACE, p + done * static_cast<size_t>(elem),
                                static_cast<int>(count), type, op, comm_),
                  "MPI_Allreduce");
        }
    }
    MPI_Comm comm_;
    bool owned_;
    int rank_ = 0, size_ = 1;
};

std::unique_ptr<MpiCommunicator> g_world;

// The launchers' environment: Open MPI's mpirun, PMIx and PMI (MPICH's Hydra, Slurm's srun).
bool started_by_launcher() {
    for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE"})
        if (std::getenv(name)) return true;
    return false;
}

}  // namespace

Communicator& world() {
    if (g_world) return *g_world;
    static const std::unique_ptr<Communicator> single = make_single_process_communicator();
    return *single;
}

void distributed_start(int* argc, char*** argv) {
    if (!started_by_launcher()) return;
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (!initialized) {
        // FUNNELED: only the main thread calls MPI; OpenMP threads compute between the calls.
        int provided = 0;
        MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
    }
    g_world = std::make_unique<MpiCommunicator>(MPI_COMM_WORLD, false);
}

void distributed_finish() {
    if (!g_world) return;
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (finalized) return;
    g_world.reset();
    MPI_Finalize();
}

void distributed_abort(int exit_code) {
    int initialized = 0, finalized = 0;
    MPI_Initialized(&initialized);
    MPI_Finalized(&finalized);
    if (!initialized || finalized || !g_world || g_world->size() == 1) return;
    std::fflush(stdout);
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, exit_code);
}

int ranks_on_this_machine() {
    if (!g_world || g_world->size() == 1) return 1;
    MPI_Comm local;
    check(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &local),
          "MPI_Comm_split_type");
    int n = 1;
    MPI_Comm_size(local, &n);
    MPI_Comm_free(&local);
    return n;
}

std::string distributed_summary() {
    char version[MPI_MAX_LIBRARY_VERSION_STRING];
    int len = 0;
    MPI_Get_library_version(version, &len);
    std::string v(version, static_cast<size_t>(len));
    if (const size_t cut = v.find_first_of(",\n"); cut != std::string::npos) v.resize(cut);
    std::string s = "MPI (" + v + ")";
    if (!g_world)
        s += ", not started: one process (run under mpirun for several)";
    else
        s += ", rank " + std::to_string(g_world->rank()) + " of " + std::to_string(g_world->size());
    return s;
}

}  // namespace tinygpt
