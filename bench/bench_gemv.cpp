// Decode's matrix-vector products: our deterministic kernels (kernels/gemv.h) against OpenBLAS's
// sgemv on the same shapes, interleaved in one run (the machine is shared: medians and ratios).
// Shapes are the layers of the models in BENCHMARKS.md: attention and experts of d 512 with
// 1408-wide experts, a 4096 × 1024 layer, the tiny preset's, and a 50k-row output head.
//
//   ./build/bench/bench_gemv [rounds]       (threads: OMP_NUM_THREADS, default all cores)

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "kernels/blas.h"
#include "kernels/gemv.h"
#include "util/parallel.h"
#include "util/rng.h"
#include "util/timer.h"

namespace {

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

// Seconds per call, over enough calls to last about 20 ms.
template <typename Fn>
double time_calls(Fn&& fn, int calls) {
    tinygpt::Timer t;
    for (int i = 0; i < calls; ++i) fn();
    return t.seconds() / calls;
}

}  // namespace

int main(int argc, char** argv) {
    const int rounds = argc > 1 ? std::atoi(argv[1]) : 15;
    struct Shape {
        const char* what;
        int out, in;
    };
    const Shape shapes[] = {{"tiny attention out 192x192", 192, 192},
                            {"tiny MLP in 768x192", 768, 192},
                            {"attention out 512x512", 512, 512},
                            {"expert gate+up 2816x512", 2816, 512},
                            {"expert down 512x1408", 512, 1408},
                            {"layer 4096x1024", 4096, 1024},
                            {"head 50304x512", 50304, 512}};
    std::printf("threads %d · %d interleaved rounds · median per call\n",
                tinygpt::parallel_threads(), rounds);
    std::printf("%-28s %12s %12s %8s %10s\n", "shape (out x in)", "tinygpt us", "OpenBLAS us",
                "ratio", "GB/s ours");
    for (const Shape& s : shapes) {
        tinygpt::Rng rng(1);
        std::vector<float> w(static_cast<size_t>(s.out) * s.in), x(s.in), y(s.out);
        for (float& v : w) v = static_cast<float>(rng.normal());
        for (float& v : x) v = static_cast<float>(rng.normal());
        const double bytes = 4.0 * w.size();
        const int calls = std::max(1, static_cast<int>(2e-2 / (bytes / 10e9)));
        std::vector<double> ours, blas;
        for (int r = 0; r < rounds; ++r) {
            ours.push_back(time_calls(
                [&] { tinygpt::gemv_rows(y.data(), w.data(), s.in, x.data(), s.out, s.in, 1, 0); },
                calls));
            blas.push_back(time_calls(
                [&] {
                    cblas_sgemv(CblasRowMajor, CblasNoTrans, s.out, s.in, 1.0f, w.data(), s.in,
                                x.data(), 1, 0.0f, y.data(), 1);
                },
                calls));
        }
        const double a = median(ours), b = median(blas);
        std::printf("%-28s %12.2f %12.2f %7.2fx %10.1f\n", s.what, a * 1e6, b * 1e6, b / a,
                    bytes / a / 1e9);
    }
    return 0;
}
