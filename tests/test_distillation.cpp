// Distillation's loss (train/distillation.h) against a double-precision reference and its finite
// differences, the top-K bucket, and the teacher path (train/teacher.h) inside the trainer.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <vector>

#include "kernels/cross_entropy.h"
#include "model/model.h"
#include "model/model_weights.h"
#include "test_util.h"
#include "tokenizer/tokenizer.h"
#include "train/distillation.h"
#include "train/teacher.h"
#include "train/trainer.h"
#include "util/error.h"

namespace tinygpt {
namespace {

using test::random_vector;

// log softmax(x / τ) in double.
std::vector<double> log_softmax(const double* x, int V, double tau) {
    double max = -INFINITY;
    for (int j = 0; j < V; ++j) max = std::max(max, x[j] / tau);
    double sum = 0;
    for (int j = 0; j < V; ++j) sum += std::exp(x[j] / tau - max);
    std::vector<double> out(V);
    for (int j = 0; j < V; ++j) out[j] = x[j] / tau - max - std::log(sum);
    return out;
}

// The loss of one row written the plain way: KL over the full vocabulary, or over the teacher's
// top-K tokens and one bucket for the rest (K = 0: full).
double reference_row_loss(const double* z, const float* t, int y, int V, double alpha, double tau,
                          int K) {
    std::vector<double> td(t, t + V);
    const std::vector<double> ls = log_softmax(z, V, tau), lt = log_softmax(td.data(), V, tau);
    const double ce = -log_softmax(z, V, 1.0)[y];
    double kl = 0;
    if (K == 0) {
        for (int j = 0; j < V; ++j) kl += std::exp(lt[j]) * (lt[j] - ls[j]);
    } else {
        std::vector<int> order(V);
        std::iota(order.begin(), order.end(), 0);
        std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return lt[a] > lt[b]; });
        double teacher_kept = 0, student_kept = 0;
        for (int i = 0; i < K; ++i) {
            const int j = order[i];
            kl += std::exp(lt[j]) * (lt[j] - ls[j]);
            teacher_kept += std::exp(lt[j]);
            student_kept += std::exp(ls[j]);
        }
        const double r = 1 - teacher_kept, s = 1 - student_kept;
        if (r > 0) kl += r * std::log(r / s);
    }
    return alpha * tau * tau * kl + (1 - alpha) * ce;
}

struct Case {
    double alpha, tau;
    int K;
};

constexpr int kRows = 3, kVocab = 11;

DistillLoss run(const std::vector<float>& z, const std::vector<float>& t, const std::vector<int>& y,
                const Case& c, float* d) {
    const DistillLossOptions o{c.alpha, c.tau};
    if (c.K == 0) return distill_loss(z.data(), t.data(), y.data(), kRows, kVocab, o, d, 1.0f);
    const TeacherTopK top = teacher_topk(t.data(), kRows, kVocab, c.K, c.tau);
    return distill_loss(z.data(), top, y.data(), kRows, kVocab, o, d, 1.0f);
}

TEST(Distillation, LossAndGradientMatchAReferenceAndItsFiniteDifferences) {
    const std::vector<float> z = random_vector(kRows * kVocab, 1, 2.0f);
    const std::vector<float> t = random_vector(kRows * kVocab, 2, 3.0f);
    const std::vector<int> y = {3, 0, 10};
    for (const Case c : {Case{1.0, 1.0, 0}, Case{1.0, 2.5, 0}, Case{0.3, 1.0, 0}, Case{0.7, 4.0, 0},
                         Case{0.5, 2.0, 3}, Case{1.0, 1.0, 1}, Case{0.0, 2.0, 0}}) {
        SCOPED_TRACE("alpha " + std::to_string(c.alpha) + " tau " + std::to_string(c.tau) + " K " +
                     std::to_string(c.K));
        std::vector<float> d(z.size());
        const DistillLoss got = run(z, t, y, c, d.data());
        for (int r = 0; r < kRows; ++r) {
            std::vector<double> zr(z.begin() + r * kVocab, z.begin() + (r + 1) * kVocab);
            const float* tr = t.data() + r * kVocab;
            if (r == 0) {  // the mean's value, checked once per case
                double mean = 0;
                for (int q = 0; q < kRows; ++q) {
                    std::vector<double> zq(z.begin() + q * kVocab, z.begin() + (q + 1) * kVocab);
                    mean += reference_row_loss(zq.data(), t.data() + q * kVocab, y[q], kVocab,
                                               c.alpha, c.tau, c.K) /
                            kRows;
                }
                EXPECT_NEAR(got.loss, mean, 1e-5 * std::max(1.0, mean));
                EXPECT_NEAR(got.loss, c.alpha * c.tau * c.tau * got.kl + (1 - c.alpha) * got.ce,
                            1e-12);
            }
            // Central differences of the reference in double: d holds ∂(row loss)/∂z (scale 1).
            for (int j = 0; j < kVocab; ++j) {
                const double h = 1e-5, saved = zr[j];
                zr[j] = saved + h;
                const double up =
                    reference_row_loss(zr.data(), tr, y[r], kVocab, c.alpha, c.tau, c.K);
                zr[j] = saved - h;
                const double down =
                    reference_row_loss(zr.data(), tr, y[r], kVocab, c.alpha, c.tau, c.K);
                zr[j] = saved;
                EXPECT_NEAR(d[r * kVocab + j], (up - down) / (2 * h), 2e-5)
                    << "row " << r << " logit " << j;
            }
        }
    }
}

TEST(Distillation, TemperatureSquaredScalesTheKlTerm) {
    const std::vector<float> z = random_vector(kRows * kVocab, 3);
    const std::vector<float> t = random_vector(kRows * kVocab, 4);
    const std::vector<int> y = {1, 2, 3};
    for (double tau : {0.5, 1.0, 3.0}) {
        const DistillLoss l = run(z, t, y, Case{1.0, tau, 0}, nullptr);
        EXPECT_GT(l.kl, 0);
        EXPECT_DOUBLE_EQ(l.loss, tau * tau * l.kl);
    }
    // At high τ the KL shrinks as 1/τ², so τ²·KL (and the gradient's size) stays of one order.
    const double at4 = run(z, t, y, Case{1.0, 4.0, 0}, nullptr).loss;
    const double at16 = run(z, t, y, Case{1.0, 16.0, 0}, nullptr).loss;
    EXPECT_NEAR(at16 / at4, 1.0, 0.1);
}

TEST(Distillation, TopKKeepsTheMostLikelyTokensAndABucketThatSumToOne) {
    const std::vector<float> t = random_vector(kRows * kVocab, 5, 2.0f);
    const TeacherTopK top = teacher_topk(t.data(), kRows, kVocab, 4, 1.5);
    ASSERT_EQ(top.rows(), kRows);
    for (int r = 0; r < kRows; ++r) {
        double mass = std::exp(top.log_rest[r]);
        for (int i = 0; i < 4; ++i) {
            mass += std::exp(top.log_probs[r * 4 + i]);
            if (i > 0) {
                EXPECT_GE(top.log_probs[r * 4 + i - 1], top.log_probs[r * 4 + i]);
            }
            // No token left out is more likely than a kept one.
            const float kept = t[r * kVocab + top.ids[r * 4 + i]];
            int above = 0;
            for (int j = 0; j < kVocab; ++j) above += t[r * kVocab + j] > kept;
            EXPECT_EQ(above, i);
        }
        EXPECT_NEAR(mass, 1.0, 1e-6);
    }
    // K = V is the full distribution; K > V is clamped to it.
    const std::vector<float> z = random_vector(kRows * kVocab, 6);
    const std::vector<int> y = {0, 1, 2};
    const DistillLoss full = run(z, t, y, Case{0.6, 1.5, 0}, nullptr);
    for (int K : {kVocab, kVocab + 5}) {
        const DistillLoss all = run(z, t, y, Case{0.6, 1.5, K}, nullptr);
        EXPECT_NEAR(all.loss, full.loss, 1e-6);
    }
    EXPECT_LT(run(z, t, y, Case{1.0, 1.5, 2}, nullptr).kl, full.kl);  // coarser buckets
}

TEST(Distillation, AlphaZeroIsTheCrossEntropyKernelBitForBit) {
    const std::vector<float> z = random_vector(kRows * kVocab, 7, 4.0f);
    const std::vector<float> t = random_vector(kRows * kVocab, 8);
    const std::vector<int> y = {4, 5, 6};
    std::vector<float> d(z.size());
    const DistillLoss l = distill_loss(z.data(), t.data(), y.data(), kRows, kVocab,
                                       DistillLossOptions{0.0, 3.0}, d.data(), 0.25f);
    std::vector<float> probs(z.size()), losses(kRows);
    softmax_cross_entropy_forward(probs.data(), losses.data(), z.data(), y.data(), kRows, kVocab);
    softmax_cross_entropy_backward(probs.data(), probs.data(), y.data(), kRows, kVocab, 0.25f);
    EXPECT_EQ(0, std::memcmp(d.data(), probs.data(), sizeof(float) * d.size()));
    double ce = 0;
    for (float x : losses) ce += x;
    EXPECT_EQ(l.ce, ce / kRows);
    EXPECT_EQ(l.loss, l.ce);
    EXPECT_GT(l.kl, 0);  // still measured, for the logs
}

TEST(Distillation, OptionsAreChecked) {
    EXPECT_THROW((DistillLossOptions{-0.1, 1.0}.validate()), Error);
    EXPECT_THROW((DistillLossOptions{1.5, 1.0}.validate()), Error);
    EXPECT_THROW((DistillLossOptions{0.5, 0.0}.validate()), Error);
    EXPECT_THROW((DistillLossOptions{0.5, -2.0}.validate()), Error);
    EXPECT_NO_THROW((DistillLossOptions{1.0, 0.1}.validate()));
}

// Loss and d(logits) against PyTorch's autograd (tests/data/distill/make_dump.py).
TEST(DistillTorchParity, LossAndLogitGradientMatchAutograd) {
    std::ifstream in(TINYGPT_TEST_DATA "/distill/torch_ref.json");
    ASSERT_TRUE(in) << "missing tests/data/distill/torch_ref.json";
    const nlohmann::json ref = nlohmann::json::parse(in);
    const int rows = ref["rows"], V = ref["vocab"];
    const std::vector<float> z = ref["student_logits"], t = ref["teacher_logits"];
    const std::vector<int> y = ref["targets"];
    ASSERT_EQ(ref["cases"].size(), 7u);
    for (const auto& c : ref["cases"]) {
        const DistillLossOptions o{c["alpha"], c["temperature"]};
        const int K = c["topk"];
        SCOPED_TRACE(c.dump().substr(0, 60));
        std::vector<float> d(z.size());
        const float scale = 1.0f / rows;  // the reference differentiates the mean
        const DistillLoss l =
            K == 0 ? distill_loss(z.data(), t.data(), y.data(), rows, V, o, d.data(), scale)
                   : distill_loss(z.data(), teacher_topk(t.data(), rows, V, K, o.temperature),
                                  y.data(), rows, V, o, d.data(), scale);
        EXPECT_NEAR(l.loss, c["loss"].get<double>(), 2e-6);
        EXPECT_NEAR(l.kl, c["kl"].get<double>(), 2e-6);
        EXPECT_NEAR(l.ce, c["cross_entropy"].get<double>(), 2e-6);
        const std::vector<double> want = c["d_logits"];
        for (size_t i = 0; i < want.size(); ++i)
            EXPECT_NEAR(d[i], want[i], 1e-6) << "d_logits[" << i << "]";
    }
}

TrainOptions tiny_options(int experts) {
    TrainOptions o;
    o.model.vocab = 256;
    o.model.ctx = 16;
    o.model.layers = 2;
    o.model.d_model = 16;
    o.model.heads = 2;
    o.model.d_mlp = 32;
    o.model.experts = experts;
    o.model.topk = experts > 1 ? 2 : 1;
    o.batch = 3;
    o.accum = 2;
    o.steps = 10;
    o.schedule = {LrSchedule::Cosine, 3e-3f, 3e-4f, 2, 10};
    o.seed = 11;
    return o;
}

Corpus text_corpus() {
    Corpus c;
    c.path = "text";
    const std::string text =
        "It is a truth universally acknowledged, that a single man in possession of a good "
        "fortune, must be in want of a wife. However little known the feelings or views of such "
        "a man may be on his first entering a neighbourhood, this truth is so well fixed.";
    for (int i = 0; i < 4; ++i) c.tokens.insert(c.tokens.end(), text.begin(), text.end());
    return c;
}

// A model distilled into a copy of itself, through the real teacher path, has nothing to learn.
TEST(DistillTrainer, SelfDistillationHasZeroKl) {
    const Corpus corpus = text_corpus();
    for (int experts : {1, 4}) {
        SCOPED_TRACE("experts " + std::to_string(experts));
        TrainOptions o = tiny_options(experts);
        o.val_split = 0.2;
        o.val_batches = 2;
        Trainer trainer(o, corpus);
        const std::vector<float> copy(trainer.model().params(),
                                      trainer.model().params() + trainer.model().buffer_floats());
        TeacherLoss teacher(ModelWeights::from_f32(o.model, copy.data()),
                            DistillLossOptions{0.5, 2.0});
        trainer.set_logit_loss(&teacher);
        const ValStats v = trainer.validate();
        EXPECT_LT(std::fabs(v.kl), 1e-6);
        EXPECT_GT(v.ce, 1.0f);
        const StepStats s = trainer.step();  // the first step's forward is the teacher's too
        EXPECT_LT(std::fabs(s.kl), experts == 1 ? 1e-6 : 1e-4);
    }
}

// With α = 0 the teacher has no say: the run is `train`'s, bit for bit.
TEST(DistillTrainer, AlphaZeroIsExactlyTrain) {
    const Corpus corpus = text_corpus();
    for (int experts : {1, 4}) {
        SCOPED_TRACE("experts " + std::to_string(experts));
        const TrainOptions o = tiny_options(experts);
        TrainOptions teacher_options = o;
        teacher_options.seed = 99;
        Trainer plain(o, corpus), distilled(o, corpus), other(teacher_options, corpus);
        TeacherLoss teacher(ModelWeights::from_f32(o.model, other.model().params()),
                            DistillLossOptions{0.0, 2.0});
        distilled.set_logit_loss(&teacher);
        for (int i = 0; i < 3; ++i) {
            const StepStats a = plain.step(), b = distilled.step();
            EXPECT_EQ(a.loss, b.loss) << "step " << i;
            EXPECT_EQ(a.ce, b.ce);
            EXPECT_EQ(a.aux, b.aux);
            EXPECT_EQ(a.grad_norm, b.grad_norm);
            EXPECT_GT(b.kl, 0);
        }
        EXPECT_EQ(0, std::memcmp(plain.model().params(), distilled.model().params(),
                                 sizeof(float) * plain.model().buffer_floats()));
    }
}

// With α = 1 the student moves toward the teacher: its KL falls.
TEST(DistillTrainer, StudentApproachesTheTeacher) {
    const Corpus corpus = text_corpus();
    TrainOptions o = tiny_options(1);
    o.steps = 30;
    o.schedule = {LrSchedule::Constant, 1e-2f, 1e-2f, 0, 30};
    TrainOptions teacher_options = o;
    teacher_options.seed = 5;
    Trainer student(o, corpus), reference(teacher_options, corpus);
    TeacherLoss teacher(ModelWeights::from_f32(o.model, reference.model().params()),
                        DistillLossOptions{1.0, 1.0}, /*topk=*/8);
    student.set_logit_loss(&teacher);
    const float first = student.step().kl;
    StepStats last;
    for (int i = 1; i < o.steps; ++i) last = student.step();
    EXPECT_LT(last.kl, 0.5f * first);
    EXPECT_EQ(last.loss, last.kl);  // τ = 1, α = 1, a dense student: the loss is the KL
}

TEST(DistillTrainer, TokenizersAndShapesMustMatch) {
    ModelConfig teacher = tiny_options(1).model, student = teacher;
    const Tokenizer bytes = Tokenizer::bytes();
    EXPECT_NO_THROW(check_teacher_matches(teacher, bytes, "t", student, bytes, "s"));
    student.ctx = teacher.ctx * 2;
    EXPECT_THROW(check_teacher_matches(teacher, bytes, "t", student, bytes, "s"), Error);
}

}  // namespace
}  // namespace tinygpt
