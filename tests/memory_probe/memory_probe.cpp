// A child process for tests/test_memory_estimate.cpp: runs one small workload (a training step
// and an inline sample, an evaluation, or a generation past the context) and prints
// `estimate <bytes> growth <bytes>`: what model/memory_estimate.h predicts for it and how much
// the peak resident set grew while it ran. A process of its own, so that its peak is only its.
//
//   tinygpt_memory_probe train|eval|sample gpt|llama EXPERTS TOPK BATCH
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "infer/evaluate.h"
#include "infer/generate.h"
#include "model/memory_estimate.h"
#include "tokenizer/tokenizer.h"
#include "train/trainer.h"
#include "util/rng.h"

namespace {

using namespace tinygpt;

// A /proc/self/status field in bytes ("VmRSS", "VmHWM").
double status_bytes(const std::string& field) {
    std::ifstream in("/proc/self/status");
    for (std::string line; std::getline(in, line);)
        if (line.rfind(field + ":", 0) == 0) return std::stod(line.substr(field.size() + 1)) * 1024;
    return 0;
}

ModelConfig probe_config(const std::string& arch, int experts, int topk) {
    ModelConfig cfg = preset_config("tiny", parse_arch(arch));
    cfg.experts = experts;
    cfg.topk = topk;
    if (cfg.is_llama() && experts > 1) {  // the Llama family's extra buffers too
        cfg.shared_ffn = 128;
        cfg.qk_norm = QkNorm::PerHead;
    }
    cfg.validate();
    return cfg;
}

Corpus random_corpus(size_t tokens) {
    Corpus corpus;
    Rng rng(7);
    for (size_t i = 0; i < tokens; ++i)
        corpus.tokens.push_back(static_cast<int32_t>(rng.next_u64() % 256));
    corpus.text_bytes = tokens;
    return corpus;
}

// Starts the OpenMP threads and the BLAS's buffers, which belong to the process, not to the
// workload: one tiny training step.
void warm_up(const Corpus& corpus) {
    TrainOptions o;
    o.model = probe_config("gpt", 1, 1);
    o.model.layers = 1;
    o.model.d_model = 64;
    o.model.d_mlp = 128;
    o.batch = 2;
    Trainer trainer(o, corpus);
    trainer.step();
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 6) {
        std::fprintf(stderr, "usage: %s train|eval|sample gpt|llama EXPERTS TOPK BATCH\n", argv[0]);
        return 2;
    }
    const std::string mode = argv[1];
    const ModelConfig cfg = probe_config(argv[2], std::stoi(argv[3]), std::stoi(argv[4]));
    const int batch = std::stoi(argv[5]);
    const Corpus corpus = random_corpus(200000);
    const Tokenizer tokenizer = Tokenizer::bytes();
    warm_up(corpus);
    // The peak (VmHWM) starts again from the current RSS, which is the baseline.
    auto reset_peak = [] {
        std::ofstream("/proc/self/clear_refs") << "5";
        return status_bytes("VmRSS");
    };
    double baseline = reset_peak();

    MemoryEstimate estimate;
    if (mode == "train") {
        TrainOptions o;
        o.model = cfg;
        o.batch = batch;
        o.steps = 10;
        Trainer trainer(o, corpus);
        trainer.step();  // one step touches every buffer: forward, backward, AdamW
        const std::string sample =
            generate_greedy_text(cfg, trainer.model().weights(), tokenizer, "ROMEO:", 60);
        TrainingMemoryPlan plan;
        plan.batch = batch;
        plan.sample_prompt_tokens = 6;
        plan.sample_tokens = 60;
        estimate = estimate_training(cfg, plan);
    } else {
        Model initialised(cfg);  // weights as a loaded model has them; freed before measuring
        initialised.init(1);
        baseline = reset_peak();
        const std::vector<float> weights(initialised.params(),
                                         initialised.params() + initialised.buffer_floats());
        if (mode == "eval") {
            const std::vector<int32_t> text(corpus.tokens.begin(),
                                            corpus.tokens.begin() + 4 * batch * cfg.ctx + 1);
            evaluate(cfg, weights.data(), text, tokenizer, batch, 0);
            estimate = estimate_evaluation(cfg, batch, cfg.ctx);
        } else {
            GenerateOptions gen;
            gen.max_new_tokens = 2 * cfg.ctx;  // past the context: the window slides
            gen.sampling.temperature = 0.0f;
            const std::vector<int> prompt(corpus.tokens.begin(), corpus.tokens.begin() + 16);
            generate(cfg, weights.data(), prompt, gen, [](int) {});
            GenerationMemoryPlan plan;
            plan.prompt_tokens = 16;
            plan.new_tokens = gen.max_new_tokens;
            estimate = estimate_generation(cfg, plan);
        }
    }
    std::printf("estimate %.0f growth %.0f\n%s\n", estimate.total_bytes(),
                status_bytes("VmHWM") - baseline, estimate.breakdown().c_str());
    return 0;
}
