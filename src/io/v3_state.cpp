// The v3 header's training objects (docs/FORMAT.md): `training` (the TrainingState for an exact
// resume), `loss_history` and `expert_load_history`, to JSON and back with every field checked.
#include <cmath>
#include <limits>

#include "io/format_internal.h"

namespace tinygpt::io {

namespace {

constexpr int64_t kIntMax = std::numeric_limits<int>::max();

json rng_to_json(const std::array<uint64_t, 4>& words) {
    json a = json::array();
    for (uint64_t w : words) a.push_back("0x" + hex64(w));
    return a;
}

}  // namespace

json training_to_json(const TrainingState& s) {
    json adamw = {{"beta1", float_to_json(s.adamw.beta1)},
                  {"beta2", float_to_json(s.adamw.beta2)},
                  {"eps", float_to_json(s.adamw.eps)},
                  {"weight_decay", float_to_json(s.adamw.weight_decay)}};
    json schedule = {{"kind", s.schedule.kind == LrSchedule::Cosine ? "cosine" : "constant"},
                     {"max_lr", float_to_json(s.schedule.max_lr)},
                     {"min_lr", float_to_json(s.schedule.min_lr)},
                     {"warmup", s.schedule.warmup},
                     {"total_steps", s.schedule.total_steps}};
    json j{{"step", s.step},
           {"total_steps", s.total_steps},
           {"batch", s.batch},
           {"accum", s.accum},
           {"seed", "0x" + hex64(s.seed)},
           {"val_split", double_to_json(s.val_split)},
           {"grad_clip", float_to_json(s.grad_clip)},
           {"adamw", adamw},
           {"adam_steps", s.adam_steps},
           {"schedule", schedule},
           {"data_rng", rng_to_json(s.data_rng)},
           {"train_seconds", double_to_json(s.train_seconds)}};
    if (s.distillation) {
        const DistillRecipe& d = *s.distillation;
        j["distillation"] = {{"teacher", d.teacher},
                             {"alpha", double_to_json(d.alpha)},
                             {"temperature", double_to_json(d.temperature)},
                             {"teacher_topk", d.teacher_topk}};
    }
    return j;
}

void training_from_json(const json& j, TrainingState& s) {
    const std::string w = "training";
    as_object(j, w);
    auto i64 = [&](const json& obj, const char* key, const std::string& where, int64_t lo,
                   int64_t hi) {
        return as_int(require_field(obj, key, where), where + "." + key, lo, hi);
    };
    auto f32 = [&](const json& obj, const char* key, const std::string& where) {
        return json_to_float(require_field(obj, key, where), where + "." + key);
    };
    s.step = i64(j, "step", w, 0, kI64Max);
    s.total_steps = i64(j, "total_steps", w, 0, kI64Max);
    s.batch = static_cast<int>(i64(j, "batch", w, 0, kIntMax));
    s.accum = static_cast<int>(i64(j, "accum", w, 0, kIntMax));
    s.seed = as_u64(require_field(j, "seed", w), w + ".seed");
    s.val_split = json_to_double(require_field(j, "val_split", w), w + ".val_split");
    s.grad_clip = f32(j, "grad_clip", w);
    const json& adamw = as_object(require_field(j, "adamw", w), w + ".adamw");
    s.adamw.beta1 = f32(adamw, "beta1", w + ".adamw");
    s.adamw.beta2 = f32(adamw, "beta2", w + ".adamw");
    s.adamw.eps = f32(adamw, "eps", w + ".adamw");
    s.adamw.weight_decay = f32(adamw, "weight_decay", w + ".adamw");
    s.adam_steps = i64(j, "adam_steps", w, 0, kI64Max);
    const std::string ws = w + ".schedule";
    const json& sched = as_object(require_field(j, "schedule", w), ws);
    const std::string& kind = as_string(require_field(sched, "kind", ws), ws + ".kind");
    if (kind == "cosine")
        s.schedule.kind = LrSchedule::Cosine;
    else if (kind == "constant")
        s.schedule.kind = LrSchedule::Constant;
    else
        throw Error("header field '" + ws + ".kind' is an unknown schedule '" + kind +
                    "' (known: cosine, constant)");
    s.schedule.max_lr = f32(sched, "max_lr", ws);
    s.schedule.min_lr = f32(sched, "min_lr", ws);
    s.schedule.warmup = i64(sched, "warmup", ws, 0, kI64Max);
    s.schedule.total_steps = i64(sched, "total_steps", ws, 0, kI64Max);
    const json& rng = as_array(require_field(j, "data_rng", w), w + ".data_rng");
    if (rng.size() != 4)
        throw Error("header field 'training.data_rng' must hold 4 words (got " +
                    std::to_string(rng.size()) + ")");
    for (size_t i = 0; i < 4; ++i)
        s.data_rng[i] = as_u64(rng[i], w + ".data_rng[" + std::to_string(i) + "]");
    // Both optional: files written before they existed lack them.
    if (const json* t = optional_field(j, "train_seconds")) {
        s.train_seconds = json_to_double(*t, w + ".train_seconds");
        if (!(s.train_seconds >= 0))
            throw Error("header field 'training.train_seconds' must be >= 0");
    }
    if (const json* d = optional_field(j, "distillation")) {
        const std::string wd = w + ".distillation";
        as_object(*d, wd);
        DistillRecipe r;
        r.teacher = as_string(require_field(*d, "teacher", wd), wd + ".teacher");
        r.alpha = json_to_double(require_field(*d, "alpha", wd), wd + ".alpha");
        r.temperature = json_to_double(require_field(*d, "temperature", wd), wd + ".temperature");
        r.teacher_topk = static_cast<int>(i64(*d, "teacher_topk", wd, 0, kIntMax));
        if (r.teacher.empty()) throw Error("header field '" + wd + ".teacher' is empty");
        // The ranges distill accepts: a resumed run must not start from a recipe it would refuse.
        if (!(r.alpha >= 0 && r.alpha <= 1))
            throw Error("header field '" + wd + ".alpha' must be in [0, 1]");
        if (!(r.temperature > 0 && std::isfinite(r.temperature)))
            throw Error("header field '" + wd + ".temperature' must be a finite number > 0");
        s.distillation = r;
    }
}

json loss_history_to_json(const std::vector<LossRecord>& records) {
    json a = json::array();
    for (const LossRecord& r : records)
        a.push_back(json::array(
            {r.step, float_to_json(r.loss), float_to_json(r.aux), float_to_json(r.val_loss)}));
    return a;
}

std::vector<LossRecord> loss_history_from_json(const json& j) {
    as_array(j, "loss_history");
    std::vector<LossRecord> out;
    out.reserve(j.size());
    for (size_t i = 0; i < j.size(); ++i) {
        const std::string w = "loss_history[" + std::to_string(i) + "]";
        const json& r = as_array(j[i], w);
        if (r.size() != 4)
            throw Error("header field '" + w + "' must be [step, loss, aux, val_loss]");
        LossRecord rec;
        rec.step = as_int(r[0], w + "[0]", 0, kI64Max);
        rec.loss = json_to_float(r[1], w + "[1]");
        rec.aux = json_to_float(r[2], w + "[2]");
        rec.val_loss = json_to_float(r[3], w + "[3]");
        out.push_back(rec);
    }
    return out;
}

json expert_load_to_json(const std::vector<ExpertLoadRecord>& records) {
    json a = json::array();
    for (const ExpertLoadRecord& r : records) {
        json load = json::array();
        for (const auto& layer : r.load) {
            json row = json::array();
            for (float x : layer) row.push_back(float_to_json(x));
            load.push_back(std::move(row));
        }
        a.push_back(json{{"step", r.step}, {"load", std::move(load)}});
    }
    return a;
}

std::vector<ExpertLoadRecord> expert_load_from_json(const json& j) {
    as_array(j, "expert_load_history");
    std::vector<ExpertLoadRecord> out;
    out.reserve(j.size());
    for (size_t i = 0; i < j.size(); ++i) {
        const std::string w = "expert_load_history[" + std::to_string(i) + "]";
        as_object(j[i], w);
        ExpertLoadRecord rec;
        rec.step = as_int(require_field(j[i], "step", w), w + ".step", 0, kI64Max);
        const json& load = as_array(require_field(j[i], "load", w), w + ".load");
        for (size_t l = 0; l < load.size(); ++l) {
            const std::string wl = w + ".load[" + std::to_string(l) + "]";
            const json& row = as_array(load[l], wl);
            std::vector<float> values;
            values.reserve(row.size());
            for (size_t e = 0; e < row.size(); ++e)
                values.push_back(json_to_float(row[e], wl + "[" + std::to_string(e) + "]"));
            rec.load.push_back(std::move(values));
        }
        out.push_back(std::move(rec));
    }
    return out;
}

}  // namespace tinygpt::io
