// The model shapes the inference benchmarks build (bench_stored_weights, make_random_model), all
// Llama family with a byte vocabulary unless said:
//   tiny     d128, 4 layers, 4 heads, dense MLP 512
//   d256moe  d256, 4 layers, 8 heads / 2 kv, 8 experts × 704, top-2
//   moe144m  d512, 8 layers, 8 heads / 2 kv, 8 experts × 1408, top-2          (144 M)
//   moe600m  d1024, 12 layers, 16 heads / 4 kv, 8 experts × 2048, top-2       (0.64 B)
//   moe2b    d2048, 24 layers, 16 heads / 4 kv, 8 experts × 1408, top-2,
//            a 32000-token vocabulary, untied head                             (2.04 B)
#pragma once
#include <string>

#include "model/config.h"
#include "util/error.h"

namespace tinygpt::bench {

inline ModelConfig model_shape(const std::string& name) {
    ModelConfig c;
    c.preset = name;
    c.arch = Arch::Llama;
    c.vocab = 256;
    c.ctx = 1024;
    c.experts = 8;
    c.topk = 2;
    if (name == "tiny") {
        c.layers = 4, c.d_model = 128, c.heads = 4, c.d_mlp = 512, c.experts = 1, c.topk = 1;
    } else if (name == "d256moe") {
        c.layers = 4, c.d_model = 256, c.heads = 8, c.kv_heads = 2, c.moe_ffn = 704;
    } else if (name == "moe144m") {
        c.layers = 8, c.d_model = 512, c.heads = 8, c.kv_heads = 2, c.moe_ffn = 1408;
    } else if (name == "moe600m") {
        c.layers = 12, c.d_model = 1024, c.heads = 16, c.kv_heads = 4, c.moe_ffn = 2048;
    } else if (name == "moe2b") {
        c.layers = 24, c.d_model = 2048, c.heads = 16, c.kv_heads = 4, c.moe_ffn = 1408;
        c.vocab = 32000;
        c.tie_embeddings = false;
    } else {
        throw Error("unknown shape '" + name + "' (known: tiny, d256moe, moe144m, moe600m, moe2b)");
    }
    if (c.moe_ffn > 0) c.d_mlp = c.moe_ffn;
    c.validate();
    return c;
}

}  // namespace tinygpt::bench
