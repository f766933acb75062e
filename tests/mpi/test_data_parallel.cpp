// Data parallelism (train/trainer.h, Parallelism): N ranks with accum A equal one process with
// accum N·A, step by step, for both families; validation splits its windows over the ranks.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "dist/communicator.h"
#include "train/trainer.h"

namespace tinygpt {
namespace {

Corpus text_corpus() {
    Corpus c;
    c.path = "(test)";
    const std::string text =
        "To be, or not to be, that is the question: whether 'tis nobler in the mind to suffer "
        "the slings and arrows of outrageous fortune, or to take arms against a sea of troubles "
        "and by opposing end them. To die, to sleep; no more; and by a sleep to say we end the "
        "heart-ache and the thousand natural shocks that flesh is heir to.";
    for (int rep = 0; rep < 8; ++rep)
        for (unsigned char ch : text) c.tokens.push_back(ch);
    c.text_bytes = c.tokens.size();
    return c;
}

TrainOptions small_options(Arch arch, int experts, int accum) {
    TrainOptions o;
    ModelConfig& m = o.model;
    m.arch = arch;
    m.layers = 2;
    m.d_model = 32;
    m.heads = 4;
    m.d_mlp = 64;
    m.ctx = 16;
    m.vocab = 256;
    m.experts = experts;
    m.topk = experts > 1 ? 2 : 1;
    m.jitter = experts > 1 ? 0.05f : 0.0f;  // a function of the micro-batch index: must match
    if (arch == Arch::Llama) m.kv_heads = 2;
    o.batch = 3;
    o.accum = accum;
    o.steps = 20;
    o.schedule.warmup = 2;
    o.schedule.total_steps = 20;
    o.schedule.max_lr = 3e-3f;
    o.val_split = 0.2;
    o.val_batches = 5;  // not a multiple of the ranks: one rank has an empty round
    o.seed = 99;
    return o;
}

void expect_close(double a, double b, double tol, const std::string& what) {
    EXPECT_LE(std::fabs(a - b), tol * std::max(1.0, std::fabs(b)))
        << what << ": " << a << " vs " << b;
}

// N ranks in expert-parallel groups of P, each with batch B and accum A, against one process
// with batch P·B and accum A·N/P (the run they equal).
void check_equals_one_process(Arch arch, int experts, int P) {
    Communicator& w = world();
    const Corpus corpus = text_corpus();
    const int N = w.size(), A = 2;
    TrainOptions distributed = small_options(arch, experts, A);
    TrainOptions single = small_options(arch, experts, A * (N / P));
    single.batch = distributed.batch * P;
    auto single_world = make_single_process_communicator();
    Trainer spread(distributed, corpus, Parallelism{&w, P});
    Trainer alone(single, corpus, Parallelism{single_world.get(), 1});
    EXPECT_EQ(spread.tokens_per_step(), alone.tokens_per_step());
    for (int step = 0; step < 20; ++step) {
        const StepStats a = spread.step(), b = alone.step();
        const std::string at = "step " + std::to_string(step + 1);
        expect_close(a.loss, b.loss, 1e-5, at + " loss");
        expect_close(a.ce, b.ce, 1e-5, at + " ce");
        expect_close(a.aux, b.aux, 1e-5, at + " aux");
        expect_close(a.grad_norm, b.grad_norm, 1e-4, at + " grad norm");
    }
    const ValStats va = spread.validate(), vb = alone.validate();
    expect_close(va.ce, vb.ce, 1e-5, "validation");
    if (experts > 1) {
        // The load is the mean over the ranks: it still sums to 1 per layer.
        for (int l = 0; l < distributed.model.layers; ++l) {
            double total = 0.0;
            for (float f : spread.expert_load(l)) total += f;
            EXPECT_NEAR(total, 1.0, 1e-5);
        }
    }
    // After 20 steps: the weights rank 0 gathers (what a file holds) equal the single run's.
    const Trainer::FullState full = spread.gather_full_state();
    ASSERT_EQ(full.weights != nullptr, w.rank() == 0);
    if (w.rank() == 0) {
        double worst = 0.0, worst_m = 0.0;
        for (size_t i = 0; i < alone.model().buffer_floats(); ++i) {
            worst = std::max(worst, static_cast<double>(
                                        std::fabs(full.weights[i] - alone.model().weights()[i])));
            worst_m = std::max(worst_m,
                               static_cast<double>(std::fabs(full.adam_m[i] - alone.adam_m()[i])));
        }
        EXPECT_LT(worst, 1e-4);
        EXPECT_LT(worst_m, 1e-5);
    }
    // Replicated tensors stay identical on every rank (the gradient sums agree bit for bit).
    double sum = 0.0;
    const float* p = spread.model().weights();
    for (const ParamInfo& e : spread.model().layout().entries())
        if (!e.id.is_routed_expert())
            for (size_t i = 0; i < e.numel; ++i) sum += p[e.offset + i];
    double lead = sum;
    w.broadcast(&lead, sizeof lead, 0);
    EXPECT_EQ(lead, sum);
}

void check_equals_accumulation(Arch arch, int experts) {
    check_equals_one_process(arch, experts, 1);
}

TEST(DataParallel, GptMoeEqualsAccumulation) {
    check_equals_accumulation(Arch::Gpt, 4);
}
TEST(DataParallel, LlamaMoeEqualsAccumulation) {
    check_equals_accumulation(Arch::Llama, 4);
}
TEST(DataParallel, DenseEqualsAccumulation) {
    check_equals_accumulation(Arch::Gpt, 1);
}

TEST(ExpertParallel, GptMoeEqualsOneProcessWithTheGroupsBatch) {
    check_equals_one_process(Arch::Gpt, 4, world().size());
}
TEST(ExpertParallel, LlamaMoeEqualsOneProcessWithTheGroupsBatch) {
    check_equals_one_process(Arch::Llama, 4, world().size());
}
// Needs 4 ranks (ctest's mpi_four_ranks): 2 groups of 2.
TEST(ExpertParallel, CombinedWithDataParallelism) {
    if (world().size() < 4 || world().size() % 2 != 0) GTEST_SKIP() << "needs 4 ranks";
    check_equals_one_process(Arch::Llama, 4, 2);
}

TEST(DataParallel, SavedStateIsTheSingleProcessEquivalent) {
    Communicator& w = world();
    const Corpus corpus = text_corpus();
    Trainer spread(small_options(Arch::Gpt, 4, 2), corpus, Parallelism{&w, 1});
    spread.step();
    const TrainingState st = spread.state();
    EXPECT_EQ(st.batch, 3);
    EXPECT_EQ(st.accum, 2 * w.size());
    const Trainer::FullState full = spread.gather_full_state();
    EXPECT_EQ(full.weights != nullptr, w.rank() == 0);
}

}  // namespace
}  // namespace tinygpt
