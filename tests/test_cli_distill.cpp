// `tinygpt distill` through the binary: a tiny MoE Llama-family teacher distilled into a fresh GPT
// student that saves and resumes exactly (the same losses and KL as an uninterrupted run),
// validation that reports the KL, `--eval-only --json` (with a GGUF Q8_0 teacher too), a teacher of
// another tokenizer refused, and bad flags refused, each with one error line.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cli_harness.h"
#include "markup_check.h"

namespace tinygpt {
namespace {

using namespace test;

class DistillCli : public CliTest {
  protected:
    std::string path(const std::string& name) const { return (dir_ / name).string(); }
    // A Llama-family MoE teacher (byte vocabulary), trained a few steps.
    void make_teacher() {
        const RunResult r = train({{"--arch", "llama"},
                                   {"--moe-experts", "4"},
                                   {"--moe-topk", "2"},
                                   {"--steps", "4"},
                                   {"--max-lr", "3e-3"},
                                   {"--out", path("teacher.tinygpt")}});
        ASSERT_EQ(r.exit_code, 0) << r.describe();
    }
    RunResult distill(const std::vector<std::pair<std::string, std::string>>& overrides) {
        std::vector<std::pair<std::string, std::string>> args = {
            {"--teacher", path("teacher.tinygpt")}, {"--sample-tokens", "0"}};
        args.insert(args.end(), overrides.begin(), overrides.end());
        return run(tiny_args("distill", corpus_, args));
    }
    // Flags without the tiny shape (a resumed run takes its shape from the file).
    RunResult distill_bare(const std::vector<std::string>& flags) {
        std::vector<std::string> args = {"distill", "--teacher", path("teacher.tinygpt"),
                                         "--corpus", corpus_.string()};
        args.insert(args.end(), flags.begin(), flags.end());
        return run(args);
    }
    std::vector<nlohmann::json> log_records(const std::string& name) {
        std::vector<nlohmann::json> records;
        for (const auto& line : split_lines(read_file(path(name))))
            if (!line.empty()) records.push_back(nlohmann::json::parse(line));
        return records;
    }
};

TEST_F(DistillCli, TrainsAStudentThatSavesAndResumesExactly) {
    make_teacher();
    const std::vector<std::pair<std::string, std::string>> recipe = {{"--steps", "6"},
                                                                     {"--alpha", "0.7"},
                                                                     {"--temperature", "2"},
                                                                     {"--val-split", "0.1"},
                                                                     {"--val-every", "3"}};
    auto with = [&](std::vector<std::pair<std::string, std::string>> extra) {
        extra.insert(extra.begin(), recipe.begin(), recipe.end());
        return extra;
    };
    const RunResult whole =
        distill(with({{"--out", path("whole.tinygpt")}, {"--log", path("whole.jsonl")}}));
    ASSERT_EQ(whole.exit_code, 0) << whole.describe();
    EXPECT_NE(whole.out.find("tinygpt distill\n"), std::string::npos) << whole.describe();
    EXPECT_NE(whole.out.find("  teacher   " + path("teacher.tinygpt")), std::string::npos);
    EXPECT_NE(whole.out.find("alpha 0.7 · temperature 2 · full distribution"), std::string::npos);
    EXPECT_NE(whole.out.find("  kl "), std::string::npos) << whole.describe();
    EXPECT_NE(whole.out.find("val kl "), std::string::npos) << whole.describe();
    EXPECT_NE(whole.out.find("  memory    "), std::string::npos);
    EXPECT_NE(whole.out.find("teacher "), std::string::npos) << "the plan counts the teacher";
    // `report` draws a real distill log's KL curves (training and validation).
    const RunResult page = run({"report", path("whole.jsonl"), "--svg", path("svg")});
    ASSERT_EQ(page.exit_code, 0) << page.describe();
    const std::string kl = read_file(std::filesystem::path(path("svg")) / "kl.svg");
    EXPECT_EQ(count_of(kl, "train at "), 6u);
    EXPECT_EQ(count_of(kl, "validation at "), 2u);

    const RunResult first = distill(with(
        {{"--stop-at", "3"}, {"--out", path("half.tinygpt")}, {"--log", path("first.jsonl")}}));
    ASSERT_EQ(first.exit_code, 0) << first.describe();
    const RunResult rest =
        distill_bare({"--resume", path("half.tinygpt"), "--alpha", "0.7", "--temperature", "2",
                      "--sample-tokens", "0", "--log", path("rest.jsonl"), "--val-every", "3",
                      "--out", path("half.tinygpt")});
    ASSERT_EQ(rest.exit_code, 0) << rest.describe();
    EXPECT_NE(rest.out.find("resuming from"), std::string::npos) << rest.describe();

    const auto a = log_records("whole.jsonl"), b1 = log_records("first.jsonl"),
               b2 = log_records("rest.jsonl");
    ASSERT_EQ(a.size(), 6u);
    ASSERT_EQ(b1.size() + b2.size(), 6u);
    for (size_t i = 0; i < a.size(); ++i) {
        const nlohmann::json& b = i < b1.size() ? b1[i] : b2[i - b1.size()];
        EXPECT_EQ(a[i]["step"], b["step"]);
        EXPECT_EQ(a[i]["loss"], b["loss"]) << "step " << i + 1;
        EXPECT_EQ(a[i]["kl"], b["kl"]) << "step " << i + 1;
        EXPECT_EQ(a[i]["total_loss"], b["total_loss"]) << "step " << i + 1;
        EXPECT_EQ(a[i]["grad_norm"], b["grad_norm"]) << "step " << i + 1;
        EXPECT_GT(a[i]["kl"].get<double>(), 0.0);
    }
    EXPECT_TRUE(a[2].contains("val_kl") && a[5].contains("val_kl"));
    EXPECT_EQ(a[5]["val_kl"], b2.back()["val_kl"]);
    // The same weights: the same evaluation, to the last bit.
    auto eval = [&](const std::string& model) {
        const RunResult e = run({"eval", path(model), "--corpus", corpus_.string(), "--json"});
        EXPECT_EQ(e.exit_code, 0) << e.describe();
        return e.exit_code == 0 ? nlohmann::json::parse(e.out)["cross_entropy"].get<double>() : NAN;
    };
    EXPECT_EQ(eval("whole.tinygpt"), eval("half.tinygpt"));
}

// The file keeps the recipe: `distill --resume FILE` needs neither --teacher nor the loss flags,
// and continues exactly; a flag given again overrides with a note; `train --resume` of it warns.
TEST_F(DistillCli, ResumeTakesTheRecipeFromTheFile) {
    make_teacher();
    const std::vector<std::pair<std::string, std::string>> recipe = {
        {"--steps", "4"}, {"--alpha", "0.3"}, {"--temperature", "1.5"}, {"--teacher-topk", "7"}};
    auto with = [&](std::vector<std::pair<std::string, std::string>> extra) {
        extra.insert(extra.begin(), recipe.begin(), recipe.end());
        return extra;
    };
    ASSERT_EQ(distill(with({{"--log", path("whole.jsonl")}})).exit_code, 0);
    const RunResult first = distill(
        with({{"--stop-at", "2"}, {"--out", path("half.tinygpt")}, {"--log", path("a.jsonl")}}));
    ASSERT_EQ(first.exit_code, 0) << first.describe();
    // `inspect` shows the recipe the file keeps.
    const RunResult info = run({"inspect", path("half.tinygpt"), "--json"});
    ASSERT_EQ(info.exit_code, 0) << info.describe();
    const nlohmann::json recipe_json = nlohmann::json::parse(info.out)["distillation"];
    EXPECT_EQ(recipe_json["teacher"], path("teacher.tinygpt"));
    EXPECT_EQ(recipe_json["alpha"], 0.3);
    EXPECT_EQ(recipe_json["temperature"], 1.5);
    EXPECT_EQ(recipe_json["teacher_topk"], 7);
    EXPECT_GT(nlohmann::json::parse(info.out)["train_seconds"].get<double>(), 0.0);
    const RunResult text = run({"inspect", path("half.tinygpt")});
    EXPECT_NE(text.out.find("distilled  from " + path("teacher.tinygpt") +
                            " · alpha 0.3 · temperature 1.5 · top-7 + rest bucket\n"),
              std::string::npos)
        << text.out;
    // No distill flag at all: the teacher, alpha, temperature and K come from the file.
    const RunResult rest =
        run({"distill", "--resume", path("half.tinygpt"), "--corpus", corpus_.string(),
             "--sample-tokens", "0", "--log", path("b.jsonl"), "--out", path("rest.tinygpt")});
    ASSERT_EQ(rest.exit_code, 0) << rest.describe();
    EXPECT_NE(rest.out.find("alpha 0.3 · temperature 1.5 · top-7 + rest bucket"), std::string::npos)
        << rest.describe();
    EXPECT_EQ(rest.err.find("warning"), std::string::npos) << rest.describe();
    const auto whole = log_records("whole.jsonl"), a = log_records("a.jsonl"),
               b = log_records("b.jsonl");
    ASSERT_EQ(whole.size(), 4u);
    ASSERT_EQ(a.size() + b.size(), 4u);
    for (size_t i = 0; i < whole.size(); ++i) {
        const nlohmann::json& r = i < a.size() ? a[i] : b[i - a.size()];
        EXPECT_EQ(whole[i]["loss"], r["loss"]) << "step " << i + 1;
        EXPECT_EQ(whole[i]["kl"], r["kl"]) << "step " << i + 1;
    }
    // The run's clock goes on across the resume.
    EXPECT_GT(b.front()["train_seconds"].get<double>(), a.back()["train_seconds"].get<double>());

    // A flag given again wins, with a note.
    const RunResult over =
        run({"distill", "--resume", path("half.tinygpt"), "--corpus", corpus_.string(),
             "--sample-tokens", "0", "--alpha", "0.9", "--out", path("over.tinygpt")});
    ASSERT_EQ(over.exit_code, 0) << over.describe();
    EXPECT_NE(over.err.find("--alpha overrides the value saved in"), std::string::npos)
        << over.describe();
    EXPECT_NE(over.out.find("alpha 0.9 · temperature 1.5"), std::string::npos) << over.describe();

    // `train --resume` goes on without the teacher, and says so.
    const RunResult plain = run({"train", "--resume", path("half.tinygpt"), "--corpus",
                                 corpus_.string(), "--sample-tokens", "0"});
    ASSERT_EQ(plain.exit_code, 0) << plain.describe();
    EXPECT_NE(plain.err.find("is a distillation from"), std::string::npos) << plain.describe();

    // A file saved by train names no teacher; a teacher that is gone is named.
    ASSERT_EQ(train({{"--steps", "2"}, {"--out", path("plain.tinygpt")}}).exit_code, 0);
    expect_clean_error(
        run({"distill", "--resume", path("plain.tinygpt"), "--corpus", corpus_.string()}),
        {"not saved by distill", "--teacher"});
    std::filesystem::rename(path("teacher.tinygpt"), path("moved.tinygpt"));
    expect_clean_error(
        run({"distill", "--resume", path("half.tinygpt"), "--corpus", corpus_.string()}),
        {"no longer exists", "teacher.tinygpt", "--teacher"});
}

// --teacher-cache: a second run on the same batches reads every window's top-K from the cache
// and computes the same numbers.
TEST_F(DistillCli, ASecondRunReadsTheTeacherFromTheCache) {
    make_teacher();
    auto run_with_cache = [&](const std::string& log) {
        return distill({{"--steps", "3"},
                        {"--teacher-topk", "6"},
                        {"--teacher-cache", path("cache")},
                        {"--log", path(log)}});
    };
    const RunResult cold = run_with_cache("cold.jsonl");
    ASSERT_EQ(cold.exit_code, 0) << cold.describe();
    EXPECT_NE(cold.out.find(": 0 hits, "), std::string::npos) << cold.describe();
    const RunResult warm = run_with_cache("warm.jsonl");
    ASSERT_EQ(warm.exit_code, 0) << warm.describe();
    EXPECT_NE(warm.out.find(" hits, 0 misses"), std::string::npos) << warm.describe();
    const auto a = log_records("cold.jsonl"), b = log_records("warm.jsonl");
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i) {
        EXPECT_EQ(a[i]["loss"], b[i]["loss"]);
        EXPECT_EQ(a[i]["kl"], b[i]["kl"]);
        EXPECT_EQ(a[i]["grad_norm"], b[i]["grad_norm"]);
    }
    // --eval-only reads it too (windows of the student's context, from position 0).
    ASSERT_EQ(distill({{"--steps", "1"}, {"--out", path("s.tinygpt")}}).exit_code, 0);
    std::vector<std::string> eval = {
        "--init-from", path("s.tinygpt"), "--eval-only", "--teacher-topk",
        "6",           "--teacher-cache", path("cache")};
    ASSERT_EQ(distill_bare(eval).exit_code, 0);
    const RunResult again = distill_bare(eval);
    ASSERT_EQ(again.exit_code, 0) << again.describe();
    EXPECT_NE(again.out.find(" hits, 0 misses"), std::string::npos) << again.describe();

    expect_clean_error(distill({{"--teacher-cache", path("cache")}}), {"--teacher-topk"});
    std::ofstream(path("file")) << "x";
    expect_clean_error(distill({{"--teacher-topk", "6"}, {"--teacher-cache", path("file")}}),
                       {"not a directory"});
}

TEST_F(DistillCli, EvalOnlyScoresAStudentAgainstItsTeacher) {
    make_teacher();
    ASSERT_EQ(distill({{"--steps", "2"}, {"--teacher-topk", "8"}, {"--out", path("s.tinygpt")}})
                  .exit_code,
              0);
    const RunResult e = distill_bare(
        {"--init-from", path("s.tinygpt"), "--eval-only", "--json", "--temperature", "1.5"});
    ASSERT_EQ(e.exit_code, 0) << e.describe();
    const nlohmann::json j = nlohmann::json::parse(e.out);
    const RunResult plain =
        run({"eval", path("s.tinygpt"), "--corpus", corpus_.string(), "--json"});
    ASSERT_EQ(plain.exit_code, 0) << plain.describe();
    const double ce = nlohmann::json::parse(plain.out)["cross_entropy"];
    EXPECT_NEAR(j["cross_entropy"].get<double>(), ce, 1e-4 * ce);  // the student's own CE
    EXPECT_GT(j["kl"].get<double>(), 0.0);
    EXPECT_EQ(j["tokens_scored"], nlohmann::json::parse(plain.out)["tokens_scored"]);

    // The teacher against itself: nothing between them.
    const RunResult self = distill_bare(
        {"--init-from", path("teacher.tinygpt"), "--eval-only", "--json", "--teacher-topk", "5"});
    ASSERT_EQ(self.exit_code, 0) << self.describe();
    EXPECT_NEAR(nlohmann::json::parse(self.out)["kl"].get<double>(), 0.0, 1e-9);

    // A typed teacher in another format (GGUF, Q8_0 weights) runs through the same path: a
    // little off its f32 original, no more.
    const RunResult c =
        run({"convert", path("teacher.tinygpt"), path("teacher.gguf"), "--dtype", "q8_0"});
    ASSERT_EQ(c.exit_code, 0) << c.describe();
    const RunResult q =
        run({"distill", "--teacher", path("teacher.gguf"), "--init-from", path("teacher.tinygpt"),
             "--eval-only", "--json", "--corpus", corpus_.string()});
    ASSERT_EQ(q.exit_code, 0) << q.describe();
    const double quantised_kl = nlohmann::json::parse(q.out)["kl"];
    EXPECT_GT(quantised_kl, 0.0);
    EXPECT_LT(quantised_kl, 1e-3);

    // The text form names both models.
    const RunResult text = distill_bare({"--init-from", path("s.tinygpt"), "--eval-only"});
    ASSERT_EQ(text.exit_code, 0) << text.describe();
    EXPECT_NE(text.out.find("KL to the teacher"), std::string::npos) << text.describe();
}

TEST_F(DistillCli, ATeacherWithAnotherTokenizerIsRefused) {
    make_teacher();
    const RunResult tok = run({"tokenizer", "train", "--corpus", corpus_.string(), "--vocab", "300",
                               "--out", path("tok.json")});
    ASSERT_EQ(tok.exit_code, 0) << tok.describe();
    ASSERT_EQ(train({{"--tokenizer", path("tok.json")}, {"--out", path("bpe.tinygpt")}}).exit_code,
              0);
    expect_clean_error(distill_bare({"--init-from", path("bpe.tinygpt"), "--steps", "1"}),
                       {"different tokenizers", "teacher.tinygpt"});
    expect_clean_error(distill_bare({"--init-from", path("bpe.tinygpt"), "--eval-only"}),
                       {"different tokenizers", "bpe.tinygpt"});
}

TEST_F(DistillCli, BadFlagsAreRefused) {
    make_teacher();
    expect_clean_error(distill({{"--alpha", "1.5"}}), {"--alpha"});
    expect_clean_error(distill({{"--alpha", "-0.1"}}), {"--alpha"});
    expect_clean_error(distill({{"--temperature", "0"}}), {"--temperature"});
    expect_clean_error(distill({{"--temperature", "-1"}}), {"--temperature"});
    expect_clean_error(distill({{"--teacher-topk", "-2"}}), {"--teacher-topk"});
    expect_clean_error(distill_bare({"--eval-only"}), {"--init-from"});
    expect_clean_error(distill({{"--ctx", "32"}}), {"context", "--ctx 16"});
    expect_clean_error(run({"distill", "--corpus", corpus_.string()}), {"--teacher"});
}

}  // namespace
}  // namespace tinygpt
