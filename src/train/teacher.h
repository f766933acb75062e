// The frozen teacher of a distillation run (`tinygpt distill`): any model open_model loads
// (dense or MoE, either family, any format and weight type), run forward-only through the
// inference path (infer/session.h: no activations kept, weights read in their stored type) on the
// student's own batches. As a LogitLoss it replaces the student's cross-entropy with the mixed
// loss of train/distillation.h.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "infer/session.h"
#include "model/model_weights.h"
#include "train/distillation.h"
#include "train/trainer.h"

namespace tinygpt {

class TeacherCache;
class Tokenizer;

class TeacherLoss : public LogitLoss {
  public:
    // topk = 0 keeps the teacher's full distribution; K > 0 only its top-K tokens per position
    // and one bucket for the rest (then the teacher's logits of a batch are never held at
    // once: each window's are reduced to their top-K as they come). The weights' memory stays
    // alive through the session's copy.
    TeacherLoss(const ModelWeights& teacher, const DistillLossOptions& options, int topk = 0);
    ~TeacherLoss() override;

    // With a top-K: look each window up in `cache` first, and add what the teacher computes.
    void set_cache(std::unique_ptr<TeacherCache> cache);
    TeacherCache* cache() const { return cache_.get(); }

    Result apply(const int* inputs, const int* targets, int B, int T, const float* logits,
                 float* d_logits, float grad_scale) override;

    const DistillLossOptions& options() const { return options_; }
    int64_t teacher_windows() const { return teacher_windows_; }  // windows the teacher ran

  private:
    // The teacher's logits [T, V] for one window, a sequence from position 0.
    const float* run_teacher(const int* window, int T);
    // The teacher's top-K for inputs [B, T], from the cache where it has them.
    const TeacherTopK& teacher_topk_of(const int* inputs, int B, int T);

    InferenceSession session_;
    DistillLossOptions options_;
    int topk_;
    std::vector<float> logits_;
    TeacherTopK top_;
    std::unique_ptr<TeacherCache> cache_;
    int64_t teacher_windows_ = 0;
};

// Bytes a distillation holds for its teacher besides the student's run: the weights as stored,
// its inference session over a window of `ctx` tokens with the logits of every position, and
// the batch's teacher targets (full logits, or top-K ids and log-probabilities).
double teacher_memory_bytes(const ModelConfig& teacher, double stored_weight_bytes, int batch,
                            int ctx, int topk);

// A student scored against its teacher on a text (`distill --eval-only`): non-overlapping windows
// of the student's context cover the text, as in infer/evaluate.h; both models run through the
// inference path.
struct DistillEval {
    int64_t tokens = 0;  // predictions scored
    double ce_sum = 0, kl_sum = 0, loss_sum = 0;
    double cross_entropy() const { return tokens ? ce_sum / tokens : 0; }  // the student's
    double kl() const { return tokens ? kl_sum / tokens : 0; }      // KL(teacher ‖ student) at τ
    double loss() const { return tokens ? loss_sum / tokens : 0; }  // the mixed loss
};
DistillEval evaluate_distillation(const ModelWeights& student, TeacherLoss& teacher,
                                  const std::vector<int32_t>& tokens);

// Distillation compares distributions over the same token ids: the tokenizers must be the same
// (the byte vocabulary, or the same BPE vocabulary, merges and special tokens), the vocabulary
// sizes equal and the teacher's context at least the student's. Throws one clear Error naming
// both models otherwise; `student_name` reads "the student" or "the student 'file'".
void check_teacher_matches(const ModelConfig& teacher, const Tokenizer& teacher_tokenizer,
                           const std::string& teacher_name, const ModelConfig& student,
                           const Tokenizer& student_tokenizer, const std::string& student_name);

}  // namespace tinygpt
