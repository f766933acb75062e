// `tinygpt distill --teacher T ...`: knowledge distillation (issue #11, part 2). The student
// trains as with `train` (the same flags, progress, validation, log, saves, --resume, Ctrl-C:
// cli/training_command.h) on the mixed loss of train/distillation.h against a frozen teacher run
// forward-only on the same batches (train/teacher.h). With --eval-only it scores a student
// against its teacher on a text instead.
#include <cstdio>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "cli/commands.h"
#include "cli/common_flags.h"
#include "cli/training_command.h"
#include "cli/training_run.h"
#include "io/model_file.h"
#include "load/model_source.h"
#include "train/data.h"
#include "train/teacher.h"
#include "train/teacher_cache.h"
#include "util/error.h"

namespace tinygpt::cli {

namespace {

struct DistillCommand {
    TrainingCommand training;
    std::string teacher_path;
    double alpha = 0.5;
    double temperature = 2.0;
    int teacher_topk = 0;
    std::string teacher_cache;
    bool eval_only = false;
    bool json = false;
    const CLI::App* cmd = nullptr;

    void run();
    // A resumed distillation goes on with the recipe saved in its file; a flag given again
    // overrides it, with a note.
    void take_saved_recipe();
    void train(const OpenedModel& teacher) const;
    void evaluate(const OpenedModel& teacher) const;
    DistillLossOptions loss_options() const { return DistillLossOptions{alpha, temperature}; }
    DistillRecipe recipe_to_save() const;
    void open_teacher_cache(TeacherLoss& loss, const OpenedModel& teacher) const;
};

DistillRecipe DistillCommand::recipe_to_save() const {
    DistillRecipe r;
    // Absolute, so that a run resumed from another directory finds its teacher.
    std::error_code ec;
    const std::filesystem::path absolute = std::filesystem::absolute(teacher_path, ec);
    r.teacher = ec ? teacher_path : absolute.lexically_normal().string();
    r.alpha = alpha;
    r.temperature = temperature;
    r.teacher_topk = teacher_topk;
    return r;
}

// --teacher-cache DIR: the teacher's top-K of every window, kept for the next run.
void DistillCommand::open_teacher_cache(TeacherLoss& loss, const OpenedModel& teacher) const {
    if (teacher_cache.empty()) return;
    auto cache =
        std::make_unique<TeacherCache>(teacher_cache, teacher.weights, teacher_topk, temperature);
    if (!cache->note().empty())
        std::fprintf(stderr, "%s: the teacher cache '%s' %s\n",
                     cache->usable() ? "note" : "warning", cache->path().c_str(),
                     cache->note().c_str());
    loss.set_cache(std::move(cache));
}

// "teacher cache DIR/…topk: 812 hits, 188 misses · 1000 windows (33.0 MB)"
void print_cache_summary(const TeacherLoss& loss) {
    const TeacherCache* c = loss.cache();
    if (!c || !c->usable()) return;
    std::printf("teacher cache %s: %lld hits, %lld misses · %lld windows (%.1f MB)\n",
                c->path().c_str(), static_cast<long long>(c->hits()),
                static_cast<long long>(c->misses()), static_cast<long long>(c->windows()),
                c->file_bytes() / 1e6);
}

void DistillCommand::take_saved_recipe() {
    const std::string& file = training.resume_path;
    if (file.empty() || eval_only) {
        if (teacher_path.empty()) throw Error("--teacher is required: the model to distill from");
        return;
    }
    training.resumed_file.emplace(ModelFile::read(file));  // the run takes it from there
    const TrainingState& saved = training.resumed_file->training_state();
    if (!saved.distillation) {
        if (teacher_path.empty())
            throw Error("'" + file +
                        "' was not saved by distill (it names no teacher): give --teacher");
        return;
    }
    const DistillRecipe& r = *saved.distillation;
    auto take = [&](const char* flag, auto& value, auto saved_value) {
        if (cmd->count(flag) == 0)
            value = saved_value;
        else if (value != saved_value)
            std::fprintf(stderr, "warning: %s overrides the value saved in '%s'\n", flag,
                         file.c_str());
    };
    if (teacher_path.empty()) {
        std::error_code ec;
        if (!std::filesystem::exists(r.teacher, ec))
            throw Error("the teacher saved in '" + file + "', '" + r.teacher +
                        "', no longer exists: give --teacher");
        teacher_path = r.teacher;
    } else if (recipe_to_save().teacher != r.teacher) {
        std::fprintf(stderr, "warning: --teacher overrides the teacher saved in '%s' (%s)\n",
                     file.c_str(), r.teacher.c_str());
    }
    take("--alpha", alpha, r.alpha);
    take("--temperature", temperature, r.temperature);
    take("--teacher-topk", teacher_topk, r.teacher_topk);
}

void DistillCommand::run() {
    take_saved_recipe();
    loss_options().validate();  // bad flags fail before any model is read
    if (teacher_topk < 0)
        throw Error("--teacher-topk must be >= 0 (got " + std::to_string(teacher_topk) + ")");
    if (!teacher_cache.empty() && teacher_topk == 0)
        throw Error(
            "--teacher-cache keeps the teacher's top-K per position: give --teacher-topk K too "
            "(the full distribution is as large as the vocabulary)");
    const OpenedModel teacher = open_model(teacher_path, ReadOptions{/*optimizer=*/false});
    if (eval_only)
        evaluate(teacher);
    else
        train(teacher);
}

void DistillCommand::train(const OpenedModel& teacher) const {
    if (json) throw Error("--json goes with --eval-only");
    std::unique_ptr<TeacherLoss> loss;
    TrainingCommand::Hooks hooks;
    hooks.command = "distill";
    hooks.distills = true;
    hooks.fresh_tokenizer = &teacher.tokenizer;
    hooks.fresh_vocab = teacher.config.vocab;
    hooks.extra_memory = [&](const TrainOptions& student) {
        return teacher_memory_bytes(teacher.config,
                                    static_cast<double>(teacher.weights.stored_bytes()),
                                    student.batch, student.model.ctx, teacher_topk);
    };
    hooks.check_student = [&](const ModelConfig& student, const Tokenizer& tokenizer) {
        check_teacher_matches(teacher.config, teacher.tokenizer, teacher_path, student, tokenizer,
                              "the student");
    };
    hooks.prepare = [&](Trainer& trainer, const Tokenizer&, TrainingRun& run) {
        loss = std::make_unique<TeacherLoss>(teacher.weights, loss_options(), teacher_topk);
        open_teacher_cache(*loss, teacher);
        trainer.set_logit_loss(loss.get());
        run.distillation = recipe_to_save();
    };
    hooks.after_banner = [&] {
        std::printf("  teacher   %s (%s) · %s\n  distill   %s\n", teacher_path.c_str(),
                    teacher.format.c_str(), teacher.config.describe().c_str(),
                    describe_recipe(recipe_to_save()).c_str());
        if (const TeacherCache* c = loss->cache(); c && c->usable())
            std::printf("  cache     %s · %lld windows\n", c->path().c_str(),
                        static_cast<long long>(c->windows()));
        std::fflush(stdout);
    };
    try {
        training.run(hooks);
    } catch (...) {
        if (loss) print_cache_summary(*loss);  // Ctrl-C (exit 130) included
        throw;
    }
    print_cache_summary(*loss);
}

void DistillCommand::evaluate(const OpenedModel& teacher) const {
    const std::string& student_path = training.init_from;
    if (student_path.empty()) throw Error("--eval-only scores a student: give it with --init-from");
    if (!training.resume_path.empty() || !training.out_path.empty())
        throw Error("--eval-only trains nothing: --resume and --out do not go with it");
    const OpenedModel student = open_model(student_path, ReadOptions{/*optimizer=*/false});
    check_teacher_matches(teacher.config, teacher.tokenizer, teacher_path, student.config,
                          student.tokenizer, "the student '" + student_path + "'");
    apply_threads_flag(training.flags.threads);
    const Corpus corpus =
        Corpus::load(training.flags.corpus_path(), student.tokenizer, /*progress=*/!json);
    TeacherLoss loss(teacher.weights, loss_options(), teacher_topk);
    open_teacher_cache(loss, teacher);
    const DistillEval r = evaluate_distillation(student.weights, loss, corpus.tokens);
    if (!json) print_cache_summary(loss);
    if (json) {
        const nlohmann::json out = {{"teacher", teacher_path},
                                    {"student", student_path},
                                    {"corpus", corpus.path},
                                    {"tokens_scored", r.tokens},
                                    {"alpha", alpha},
                                    {"temperature", temperature},
                                    {"teacher_topk", teacher_topk},
                                    {"cross_entropy", r.cross_entropy()},
                                    {"kl", r.kl()},
                                    {"loss", r.loss()}};
        std::printf("%s\n", out.dump().c_str());
        return;
    }
    std::printf(
        "tinygpt distill --eval-only\n  teacher  %s (%s)\n  student  %s (%s)\n  corpus   %s · "
        "%lld tokens scored\n  recipe   %s\n  student cross-entropy %.4f nats/token\n  KL to "
        "the teacher     %.4f nats/token (at temperature %g)\n  mixed loss            %.4f\n",
        teacher_path.c_str(), teacher.format.c_str(), student_path.c_str(), student.format.c_str(),
        corpus.path.c_str(), static_cast<long long>(r.tokens),
        describe_recipe(recipe_to_save()).c_str(), r.cross_entropy(), r.kl(), temperature,
        r.loss());
}

}  // namespace

void register_distill(CLI::App& app) {
    auto state = std::make_shared<DistillCommand>();
    CLI::App* cmd = app.add_subcommand(
        "distill", "Train a student on a teacher model's distribution (knowledge distillation)");
    cmd->add_option("--teacher", state->teacher_path,
                    "The teacher: a .tinygpt file, a Hugging Face directory or a GGUF file, with "
                    "the student's tokenizer (with --resume: the one saved in the file)");
    cmd->add_option("--alpha", state->alpha,
                    "Weight of the KL to the teacher; 1 - alpha weighs the cross-entropy")
        ->capture_default_str();
    cmd->add_option("--temperature", state->temperature,
                    "Softmax temperature of both distributions in the KL term (scaled by its "
                    "square)")
        ->capture_default_str();
    cmd->add_option("--teacher-topk", state->teacher_topk,
                    "Keep only the teacher's K most likely tokens per position and one bucket "
                    "for the rest (0 = the full distribution)")
        ->capture_default_str();
    cmd->add_option("--teacher-cache", state->teacher_cache,
                    "With --teacher-topk: keep the teacher's top-K of every window in this "
                    "directory and reuse it in later runs (keyed by the teacher, K, the "
                    "temperature and the window's tokens)");
    cmd->add_flag("--eval-only", state->eval_only,
                  "Score the --init-from student against the teacher on --corpus; no training");
    cmd->add_flag("--json", state->json, "With --eval-only: print one JSON object");
    state->training.flags.add_model_flags(cmd);
    state->training.flags.add_training_flags(cmd, /*warmup_flag_is_lr=*/true);
    state->training.add_run_flags(cmd, /*train_only=*/false);
    state->cmd = cmd;
    cmd->callback([state] { state->run(); });
}

}  // namespace tinygpt::cli
