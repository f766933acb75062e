// Writes a .tinygpt v3 model of a benchmark shape with random weights (the initialisation of
// `seed`), built directly in the target type (ModelWeights::random: one f32 row at a time), so a
// model far larger than memory at f32 can be made for speed and memory benchmarks. No training:
// the text it generates is noise, the speed and the memory are real.
//
//   ./build/bench/make_random_model --shape moe2b --dtype bf16 --out /tmp/moe2b-bf16.tinygpt
//
// Shapes: bench/model_shapes.h (moe144m, moe600m, moe2b, ...).
#include <cstdio>
#include <cstdlib>
#include <string>

#include "io/model_file.h"
#include "model/model_weights.h"
#include "model_shapes.h"
#include "util/error.h"
#include "util/timer.h"

using namespace tinygpt;

int main(int argc, char** argv) {
    std::string shape_name, dtype_name_flag = "bf16", out;
    uint64_t seed = 1;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string flag = argv[i];
        if (flag == "--shape") {
            shape_name = argv[i + 1];
        } else if (flag == "--dtype") {
            dtype_name_flag = argv[i + 1];
        } else if (flag == "--out") {
            out = argv[i + 1];
        } else if (flag == "--seed") {
            seed = std::strtoull(argv[i + 1], nullptr, 10);
        } else {
            std::fprintf(stderr, "unknown flag %s\n", flag.c_str());
            return 2;
        }
    }
    if (shape_name.empty() || out.empty()) {
        std::fprintf(stderr,
                     "usage: make_random_model --shape moe144m|moe600m|moe2b|... [--dtype "
                     "f32|bf16|f16|q8_0] "
                     "--out FILE [--seed N]\n");
        return 2;
    }
    try {
        const ModelConfig cfg = bench::model_shape(shape_name);
        const WeightDtype dtype = parse_weight_dtype(dtype_name_flag);
        Timer t;
        const ModelWeights weights = ModelWeights::random(cfg, dtype, seed);
        const double built = t.seconds();
        SaveOptions options;
        options.dtype = dtype;
        options.include_optimizer = false;
        options.include_training_state = false;
        t = Timer();
        save_model_file(out, weights, TrainingState{}, options);
        std::printf(
            "%s: %s, %.3f B parameters, %s, %.2f GB of weights (built in %.1f s, written in %.1f "
            "s)\n",
            out.c_str(), cfg.describe().c_str(), cfg.total_params() / 1e9,
            weights.type_summary().c_str(), weights.stored_bytes() / 1e9, built, t.seconds());
    } catch (const Error& e) {
        std::fprintf(stderr, "make_random_model: %s\n", e.what());
        return 1;
    }
    return 0;
}
