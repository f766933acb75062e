// weight_matmul (kernels/weight_matmul.h) per weight dtype on the Linear shapes of real models:
// decode (n = 1: GB/s of weights read, against the read bandwidth of util/bandwidth.h) and
// prefill / an expert's gathered rows (n = 8, 64, 512: GFLOP/s), against f32 and OpenBLAS's
// sgemv / sgemm. Variants run interleaved, round after round, and the medians are printed (the
// machine is shared and noisy). Each call reads the next of several copies of the weights, 128 MiB
// in all, so the weights come from memory as in a model's forward pass, not from the caches.
//
//   ./build/bench/bench_weight_matmul [rounds] [threads ...]    (default: 7 rounds, 1 and all)
//   TINYGPT_WEIGHT_ISA=portable ./build/bench/bench_weight_matmul   (another instruction set)

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "kernels/blas.h"
#include "kernels/weight_matmul.h"
#include "quant/q8_0.h"
#include "util/bandwidth.h"
#include "util/half.h"
#include "util/parallel.h"
#include "util/rng.h"
#include "util/timer.h"

namespace tinygpt {
namespace {

constexpr size_t kWorkingSet = size_t{128} << 20;  // 4× this machine's L3

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

struct Shape {
    const char* what;
    int rows, cols;
};

// Copies of one weight matrix in one dtype, enough of them to fill kWorkingSet.
struct Weights {
    WeightDtype dtype;
    int rows, cols;
    size_t bytes;
    std::vector<std::vector<uint8_t>> copies;
    size_t next = 0;

    Weights(WeightDtype d, const std::vector<float>& values, int r, int c)
        : dtype(d), rows(r), cols(c), bytes(dtype_row_bytes(d, c) * r) {
        std::vector<uint8_t> stored(bytes);
        switch (d) {
            case WeightDtype::F32:
                std::memcpy(stored.data(), values.data(), bytes);
                break;
            case WeightDtype::BF16:
            case WeightDtype::F16:
                for (size_t k = 0; k < values.size(); ++k) {
                    const uint16_t h =
                        d == WeightDtype::BF16 ? float_to_bf16(values[k]) : float_to_f16(values[k]);
                    std::memcpy(stored.data() + 2 * k, &h, 2);
                }
                break;
            case WeightDtype::Q8_0:
                quant::quantize_q8_0(values.data(), static_cast<int64_t>(values.size()),
                                     stored.data());
                break;
        }
        const size_t count = std::max<size_t>(1, (kWorkingSet + bytes - 1) / bytes);
        copies.assign(count, stored);
    }
    WeightMatrix take() {
        const WeightMatrix w{copies[next].data(), dtype, rows, cols};
        next = (next + 1) % copies.size();
        return w;
    }
};

// Seconds per call, over enough calls to last about 10 ms.
template <typename Fn>
double time_calls(Fn&& fn, int calls) {
    fn();  // the first call of a round pays for waking the threads
    Timer t;
    for (int i = 0; i < calls; ++i) fn();
    return t.seconds() / calls;
}

void run_shape(const Shape& s, int n, int rounds, double probe_gbs) {
    Rng rng(1);
    std::vector<float> values(static_cast<size_t>(s.rows) * s.cols);
    for (float& v : values) v = static_cast<float>(rng.normal() * 0.05);
    std::vector<float> x(static_cast<size_t>(n) * s.cols), y(static_cast<size_t>(n) * s.rows);
    for (float& v : x) v = static_cast<float>(rng.normal());
    std::vector<Weights> weights;
    for (WeightDtype d : {WeightDtype::F32, WeightDtype::BF16, WeightDtype::F16, WeightDtype::Q8_0})
        weights.emplace_back(d, values, s.rows, s.cols);

    const double flops = 2.0 * n * s.rows * s.cols;
    // Calls per timing: ~10 ms at 40 GB/s or 100 GFLOP/s, whichever is slower.
    const double guess = std::max(weights[0].bytes / 40e9, flops / 100e9);
    const int calls = std::max(1, static_cast<int>(1e-2 / guess));
    const size_t variants = weights.size() + 1;  // the dtypes, then OpenBLAS on f32
    std::vector<std::vector<double>> seconds(variants);
    for (int r = 0; r < rounds; ++r) {
        for (size_t v = 0; v < weights.size(); ++v)
            seconds[v].push_back(time_calls(
                [&] { weight_matmul(y.data(), x.data(), n, weights[v].take()); }, calls));
        seconds.back().push_back(time_calls(
            [&] {
                const WeightMatrix w = weights[0].take();
                const auto* a = static_cast<const float*>(w.data);
                if (n == 1)
                    cblas_sgemv(CblasRowMajor, CblasNoTrans, s.rows, s.cols, 1.0f, a, s.cols,
                                x.data(), 1, 0.0f, y.data(), 1);
                else
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, s.rows, s.cols, 1.0f,
                                x.data(), s.cols, a, s.cols, 0.0f, y.data(), s.rows);
            },
            calls));
    }
    const double f32_time = median(seconds[0]);
    for (size_t v = 0; v < variants; ++v) {
        const double t = median(seconds[v]);
        const bool blas = v == weights.size();
        const Weights& w = weights[blas ? 0 : v];
        const std::string name = blas ? (n == 1 ? "sgemv" : "sgemm") : dtype_name(w.dtype);
        const double gbs = w.bytes / t / 1e9;
        std::printf("%-26s %4d %-6s %10.1f %8.1f %6.0f%% %8.1f %7.2fx\n", s.what, n, name.c_str(),
                    t * 1e6, gbs, 100.0 * gbs / probe_gbs, flops / t / 1e9, f32_time / t);
    }
}

}  // namespace
}  // namespace tinygpt

int main(int argc, char** argv) {
    using namespace tinygpt;
    const int rounds = argc > 1 ? std::atoi(argv[1]) : 7;
    std::vector<int> thread_counts;
    for (int a = 2; a < argc; ++a) thread_counts.push_back(std::atoi(argv[a]));
    if (thread_counts.empty()) {
        thread_counts.push_back(1);
        if (tinygpt::parallel_threads() > 1) thread_counts.push_back(tinygpt::parallel_threads());
    }
    const Shape shapes[] = {{"expert gate|up 2816x512", 2816, 512},
                            {"expert down 512x1408", 512, 1408},
                            {"attention qkv 1536x512", 1536, 512},
                            {"layer 4096x1024", 4096, 1024},
                            {"layer 1024x2048", 1024, 2048}};
    std::printf("weight_matmul path: %s · %d interleaved rounds · median per call\n",
                weight_kernel_isa(), rounds);
    for (int threads : thread_counts) {
        tinygpt::set_parallel_threads(threads);
        const double probe = measure_read_bandwidth_gbs(size_t{512} << 20, threads);
        std::printf(
            "\n%d thread%s · read bandwidth probe %.1f GB/s (%% bw = weight bytes per "
            "second / probe; x f32 = f32 time / this time)\n",
            threads, threads > 1 ? "s" : "", probe);
        std::printf("%-26s %4s %-6s %10s %8s %7s %8s %8s\n", "shape (rows x cols)", "n", "dtype",
                    "us/call", "GB/s", "% bw", "GFLOP/s", "x f32");
        for (int n : {1, 8, 64, 512})
            for (const Shape& s : shapes) run_shape(s, n, rounds, probe);
    }
    return 0;
}
