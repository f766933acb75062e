#pragma once

namespace tinygpt::cli {

// Thrown by a command that must end with a particular exit status after reporting on its own
// (e.g. 130 after Ctrl-C); main() returns `code` without printing anything.
struct ExitCode {
    int code;
};

}  // namespace tinygpt::cli
