// Learning-rate schedules: linear warm-up, then cosine decay to min_lr, or constant.
#pragma once
#include <cstdint>
#include <string>

namespace tinygpt {

enum class LrSchedule { Cosine, Constant };

struct ScheduleConfig {
    LrSchedule kind = LrSchedule::Cosine;
    float max_lr = 3e-4f;
    float min_lr = 3e-5f;
    int64_t warmup = 0;
    int64_t total_steps = 1;
};

// lr for 0-based `step` (docs/MODEL.md).
float learning_rate(const ScheduleConfig& cfg, int64_t step);
LrSchedule parse_schedule(const std::string& name);  // throws for unknown names
std::string schedule_name(LrSchedule kind);

}  // namespace tinygpt
