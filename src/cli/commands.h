// One function per subcommand: register_X adds the subcommand and its flags to the app, and
// sets a callback that runs it.
#pragma once
#include <CLI/CLI.hpp>

namespace tinygpt::cli {

// Help for a command's model argument: every form open_model accepts.
inline constexpr const char* kModelHelp =
    "Model: a .tinygpt file, a Hugging Face directory or a GGUF file";

void register_train(CLI::App& app);
void register_bench_train(CLI::App& app);
void register_info(CLI::App& app);
void register_sample(CLI::App& app);
void register_eval(CLI::App& app);
void register_inspect(CLI::App& app);
void register_bench(CLI::App& app);
void register_convert(CLI::App& app);
void register_upcycle(CLI::App& app);
void register_distill(CLI::App& app);
void register_tokenizer(CLI::App& app);
void register_experts(CLI::App& app);
void register_report(CLI::App& app);

}  // namespace tinygpt::cli
