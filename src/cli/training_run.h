// The loop shared by the training commands (`train`, `distill`): live progress and ETA,
// validation, inline samples, the JSON-lines log, periodic and final saves, and Ctrl-C (finish the
// step, save, exit 130); plus the banner and memory plan they print before it.
#pragma once
#include <cstdint>
#include <optional>
#include <ostream>
#include <string>

#include "model/memory_estimate.h"
#include "tokenizer/tokenizer.h"
#include "train/data.h"
#include "train/trainer.h"

namespace tinygpt::cli {

struct TrainingRun {
    std::string out_path;  // "" = no saves
    int64_t save_every = 0;
    int format_version = 3;
    int64_t stop_at = 0;  // 0 = run to the options' steps
    int val_every = 200;
    int sample_every = 100;
    int sample_tokens = 60;
    std::string sample_prompt = "ROMEO:";
    int log_every = 50;
    // Set by `distill`: the trainer has a teacher (report its KL too), and saves keep the recipe.
    std::optional<DistillRecipe> distillation;
    // Bytes of text per token of the validation split (1 for the byte vocabulary): validation
    // is also reported in bits per byte, comparable across tokenizers. 0 = no validation.
    double val_bytes_per_token = 0;
};

// Bytes of text per token of the validation split of `corpus` (0 when there is none).
double validation_bytes_per_token(const Corpus& corpus, const Tokenizer& tokenizer,
                                  double val_split, int ctx);

// Runs `trainer` from its current step to run.stop_at (or options.steps), printing progress, and
// saving to run.out_path. `log` (may be null) receives one JSON object per step; `log_path`
// names it in errors. Throws ExitCode{130} after a Ctrl-C (having saved).
void run_training_loop(const TrainingRun& run, Trainer& trainer, const TrainOptions& options,
                       const Tokenizer& tokenizer, std::ostream* log, const std::string& log_path);

// "tinygpt <command>" and the run's model, corpus, batch, schedule, memory and system lines.
void print_banner(const std::string& command, const TrainOptions& o, const Trainer& trainer,
                  const Corpus& corpus, const Tokenizer& tokenizer, const std::string& memory);

// What the run will hold: the model and its optimizer, the activations of a [batch, ctx]
// micro-batch, the inline samples, the loaded file while it is copied, and the corpus (as token
// ids: at most one per byte of its text).
MemoryEstimate estimate_memory(const TrainOptions& options, const std::string& corpus_path,
                               int sample_tokens, int sample_prompt_tokens,
                               double loaded_file_bytes, int expert_parallel = 1);
// What to change when the run does not fit: a loaded model's shape is fixed.
std::string memory_advice(const TrainOptions& o, bool loaded_model);

}  // namespace tinygpt::cli
