// tinygpt: train, run and inspect small GPT models with Mixture-of-Experts on the CPU.
#include <fcntl.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <exception>
#include <new>
#include <string>
#include <thread>

#include "cli/commands.h"
#include "cli/exit_code.h"
#include "dist/communicator.h"
#include "util/error.h"
#include "util/sysinfo.h"

namespace {

// Under mpirun every rank runs the same command; only rank 0 prints. The other ranks keep a
// copy of stderr for their own errors (which rank 0 may not share: a file missing on their
// machine, a dead peer).
int g_error_fd = STDERR_FILENO;

void quiet_other_ranks() {
    const tinygpt::Communicator& w = tinygpt::world();
    if (w.size() == 1 || w.rank() == 0) return;
    g_error_fd = dup(STDERR_FILENO);
    const int null_fd = open("/dev/null", O_WRONLY);
    if (null_fd < 0 || g_error_fd < 0) return;
    std::fflush(stdout);
    std::fflush(stderr);
    dup2(null_fd, STDOUT_FILENO);
    dup2(null_fd, STDERR_FILENO);
    close(null_fd);
}

// Prints an error and ends the run with `code`. With several ranks an error ends all of them
// (the others may wait for this one in a collective): rank 0 prints at once; another rank waits
// a moment first, so that an error every rank meets (a bad flag) is printed once, by rank 0,
// whose abort ends the others before they print.
int fail(const std::string& message, int code) {
    const tinygpt::Communicator& w = tinygpt::world();
    std::string line = "error: " + message + "\n";
    if (w.size() > 1) {
        if (w.rank() != 0) std::this_thread::sleep_for(std::chrono::milliseconds(1500));
        line = "error (rank " + std::to_string(w.rank()) + " of " + std::to_string(w.size()) +
               "): " + message + "\n";
    }
    std::fflush(stdout);
    if (write(g_error_fd, line.data(), line.size()) < 0) {
        // Nothing more can be said: the exit code still tells.
    }
    tinygpt::distributed_abort(code);
    tinygpt::distributed_finish();
    return code;
}

// Every rank must run the same command: ranks that disagree on a flag would wait for each other
// in different collectives forever. Compares each rank's command line with rank 0's.
void check_same_command_line(int argc, char** argv) {
    tinygpt::Communicator& w = tinygpt::world();
    if (w.size() == 1) return;
    std::string line;
    for (int i = 1; i < argc; ++i) line += std::string(argv[i]) + '\0';
    uint64_t hash = 1469598103934665603ull;  // FNV-1a
    for (unsigned char c : line) hash = (hash ^ c) * 1099511628211ull;
    uint64_t lead = hash;
    w.broadcast(&lead, sizeof lead, 0);
    if (lead != hash)
        throw tinygpt::Error(
            "this rank's command line differs from rank 0's; every rank must run the same "
            "tinygpt command");
}

}  // namespace

int main(int argc, char** argv) {
    tinygpt::distributed_start(&argc, &argv);
    quiet_other_ranks();
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
        check_same_command_line(argc, argv);
        app.parse(argc, argv);
        if (show_version) {
            std::printf("tinygpt %s\n%s\n%s\n", TINYGPT_VERSION, tinygpt::system_summary().c_str(),
                        tinygpt::distributed_summary().c_str());
            tinygpt::distributed_finish();
            return 0;
        }
        if (app.get_subcommands().empty()) {
            std::fputs(app.help().c_str(), stdout);
            tinygpt::distributed_finish();
            return 2;
        }
    } catch (const tinygpt::cli::ExitCode& e) {
        // Ctrl-C (130) ends every rank the same way, after the save; other codes are errors
        // already printed.
        if (e.code != 130 && tinygpt::world().size() > 1) tinygpt::distributed_abort(e.code);
        tinygpt::distributed_finish();
        return e.code;
    } catch (const CLI::ParseError& e) {
        if (e.get_exit_code() == 0) {  // --help
            const int code = app.exit(e);
            tinygpt::distributed_finish();
            return code;
        }
        return fail(std::string(e.what()) + " (see --help)", e.get_exit_code());
    } catch (const tinygpt::Error& e) {
        return fail(e.what(), 1);
    } catch (const std::bad_alloc&) {
        return fail("out of memory (try a smaller model, --batch or --ctx)", 1);
    } catch (const std::exception& e) {
        return fail(e.what(), 1);
    }
    tinygpt::distributed_finish();
    return 0;
}
