#include <cstring>

#include "dist/communicator.h"
#include "util/error.h"

namespace tinygpt {

namespace {

class SingleProcess final : public Communicator {
  public:
    int rank() const override { return 0; }
    int size() const override { return 1; }
    void allreduce_sum(float*, size_t) override {}
    void allreduce_sum(double*, size_t) override {}
    void allreduce_sum(int64_t*, size_t) override {}
    void allreduce_max(int64_t*, size_t) override {}
    void broadcast(void*, size_t, int) override {}
    void alltoall(const int64_t* send, int64_t* recv, size_t per_rank) override {
        if (per_rank > 0) std::memmove(recv, send, per_rank * sizeof(int64_t));
    }
    void alltoallv(const float* send, const int64_t* send_counts, float* recv,
                   const int64_t* recv_counts) override {
        require(send_counts[0] == recv_counts[0], "alltoallv: counts differ in one process");
        if (send_counts[0] > 0)
            std::memmove(recv, send, static_cast<size_t>(send_counts[0]) * sizeof(float));
    }
    void send(const void*, size_t, int) override {
        throw Error("send: a single process has no other rank");
    }
    void receive(void*, size_t, int) override {
        throw Error("receive: a single process has no other rank");
    }
    void barrier() override {}
    std::unique_ptr<Communicator> split(int, int) override {
        return make_single_process_communicator();
    }
};

}  // namespace

std::unique_ptr<Communicator> make_single_process_communicator() {
    return std::make_unique<SingleProcess>();
}

}  // namespace tinygpt
