#include "train/distillation.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numeric>
#include <string>

#include "kernels/softmax.h"
#include "train/train_state.h"
#include "util/error.h"
#include "util/parallel.h"

namespace tinygpt {

std::string describe_recipe(const DistillRecipe& recipe) {
    char buf[96];
    std::snprintf(buf, sizeof buf, "alpha %g · temperature %g · ", recipe.alpha,
                  recipe.temperature);
    return buf + (recipe.teacher_topk > 0
                      ? "top-" + std::to_string(recipe.teacher_topk) + " + rest bucket"
                      : std::string("full distribution"));
}

namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

// out = log softmax(in / τ), in double: the KL needs logs of probabilities far below f32's range.
void log_softmax_scaled(double* out, const float* in, int V, double inv_tau) {
    double max = kNegInf;
    for (int j = 0; j < V; ++j) max = std::max(max, in[j] * inv_tau);
    double sum = 0;
    for (int j = 0; j < V; ++j) sum += std::exp(in[j] * inv_tau - max);
    const double lse = max + std::log(sum);
    for (int j = 0; j < V; ++j) out[j] = in[j] * inv_tau - lse;
}

// log Σ exp over the entries of `logs` that `skip` does not mark.
double log_sum_exp_except(const double* logs, const std::vector<char>& skip) {
    double max = kNegInf;
    for (size_t j = 0; j < skip.size(); ++j)
        if (!skip[j]) max = std::max(max, logs[j]);
    if (max == kNegInf) return kNegInf;
    double sum = 0;
    for (size_t j = 0; j < skip.size(); ++j)
        if (!skip[j]) sum += std::exp(logs[j] - max);
    return max + std::log(sum);
}

struct RowScratch {
    std::vector<float> probs;  // softmax(z) in f32, exactly as the cross-entropy kernel has it
    std::vector<double> student_log, teacher_log;  // log softmax(z/τ), log g
    std::vector<char> in_topk;
    explicit RowScratch(int V)
        : probs(static_cast<size_t>(V)),
          student_log(static_cast<size_t>(V)),
          teacher_log(static_cast<size_t>(V)),
          in_topk(static_cast<size_t>(V)) {}
};

// Fills s.teacher_log with log g, the distribution the student's softmax(z/τ) is pulled toward.
using TeacherTarget = void (*)(RowScratch& s, const void* teacher, int row, int V, double inv_tau);

void full_target(RowScratch& s, const void* teacher, int row, int V, double inv_tau) {
    const float* t = static_cast<const float*>(teacher) + static_cast<size_t>(row) * V;
    log_softmax_scaled(s.teacher_log.data(), t, V, inv_tau);
}

// Top-K: the kept tokens get the teacher's probabilities; the others share the rest-bucket's
// mass r in the proportions the student gives them, which makes the full-vocabulary KL equal to
// the KL over the K + 1 buckets (each off-top-K term is r·s_j/S · log(r/S)).
void topk_target(RowScratch& s, const void* teacher, int row, int V, double) {
    const TeacherTopK& top = *static_cast<const TeacherTopK*>(teacher);
    const size_t base = static_cast<size_t>(row) * top.k;
    std::fill(s.in_topk.begin(), s.in_topk.end(), 0);
    for (int i = 0; i < top.k; ++i) s.in_topk[top.ids[base + i]] = 1;
    const double log_rest = top.log_rest[row];
    const double log_student_rest = log_sum_exp_except(s.student_log.data(), s.in_topk);
    const int others = V - top.k;
    for (int j = 0; j < V; ++j) {
        if (s.in_topk[j]) continue;
        // A student with no mass off the top-K (underflow): spread r evenly; the KL is then
        // infinite, as it should be, and the trainer stops on it.
        s.teacher_log[j] = log_student_rest == kNegInf
                               ? log_rest - std::log(static_cast<double>(others))
                               : log_rest + s.student_log[j] - log_student_rest;
    }
    for (int i = 0; i < top.k; ++i) s.teacher_log[top.ids[base + i]] = top.log_probs[base + i];
}

DistillLoss distill_rows(const float* student_logits, const void* teacher, TeacherTarget target,
                         const int* targets, int rows, int V, const DistillLossOptions& options,
                         float* d_logits, float grad_scale) {
    options.validate();
    const double alpha = options.alpha, tau = options.temperature, inv_tau = 1.0 / tau;
    std::vector<float> ce(static_cast<size_t>(rows));
    std::vector<double> kl(static_cast<size_t>(rows));
    parallel_region(threads_for_region(rows >= 32), [&](int thread, int threads) {
        RowScratch s(V);
        const IndexRange share = static_share(rows, thread, threads);
        for (int r = static_cast<int>(share.begin); r < share.end; ++r) {
            const float* z = student_logits + static_cast<size_t>(r) * V;
            const int y = targets[r];
            const float z_target = z[y];  // read before d (which may alias z) is written
            // The cross-entropy exactly as kernels/cross_entropy.cpp computes it.
            ce[r] = softmax_row(s.probs.data(), z, V) - z_target;
            log_softmax_scaled(s.student_log.data(), z, V, inv_tau);
            target(s, teacher, r, V, inv_tau);
            double row_kl = 0;
            for (int j = 0; j < V; ++j) {
                const double log_g = s.teacher_log[j];
                if (log_g != kNegInf) row_kl += std::exp(log_g) * (log_g - s.student_log[j]);
            }
            kl[r] = row_kl;
            if (!d_logits) continue;
            float* d = d_logits + static_cast<size_t>(r) * V;
            if (alpha == 0) {  // the cross-entropy backward's own arithmetic: bit-identical
                for (int j = 0; j < V; ++j) d[j] = s.probs[j] * grad_scale;
                d[y] -= grad_scale;
                continue;
            }
            // ∂/∂z_j of α·τ²·KL is α·τ·(s_j − g_j); of (1 − α)·CE it is (1 − α)·(p_j − [j = y]).
            for (int j = 0; j < V; ++j) {
                const double kl_grad =
                    tau * (std::exp(s.student_log[j]) - std::exp(s.teacher_log[j]));
                const double ce_grad = s.probs[j] - (j == y ? 1.0 : 0.0);
                d[j] = static_cast<float>(grad_scale * (alpha * kl_grad + (1 - alpha) * ce_grad));
            }
        }
    });
    DistillLoss out;
    // Summed in row order, as Model::forward sums the cross-entropy: deterministic.
    for (int r = 0; r < rows; ++r) {
        out.ce += ce[r];
        out.kl += kl[r];
    }
    out.ce /= rows;
    out.kl /= rows;
    // At alpha 0 the loss is the cross-entropy alone, even where the KL overflows.
    out.loss = alpha == 0 ? out.ce : alpha * tau * tau * out.kl + (1 - alpha) * out.ce;
    return out;
}

std::string format_number(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", v);
    return buf;
}

}  // namespace

void DistillLossOptions::validate() const {
    require(std::isfinite(alpha) && alpha >= 0 && alpha <= 1,
            "--alpha must be in [0, 1] (got " + format_number(alpha) + ")");
    require(std::isfinite(temperature) && temperature > 0,
            "--temperature must be a finite number > 0 (got " + format_number(temperature) + ")");
}

TeacherTopK teacher_topk(const float* logits, int rows, int V, int k, double temperature) {
    require(k >= 1, "--teacher-topk must be at least 1 (got " + std::to_string(k) + ")");
    require(std::isfinite(temperature) && temperature > 0, "the temperature must be > 0");
    TeacherTopK top;
    top.k = std::min(k, V);
    top.temperature = temperature;
    top.ids.resize(static_cast<size_t>(rows) * top.k);
    top.log_probs.resize(top.ids.size());
    top.log_rest.resize(static_cast<size_t>(rows));
    parallel_region(threads_for_region(rows >= 32), [&](int thread, int threads) {
        std::vector<double> logs(static_cast<size_t>(V));
        std::vector<int> order(static_cast<size_t>(V));
        std::vector<char> kept(static_cast<size_t>(V));
        const IndexRange share = static_share(rows, thread, threads);
        for (int r = static_cast<int>(share.begin); r < share.end; ++r) {
            log_softmax_scaled(logs.data(), logits + static_cast<size_t>(r) * V, V,
                               1.0 / temperature);
            std::iota(order.begin(), order.end(), 0);
            // Ties go to the lower id, so the choice does not depend on the sort.
            std::partial_sort(order.begin(), order.begin() + top.k, order.end(), [&](int a, int b) {
                return logs[a] > logs[b] || (logs[a] == logs[b] && a < b);
            });
            std::fill(kept.begin(), kept.end(), 0);
            const size_t base = static_cast<size_t>(r) * top.k;
            for (int i = 0; i < top.k; ++i) {
                top.ids[base + i] = order[i];
                top.log_probs[base + i] = static_cast<float>(logs[order[i]]);
                kept[order[i]] = 1;
            }
            top.log_rest[r] = static_cast<float>(log_sum_exp_except(logs.data(), kept));
        }
    });
    return top;
}

DistillLoss distill_loss(const float* student_logits, const float* teacher_logits,
                         const int* targets, int rows, int V, const DistillLossOptions& options,
                         float* d_logits, float grad_scale) {
    return distill_rows(student_logits, teacher_logits, full_target, targets, rows, V, options,
                        d_logits, grad_scale);
}

DistillLoss distill_loss(const float* student_logits, const TeacherTopK& teacher,
                         const int* targets, int rows, int V, const DistillLossOptions& options,
                         float* d_logits, float grad_scale) {
    require(teacher.rows() == rows, "the teacher's top-K covers " + std::to_string(teacher.rows()) +
                                        " positions, not " + std::to_string(rows));
    require(std::abs(teacher.temperature - options.temperature) <= 1e-12 * options.temperature,
            "the teacher's top-K was taken at another temperature");
    return distill_rows(student_logits, &teacher, topk_target, targets, rows, V, options, d_logits,
                        grad_scale);
}

}  // namespace tinygpt
