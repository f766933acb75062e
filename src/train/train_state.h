// Everything beyond the weights and the AdamW moments that an exact resume needs: where the run
// is (step, schedule, data stream) and what it has seen (loss and expert-load history). Stored
// in v3 .tinygpt files; v1/v2 files carry the step only.
#pragma once
#include <array>
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "train/adamw.h"
#include "train/schedule.h"

namespace tinygpt {

struct LossRecord {
    int64_t step = 0;      // 1-based: the loss of the step that made the count reach `step`
    float loss = 0;        // cross-entropy
    float aux = 0;         // Σ over blocks of the load-balance loss (0 for dense models)
    float val_loss = NAN;  // NaN when no validation ran at this step
};

struct ExpertLoadRecord {
    int64_t step = 0;
    std::vector<std::vector<float>> load;  // [layer][expert]: fraction of (token, slot) pairs
};

// The recipe of a distillation run (`tinygpt distill`), kept so that `distill --resume` goes on
// with the same teacher and loss without the flags being given again.
struct DistillRecipe {
    std::string teacher;  // the teacher's path, absolute when it was saved
    double alpha = 0.5;
    double temperature = 1.0;
    int teacher_topk = 0;  // 0 = the full distribution
};

struct TrainingState {
    int64_t step = 0;         // optimizer steps taken
    int64_t total_steps = 0;  // --steps of the run that wrote the file
    int batch = 0;
    int accum = 1;
    uint64_t seed = 0;
    double val_split = 0.0;
    float grad_clip = 1.0f;
    AdamWConfig adamw;
    int64_t adam_steps = 0;  // AdamW's bias-correction counter t
    ScheduleConfig schedule;
    std::array<uint64_t, 4> data_rng{};  // the batch sampler's generator
    double train_seconds = 0;  // wall-clock seconds spent in training steps, over every session
    std::optional<DistillRecipe> distillation;  // set by `distill`, absent for `train`
    std::vector<LossRecord> loss_history;
    std::vector<ExpertLoadRecord> expert_load_history;
};

}  // namespace tinygpt
