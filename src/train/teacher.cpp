#include "train/teacher.h"

#include <algorithm>
#include <cmath>

#include "model/memory_estimate.h"
#include "tokenizer/tokenizer.h"
#include "train/teacher_cache.h"
#include "util/error.h"

namespace tinygpt {

namespace {

// "the byte vocabulary", "a BPE of 300 ids": enough to tell the two apart in one line.
std::string tokenizer_kind(const Tokenizer& t) {
    return t.is_bytes() ? "the byte vocabulary"
                        : "a BPE of " + std::to_string(t.vocab_size()) + " ids";
}

}  // namespace

TeacherLoss::TeacherLoss(const ModelWeights& teacher, const DistillLossOptions& options, int topk)
    : session_(teacher), options_(options), topk_(topk) {
    options_.validate();
    require(topk >= 0, "--teacher-topk must be >= 0 (got " + std::to_string(topk) + ")");
}

TeacherLoss::~TeacherLoss() = default;

void TeacherLoss::set_cache(std::unique_ptr<TeacherCache> cache) {
    require(topk_ > 0 || !cache, "the teacher cache keeps a top-K: it needs --teacher-topk K > 0");
    cache_ = std::move(cache);
}

const float* TeacherLoss::run_teacher(const int* window, int T) {
    session_.reset();  // each row is its own sequence, as in the student's batch
    session_.forward(window, T, /*all_logits=*/true);
    ++teacher_windows_;
    return session_.logits();
}

const TeacherTopK& TeacherLoss::teacher_topk_of(const int* inputs, int B, int T) {
    const int V = session_.config().vocab;
    const size_t rows = static_cast<size_t>(B) * T;
    top_.k = std::min(topk_, V);
    top_.temperature = options_.temperature;
    top_.ids.resize(rows * top_.k);
    top_.log_probs.resize(rows * top_.k);
    top_.log_rest.resize(rows);
    for (int b = 0; b < B; ++b) {
        const int* window = inputs + static_cast<size_t>(b) * T;
        const int row = b * T;
        if (cache_ && cache_->find(window, T, top_, row)) continue;
        const TeacherTopK one =
            teacher_topk(run_teacher(window, T), T, V, topk_, options_.temperature);
        const size_t first = static_cast<size_t>(row) * top_.k;
        std::copy(one.ids.begin(), one.ids.end(), top_.ids.begin() + first);
        std::copy(one.log_probs.begin(), one.log_probs.end(), top_.log_probs.begin() + first);
        std::copy(one.log_rest.begin(), one.log_rest.end(), top_.log_rest.begin() + row);
        if (cache_) cache_->add(window, T, top_, row);
    }
    return top_;
}

LogitLoss::Result TeacherLoss::apply(const int* inputs, const int* targets, int B, int T,
                                     const float* logits, float* d_logits, float grad_scale) {
    const int rows = B * T, V = session_.config().vocab;
    DistillLoss l;
    if (topk_ > 0) {
        l = distill_loss(logits, teacher_topk_of(inputs, B, T), targets, rows, V, options_,
                         d_logits, grad_scale);
    } else {
        const size_t window = static_cast<size_t>(T) * V;
        logits_.resize(static_cast<size_t>(B) * window);
        for (int b = 0; b < B; ++b)
            std::copy_n(run_teacher(inputs + static_cast<size_t>(b) * T, T), window,
                        logits_.data() + b * window);
        l = distill_loss(logits, logits_.data(), targets, rows, V, options_, d_logits, grad_scale);
    }
    return Result{l.ce, l.kl, l.loss};
}

double teacher_memory_bytes(const ModelConfig& teacher, double stored_weight_bytes, int batch,
                            int ctx, int topk) {
    const double rows = static_cast<double>(batch) * ctx;
    const double targets =
        topk > 0 ? rows * (8.0 * std::min(topk, teacher.vocab) + 4) : rows * 4.0 * teacher.vocab;
    return estimate_scoring(teacher, ctx, stored_weight_bytes).total_bytes() + targets;
}

DistillEval evaluate_distillation(const ModelWeights& student, TeacherLoss& teacher,
                                  const std::vector<int32_t>& tokens) {
    if (tokens.size() < 2)
        throw Error("the text has " + std::to_string(tokens.size()) +
                    " token(s); scoring needs at least 2");
    const int64_t predictions = static_cast<int64_t>(tokens.size()) - 1;
    const int T = static_cast<int>(std::min<int64_t>(student.config().ctx, predictions));
    InferenceSession session(student);
    DistillEval r;
    for (int64_t start = 0; start < predictions;) {
        const int n = static_cast<int>(std::min<int64_t>(T, predictions - start));
        const std::vector<int> inputs(tokens.begin() + start, tokens.begin() + start + n);
        const std::vector<int> targets(tokens.begin() + start + 1, tokens.begin() + start + n + 1);
        session.reset();
        session.forward(inputs.data(), n, /*all_logits=*/true);
        const LogitLoss::Result l =
            teacher.apply(inputs.data(), targets.data(), 1, n, session.logits(), nullptr, 0.0f);
        if (!std::isfinite(l.loss))
            throw Error("the loss is NaN/inf in the window from token " + std::to_string(start) +
                        ": the models' numbers overflow");
        r.ce_sum += l.ce * n;
        r.kl_sum += l.kl * n;
        r.loss_sum += l.loss * n;
        r.tokens += n;
        start += n;
    }
    return r;
}

void check_teacher_matches(const ModelConfig& teacher, const Tokenizer& teacher_tokenizer,
                           const std::string& teacher_name, const ModelConfig& student,
                           const Tokenizer& student_tokenizer, const std::string& student_name) {
    if (teacher_tokenizer.fingerprint() != student_tokenizer.fingerprint())
        throw Error("the teacher '" + teacher_name + "' and " + student_name +
                    " have different tokenizers (teacher: " + tokenizer_kind(teacher_tokenizer) +
                    "; student: " + tokenizer_kind(student_tokenizer) +
                    "): distillation compares distributions over the same token ids");
    if (teacher.vocab != student.vocab)
        throw Error("the teacher '" + teacher_name + "' has a vocabulary of " +
                    std::to_string(teacher.vocab) + " and " + student_name + " of " +
                    std::to_string(student.vocab) + ": distillation needs the same vocabulary");
    if (teacher.ctx < student.ctx)
        throw Error("the teacher '" + teacher_name + "' has a context of " +
                    std::to_string(teacher.ctx) + " tokens, shorter than that of " + student_name +
                    ", " + std::to_string(student.ctx) + ": use --ctx " +
                    std::to_string(teacher.ctx) + " or less");
}

}  // namespace tinygpt
