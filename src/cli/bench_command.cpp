// `tinygpt bench FILE`: inference benchmark — model load time, time to first token, prefill and
// decode speed, inter-token latency percentiles and peak RSS over several greedy runs. The runs
// share one inference session (as llama-bench shares one context): the first allocates its
// buffers, so the timed runs after a warmup measure the model, not the allocator.
#include <algorithm>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/common_flags.h"
#include "cli/memory_flag.h"
#include "cli/run_weights.h"
#include "infer/generate.h"
#include "load/model_source.h"
#include "util/bandwidth.h"
#include "util/error.h"
#include "util/sysinfo.h"

namespace tinygpt::cli {

namespace {

double percentile(std::vector<double> v, double p) {
    if (v.empty()) return 0.0;
    std::sort(v.begin(), v.end());
    const double pos = p / 100.0 * static_cast<double>(v.size() - 1);
    const size_t lo = static_cast<size_t>(pos);
    const size_t hi = std::min(lo + 1, v.size() - 1);
    return v[lo] + (v[hi] - v[lo]) * (pos - static_cast<double>(lo));
}

struct BenchCommand {
    std::string path;
    int prompt_tokens = 64, gen_tokens = 128, runs = 5, warmup = 1, threads = 0;
    bool json = false, bandwidth = false;
    std::string max_memory, dtype;

    void run() const {
        if (prompt_tokens < 1) throw Error("--prompt-tokens must be at least 1");
        if (gen_tokens < 1) throw Error("--gen-tokens must be at least 1");
        if (runs < 1) throw Error("--runs must be at least 1");
        if (warmup < 0) throw Error("--warmup must be >= 0");
        apply_threads_flag(threads);
        const OpenedModel model = open_model(path, ReadOptions{/*optimizer=*/false});
        const double load_ms = model.load_ms;
        const ModelConfig& cfg = model.config;
        if (prompt_tokens + gen_tokens - 1 > cfg.ctx)
            throw Error("--prompt-tokens + --gen-tokens - 1 = " +
                        std::to_string(prompt_tokens + gen_tokens - 1) +
                        " exceeds the model's context of " + std::to_string(cfg.ctx));
        GenerationMemoryPlan plan;
        plan.prompt_tokens = prompt_tokens;
        plan.new_tokens = gen_tokens;
        plan.stored_weight_bytes = typed_weight_bytes(model, dtype);
        check_memory(estimate_generation(cfg, plan), memory_budget(max_memory),
                     "the model is too large for this machine: benchmark a smaller one");
        const ModelWeights weights = run_weights(model, dtype);
        // Decode reads these bytes of weights per token (plus its KV cache): bandwidth ÷ them
        // is the speed a memory-bound decode cannot beat.
        const double active_bytes = weights.active_bytes_per_token();
        const std::string filler = "The quick brown fox jumps over the lazy dog. ";
        // The filler text, tokenized and repeated up to exactly prompt_tokens tokens.
        const std::vector<int> filler_ids = model.tokenizer.encode(filler);
        std::vector<int> prompt;
        while (static_cast<int>(prompt.size()) < prompt_tokens)
            prompt.insert(prompt.end(), filler_ids.begin(), filler_ids.end());
        prompt.resize(prompt_tokens);
        GenerateOptions gen;
        gen.max_new_tokens = gen_tokens;
        gen.sampling.temperature = 0.0f;
        apply_decode_threads_flag(threads, gen);
        // One session for every run, as llama-bench keeps one context: the untimed warmup run
        // allocates its buffers, the timed ones reuse them.
        InferenceSession session(weights);
        gen.session = &session;
        std::vector<double> ttft, prefill, decode, itl, decode_threads;
        for (int r = 0; r < warmup + runs; ++r) {
            const GenerateStats st = generate(weights, prompt, gen, [](int) {});
            if (r < warmup) continue;
            ttft.push_back(st.ttft_ms);
            prefill.push_back(st.prefill_tok_per_s());
            decode.push_back(st.decode_tok_per_s());
            decode_threads.push_back(st.decode_threads);
            // The first inter-token latency is dropped, as in the original's harness.
            itl.insert(itl.end(), st.itl_ms.begin() + (st.itl_ms.empty() ? 0 : 1), st.itl_ms.end());
        }
        const double rss = peak_rss_mb();
        // After the peak RSS is read: the probe's 512 MiB buffer is not the model's.
        const double gbs =
            bandwidth ? measure_read_bandwidth_gbs(size_t{512} << 20, num_threads()) : 0;
        auto med = [](const std::vector<double>& v) { return percentile(v, 50); };
        if (json) {
            nlohmann::json out = {{"model", path},
                                  {"params_total", cfg.total_params()},
                                  {"params_active", cfg.active_params()},
                                  {"load_ms", load_ms},
                                  {"ttft_ms", med(ttft)},
                                  {"prefill_tok_per_s", med(prefill)},
                                  {"decode_tok_per_s", med(decode)},
                                  {"itl_ms_p50", percentile(itl, 50)},
                                  {"itl_ms_p95", percentile(itl, 95)},
                                  {"itl_ms_p99", percentile(itl, 99)},
                                  {"peak_rss_mb", rss},
                                  {"runs", runs},
                                  {"prompt_tokens", prompt_tokens},
                                  {"gen_tokens", gen_tokens},
                                  {"threads", num_threads()},
                                  {"decode_threads", med(decode_threads)},
                                  {"blas", blas_description()},
                                  {"weights", weights.type_summary()},
                                  {"weights_mb", weights.stored_bytes() / 1e6},
                                  {"weight_mb_per_token", active_bytes / 1e6}};
            if (bandwidth) {
                out["read_bandwidth_gbs"] = gbs;
                out["decode_bandwidth_fraction"] = med(decode) * active_bytes / (gbs * 1e9);
            }
            std::printf("%s\n", out.dump().c_str());
            return;
        }
        std::printf("tinygpt bench  %s · %s\n  params %lld total · %lld active per token · %s\n",
                    path.c_str(), cfg.describe().c_str(),
                    static_cast<long long>(cfg.total_params()),
                    static_cast<long long>(cfg.active_params()), system_summary().c_str());
        std::printf(
            "  workload   prompt %d tokens · generate %d · greedy · %d runs after %d warm-up\n",
            prompt_tokens, gen_tokens, runs, warmup);
        std::printf("  load       %.1f ms\n  TTFT       %.2f ms (median)\n", load_ms, med(ttft));
        std::printf("  prefill    %.0f tok/s on %d threads\n", med(prefill), num_threads());
        std::printf("  decode     %.0f tok/s on %g thread(s)%s\n", med(decode), med(decode_threads),
                    threads > 0 ? "" : " (median of the counts chosen by work size and timing)");
        std::printf("  ITL        p50 %.3f ms · p95 %.3f ms · p99 %.3f ms\n", percentile(itl, 50),
                    percentile(itl, 95), percentile(itl, 99));
        std::printf("  peak RSS   %.0f MB (weights %.0f MB as %s)\n", rss,
                    weights.stored_bytes() / 1e6, weights.type_summary().c_str());
        std::printf("  per token  %.1f MB of weights read by a decode step", active_bytes / 1e6);
        if (bandwidth)
            std::printf(" · read bandwidth %.1f GB/s · decode at %.0f%% of its limit (%.0f tok/s)",
                        gbs, 100.0 * med(decode) * active_bytes / (gbs * 1e9),
                        gbs * 1e9 / active_bytes);
        std::printf("\n");
    }
};

}  // namespace

void register_bench(CLI::App& app) {
    auto state = std::make_shared<BenchCommand>();
    CLI::App* cmd = app.add_subcommand(
        "bench", "Inference benchmark: load time, TTFT, prefill/decode tok/s, latency");
    cmd->add_option("file", state->path, kModelHelp)->required();
    cmd->add_option("--prompt-tokens", state->prompt_tokens, "Prompt length")
        ->capture_default_str();
    cmd->add_option("--gen-tokens", state->gen_tokens, "Tokens to generate per run")
        ->capture_default_str();
    cmd->add_option("--runs", state->runs, "Timed runs")->capture_default_str();
    cmd->add_option("--warmup", state->warmup,
                    "Untimed runs first (the first allocates the buffers every run reuses)")
        ->capture_default_str();
    cmd->add_option("--threads", state->threads,
                    "Threads (0 = all cores for the prompt; decode picks 1..all by timing)")
        ->capture_default_str();
    add_max_memory_flag(cmd, state->max_memory);
    add_run_dtype_flag(cmd, state->dtype);
    cmd->add_flag("--bandwidth", state->bandwidth,
                  "Measure the memory read bandwidth and show decode as a fraction of its limit");
    cmd->add_flag("--json", state->json, "Print one JSON object");
    cmd->callback([state] { state->run(); });
}

}  // namespace tinygpt::cli
