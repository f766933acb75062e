#include "train/trainer.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "dist/communicator.h"
#include "moe/expert_shard.h"
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

// Groups of `expert_parallel` consecutive ranks (collective: every rank calls it).
std::unique_ptr<Communicator> split_expert_group(Communicator& world, int expert_parallel) {
    if (expert_parallel <= 1 || world.size() % expert_parallel != 0) return nullptr;
    return world.split(world.rank() / expert_parallel, world.rank());
}
// The ranks at the same place in every group: they hold the same experts.
std::unique_ptr<Communicator> split_expert_replicas(Communicator& world, int expert_parallel) {
    if (expert_parallel <= 1 || world.size() % expert_parallel != 0 ||
        world.size() == expert_parallel)
        return nullptr;
    return world.split(world.rank() % expert_parallel, world.rank());
}

// Each tensor of `to` from the tensor with the same id in `from`. `from` may hold more experts;
// with `only_present`, tensors `from` lacks (other ranks' experts) are left as they are.
void copy_tensors(const ParameterLayout& from, const float* src, const ParameterLayout& to,
                  float* dst, bool only_present = false) {
    for (const ParamInfo& e : to.entries()) {
        const ParamInfo* f = from.find(e.id);
        if (!f && only_present) continue;
        require(f != nullptr, "tensor " + e.name + " is missing from the saved run");
        std::copy(src + f->offset, src + f->offset + e.numel, dst + e.offset);
    }
}

}  // namespace

// The buffer in order, a new range wherever the kind of tensor changes (padding between tensors
// is left out: it stays zero).
std::vector<Trainer::BufferRange> Trainer::buffer_ranges(const ParameterLayout& layout) {
    std::vector<const ParamInfo*> order;
    for (const ParamInfo& e : layout.entries()) order.push_back(&e);
    std::sort(order.begin(), order.end(),
              [](const ParamInfo* a, const ParamInfo* b) { return a->offset < b->offset; });
    std::vector<BufferRange> ranges;
    for (const ParamInfo* e : order) {
        const bool experts = e->id.is_routed_expert();
        if (ranges.empty() || ranges.back().experts != experts)
            ranges.push_back({e->offset, 0, experts});
        ranges.back().count = e->offset + e->numel - ranges.back().offset;
    }
    return ranges;
}

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

Trainer::Trainer(const TrainOptions& options, const Corpus& corpus, const Parallelism& parallel)
    : single_(parallel.world ? nullptr : make_single_process_communicator()),
      world_(parallel.world ? parallel.world : single_.get()),
      expert_parallel_(parallel.expert_parallel),
      expert_group_(split_expert_group(*world_, parallel.expert_parallel)),
      expert_replicas_(split_expert_replicas(*world_, parallel.expert_parallel)),
      opt_((options.validate(), options)),
      split_(split_corpus(corpus, options.val_split, options.model.ctx)),
      model_(options.model, expert_group_.get()),
      adamw_(model_.buffer_floats(), model_.layout().decay_count(), options.adamw),
      data_rng_(options.seed ^ kDataStream) {
    const int N = world_->size(), P = expert_parallel_;
    require(P >= 1 && N % P == 0, "--expert-parallel " + std::to_string(P) +
                                      " must divide the number of ranks (" + std::to_string(N) +
                                      ")");
    require(P == 1 || opt_.model.is_moe(), "--expert-parallel needs an MoE model (--moe-experts)");
    if (P > 1) reduce_ranges_ = buffer_ranges(model_.layout());
    model_.init(opt_.seed ^ kInitStream);
    model_.reserve(opt_.batch, opt_.model.ctx);
    const size_t n = static_cast<size_t>(opt_.batch) * opt_.model.ctx;
    inputs_.resize(n);
    targets_.resize(n);
    expert_load_.resize(opt_.model.layers);
}

Trainer::Trainer(const TrainOptions& options, const Corpus& corpus, const ResumePoint& from,
                 const Parallelism& parallel)
    : Trainer(options, corpus, parallel) {
    // `from` holds every expert; this rank takes its own (all of them without expert
    // parallelism, where the layouts are the same).
    const ParameterLayout full(opt_.model);
    const ParameterLayout& mine = model_.layout();
    copy_tensors(full, from.weights, mine, model_.params());
    if (from.adam_m && from.adam_v) {
        copy_tensors(full, from.adam_m, mine, adamw_.m().data());
        copy_tensors(full, from.adam_v, mine, adamw_.v().data());
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
    train_seconds_ = from.state.train_seconds;
}

Trainer::~Trainer() = default;

int Trainer::ranks() const {
    return world_->size();
}
int Trainer::rank() const {
    return world_->rank();
}

std::string Trainer::parallelism_summary() const {
    const int N = ranks(), P = expert_parallel_;
    std::string s = std::to_string(N) + " ranks: data-parallel " + std::to_string(N / P) +
                    " × expert-parallel " + std::to_string(P);
    if (opt_.model.is_moe())
        s += " (" + std::to_string(opt_.model.experts / P) + " of " +
             std::to_string(opt_.model.experts) + " experts per layer on each rank)";
    return s;
}

CommunicationStats Trainer::communication_stats() const {
    CommunicationStats total = world_->stats();
    for (const Communicator* c : {expert_group_.get(), expert_replicas_.get()}) {
        if (!c) continue;
        total.seconds += c->stats().seconds;
        total.bytes_sent += c->stats().bytes_sent;
        total.calls += c->stats().calls;
    }
    return total;
}

Trainer::FullState Trainer::gather_full_state(bool with_moments) {
    if (!expert_group_) {
        if (rank() != 0) return {};
        if (!with_moments) return {model_.weights(), nullptr, nullptr};
        return {model_.weights(), adamw_.m_data(), adamw_.v_data()};
    }
    const int buffers = with_moments ? 3 : 1;
    // The first group holds every expert between its ranks: they send their buffers (weights,
    // m, v) to rank 0, which lays them out as a file holds them.
    const int P = expert_parallel_;
    const size_t local = model_.buffer_floats();
    if (rank() != 0) {
        const float* own[3] = {model_.weights(), adamw_.m_data(), adamw_.v_data()};
        if (rank() < P)
            for (int k = 0; k < buffers; ++k) expert_group_->send(own[k], local * sizeof(float), 0);
        return {};
    }
    const ModelConfig& m = opt_.model;
    const ParameterLayout full(m);
    const size_t n = full.total();
    gathered_.assign(buffers * n, 0.0f);
    float* dst[3] = {nullptr, nullptr, nullptr};
    for (int k = 0; k < buffers; ++k) dst[k] = gathered_.data() + k * n;
    const float* own[3] = {model_.weights(), adamw_.m_data(), adamw_.v_data()};
    for (int k = 0; k < buffers; ++k) copy_tensors(model_.layout(), own[k], full, dst[k], true);
    std::vector<float> incoming;
    for (int q = 1; q < P; ++q) {
        const ParameterLayout theirs(m, expert_shard(m.experts, P, q));
        incoming.resize(theirs.total());
        for (int k = 0; k < buffers; ++k) {
            expert_group_->receive(incoming.data(), incoming.size() * sizeof(float), q);
            copy_tensors(theirs, incoming.data(), full, dst[k], true);
        }
    }
    return {dst[0], dst[1], dst[2]};
}

TrainingState Trainer::state() const {
    TrainingState st;
    st.step = step_;
    st.total_steps = opt_.steps;
    // The single-process run this one equals: an expert-parallel group is one micro-batch of
    // its ranks' sequences, the data-parallel groups are accumulation steps.
    st.batch = opt_.batch * expert_parallel_;
    st.accum = opt_.accum * (ranks() / expert_parallel_);
    st.seed = opt_.seed;
    st.val_split = opt_.val_split;
    st.grad_clip = opt_.grad_clip;
    st.adamw = opt_.adamw;
    st.adam_steps = adamw_.steps_taken();
    st.schedule = opt_.schedule;
    st.data_rng = data_rng_.state();
    st.train_seconds = train_seconds_;
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
        e.load = expert_load_;
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

namespace {

// One micro-batch's statistics as one vector (summed over the ranks in one call):
// loss, kl, ce, aux, z, dropped, then aux and z per block.
std::vector<double> pack_stats(const ForwardResult& r, float kl) {
    std::vector<double> v = {r.loss, kl, r.ce, r.aux, r.z, static_cast<double>(r.dropped)};
    v.insert(v.end(), r.aux_per_block.begin(), r.aux_per_block.end());
    v.insert(v.end(), r.z_per_block.begin(), r.z_per_block.end());
    return v;
}

}  // namespace

// Every rank draws the whole group of N batches and keeps its own (the r-th): the stream stays
// the single-process one.
void Trainer::draw_own_batch(const TokenSpan& span, Rng& rng) {
    const int B = opt_.batch, T = opt_.model.ctx;
    for (int q = 0; q < ranks(); ++q) {
        if (q == rank())
            sample_batch(span, rng, B, T, inputs_.data(), targets_.data());
        else
            skip_batch(span, rng, B, T);
    }
}

StepStats Trainer::step() {
    Timer timer;
    StepStats s;
    s.step = step_;
    s.lr = learning_rate(opt_.schedule, step_);
    const int N = ranks(), r = rank(), P = expert_parallel_;
    // The single-process equivalent takes accum·N/P micro-batches per step.
    const int64_t micro_per_step = static_cast<int64_t>(opt_.accum) * (N / P);
    const float loss_scale = 1.0f / (static_cast<float>(opt_.accum) * N);
    for (int micro = 0; micro < opt_.accum; ++micro) {
        draw_own_batch(split_.train, data_rng_);
        // Router jitter is a function of (seed, step, micro-batch): a resumed run draws the same.
        const int64_t index = static_cast<int64_t>(micro) * (N / P) + r / P;
        model_.set_training(true, (opt_.seed ^ kNoiseStream) +
                                      static_cast<uint64_t>(step_ * micro_per_step + index));
        float kl = 0;
        const ForwardResult fr = forward_batch(loss_scale, kl);
        std::vector<double> stats = pack_stats(fr, kl);
        // Summed before the backward: every rank sees a non-finite loss on any rank and stops
        // at the same point (an expert-parallel backward needs all of its group).
        world_->allreduce_sum(stats.data(), stats.size());
        for (size_t i = 0; i < stats.size(); ++i)
            if (i != 5) stats[i] /= N;
        if (!std::isfinite(stats[0]))
            throw Error("loss became " + format_float(stats[0]) + " at step " +
                        std::to_string(step_ + 1) + " (cross-entropy " + format_float(stats[2]) +
                        ", aux " + format_float(stats[3]) + ", z " + format_float(stats[4]) +
                        "); stopping. " +
                        (opt_.grad_clip > 0 ? "Try a lower --max-lr or a longer --lr-warmup."
                                            : "Try a lower --max-lr or --grad-clip 1."));
        backward_batch(loss_scale);
        s.loss += static_cast<float>(stats[0]) / opt_.accum;
        s.kl += static_cast<float>(stats[1]) / opt_.accum;
        s.ce += static_cast<float>(stats[2]) / opt_.accum;
        s.aux += static_cast<float>(stats[3]) / opt_.accum;
        s.z += static_cast<float>(stats[4]) / opt_.accum;
        s.dropped += static_cast<long>(stats[5]);
        const size_t L = fr.aux_per_block.size();
        s.aux_per_block.resize(L);
        s.z_per_block.resize(L);
        for (size_t l = 0; l < L; ++l) {
            s.aux_per_block[l] += static_cast<float>(stats[6 + l]) / opt_.accum;
            s.z_per_block[l] += static_cast<float>(stats[6 + L + l]) / opt_.accum;
        }
    }
    model_.set_training(false);
    reduce_expert_load();
    const double norm = reduce_gradients();
    try {
        adamw_.step_with_norm(model_.params(), model_.grads(), s.lr, opt_.grad_clip, norm);
    } catch (const Error& e) {
        throw Error(std::string(e.what()) + " at step " + std::to_string(step_ + 1) + "; stopping");
    }
    s.grad_norm = norm;
    ++step_;
    s.seconds = timer.seconds();
    train_seconds_ += s.seconds;
    record_history(s);
    return s;
}

double Trainer::reduce_gradients() {
    float* g = model_.grads();
    const size_t n = model_.buffer_floats();
    if (!expert_group_) {  // every rank holds every tensor: one sum over the whole buffer
        world_->allreduce_sum(g, n);
        return global_norm(g, n);
    }
    // Replicated tensors: summed over all ranks. Experts: over the ranks holding the same ones
    // (their owner already summed its group's tokens). The norm adds each expert once.
    double replicated_sq = 0.0, experts_sq = 0.0;
    for (const BufferRange& r : reduce_ranges_) {
        float* part = g + r.offset;
        if (r.experts) {
            if (expert_replicas_) expert_replicas_->allreduce_sum(part, r.count);
            const double norm = global_norm(part, r.count);
            experts_sq += norm * norm;
        } else {
            world_->allreduce_sum(part, r.count);
            const double norm = global_norm(part, r.count);
            replicated_sq += norm * norm;
        }
    }
    expert_group_->allreduce_sum(&experts_sq, 1);
    return std::sqrt(replicated_sq + experts_sq);
}

void Trainer::reduce_expert_load() {
    const ModelConfig& m = opt_.model;
    if (!m.is_moe()) return;
    for (int l = 0; l < m.layers; ++l) {
        std::vector<float> load = model_.expert_load(l);
        world_->allreduce_sum(load.data(), load.size());
        for (float& f : load) f /= static_cast<float>(ranks());
        expert_load_[l] = std::move(load);
    }
}

ValStats Trainer::validate() {
    if (!has_validation()) throw Error("no validation split (use --val-split)");
    model_.set_training(false);  // validation measures the inference model
    Rng rng(opt_.seed ^ kValStream);
    const int N = ranks(), r = rank();
    // The ranks share the batches of the single-process run (an expert-parallel group's ranks
    // each take a part of one): rank r takes the r-th of each group of N. Every rank runs the
    // same number of forwards (an expert-parallel forward needs its whole group); one past the
    // last batch counts for nothing.
    const int batches = opt_.val_batches * expert_parallel_;
    const int rounds = (batches + N - 1) / N;
    double sums[4] = {0, 0, 0, 0};  // ce, kl, aux, z
    for (int i = 0; i < rounds; ++i) {
        draw_own_batch(split_.val, rng);
        float kl = 0;
        const ForwardResult fr = forward_batch(0.0f, kl);
        if (i * N + r >= batches) continue;
        sums[0] += fr.ce;
        sums[1] += kl;
        sums[2] += fr.aux;
        sums[3] += fr.z;
    }
    world_->allreduce_sum(sums, 4);
    ValStats v;
    v.ce = static_cast<float>(sums[0] / batches);
    v.kl = static_cast<float>(sums[1] / batches);
    v.aux = static_cast<float>(sums[2] / batches);
    v.z = static_cast<float>(sums[3] / batches);
    if (!loss_history_.empty() && loss_history_.back().step == step_)
        loss_history_.back().val_loss = v.ce;
    return v;
}

}  // namespace tinygpt
