// The flags and the setup of a training command: `train`, and `distill`, which adds a teacher
// through Hooks. The student starts fresh (shape flags), from a loaded model (--init-from) or
// continues a saved run exactly (--resume); the loop itself is cli/training_run.h.
#pragma once
#include <CLI/CLI.hpp>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "cli/train_flags.h"
#include "io/model_file.h"
#include "tokenizer/tokenizer.h"
#include "train/trainer.h"

namespace tinygpt::cli {

struct TrainingRun;

struct TrainingCommand {
    TrainFlags flags;
    std::string out_path;
    int64_t save_every = 0;
    std::string format = "v3";
    std::string resume_path;
    std::string init_from;
    std::string tokenizer_path;
    int64_t stop_at = 0;
    int val_every = 200;
    int sample_every = 100;
    int sample_tokens = 60;
    std::string sample_prompt = "ROMEO:";
    std::string log_path;
    int log_every = 50;
    int expert_parallel = 1;  // ranks that split each MoE layer's experts (under mpirun)
    // The --resume file when a command read it before run() (distill, for its recipe): run()
    // takes it instead of reading the file again (a second pass over its checksums), and
    // releases it once the weights are copied.
    mutable std::optional<ModelFile> resumed_file;

    // What another command changes in the run.
    struct Hooks {
        std::string command = "train";  // the banner's title
        // The tokenizer of a fresh model (--tokenizer is then not a flag); null: bytes or
        // --tokenizer.
        const Tokenizer* fresh_tokenizer = nullptr;
        int fresh_vocab = 0;  // the vocabulary of a fresh model (0: the tokenizer's size)
        // A distillation: its saves keep the recipe (a `train --resume` of one is warned about).
        bool distills = false;
        // Bytes the command holds besides the student's run (a teacher), for the memory plan.
        std::function<double(const TrainOptions&)> extra_memory;
        // Called with the student's model and tokenizer before the corpus is read (refuse a
        // student that does not fit).
        std::function<void(const ModelConfig&, const Tokenizer&)> check_student;
        // Called with the trainer before the banner (set a LogitLoss, check the student).
        std::function<void(Trainer&, const Tokenizer&, TrainingRun&)> prepare;
        // Called after the banner (print more of it).
        std::function<void()> after_banner;
    };

    // The flags besides TrainFlags' model and training ones. `train_only`: --format and
    // --tokenizer too.
    void add_run_flags(CLI::App* cmd, bool train_only);
    void run(const Hooks& hooks) const;
};

}  // namespace tinygpt::cli
