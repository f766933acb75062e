// The memory estimate (model/memory_estimate.h): by buffer kind against the arenas' own
// measurements, against the peak RSS of real runs in a child process, and its refusals; the
// size parser behind --max-memory; the memory-available probe.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <memory>
#include <string>

#include "infer/session.h"
#include "model/memory_estimate.h"
#include "model/model.h"
#include "model/params.h"
#include "sanitizer.h"
#include "test_util.h"
#include "util/byte_size.h"
#include "util/error.h"
#include "util/memory_available.h"

namespace tinygpt {
namespace {

using test::model_config;
using test::Shape;

constexpr double kMiB = 1024.0 * 1024.0;

// The configurations whose layouts differ: each family, dense and MoE, every optional buffer.
std::vector<ModelConfig> layout_variants() {
    std::vector<ModelConfig> out;
    out.push_back(model_config(Shape{}));
    out.push_back(model_config(Shape{.experts = 4, .topk = 2}));
    ModelConfig dense_dispatch = model_config(Shape{.experts = 3, .topk = 1});
    dense_dispatch.dispatch = DispatchMode::Dense;
    dense_dispatch.jitter = 0.1f;
    out.push_back(dense_dispatch);
    ModelConfig llama = model_config(Shape{.experts = 4, .topk = 2});
    llama.arch = Arch::Llama;
    llama.kv_heads = 1;
    llama.qk_norm = QkNorm::PerHead;
    llama.shared_ffn = 24;
    llama.moe_ffn = 20;
    out.push_back(llama);
    ModelConfig mixed = llama;  // dense and MoE layers side by side
    mixed.layers = 3;
    mixed.moe_layers = moe_layout_rule(3, 2, 0);
    mixed.qk_norm = QkNorm::Full;
    mixed.head_size = 12;
    out.push_back(mixed);
    ModelConfig llama_dense = model_config(Shape{});
    llama_dense.arch = Arch::Llama;
    out.push_back(llama_dense);
    return out;
}

TEST(MemoryEstimate, ActivationArenaIsWhatModelReserveAllocates) {
    for (const ModelConfig& cfg : layout_variants()) {
        for (auto [B, T] : {std::pair{1, 1}, std::pair{3, 16}, std::pair{2, 7}}) {
            Model model(cfg, /*with_grads=*/false);
            model.reserve(B, T);
            EXPECT_DOUBLE_EQ(model_arena_estimate(cfg, B, T).total_bytes(),
                             static_cast<double>(model.activation_bytes()))
                << cfg.describe() << " B " << B << " T " << T;
        }
    }
}

TEST(MemoryEstimate, ParameterBuffersFollowTheLayout) {
    for (const ModelConfig& cfg : layout_variants()) {
        const double floats = static_cast<double>(ParameterLayout(cfg).total());
        EXPECT_DOUBLE_EQ(parameter_buffer_bytes(cfg), 4 * floats) << cfg.describe();
        TrainingMemoryPlan plan;
        plan.batch = 2;
        const MemoryEstimate e = estimate_training(cfg, plan);
        EXPECT_DOUBLE_EQ(e.bytes_of("weights"), 4 * floats);
        EXPECT_DOUBLE_EQ(e.bytes_of("gradients"), 4 * floats);
        EXPECT_DOUBLE_EQ(e.bytes_of("AdamW moments"), 8 * floats);
    }
}

TEST(MemoryEstimate, KvCacheIsWhatTheSessionGrowsTo) {
    ModelConfig cfg = layout_variants()[3];
    cfg.ctx = 300;
    std::vector<float> weights(ParameterLayout(cfg).total(), 0.01f);
    for (auto [prompt, positions] : {std::pair{5, 5}, std::pair{5, 65}, std::pair{100, 290}}) {
        InferenceSession session(cfg, weights.data());
        std::vector<int> ids(prompt, 3);
        session.forward(ids.data(), prompt);
        for (int p = prompt; p < positions; ++p) session.forward(ids.data(), 1);
        GenerationMemoryPlan plan;
        plan.prompt_tokens = prompt;
        plan.new_tokens = positions - prompt + 1;  // the last generated token is not fed
        EXPECT_DOUBLE_EQ(estimate_generation(cfg, plan).bytes_of("KV cache"),
                         static_cast<double>(session.cache_bytes()))
            << "prompt " << prompt << " positions " << positions;
    }
}

TEST(MemoryEstimate, BreakdownListsTheKindsAndSumsToTheTotal) {
    MemoryEstimate e;
    e.add("weights", 3 * kMiB);
    e.add("activations", 1024);
    e.add("weights", kMiB);
    e.add("KV cache", 0);
    EXPECT_EQ(e.items.size(), 3u);
    EXPECT_DOUBLE_EQ(e.total_bytes(), 4 * kMiB + 1024);
    EXPECT_DOUBLE_EQ(e.bytes_of("weights"), 4 * kMiB);
    EXPECT_DOUBLE_EQ(e.bytes_of("logits"), 0);
    EXPECT_EQ(e.breakdown(), "weights 4.00 MiB · activations 1.00 KiB");

    ModelConfig cfg = model_config(Shape{.experts = 4, .topk = 2});
    const MemoryEstimate t = estimate_training(cfg, {.batch = 4,
                                                     .sample_prompt_tokens = 3,
                                                     .sample_tokens = 10,
                                                     .loaded_file_bytes = 1000,
                                                     .corpus_tokens = 500});
    double sum = 0;
    for (const auto& item : t.items) sum += item.bytes;
    EXPECT_DOUBLE_EQ(t.total_bytes(), sum);
    for (const char* kind :
         {"weights", "gradients", "AdamW moments", "activations", "logits", "batch",
          "backward scratch", "KV cache", "samples", "loaded file", "corpus"})
        EXPECT_GT(t.bytes_of(kind), 0) << kind;
    EXPECT_DOUBLE_EQ(t.bytes_of("corpus"), 2000);
    EXPECT_DOUBLE_EQ(t.bytes_of("loaded file"), 1000);
    // Logits: [batch·ctx, vocab] floats, the per-token losses, one row for the samples.
    EXPECT_DOUBLE_EQ(t.bytes_of("logits"), 4.0 * 4 * 16 * 256 + 4.0 * 4 * 16 + 4.0 * 256);
}

TEST(MemoryEstimate, GrowsWithTheShapeAndNeverOverflows) {
    ModelConfig cfg = preset_config("behemoth");
    TrainingMemoryPlan plan;
    plan.batch = 2;
    const double dense = estimate_training(cfg, plan).total_bytes();
    cfg.experts = 16;
    const double moe = estimate_training(cfg, plan).total_bytes();
    EXPECT_GT(moe, 3 * dense);
    EXPECT_GT(moe, 60e9);  // the issue's ≈ 72 GB
    plan.batch = 4;
    EXPECT_GT(estimate_training(cfg, plan).total_bytes(), moe);

    // Shapes far past 64-bit products give a finite, astronomical number.
    ModelConfig wide = preset_config("tiny");
    wide.d_model = 16777216;
    EXPECT_TRUE(std::isfinite(estimate_training(wide, plan).total_bytes()));
    EXPECT_GT(estimate_training(wide, plan).total_bytes(), 1e15);
    ModelConfig heads = preset_config("tiny", Arch::Llama);
    heads.heads = 1 << 16;
    heads.head_size = 1 << 16;  // heads · head_dim is past int
    heads.d_model = 1 << 16;
    EXPECT_GT(parameter_buffer_bytes(heads), 1e15);
    const double windows = 1e8;  // eval --batch 100000000
    const double eval = estimate_evaluation(preset_config("tiny"), windows, 128).total_bytes();
    EXPECT_TRUE(std::isfinite(eval));
    EXPECT_GT(eval, 1e14);
}

TEST(MemoryEstimate, RequireFitsRefusesWithTheBreakdownBudgetAndAdvice) {
    MemoryEstimate e;
    e.add("weights", 3 * kMiB);
    e.add("activations", 5 * kMiB);
    EXPECT_NO_THROW(require_fits(e, {8 * kMiB, "MemAvailable", false}, "x"));
    EXPECT_NO_THROW(require_fits(e, {0, "", false}, "x"));  // unknown: nothing to check
    try {
        require_fits(e, {4 * kMiB, "MemAvailable", false}, "try a smaller --batch");
        FAIL() << "no refusal";
    } catch (const Error& err) {
        const std::string m = err.what();
        EXPECT_NE(m.find("8.00 MiB"), std::string::npos) << m;
        EXPECT_NE(m.find("weights 3.00 MiB · activations 5.00 MiB"), std::string::npos) << m;
        EXPECT_NE(m.find("only 4.00 MiB is available (MemAvailable)"), std::string::npos) << m;
        EXPECT_NE(m.find("try a smaller --batch"), std::string::npos) << m;
        EXPECT_EQ(m.find('\n'), std::string::npos) << m;
    }
    try {
        require_fits(e, {kMiB, "--max-memory", true}, "advice");
        FAIL() << "no refusal";
    } catch (const Error& err) {
        EXPECT_NE(std::string(err.what()).find("the limit is 1.00 MiB (--max-memory)"),
                  std::string::npos)
            << err.what();
    }
}

TEST(ByteSize, ParsesSizesAsPeopleWriteThem) {
    EXPECT_EQ(parse_byte_size("8G"), 8ull << 30);
    EXPECT_EQ(parse_byte_size("512M"), 512ull << 20);
    EXPECT_EQ(parse_byte_size("512m"), 512ull << 20);
    EXPECT_EQ(parse_byte_size("64k"), 64ull << 10);
    EXPECT_EQ(parse_byte_size("1.5GiB"), 3ull << 29);
    EXPECT_EQ(parse_byte_size("2TB"), 2ull << 40);
    EXPECT_EQ(parse_byte_size("123456"), 123456u);
    EXPECT_EQ(parse_byte_size("100b"), 100u);
    EXPECT_EQ(parse_byte_size(".5K"), 512u);
    for (const char* bad : {"", "G", "-1G", "8X", "8 G", "0", "0.1", "1e9", "8GG", "99999999T",
                            "123456789012345678901234", "nan", "inf"}) {
        EXPECT_THROW(parse_byte_size(bad), Error) << "'" << bad << "'";
    }
}

TEST(ByteSize, FormatsWithBinaryUnits) {
    EXPECT_EQ(format_bytes(0), "0 B");
    EXPECT_EQ(format_bytes(812), "812 B");
    EXPECT_EQ(format_bytes(1536), "1.50 KiB");
    EXPECT_EQ(format_bytes(9.4 * kMiB), "9.40 MiB");
    EXPECT_EQ(format_bytes(71.9 * 1024 * kMiB), "71.9 GiB");
    EXPECT_EQ(format_bytes(512 * kMiB), "512 MiB");
    EXPECT_EQ(format_bytes(1e300), "9.1e+287 TiB");
}

TEST(AvailableMemory, ReportsSomethingAndWhereItComesFrom) {
    const AvailableMemory m = available_memory();
    EXPECT_GT(m.bytes, 16 * kMiB);
    EXPECT_FALSE(m.source.empty());
}

#ifdef __linux__
// One workload in the probe (tests/memory_probe): its estimate and the growth of its peak RSS.
struct ProbeResult {
    double estimate = 0, growth = 0;
    std::string breakdown;
};
ProbeResult run_probe(const std::string& args) {
    // One thread, waiting passively: the machine may be shared, and spinning OpenMP threads
    // on a loaded machine make a second's work last a minute.
    const std::string command =
        "OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 OMP_WAIT_POLICY=passive " +
        std::string(TINYGPT_MEMORY_PROBE) + " " + args;
    std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(command.c_str(), "r"), pclose);
    ProbeResult r;
    if (!pipe) return r;
    char line[1024] = "";
    if (std::fscanf(pipe.get(), "estimate %lf growth %lf\n", &r.estimate, &r.growth) == 2 &&
        std::fgets(line, sizeof line, pipe.get()))
        r.breakdown = line;
    return r;
}

// The estimate against reality: the peak resident set of a child that trains (a step and an
// inline sample), evaluates or generates past the context, minus its RSS before. Within 5% and
// 2 MiB (page granularity, allocator bookkeeping, the kernels' small per-thread scratch).
TEST(MemoryEstimate, MatchesThePeakRssOfRealRuns) {
    if (test::kUnderAddressSanitizer)
        GTEST_SKIP() << "AddressSanitizer's shadow memory and quarantine change the resident set";
    const char* workloads[] = {"train gpt 1 1 16",   "train gpt 4 2 16", "train llama 1 1 16",
                               "train llama 8 2 8",  "eval gpt 4 2 32",  "eval llama 1 1 32",
                               "sample llama 8 2 1", "sample gpt 1 1 1"};
    for (const char* workload : workloads) {
        const ProbeResult r = run_probe(workload);
        ASSERT_GT(r.estimate, 0) << workload << ": the probe reported nothing";
        std::printf("[ probe    ] %-20s estimate %7.1f MiB  peak RSS growth %7.1f MiB  (%+.1f%%)\n",
                    workload, r.estimate / kMiB, r.growth / kMiB,
                    100.0 * (r.growth - r.estimate) / r.estimate);
        EXPECT_NEAR(r.growth, r.estimate, 0.05 * r.estimate + 2 * kMiB)
            << workload << ": " << r.breakdown;
    }
}
#endif

}  // namespace
}  // namespace tinygpt
