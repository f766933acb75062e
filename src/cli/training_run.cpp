#include "cli/training_run.h"

#include <unistd.h>

#include <atomic>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "cli/common_flags.h"
#include "cli/exit_code.h"
#include "cli/memory_flag.h"
#include "cli/run_saves.h"
#include "cli/train_flags.h"
#include "dist/communicator.h"
#include "infer/generate.h"
#include "infer/sample.h"
#include "io/model_file.h"
#include "load/model_source.h"
#include "util/error.h"
#include "util/sysinfo.h"
#include "util/timer.h"

namespace tinygpt::cli {

namespace {

bool live_progress() {
    return isatty(fileno(stdout)) != 0;
}

std::string format_duration(double seconds) {
    char buf[32];
    if (seconds < 60)
        std::snprintf(buf, sizeof buf, "%.0fs", seconds);
    else if (seconds < 3600)
        std::snprintf(buf, sizeof buf, "%dm%02ds", static_cast<int>(seconds) / 60,
                      static_cast<int>(seconds) % 60);
    else
        std::snprintf(buf, sizeof buf, "%dh%02dm", static_cast<int>(seconds) / 3600,
                      (static_cast<int>(seconds) / 60) % 60);
    return buf;
}

// Ctrl-C: the loop finishes the step in flight, saves (with --out) and exits with 130. Under
// mpirun, which passes SIGTERM to the ranks when it gets Ctrl-C, SIGTERM does the same, and the
// ranks agree on stopping after the same step.
std::atomic<bool> g_interrupted{false};
extern "C" void on_sigint(int) {
    g_interrupted.store(true);
}

bool interrupted_anywhere(Communicator& comm) {
    int64_t stop = g_interrupted.load() ? 1 : 0;
    comm.allreduce_max(&stop, 1);
    return stop != 0;
}

}  // namespace

void print_banner(const std::string& command, const TrainOptions& o, const Trainer& trainer,
                  const Corpus& corpus, const Tokenizer& tokenizer, const std::string& memory) {
    const ModelConfig& m = o.model;
    std::printf("tinygpt %s\n", command.c_str());
    std::printf("  model     %s\n", m.describe().c_str());
    std::printf("  params    %s total · %s active per token\n",
                with_commas(m.total_params()).c_str(), with_commas(m.active_params()).c_str());
    std::printf("  tokenizer %s\n", tokenizer.describe().c_str());
    const CorpusSplit& s = trainer.split();
    std::printf("  corpus    %s · %s bytes · %s tokens (train %s · val %s)\n", corpus.path.c_str(),
                with_commas(static_cast<int64_t>(corpus.text_bytes)).c_str(),
                with_commas(static_cast<int64_t>(corpus.tokens.size())).c_str(),
                with_commas(static_cast<int64_t>(s.train.size)).c_str(),
                with_commas(static_cast<int64_t>(s.val.size)).c_str());
    const std::string ranks =
        trainer.ranks() > 1 ? std::to_string(trainer.ranks()) + " ranks × " : "";
    std::printf("  batch     %s%d × %d tokens × accum %d = %s tokens/step · %lld steps\n",
                ranks.c_str(), o.batch, m.ctx, o.accum,
                with_commas(trainer.tokens_per_step()).c_str(), static_cast<long long>(o.steps));
    if (trainer.ranks() > 1) std::printf("  ranks     %s\n", trainer.parallelism_summary().c_str());
    std::printf("  schedule  %s · warmup %lld · lr %g → %g · AdamW wd %g · clip %g",
                schedule_name(o.schedule.kind).c_str(), static_cast<long long>(o.schedule.warmup),
                o.schedule.max_lr,
                o.schedule.kind == LrSchedule::Cosine ? o.schedule.min_lr : o.schedule.max_lr,
                o.adamw.weight_decay, o.grad_clip);
    if (m.is_moe()) {
        const int moe_layers = m.moe_layer_count();
        std::printf(
            " · aux weight %g\n  aux       load-balance loss summed over the %d MoE "
            "blocks (%d.0 at perfect balance)",
            m.aux_weight, moe_layers, moe_layers);
        std::printf("\n  routing   softmax top-%d, gates %s", m.topk,
                    m.renormalize_topk() ? "renormalised" : "not renormalised");
        if (m.z_loss_weight > 0) std::printf(" · z-loss %g", m.z_loss_weight);
        if (m.jitter > 0) std::printf(" · jitter %g", m.jitter);
        if (m.capacity_factor > 0) std::printf(" · capacity factor %g", m.capacity_factor);
        if (m.capacity_factor == 0) std::printf(" · dropless");
    }
    std::printf("\n  memory    %s", memory.c_str());
    std::printf("\n  system    %s\n  seed      %llu\n", system_summary().c_str(),
                static_cast<unsigned long long>(o.seed));
    std::fflush(stdout);
}

// What the run will hold: the model and its optimizer, the activations of a [batch, ctx]
// micro-batch, the inline samples, the loaded file while it is copied, and the corpus (as token
// ids: at most one per byte of its text).
MemoryEstimate estimate_memory(const TrainOptions& options, const std::string& corpus_path,
                               int sample_tokens, int sample_prompt_tokens,
                               double loaded_file_bytes, int expert_parallel) {
    TrainingMemoryPlan plan;
    plan.expert_parallel = expert_parallel;
    plan.batch = options.batch;
    plan.sample_tokens = sample_tokens;
    plan.sample_prompt_tokens = sample_prompt_tokens;
    plan.loaded_file_bytes = loaded_file_bytes;
    std::error_code ec;
    const auto corpus_bytes = std::filesystem::file_size(corpus_path, ec);
    if (!ec) plan.corpus_tokens = static_cast<double>(corpus_bytes);
    return estimate_training(options.model, plan);
}

double validation_bytes_per_token(const Corpus& corpus, const Tokenizer& tokenizer,
                                  double val_split, int ctx) {
    if (val_split <= 0) return 0;
    if (tokenizer.is_bytes()) return 1;
    const TokenSpan val = split_corpus(corpus, val_split, ctx).val;
    if (val.size == 0) return 0;
    double bytes = 0;  // the text's bytes, counted without decoding it whole
    for (size_t i = 0; i < val.size; ++i) bytes += tokenizer.token_bytes(val.data[i]).size();
    return bytes / static_cast<double>(val.size);
}

// What to change when the run does not fit: a loaded model's shape is fixed.
std::string memory_advice(const TrainOptions& o, bool loaded_model) {
    const std::string batch = "--batch (now " + std::to_string(o.batch) + ")";
    if (loaded_model) return "try a smaller " + batch;
    return "try a smaller --preset, " + batch + ", --ctx (now " + std::to_string(o.model.ctx) +
           ") or --moe-experts (now " + std::to_string(o.model.experts) + ")";
}

void run_training_loop(const TrainingRun& run, Trainer& trainer, const TrainOptions& options,
                       const Tokenizer& tokenizer, std::ostream* log, const std::string& log_path) {
    Communicator& comm = trainer.communicator();
    const bool lead = comm.rank() == 0;  // the rank that writes files and prints
    SaveOptions save_options;
    save_options.version = run.format_version;
    set_tokenizer(save_options, tokenizer);
    RunSaves saves(run.out_path);
    auto save = [&] {
        Timer t;
        const Trainer::FullState full = trainer.gather_full_state();  // every rank takes part
        if (!lead) return;
        TrainingState state = trainer.state();
        state.distillation = run.distillation;
        save_model_file(run.out_path, options.model, full.weights, full.adam_m, full.adam_v, state,
                        save_options);
        if (live_progress()) std::printf("\r\033[K");
        std::printf("saved %s (step %lld, %.0f ms)\n", run.out_path.c_str(),
                    static_cast<long long>(trainer.steps_done()), t.millis());
    };
    g_interrupted.store(false);
    std::signal(SIGINT, on_sigint);
    if (comm.size() > 1) std::signal(SIGTERM, on_sigint);
    const bool live = live_progress();
    const bool distilling = run.distillation.has_value();
    const ModelConfig& m = options.model;
    // A greedy sample from rank 0 (the others take part in gathering the weights).
    auto sample_text = [&]() -> std::string {
        const Trainer::FullState full = trainer.gather_full_state(/*with_moments=*/false);
        if (!lead) return "";
        return generate_greedy_text(m, full.weights, tokenizer, run.sample_prompt,
                                    run.sample_tokens);
    };

    Timer total;
    double window_seconds = 0.0;
    int window_steps = 0;
    float last_val = NAN;
    StepStats s;
    const int64_t first_step = trainer.steps_done();
    const int64_t end_step = run.stop_at > 0 ? std::min(run.stop_at, options.steps) : options.steps;
    if (end_step <= first_step)
        throw Error("--stop-at " + std::to_string(run.stop_at) + " is not after the current step " +
                    std::to_string(first_step));
    while (trainer.steps_done() < end_step) {
        s = trainer.step();
        window_seconds += s.seconds;
        ++window_steps;
        const int64_t done = s.step + 1;
        const bool last = done == end_step;
        const double tok_per_s =
            trainer.tokens_per_step() * window_steps / std::max(window_seconds, 1e-9);
        const double eta = (end_step - done) * (total.seconds() / (done - first_step));

        nlohmann::json record;
        const bool do_val = trainer.has_validation() && (done % run.val_every == 0 || last);
        if (do_val) {
            const ValStats v = trainer.validate();
            last_val = v.ce;
            if (live) std::printf("\r\033[K");
            const double bpb =
                run.val_bytes_per_token > 0 ? v.ce / std::log(2.0) / run.val_bytes_per_token : NAN;
            std::printf("step %6lld  val loss %.4f", static_cast<long long>(done), v.ce);
            if (!std::isnan(bpb)) std::printf(" (%.3f bits/byte)", bpb);
            if (distilling) std::printf("  val kl %.4f", v.kl);
            if (m.is_moe()) std::printf("  val aux %.4f", v.aux);
            std::printf("\n");
            record["val_loss"] = v.ce;
            if (!std::isnan(bpb)) record["val_bpb"] = bpb;
            if (distilling) record["val_kl"] = v.kl;
            if (m.is_moe()) record["val_aux"] = v.aux;
        }
        char aux[96] = "";
        if (m.is_moe()) {
            int n = std::snprintf(aux, sizeof aux, "  aux %.4f", s.aux);
            if (m.z_loss_weight > 0) n += std::snprintf(aux + n, sizeof aux - n, "  z %.3f", s.z);
            if (m.capacity_factor > 0)
                std::snprintf(aux + n, sizeof aux - n, "  dropped %ld", s.dropped);
        }
        char kl[32] = "";
        if (distilling) std::snprintf(kl, sizeof kl, "  kl %.4f", s.kl);
        char line[352];
        std::snprintf(line, sizeof line,
                      "step %6lld/%lld  loss %.4f%s%s  lr %.2e  %.0f tok/s  eta %s",
                      static_cast<long long>(done), static_cast<long long>(options.steps), s.ce, kl,
                      aux, s.lr, tok_per_s, format_duration(eta).c_str());
        if (live) {
            std::printf("\r\033[K%s", line);
            if (last) std::printf("\n");
        } else if (done == 1 || done % run.log_every == 0 || last) {
            std::printf("%s\n", line);
        }
        if (done % run.log_every == 0) window_seconds = 0.0, window_steps = 0;
        if (run.sample_every > 0 && done % run.sample_every == 0 && !last &&
            run.sample_tokens > 0) {
            const std::string text = sample_text();
            if (live && lead) std::printf("\r\033[K");
            std::printf("sample  %s%s\n", printable(run.sample_prompt).c_str(),
                        printable(text).c_str());
        }
        std::fflush(stdout);
        if (!run.out_path.empty() && run.save_every > 0 && done % run.save_every == 0 && !last) {
            const int64_t next = done + run.save_every < end_step ? done + run.save_every : 0;
            saves.periodic(done, next, save);
        }

        if (log) {
            record["step"] = done;
            record["loss"] = s.ce;
            if (distilling) record["kl"] = s.kl;
            record["aux"] = s.aux;
            if (m.is_moe()) {
                record["z"] = s.z;
                record["dropped"] = s.dropped;
                record["aux_per_layer"] = s.aux_per_block;
                record["z_per_layer"] = s.z_per_block;
            }
            record["total_loss"] = s.loss;
            record["lr"] = s.lr;
            record["grad_norm"] = s.grad_norm;
            record["tok_per_s"] = trainer.tokens_per_step() / std::max(s.seconds, 1e-9);
            record["train_seconds"] = trainer.train_seconds();
            if (m.is_moe()) {
                nlohmann::json loads = nlohmann::json::array();
                for (int l = 0; l < m.layers; ++l) loads.push_back(trainer.expert_load(l));
                record["expert_load"] = loads;
            }
            *log << record.dump() << '\n';
            if (!*log) throw Error("writing --log file '" + log_path + "' failed");
        }
        if (interrupted_anywhere(comm)) {
            std::printf("\ninterrupted at step %lld\n", static_cast<long long>(done));
            if (!run.out_path.empty())
                saves.final(done, save);
            else
                std::printf("nothing saved (no --out)\n");
            std::fflush(stdout);
            throw ExitCode{130};
        }
    }
    std::signal(SIGINT, SIG_DFL);
    if (comm.size() > 1) std::signal(SIGTERM, SIG_DFL);
    if (!run.out_path.empty()) saves.final(end_step, save);
    const double seconds = total.seconds();
    const int64_t steps_run = end_step - first_step;
    const std::string final_sample = run.sample_tokens > 0 ? sample_text() : "";
    if (!lead) return;
    if (run.sample_tokens > 0)
        std::printf("sample  %s%s\n", printable(run.sample_prompt).c_str(),
                    printable(final_sample).c_str());
    std::printf("done — %lld steps in %s (%.2f step/s, %.0f tok/s) · final loss %.4f",
                static_cast<long long>(steps_run), format_duration(seconds).c_str(),
                steps_run / seconds, trainer.tokens_per_step() * steps_run / seconds, s.ce);
    if (!std::isnan(last_val)) std::printf(" · val %.4f", last_val);
    if (m.is_moe()) {
        std::printf("\nexpert load (last step, per MoE block):");
        for (int l = 0; l < m.layers; ++l) {
            if (!m.is_moe_layer(l)) continue;
            std::printf("\n  block %d:", l);
            for (float f : trainer.expert_load(l)) std::printf(" %.2f", f);
        }
    }
    std::printf("\npeak RSS %.0f MB\n", peak_rss_mb());
}

}  // namespace tinygpt::cli
