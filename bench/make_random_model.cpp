// Writes a .tinygpt v3 model of a benchmark shape with random weights (the initialisation of
// `seed`), built directly in the target type (ModelWeights::random: one f32 row at a time), so a
// model far larger than memory at f32 can be made for speed and memory benchmarks. No training:
// the text it generates is noise, the speed and the memory are real.
//
//   ./build/bench/make_random_model --shape moe2b --dtype bf16 --out /tmp/moe2b-bf16.tinygpt
//
// Shapes (Llama family, byte vocabulary unless said):
//   moe144m  d512, 8 layers, 8 heads / 2 kv, 8 experts × 1408, top-2          (144 M)
//   moe600m  d1024, 12 layers, 16 heads / 4 kv, 8 experts × 2048, top-2       (~0.6 B)
//   moe2b    d2048, 24 layers, 16 heads / 4 kv, 8 experts × 1408, top-2,
//            a 32000-token vocabulary, untied head                             (~2.0 B)
#include <cstdio>
#include <cstdlib>
#include <string>

#include "io/model_file.h"
#include "model/model_weights.h"
#include "util/error.h"
#include "util/timer.h"

namespace {

using namespace tinygpt;

ModelConfig shape(const std::string& name) {
    ModelConfig c;
    c.preset = name;
    c.arch = Arch::Llama;
    c.vocab = 256;
    c.ctx = 1024;
    c.experts = 8;
    c.topk = 2;
    if (name == "moe144m") {
        c.layers = 8, c.d_model = 512, c.heads = 8, c.kv_heads = 2, c.moe_ffn = 1408;
    } else if (name == "moe600m") {
        c.layers = 12, c.d_model = 1024, c.heads = 16, c.kv_heads = 4, c.moe_ffn = 2048;
    } else if (name == "moe2b") {
        c.layers = 24, c.d_model = 2048, c.heads = 16, c.kv_heads = 4, c.moe_ffn = 1408;
        c.vocab = 32000;
        c.tie_embeddings = false;
    } else {
        throw Error("unknown --shape '" + name + "' (known: moe144m, moe600m, moe2b)");
    }
    c.d_mlp = c.moe_ffn;
    c.validate();
    return c;
}

}  // namespace

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
        std::fprintf(
            stderr,
            "usage: make_random_model --shape moe144m|moe600m|moe2b [--dtype f32|bf16|f16|q8_0] "
            "--out FILE [--seed N]\n");
        return 2;
    }
    try {
        const ModelConfig cfg = shape(shape_name);
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
