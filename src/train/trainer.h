// One training run: the model, AdamW, the schedule and the seeded batch stream. step() is one
// optimizer step over `accum` micro-batches; the CLI drives it and does the printing.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "model/model.h"
#include "train/adamw.h"
#include "train/data.h"
#include "train/schedule.h"
#include "train/train_state.h"
#include "util/rng.h"

namespace tinygpt {

class Communicator;
struct CommunicationStats;

// How a run is spread over processes (src/dist/). Every rank builds a Trainer with the same
// options. Data parallelism: the ranks split each step's micro-batches, so N ranks with
// --accum A take exactly the batches of one process with --accum N·A (rank r the r-th of each
// group of N) and sum their gradients. Expert parallelism: each group of `expert_parallel`
// consecutive ranks splits every MoE layer's experts and acts as one micro-batch of
// expert_parallel·batch sequences.
struct Parallelism {
    Communicator* world = nullptr;  // null: this process alone
    int expert_parallel = 1;
};

struct TrainOptions {
    ModelConfig model;
    int batch = 16;
    int accum = 1;
    int64_t steps = 500;
    ScheduleConfig schedule;
    float grad_clip = 1.0f;
    double val_split = 0.0;
    int val_batches = 8;
    uint64_t seed = 1337;
    AdamWConfig adamw;

    void validate() const;  // throws tinygpt::Error naming the flag
    int64_t tokens_per_step() const { return int64_t{batch} * accum * model.ctx; }
};

struct StepStats {
    int64_t step = 0;                 // 0-based index of the step just taken
    float loss = 0, ce = 0, aux = 0;  // means over the micro-batches
    float z = 0;                      // router z-loss, mean over the micro-batches
    float kl = 0;                     // with a LogitLoss: KL to the teacher (else 0)
    long dropped = 0;                 // pairs dropped by the capacity factor, all micro-batches
    std::vector<float> aux_per_block, z_per_block;  // MoE models: per layer (0 for dense ones)
    float lr = 0;
    double grad_norm = 0;
    double seconds = 0;
};

struct ValStats {
    float ce = 0, aux = 0, z = 0;
    float kl = 0;  // with a LogitLoss: KL to the teacher (else 0)
};

// A loss on the logits that takes the cross-entropy's place (distillation: train/teacher.h).
class LogitLoss {
  public:
    virtual ~LogitLoss() = default;
    struct Result {
        double ce = 0, kl = 0;  // means over the positions
        double loss = 0;        // what is optimised (without the MoE aux and z losses)
    };
    // logits: the model's raw logits [B·T, V] for inputs/targets [B, T]. If d_logits is non-null
    // it receives grad_scale · ∂(per-position loss)/∂logits; it may alias logits.
    virtual Result apply(const int* inputs, const int* targets, int B, int T, const float* logits,
                         float* d_logits, float grad_scale) = 0;
};

// A saved run to continue: weights and (if present) AdamW moments in ParameterLayout order, and
// the training state. Without moments AdamW restarts from zero; without a saved generator the
// batch stream is reseeded from the seed and the step.
struct ResumePoint {
    const float* weights = nullptr;
    const float* adam_m = nullptr;
    const float* adam_v = nullptr;
    TrainingState state;
    bool exact = false;  // the state includes the data generator and AdamW counter (v3 files)
};

class Trainer {
  public:
    // The corpus (and parallel.world) must outlive the trainer. `options` are per rank.
    Trainer(const TrainOptions& options, const Corpus& corpus, const Parallelism& parallel = {});
    // Continues `from` (its weights/moments are copied; the pointers need not outlive this).
    // They are laid out by ParameterLayout(options.model), whatever the parallelism.
    Trainer(const TrainOptions& options, const Corpus& corpus, const ResumePoint& from,
            const Parallelism& parallel = {});
    ~Trainer();

    // Optimises `loss` (which must outlive the trainer) in place of the cross-entropy from now
    // on, in step() and validate(). Null restores the cross-entropy.
    void set_logit_loss(LogitLoss* loss) { logit_loss_ = loss; }

    StepStats step();
    // Mean over val_batches windows drawn from a fixed generator, so values are comparable
    // across calls. Throws if there is no validation split.
    ValStats validate();
    bool has_validation() const { return split_.val.size > 0; }

    Model& model() { return model_; }
    const TrainOptions& options() const { return opt_; }
    // Ranks of the run and tokens per optimizer step over all of them.
    int ranks() const;
    int rank() const;
    int64_t tokens_per_step() const { return opt_.tokens_per_step() * ranks(); }
    Communicator& communicator() { return *world_; }
    // Time and bytes of this rank's collectives so far (all its communicators).
    CommunicationStats communication_stats() const;
    // "2 ranks: data-parallel 2 × expert-parallel 1 (8 of 8 experts per rank)" and the like.
    std::string parallelism_summary() const;
    // The weights and (with_moments) AdamW moments laid out by ParameterLayout(options.model)
    // (what a file holds), on rank 0; null on the others. Every rank must call it (with expert
    // parallelism rank 0 gathers the experts of its group). The pointers live until the next
    // call or step.
    struct FullState {
        const float* weights = nullptr;
        const float* adam_m = nullptr;
        const float* adam_v = nullptr;
    };
    FullState gather_full_state(bool with_moments = true);
    // What the last step routed to each expert of MoE block `block`, over all ranks.
    const std::vector<float>& expert_load(int block) const { return expert_load_[block]; }
    int64_t steps_done() const { return step_; }
    // Wall-clock seconds spent in step() over the whole run (earlier sessions of a resumed run
    // included).
    double train_seconds() const { return train_seconds_; }
    const CorpusSplit& split() const { return split_; }

    // Everything a save needs besides the weights: step, schedule, generator, histories. Batch
    // and accum are the single-process equivalent of the run (resumable on any rank count).
    TrainingState state() const;
    const float* adam_m() const { return adamw_.m_data(); }
    const float* adam_v() const { return adamw_.v_data(); }
    const std::vector<LossRecord>& loss_history() const { return loss_history_; }

  private:
    void record_history(const StepStats& s);
    // Sums the micro-batches' statistics over the ranks and takes their means.
    void reduce_step_stats(StepStats& s);
    // Sums the gradients over the ranks that hold the same tensors; returns the global norm.
    double reduce_gradients();
    void reduce_expert_load();
    // This rank's micro-batch into inputs_/targets_, advancing `rng` past every rank's.
    void draw_own_batch(const TokenSpan& span, Rng& rng);
    // Forward of the batch in inputs_/targets_; with a logit loss its values replace the
    // cross-entropy's (kl receives the KL) and, when loss_scale > 0, its gradient is left for
    // backward_batch.
    ForwardResult forward_batch(float loss_scale, float& kl);
    void backward_batch(float loss_scale);
    LogitLoss* logit_loss_ = nullptr;
    std::unique_ptr<Communicator> single_;  // the world when none is given
    Communicator* world_;
    int expert_parallel_;
    // Expert parallelism: the ranks that split the experts with this one (consecutive ranks),
    // and the ranks that hold the same experts as this one (one per group; null if alone).
    std::unique_ptr<Communicator> expert_group_, expert_replicas_;
    // Contiguous ranges of the parameter buffer (padding included) that hold routed experts'
    // tensors or replicated ones: their gradients are summed over different ranks.
    struct BufferRange {
        size_t offset = 0, count = 0;
        bool experts = false;
    };
    std::vector<BufferRange> reduce_ranges_;
    static std::vector<BufferRange> buffer_ranges(const ParameterLayout& layout);
    TrainOptions opt_;
    CorpusSplit split_;
    Model model_;
    AdamW adamw_;
    Rng data_rng_;
    std::vector<int> inputs_, targets_;
    int64_t step_ = 0;
    double train_seconds_ = 0;
    std::vector<LossRecord> loss_history_;
    std::vector<ExpertLoadRecord> expert_load_history_;
    std::vector<std::vector<float>> expert_load_;  // [layers][experts] of the last step
    std::vector<float> gathered_;                  // gather_full_state's buffers on rank 0
};

}  // namespace tinygpt
