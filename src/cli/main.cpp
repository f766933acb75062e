// tinygpt: train, run and inspect small GPT models with Mixture-of-Experts on the CPU.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>
#include <new>

#include "cli/commands.h"
#include "cli/exit_code.h"
#include "cli/openmp_wait.h"
#include "util/error.h"
#include "util/sysinfo.h"

int main(int argc, char** argv) {
    tinygpt::cli::limit_openmp_spinning(argv);
    CLI::App app{"tinygpt — train and run small GPT / Mixture-of-Experts models on the CPU"};
    app.require_subcommand(0, 1);
    // A flag given twice takes its last value (as in most CLIs) instead of being an error.
    app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
    bool show_version = false;
    app.add_flag("--version", show_version, "Print the version, BLAS, threads and SIMD level");
    tinygpt::cli::register_train(app);
    tinygpt::cli::register_bench_train(app);
    tinygpt::cli::register_sample(app);
    tinygpt::cli::register_eval(app);
    tinygpt::cli::register_experts(app);
    tinygpt::cli::register_report(app);
    tinygpt::cli::register_inspect(app);
    tinygpt::cli::register_bench(app);
    tinygpt::cli::register_convert(app);
    tinygpt::cli::register_upcycle(app);
    tinygpt::cli::register_distill(app);
    tinygpt::cli::register_tokenizer(app);
    tinygpt::cli::register_info(app);
    try {
        app.parse(argc, argv);
        if (show_version) {
            std::printf("tinygpt %s\n%s\n", TINYGPT_VERSION, tinygpt::system_summary().c_str());
            return 0;
        }
        if (app.get_subcommands().empty()) {
            std::fputs(app.help().c_str(), stdout);
            return 2;
        }
    } catch (const tinygpt::cli::ExitCode& e) {
        return e.code;
    } catch (const CLI::ParseError& e) {
        if (e.get_exit_code() == 0) return app.exit(e);  // --help
        std::fprintf(stderr, "error: %s (see --help)\n", e.what());
        return e.get_exit_code();
    } catch (const tinygpt::Error& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    } catch (const std::bad_alloc&) {
        std::fprintf(stderr, "error: out of memory (try a smaller model, --batch or --ctx)\n");
        return 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
    return 0;
}
