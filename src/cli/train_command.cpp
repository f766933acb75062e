// `tinygpt train`: train a GPT / MoE model on a text corpus, with a banner, live progress,
// validation, inline greedy samples and an optional JSON-lines log (cli/training_command.h).
#include <memory>

#include "cli/commands.h"
#include "cli/training_command.h"

namespace tinygpt::cli {

void register_train(CLI::App& app) {
    auto cmd_state = std::make_shared<TrainingCommand>();
    CLI::App* cmd = app.add_subcommand("train", "Train a model on a text corpus");
    cmd_state->flags.add_model_flags(cmd);
    cmd_state->flags.add_training_flags(cmd, /*warmup_flag_is_lr=*/true);
    cmd_state->add_run_flags(cmd, /*train_only=*/true);
    cmd->callback([cmd_state] { cmd_state->run(TrainingCommand::Hooks{}); });
}

}  // namespace tinygpt::cli
