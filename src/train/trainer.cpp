#include "train/trainer.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "util/error.h"
#include "util/timer.h"

namespace tinygpt {

namespace {

std::string format_float(double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%g", v);
    return buf;
}

// Seeds of the independent random streams, derived from --seed.
constexpr uint64_t kInitStream = 0x1000;
constexpr uint64_t kDataStream = 0x2000;
constexpr uint64_t kValStream = 0x3000;
constexpr uint64_t kNoiseStream = 0x4000;

}  // namespace

void TrainOptions::validate() const {
    model.validate();
    require(batch >= 1, "--batch must be at least 1 (got " + std::to_string(batch) + ")");
    require(accum >= 1, "--accum must be at least 1 (got " + std::to_string(accum) + ")");
    require(steps >= 1, "--steps must be at least 1 (got " + std::to_string(steps) + ")");
    require(std::isfinite(schedule.max_lr) && schedule.max_lr > 0.0f,
            "--max-lr must be a finite number > 0 (got " + format_float(schedule.max_lr) + ")");
    require(std::isfinite(schedule.min_lr) && schedule.min_lr >= 0.0f,
            "--min-lr must be a finite number >= 0 (got " + format_float(schedule.min_lr) + ")");
    require(schedule.warmup >= 0,
            "--lr-warmup must be >= 0 (got " + std::to_string(schedule.warmup) + ")");
    require(std::isfinite(grad_clip) && grad_clip >= 0.0f,
            "--grad-clip must be a finite number >= 0 (got " + format_float(grad_clip) + ")");
    require(std::isfinite(val_split) && val_split >= 0.0 && val_split < 0.5,
            "--val-split must be in [0, 0.5) (got " + format_float(val_split) + ")");
    require(val_batches >= 1, "validation needs at least one batch");
}

Trainer::Trainer(const TrainOptions& options, const Corpus& corpus)
    : opt_((options.validate(), options)),
      split_(split_corpus(corpus, options.val_split, options.model.ctx)),
      model_(options.model),
      adamw_(model_.buffer_floats(), model_.layout().decay_count(), options.adamw),
      data_rng_(options.seed ^ kDataStream) {
    model_.init(opt_.seed ^ kInitStream);
    model_.reserve(opt_.batch, opt_.model.ctx);
    const size_t n = static_cast<size_t>(opt_.batch) * opt_.model.ctx;
    inputs_.resize(n);
    targets_.resize(n);
}

Trainer::Trainer(const TrainOptions& options, const Corpus& corpus, const ResumePoint& from)
    : Trainer(options, corpus) {
    std::copy(from.weights, from.weights + model_.buffer_floats(), model_.params());
    if (from.adam_m && from.adam_v) {
        std::copy(from.adam_m, from.adam_m + model_.buffer_floats(), adamw_.m().begin());
        std::copy(from.adam_v, from.adam_v + model_.buffer_floats(), adamw_.v().begin());
        adamw_.set_steps_taken(from.exact ? from.state.adam_steps : from.state.step);
    }
    step_ = from.state.step;
    if (from.exact) {
        data_rng_.set_state(from.state.data_rng);
    } else {
        data_rng_.reseed(opt_.seed ^ kDataStream ^
                         static_cast<uint64_t>(step_) * 0x9E3779B97F4A7C15ull);
    }
    loss_history_ = from.state.loss_history;
    expert_load_history_ = from.state.expert_load_history;
}

TrainingState Trainer::state() const {
    TrainingState st;
    st.step = step_;
    st.total_steps = opt_.steps;
    st.batch = opt_.batch;
    st.accum = opt_.accum;
    st.seed = opt_.seed;
    st.val_split = opt_.val_split;
    st.grad_clip = opt_.grad_clip;
    st.adamw = opt_.adamw;
    st.adam_steps = adamw_.steps_taken();
    st.schedule = opt_.schedule;
    st.data_rng = data_rng_.state();
    st.loss_history = loss_history_;
    st.expert_load_history = expert_load_history_;
    return st;
}

void Trainer::record_history(const StepStats& s) {
    LossRecord r;
    r.step = s.step + 1;
    r.loss = s.ce;
    r.aux = s.aux;
    loss_history_.push_back(r);
    // Bounded history: past 8192 records keep every other one (the newest always stays).
    if (loss_history_.size() > 8192) {
        std::vector<LossRecord> thinned;
        for (size_t i = loss_history_.size() % 2; i < loss_history_.size(); i += 2)
            thinned.push_back(loss_history_[i]);
        loss_history_ = std::move(thinned);
    }
    const ModelConfig& m = opt_.model;
    const int64_t every = std::max<int64_t>(1, opt_.steps / 256);
    if (m.is_moe() && (r.step % every == 0 || r.step == opt_.steps)) {
        ExpertLoadRecord e;
        e.step = r.step;
        for (int l = 0; l < m.layers; ++l) e.load.push_back(model_.expert_load(l));
        expert_load_history_.push_back(std::move(e));
    }
}

ForwardResult Trainer::forward_batch(float loss_scale, float& kl) {
    const int B = opt_.batch, T = opt_.model.ctx;
    if (!logit_loss_) return model_.forward(inputs_.data(), targets_.data(), B, T);
    ForwardResult r = model_.forward(inputs_.data(), nullptr, B, T);
    float* logits = model_.logit_buffer();
    // The same scale as Model::backward gives the cross-entropy: exactly `train` at alpha 0.
    const LogitLoss::Result l =
        logit_loss_->apply(inputs_.data(), targets_.data(), B, T, logits,
                           loss_scale > 0 ? logits : nullptr, loss_scale / (B * T));
    const ModelConfig& m = opt_.model;
    r.ce = l.ce;
    r.loss = l.loss + m.aux_weight * r.aux + m.z_loss_weight * r.z;
    kl = static_cast<float>(l.kl);
    return r;
}

void Trainer::backward_batch(float loss_scale) {
    if (logit_loss_)
        model_.backward_from_logits(loss_scale);
    else
        model_.backward(loss_scale);
}

StepStats Trainer::step() {
    Timer timer;
    StepStats s;
    s.step = step_;
    s.lr = learning_rate(opt_.schedule, step_);
    const int B = opt_.batch, T = opt_.model.ctx;
    for (int micro = 0; micro < opt_.accum; ++micro) {
        sample_batch(split_.train, data_rng_, B, T, inputs_.data(), targets_.data());
        // Router jitter is a function of (seed, step, micro-batch): a resumed run draws the same.
        model_.set_training(
            true, (opt_.seed ^ kNoiseStream) + static_cast<uint64_t>(step_) * opt_.accum + micro);
        float kl = 0;
        const ForwardResult r = forward_batch(1.0f / opt_.accum, kl);
        if (!std::isfinite(r.loss))
            throw Error("loss became " + format_float(r.loss) + " at step " +
                        std::to_string(step_ + 1) + " (cross-entropy " + format_float(r.ce) +
                        ", aux " + format_float(r.aux) + ", z " + format_float(r.z) +
                        "); stopping. " +
                        (opt_.grad_clip > 0 ? "Try a lower --max-lr or a longer --lr-warmup."
                                            : "Try a lower --max-lr or --grad-clip 1."));
        backward_batch(1.0f / opt_.accum);
        s.loss += r.loss / opt_.accum;
        s.kl += kl / opt_.accum;
        s.ce += r.ce / opt_.accum;
        s.aux += r.aux / opt_.accum;
        s.z += r.z / opt_.accum;
        s.dropped += r.dropped;
        s.aux_per_block.resize(r.aux_per_block.size());
        s.z_per_block.resize(r.z_per_block.size());
        for (size_t l = 0; l < r.aux_per_block.size(); ++l) {
            s.aux_per_block[l] += r.aux_per_block[l] / opt_.accum;
            s.z_per_block[l] += r.z_per_block[l] / opt_.accum;
        }
    }
    model_.set_training(false);
    try {
        s.grad_norm = adamw_.step(model_.params(), model_.grads(), s.lr, opt_.grad_clip);
    } catch (const Error& e) {
        throw Error(std::string(e.what()) + " at step " + std::to_string(step_ + 1) + "; stopping");
    }
    ++step_;
    s.seconds = timer.seconds();
    record_history(s);
    return s;
}

ValStats Trainer::validate() {
    if (!has_validation()) throw Error("no validation split (use --val-split)");
    model_.set_training(false);  // validation measures the inference model
    Rng rng(opt_.seed ^ kValStream);
    const int B = opt_.batch, T = opt_.model.ctx;
    ValStats v;
    for (int i = 0; i < opt_.val_batches; ++i) {
        sample_batch(split_.val, rng, B, T, inputs_.data(), targets_.data());
        float kl = 0;
        const ForwardResult r = forward_batch(0.0f, kl);
        v.ce += r.ce / opt_.val_batches;
        v.kl += kl / opt_.val_batches;
        v.aux += r.aux / opt_.val_batches;
        v.z += r.z / opt_.val_batches;
    }
    if (!loss_history_.empty() && loss_history_.back().step == step_)
        loss_history_.back().val_loss = v.ce;
    return v;
}

}  // namespace tinygpt
