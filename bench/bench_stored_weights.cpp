// Inference on weights in their stored type: a model of a given shape is built directly in each
// type (ModelWeights::random, no file, no f32 copy) and run through the KV-cache session:
// prefill of a prompt (one causal block, MoE rows grouped by expert) and greedy decode, per type
// interleaved over rounds (medians; the machine is shared). Decode is reported next to the
// memory-bound limit: read bandwidth ÷ the weight bytes a token reads (attention, the K chosen
// experts, the head), with the bandwidth measured in the same run.
//
//   ./build/bench/bench_stored_weights [--shape moe144m|...: bench/model_shapes.h] [--dtypes
//   f32,bf16,q8_0]
//                                      [--prompt 64] [--decode 128] [--rounds 3]
// Threads: OMP_NUM_THREADS (default all cores), the same for prefill and decode.

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "infer/session.h"
#include "kernels/weight_matmul.h"
#include "model/model_weights.h"
#include "model_shapes.h"
#include "util/bandwidth.h"
#include "util/error.h"
#include "util/parallel.h"
#include "util/timer.h"

namespace {

using namespace tinygpt;

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0 : v[v.size() / 2];
}

struct Figures {
    std::vector<double> prefill, decode;
};

}  // namespace

int main(int argc, char** argv) {
    std::string shape_name = "moe144m", dtypes = "f32,bf16,q8_0";
    int prompt = 64, decode = 128, rounds = 3;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string flag = argv[i];
        if (flag == "--shape")
            shape_name = argv[i + 1];
        else if (flag == "--dtypes")
            dtypes = argv[i + 1];
        else if (flag == "--prompt")
            prompt = std::atoi(argv[i + 1]);
        else if (flag == "--decode")
            decode = std::atoi(argv[i + 1]);
        else if (flag == "--rounds")
            rounds = std::atoi(argv[i + 1]);
        else {
            std::fprintf(stderr, "unknown flag %s\n", flag.c_str());
            return 2;
        }
    }
    ModelConfig cfg;
    try {
        cfg = bench::model_shape(shape_name);
    } catch (const Error& e) {
        std::fprintf(stderr, "bench_stored_weights: %s\n", e.what());
        return 2;
    }
    std::vector<WeightDtype> types;
    for (size_t p = 0; p <= dtypes.size();) {
        const size_t q = std::min(dtypes.find(',', p), dtypes.size());
        types.push_back(parse_weight_dtype(dtypes.substr(p, q - p)));
        p = q + 1;
    }
    const int threads = tinygpt::parallel_threads();
    std::printf("shape %s: %s, %.1f M parameters · %d thread(s) · kernels %s\n", shape_name.c_str(),
                cfg.describe().c_str(), cfg.total_params() / 1e6, threads, weight_kernel_isa());
    std::vector<ModelWeights> models;
    for (WeightDtype t : types) models.push_back(ModelWeights::random(cfg, t, 1));
    std::vector<int> ids(static_cast<size_t>(prompt));
    for (int i = 0; i < prompt; ++i) ids[i] = (i * 37 + 11) % cfg.vocab;
    std::vector<Figures> figures(types.size());
    std::vector<double> bandwidth;
    for (int r = 0; r < rounds; ++r) {
        bandwidth.push_back(measure_read_bandwidth_gbs(size_t{1} << 29, threads));
        for (size_t k = 0; k < types.size(); ++k) {
            InferenceSession session(models[k]);
            session.forward(ids.data(), prompt);  // warm-up: page in, size the buffers
            session.reset();
            Timer t;
            const float* logits = session.forward(ids.data(), prompt);
            figures[k].prefill.push_back(prompt / t.seconds());
            int token = static_cast<int>(std::max_element(logits, logits + cfg.vocab) - logits);
            t = Timer();
            for (int i = 0; i < decode; ++i) {
                logits = session.forward(&token, 1);
                token = static_cast<int>(std::max_element(logits, logits + cfg.vocab) - logits);
            }
            figures[k].decode.push_back(decode / t.seconds());
        }
    }
    const double gbs = median(bandwidth);
    std::printf("read bandwidth %.1f GB/s (median of %d probes of 512 MiB)\n\n", gbs, rounds);
    std::printf(
        "| dtype | weights MB | MB read per token | prefill %d tok/s | decode tok/s | "
        "bandwidth limit tok/s | fraction |\n|---|---:|---:|---:|---:|---:|---:|\n",
        prompt);
    for (size_t k = 0; k < types.size(); ++k) {
        const double active = models[k].active_bytes_per_token();
        const double limit = gbs * 1e9 / active;
        const double dec = median(figures[k].decode);
        std::printf("| %s | %.1f | %.1f | %.0f | %.0f | %.0f | %.2f |\n",
                    models[k].type_summary().c_str(), models[k].stored_bytes() / 1e6, active / 1e6,
                    median(figures[k].prefill), dec, limit, dec / limit);
    }
    return 0;
}
