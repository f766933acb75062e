// `tinygpt eval FILE --corpus TEXT`: cross-entropy, bits per byte and perplexity of a saved
// model on a text, over evenly spaced windows (deterministic: the same numbers every time).
#include <cmath>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/train_flags.h"
#include "io/model_file.h"
#include "model/model.h"
#include "train/data.h"
#include "util/error.h"
#include "util/sysinfo.h"

namespace tinygpt::cli {

namespace {

struct EvalCommand {
    std::string path, corpus_path;
    int batches = 50, batch = 8, threads = 0;
    bool json = false;

    void run() const {
        if (batches < 1) throw Error("--batches must be at least 1");
        if (batch < 1) throw Error("--batch must be at least 1");
        if (threads < 0) throw Error("--threads must be >= 0");
        set_num_threads(threads);
        const ModelFile file = ModelFile::read(path, ReadOptions{/*optimizer=*/false});
        const ModelConfig& cfg = file.config();
        const Corpus corpus = Corpus::load(corpus_path);
        const int T = cfg.ctx;
        if (corpus.bytes.size() < static_cast<size_t>(T) + 1)
            throw Error("corpus '" + corpus_path + "' has " + std::to_string(corpus.bytes.size()) +
                        " bytes, fewer than the model's ctx + 1 = " + std::to_string(T + 1));
        Model model(cfg, file.weights());
        model.reserve(batch, T);
        // Evenly spaced windows of T + 1 bytes from the start to the end of the text.
        const int windows = batches * batch;
        const size_t last_start = corpus.bytes.size() - T - 1;
        std::vector<int> inputs(static_cast<size_t>(batch) * T), targets(inputs.size());
        double ce_sum = 0.0, aux_sum = 0.0, z_sum = 0.0;
        for (int b = 0; b < batches; ++b) {
            for (int i = 0; i < batch; ++i) {
                const int w = b * batch + i;
                const size_t start =
                    windows > 1 ? last_start * static_cast<size_t>(w) / (windows - 1) : 0;
                for (int t = 0; t < T; ++t) {
                    inputs[static_cast<size_t>(i) * T + t] = corpus.bytes[start + t];
                    targets[static_cast<size_t>(i) * T + t] = corpus.bytes[start + t + 1];
                }
            }
            const ForwardResult r = model.forward(inputs.data(), targets.data(), batch, T);
            ce_sum += r.ce;
            aux_sum += r.aux;
            z_sum += r.z;
        }
        const double ce = ce_sum / batches, aux = aux_sum / batches, z = z_sum / batches;
        const double bpb = ce / std::log(2.0), ppl = std::exp(ce);
        const long long scored = static_cast<long long>(windows) * T;
        if (json) {
            nlohmann::json out = {{"model", path},       {"corpus", corpus_path},
                                  {"windows", windows},  {"tokens_scored", scored},
                                  {"cross_entropy", ce}, {"bits_per_byte", bpb},
                                  {"perplexity", ppl}};
            if (cfg.is_moe()) {
                out["aux"] = aux;
                out["z"] = z;
            }
            std::printf("%s\n", out.dump().c_str());
            return;
        }
        std::printf(
            "tinygpt eval\n  model    %s (format v%d) · %s\n  corpus   %s · %s bytes\n"
            "  windows  %d × %d tokens = %s tokens scored\n",
            path.c_str(), file.version(), cfg.describe().c_str(), corpus_path.c_str(),
            with_commas(static_cast<int64_t>(corpus.bytes.size())).c_str(), windows, T,
            with_commas(scored).c_str());
        std::printf("cross-entropy  %.4f nats/byte (uniform: %.4f)\n", ce,
                    std::log(static_cast<double>(cfg.vocab)));
        std::printf("bits per byte  %.4f\nperplexity     %.3f\n", bpb, ppl);
        if (cfg.is_moe())
            std::printf(
                "aux (load balance, not in the loss above)  %.4f\nz (router z-loss)  %.4f\n", aux,
                z);
    }
};

}  // namespace

void register_eval(CLI::App& app) {
    auto state = std::make_shared<EvalCommand>();
    CLI::App* cmd =
        app.add_subcommand("eval", "Cross-entropy, bits per byte and perplexity on a text");
    cmd->add_option("file", state->path, "Model file (.tinygpt v1, v2 or v3)")->required();
    cmd->add_option("--corpus", state->corpus_path, "Text to score")->required();
    cmd->add_option("--batches", state->batches, "Batches of windows")->capture_default_str();
    cmd->add_option("--batch", state->batch, "Windows per batch")->capture_default_str();
    cmd->add_option("--threads", state->threads, "Threads (0 = all cores)")->capture_default_str();
    cmd->add_flag("--json", state->json, "Print one JSON object");
    cmd->callback([state] { state->run(); });
}

}  // namespace tinygpt::cli
