// The frozen teacher of a distillation run (`tinygpt distill`): any model open_model loads
// (dense or MoE, either family, any format and weight type), run forward-only through the
// inference path (infer/session.h: no activations kept, weights read in their stored type) on the
// student's own batches. As a LogitLoss it replaces the student's cross-entropy with the mixed
// loss of train/distillation.h.
#pragma once
#include <string>
#include <vector>

#include "infer/session.h"
#include "model/model_weights.h"
#include "train/distillation.h"
#include "train/trainer.h"

namespace tinygpt {

class Tokenizer;

class TeacherLoss : public LogitLoss {
  public:
    // topk = 0 keeps the teacher's full distribution; K > 0 only its top-K tokens per position
    // and one bucket for the rest. The weights' memory stays alive through the session's copy.
    TeacherLoss(const ModelWeights& teacher, const DistillLossOptions& options, int topk = 0);

    Result apply(const int* inputs, const int* targets, int B, int T, const float* logits,
                 float* d_logits, float grad_scale) override;

    // The teacher's logits [B·T, V] for inputs [B, T], each row a sequence from position 0.
    const std::vector<float>& teacher_logits(const int* inputs, int B, int T);
    const DistillLossOptions& options() const { return options_; }

  private:
    InferenceSession session_;
    DistillLossOptions options_;
    int topk_;
    std::vector<float> logits_;
};

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
