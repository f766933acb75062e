#include "train/schedule.h"

#include <algorithm>
#include <cmath>

#include "util/error.h"

namespace tinygpt {

float learning_rate(const ScheduleConfig& cfg, int64_t step) {
    if (step < cfg.warmup)
        return cfg.max_lr * static_cast<float>(step + 1) / static_cast<float>(cfg.warmup);
    if (cfg.kind == LrSchedule::Constant) return cfg.max_lr;
    const double span = static_cast<double>(std::max<int64_t>(1, cfg.total_steps - cfg.warmup));
    const double progress = std::min(1.0, static_cast<double>(step - cfg.warmup) / span);
    const double cosine = 0.5 * (1.0 + std::cos(M_PI * progress));
    return static_cast<float>(cfg.min_lr + (cfg.max_lr - cfg.min_lr) * cosine);
}

LrSchedule parse_schedule(const std::string& name) {
    if (name == "cosine") return LrSchedule::Cosine;
    if (name == "constant") return LrSchedule::Constant;
    throw Error("unknown --lr-schedule '" + name + "' (known: cosine, constant)");
}

std::string schedule_name(LrSchedule kind) {
    return kind == LrSchedule::Cosine ? "cosine" : "constant";
}

}  // namespace tinygpt
