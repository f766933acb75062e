// `tinygpt sample FILE`: generate text from a saved model, streaming it to stdout. Diagnostics
// (load time, speed) go to stderr, so `> out.txt` keeps only the text.
#include <cstdio>
#include <memory>

#include "cli/commands.h"
#include "infer/generate.h"
#include "io/model_file.h"
#include "util/error.h"
#include "util/sysinfo.h"
#include "util/timer.h"

namespace tinygpt::cli {

namespace {

struct SampleCommand {
    std::string path;
    std::string prompt = "ROMEO:";
    GenerateOptions gen;
    bool no_cache = false;
    int threads = 0;

    void run() {
        if (threads < 0) throw Error("--threads must be >= 0");
        if (gen.max_new_tokens < 0) throw Error("--tokens must be >= 0");
        gen.sampling.validate();
        set_num_threads(threads);
        Timer load;
        const ModelFile file = ModelFile::read(path, ReadOptions{/*optimizer=*/false});
        const ModelConfig& cfg = file.config();
        const double load_ms = load.millis();
        if (prompt.empty())
            throw Error("--prompt is empty (the model needs at least one byte to continue)");
        if (static_cast<int>(prompt.size()) > cfg.ctx)
            throw Error("--prompt has " + std::to_string(prompt.size()) +
                        " bytes, more than the model's context of " + std::to_string(cfg.ctx));
        std::fprintf(stderr, "loaded %s (format v%d, %s) in %.1f ms\n", path.c_str(),
                     file.version(), cfg.describe().c_str(), load_ms);
        gen.use_cache = !no_cache;
        std::fputs(prompt.c_str(), stdout);
        std::fflush(stdout);
        const GenerateStats st =
            generate(cfg, file.weights(), bytes_to_tokens(prompt), gen, [](int token) {
                std::fputc(token, stdout);
                std::fflush(stdout);
            });
        std::fputc('\n', stdout);
        std::fflush(stdout);
        if (st.hit_context)
            std::fprintf(stderr, "stopped: the model's context of %d tokens is full\n", cfg.ctx);
        std::fprintf(stderr,
                     "prompt %d tokens · generated %d · TTFT %.1f ms · decode %.0f tok/s · %s\n",
                     st.prompt_tokens, st.generated, st.ttft_ms, st.decode_tok_per_s(),
                     gen.use_cache ? "KV-cached" : "uncached (recomputed)");
    }
};

}  // namespace

void register_sample(CLI::App& app) {
    auto state = std::make_shared<SampleCommand>();
    CLI::App* cmd = app.add_subcommand("sample", "Generate text from a .tinygpt model");
    cmd->add_option("file", state->path, "Model file (.tinygpt v1, v2 or v3)")->required();
    cmd->add_option("--prompt", state->prompt, "Text to continue")->capture_default_str();
    cmd->add_option("--tokens", state->gen.max_new_tokens, "Bytes to generate")
        ->capture_default_str();
    cmd->add_option("--temperature,--temp", state->gen.sampling.temperature,
                    "Sampling temperature (<= 0: greedy)")
        ->capture_default_str();
    cmd->add_option("--top-k", state->gen.sampling.top_k, "Keep the k most likely tokens (0: all)")
        ->capture_default_str();
    cmd->add_option("--top-p", state->gen.sampling.top_p,
                    "Nucleus: keep the smallest set with this mass")
        ->capture_default_str();
    cmd->add_option("--seed", state->gen.seed, "Sampling seed (same seed, same text)")
        ->capture_default_str();
    cmd->add_flag("--no-cache", state->no_cache,
                  "Recompute the whole sequence every token (for checking)");
    cmd->add_option("--threads", state->threads, "Threads (0 = all cores)")->capture_default_str();
    cmd->callback([state] { state->run(); });
}

}  // namespace tinygpt::cli
