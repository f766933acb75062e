// Knowledge distillation's loss on the student's logits (docs/DISTILL.md), per position:
//
//   loss = α · τ² · KL(softmax(t/τ) ‖ softmax(z/τ)) + (1 − α) · CE(softmax(z), y)
//
// with z the student's logits, t the teacher's, y the next token. Its gradient with respect to
// z is α · τ · (softmax(z/τ) − g) + (1 − α) · (softmax(z) − onehot(y)), where g is the
// teacher's distribution at τ. With --teacher-topk K the teacher keeps only its K most likely
// tokens; the rest of its mass is one bucket, which the student matches with its own mass on
// the same tokens, spread as the student spreads it (so g off the top-K is r · s_j / S_rest).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace tinygpt {

struct DistillRecipe;
// "alpha 0.5 · temperature 2 · top-8 + rest bucket" (or "· full distribution"): the recipe as
// `distill` announces it and `inspect` shows it.
std::string describe_recipe(const DistillRecipe& recipe);

struct DistillLossOptions {
    double alpha = 0.5;        // weight of the KL term; 1 − alpha weighs the cross-entropy
    double temperature = 1.0;  // τ > 0: both distributions are softmax(logits / τ)
    void validate() const;     // throws tinygpt::Error naming --alpha / --temperature
};

// The teacher's top-K tokens per position, at a given temperature: ids [rows, k] and
// log-probabilities [rows, k] (most likely first), and the log of the mass of the other tokens.
struct TeacherTopK {
    int k = 0;
    double temperature = 1.0;
    std::vector<int32_t> ids;
    std::vector<float> log_probs;
    std::vector<float> log_rest;  // [rows]; −inf when the top-K hold all the mass
    int rows() const { return k ? static_cast<int>(log_rest.size()) : 0; }
};

// Keeps the top-k of softmax(logits / temperature) of each of `rows` rows of [rows, V] logits.
TeacherTopK teacher_topk(const float* logits, int rows, int V, int k, double temperature);

// Means over the rows.
struct DistillLoss {
    double kl = 0;    // KL(teacher ‖ student) at τ, without the τ² factor
    double ce = 0;    // the student's cross-entropy with the targets
    double loss = 0;  // α · τ² · kl + (1 − α) · ce
};

// The mixed loss of `rows` positions of student logits [rows, V] against a teacher's full
// logits [rows, V] (or its top-K), mean over the rows. If d_logits is non-null it receives
// grad_scale · ∂(per-row loss)/∂(student logits) for each row ([rows, V]; it may alias
// student_logits); grad_scale = 1 / rows gives the gradient of the mean.
// With alpha = 0 the values and gradient are bit for bit those of the cross-entropy kernels
// (kernels/cross_entropy.h), so distillation with alpha 0 is exactly `train`.
DistillLoss distill_loss(const float* student_logits, const float* teacher_logits,
                         const int* targets, int rows, int V, const DistillLossOptions& options,
                         float* d_logits, float grad_scale);
DistillLoss distill_loss(const float* student_logits, const TeacherTopK& teacher,
                         const int* targets, int rows, int V, const DistillLossOptions& options,
                         float* d_logits, float grad_scale);

}  // namespace tinygpt
