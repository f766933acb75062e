// `tinygpt bench-train`: timed training steps on the corpus. Prints the median ms/step, tok/s,
// the model FLOP rate and MFU against this machine's measured sgemm peak; --json for scripts.
#include <algorithm>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/common_flags.h"
#include "cli/memory_flag.h"
#include "cli/train_flags.h"
#include "dist/communicator.h"
#include "kernels/gemm.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"
#include "util/sysinfo.h"

namespace tinygpt::cli {

namespace {

struct BenchTrainCommand {
    TrainFlags flags;
    int warmup_steps = 3;
    int expert_parallel = 1;
    bool json = false;
    bool measure_peak = true;

    void run() const;
};

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const size_t n = v.size();
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

void BenchTrainCommand::run() const {
    std::vector<std::string> warnings;
    const TrainOptions options = flags.build(warnings);
    for (const auto& w : warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
    if (warmup_steps < 0) throw Error("--warmup must be >= 0");
    TrainingMemoryPlan plan;
    plan.batch = options.batch;
    check_memory(estimate_training(options.model, plan), memory_budget(flags.max_memory),
                 "try a smaller --preset, --batch (now " + std::to_string(options.batch) +
                     "), --ctx (now " + std::to_string(options.model.ctx) +
                     ") or --moe-experts (now " + std::to_string(options.model.experts) + ")");
    apply_threads_flag(flags.threads);
    const Corpus corpus = Corpus::load(flags.corpus_path(), Tokenizer::bytes());
    TrainOptions bench_options = options;
    bench_options.schedule.total_steps = warmup_steps + options.steps;
    Communicator& comm = world();
    Trainer trainer(bench_options, corpus, Parallelism{&comm, expert_parallel});
    const ModelConfig& m = options.model;
    if (!json) {
        std::printf(
            "bench-train  %s\n  params %s total · %s active per token · batch %d × %d · %s\n",
            m.describe().c_str(), with_commas(m.total_params()).c_str(),
            with_commas(m.active_params()).c_str(), options.batch, m.ctx, system_summary().c_str());
        std::fflush(stdout);
    }
    for (int i = 0; i < warmup_steps; ++i) trainer.step();
    std::vector<double> ms;
    StepStats s;
    const CommunicationStats before = trainer.communication_stats();
    for (int64_t i = 0; i < options.steps; ++i) {
        s = trainer.step();
        ms.push_back(s.seconds * 1e3);
    }
    const CommunicationStats after = trainer.communication_stats();
    const double mpi_ms = (after.seconds - before.seconds) * 1e3 / options.steps;
    const double mpi_bytes =
        static_cast<double>(after.bytes_sent - before.bytes_sent) / options.steps;
    const double med = median(ms);
    const double tokens = static_cast<double>(trainer.tokens_per_step());
    const double tok_per_s = tokens / (med / 1e3);
    const double gflops = training_flops_per_token(m) * tokens / (med / 1e3) / 1e9;
    if (comm.rank() != 0) return;  // rank 0 reports
    const double peak = measure_peak ? measure_sgemm_peak_gflops() : 0.0;
    const double mfu = peak > 0 ? gflops / peak : 0.0;
    if (json) {
        nlohmann::json out = {
            {"ms_per_step_median", med},
            {"ms_per_step", ms},
            {"tok_per_s", tok_per_s},
            {"params_total", m.total_params()},
            {"params_active", m.active_params()},
            {"loss", s.ce},
            {"aux", s.aux},
            {"model_gflops_per_s", gflops},
            {"sgemm_peak_gflops", peak},
            {"mfu", mfu},
            {"peak_rss_mb", peak_rss_mb()},
            {"threads", num_threads()},
            {"ranks", trainer.ranks()},
            {"expert_parallel", expert_parallel},
            {"mpi_ms_per_step", mpi_ms},
            {"mpi_bytes_per_step_per_rank", mpi_bytes},
            {"blas", blas_description()},
            {"config",
             {{"arch", arch_name(m.arch)},
              {"describe", m.describe()},
              {"preset", m.preset},
              {"layers", m.layers},
              {"d_model", m.d_model},
              {"heads", m.heads},
              {"kv_heads", m.kv_head_count()},
              {"d_mlp", m.d_mlp},
              {"moe_ffn", m.expert_width()},
              {"shared_ffn", m.shared_ffn},
              {"ctx", m.ctx},
              {"experts", m.experts},
              {"topk", m.topk},
              {"batch", options.batch},
              {"accum", options.accum},
              {"dispatch", m.dispatch == DispatchMode::Sparse ? "sparse" : "dense"}}}};
        std::printf("%s\n", out.dump().c_str());
        return;
    }
    std::printf(
        "  %lld timed steps after %d warm-up: median %.2f ms/step · %.0f tok/s · loss %.4f\n",
        static_cast<long long>(options.steps), warmup_steps, med, tok_per_s, s.ce);
    std::printf("  model %.1f GFLOP/s", gflops);
    if (peak > 0) std::printf(" · sgemm peak %.1f GFLOP/s · MFU %.1f%%", peak, 100 * mfu);
    std::printf(" · peak RSS %.0f MB\n", peak_rss_mb());
    if (trainer.ranks() > 1)
        std::printf("  %s · MPI %.2f ms/step (%.0f%%) · %.2f MB sent per rank per step\n",
                    trainer.parallelism_summary().c_str(), mpi_ms, 100 * mpi_ms / med,
                    mpi_bytes / 1e6);
}

}  // namespace

void register_bench_train(CLI::App& app) {
    auto state = std::make_shared<BenchTrainCommand>();
    state->flags.steps = 10;
    CLI::App* cmd = app.add_subcommand("bench-train",
                                       "Measure training throughput (median ms/step, tok/s, MFU)");
    state->flags.add_model_flags(cmd);
    state->flags.add_training_flags(cmd, /*warmup_flag_is_lr=*/false);
    cmd->add_option("--warmup", state->warmup_steps, "Untimed warm-up steps")
        ->capture_default_str();
    cmd->add_flag("--json", state->json, "Print one JSON object");
    cmd->add_option("--expert-parallel", state->expert_parallel,
                    "Under mpirun: split each MoE layer's experts over groups of this many ranks")
        ->capture_default_str();
    cmd->add_flag("!--no-peak", state->measure_peak, "Skip measuring the sgemm peak (no MFU)");
    cmd->callback([state] { state->run(); });
}

}  // namespace tinygpt::cli
