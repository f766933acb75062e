#!/usr/bin/env bash
# Builds the engine, the CLI and the test suite with AddressSanitizer + UndefinedBehaviorSanitizer
# (float-cast-overflow included; any finding aborts) into build-asan/, and runs the whole suite
# there: the unit tests, the CLI tests (their child processes are sanitized too) and the live
# check against the reference tokenizer; then the thread pool under ThreadSanitizer. Left out:
# the two checks against the real llama.cpp (gguf_llama_cpp_live, gguf_vocab_live). They judge
# llama.cpp's reading of our GGUF files, which the release run checks; the code of ours they
# drive (GGUF export/import, eval, sample) runs under the sanitizers in test_gguf_*.cpp and
# test_cli_gguf.cpp; and sanitized they take 4 minutes of the CI's time. Needs what
# scripts/install-deps.sh installs.
# Built with clang (SANITIZE_CXX; it compiles the instrumented tree ~1.7x faster than g++), and
# with the libFuzzer targets of fuzz/ in the same tree: `fuzz/run.sh --build-dir build-asan`
# then runs them without a second build.
set -euo pipefail
cd "$(dirname "$0")/.."

# Left out here (the release run has them): the round trips and the repeated checks of the two
# largest real vocabularies (Llama 3's 128k and Qwen3's 151k tokens), which load their 7-9 MB
# tokenizer.json again in every test and took 40% of this run. The code they drive is the same as
# for GPT-2's 50k vocabulary, which runs them all here; Llama 3 and Qwen3 still encode here (their
# own pre-tokenizer regexes, Qwen's NFC normaliser). The unit tests run as gtest shards here
# (tests/CMakeLists.txt), so this is a gtest filter.
large_vocab_repeats=""
for vocab in llama3 qwen3; do
    for test in SerialisationReloadsIdentically DecodesRandomIdsLikeTheReference \
        ParallelEncodeOfALargeTextMatchesSerial; do
        large_vocab_repeats+=":Tokenizer/RealTokenizer.$test/$vocab"
    done
done
gtest_filter="-GgufVocab.Llama3RoundTrip*:GgufVocab.Qwen3RoundTrip*$large_vocab_repeats"
# Ninja where installed (scripts/install-deps.sh installs it): it schedules the whole build as one
# graph (one pair of from-scratch release builds: 204 s against 217 s with Make). CMAKE_GENERATOR
# applies to a new build tree only; an existing one keeps its generator.
if command -v ninja >/dev/null 2>&1; then export CMAKE_GENERATOR="${CMAKE_GENERATOR:-Ninja}"; fi
# -no-pie: the CLI tests start hundreds of instrumented tinygpt processes, and the dynamic
# loader's relocations of a position-independent 150 MB instrumented binary cost 30% of each
# start-up's CPU time (0.35 s -> 0.24 s).
cmake -S . -B build-asan -DCMAKE_CXX_COMPILER="${SANITIZE_CXX:-clang++}" -DCMAKE_BUILD_TYPE=Release \
    -DTINYGPT_SANITIZE=ON -DTINYGPT_FUZZ=ON -DTINYGPT_BUILD_BENCH=OFF -DCMAKE_EXE_LINKER_FLAGS=-no-pie \
    -DTINYGPT_SANITIZE_GTEST_FILTER="$gtest_filter"
cmake --build build-asan -j2
# detect_leaks: the engine frees what it allocates; abort_on_error gives a core-dump-like exit
# that the CLI tests see as a crash, not as a clean error.
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
# Leaks in third-party runtimes only (libomp's thread descriptors): the file says which.
export LSAN_OPTIONS="suppressions=$PWD/scripts/lsan-suppressions.txt:print_suppressions=0"
ctest --test-dir build-asan --output-on-failure -j2 -E '^gguf_(llama_cpp|vocab)_live$'
# The thread pool (util/parallel/thread_pool.cpp: lock-free claims, futex sleeps) under
# ThreadSanitizer, which cannot share a build with ASan: its own tests, one small program (~5 s).
"${SANITIZE_CXX:-clang++}" -std=c++20 -O1 -g -fsanitize=thread -DTINYGPT_THREAD_POOL -Isrc \
    tests/thread_pool/test_thread_pool.cpp src/util/parallel/thread_pool.cpp \
    -lgtest -lgtest_main -pthread -o build-asan/thread_pool_tsan
TSAN_OPTIONS="halt_on_error=1" build-asan/thread_pool_tsan --gtest_brief=1
