#!/usr/bin/env bash
# Builds the libFuzzer targets of fuzz/ (clang, ASan + UBSan, in build-fuzz/) and runs each for
# SECONDS (default 300) on a copy of its seed corpus (fuzz/corpus/<target>/; the grown copy is
# left in build-fuzz/runs/<target>/corpus). Prints executions and coverage per target; exits
# non-zero if a target finds a crash, a leak, undefined behaviour, a hang (> 10 s on one input)
# or an out-of-memory (> 2 GB), with the input in build-fuzz/runs/<target>/artifacts/.
# CI runs `fuzz/run.sh 10`. docs/FUZZING.md has the details and the numbers.
# Usage: fuzz/run.sh [--build-dir DIR] [SECONDS_PER_TARGET] [TARGET...]   (targets: fuzz_model_file, ...)
# --build-dir DIR: use the fuzz targets of an existing tree configured with -DTINYGPT_FUZZ=ON,
# e.g. scripts/test-sanitized.sh's build-asan/ (which CI uses: one sanitized build for both),
# instead of configuring build-fuzz/.
# Environment: FUZZ_CXX (default clang++; e.g. Homebrew's llvm clang++ on macOS, whose Apple
# clang has no libFuzzer), FUZZ_BUILD_JOBS (default 2), FUZZ_JOBS (targets run at once; default
# one per core).
set -euo pipefail
cd "$(dirname "$0")/.."

build=build-fuzz
configure=1
if [ "${1:-}" = "--build-dir" ]; then
    build="${2:?--build-dir needs a directory}"
    configure=0
    shift 2
fi
seconds="${1:-300}"
targets=("${@:2}")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(fuzz_model_file fuzz_model_file_v3 fuzz_hf_model fuzz_tokenizer fuzz_gguf)
fi

if [ "$configure" = 1 ]; then
    launcher=()
    if command -v ccache >/dev/null 2>&1; then
        launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
        export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$PWD}"
    fi
    cmake -S . -B "$build" -DCMAKE_CXX_COMPILER="${FUZZ_CXX:-clang++}" -DCMAKE_BUILD_TYPE=Release \
        -DTINYGPT_FUZZ=ON -DTINYGPT_BUILD_TESTS=OFF -DTINYGPT_BUILD_BENCH=OFF "${launcher[@]}" >/dev/null
fi
# clang reports every loop its vectoriser skips under the sanitizers: noise here. A failing
# build still stops the script (pipefail).
cmake --build "$build" --target fuzz_targets -j"${FUZZ_BUILD_JOBS:-2}" 2>&1 |
    { grep -v -e 'warning: loop not vectorized' -e '^ *[0-9]* warnings* generated' || true; }
for target in "${targets[@]}"; do
    [ -x "$build/fuzz/$target" ] || { echo "fuzz/run.sh: $target was not built" >&2; exit 1; }
done

# One thread: the readers are what is tested, and OpenMP threads only add noise on 2 cores.
export OMP_NUM_THREADS=1
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

# One target's run; its table row goes to $run/result, FAILED rows start with "!".
fuzz_one() {
    local target=$1 run="$build/runs/$1"
    rm -rf "$run"
    mkdir -p "$run/corpus" "$run/artifacts"
    cp -R "fuzz/corpus/${target#fuzz_}/." "$run/corpus/"
    # Every target but GGUF's reads JSON somewhere.
    local dict=(-dict=fuzz/json.dict)
    if [ "$target" = fuzz_gguf ]; then dict=(); fi
    local status=0
    "$build/fuzz/$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 "${dict[@]}" \
        -print_final_stats=1 -artifact_prefix="$run/artifacts/" "$run/corpus" >"$run/log" 2>&1 ||
        status=$?
    # The last status line (#N ... cov: C ft: F ...) and the final stats of libFuzzer.
    local last cov ft execs rate result=ok
    last="$(grep -E '^#[0-9]+' "$run/log" | tail -n 1 || true)"
    cov="$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")"
    ft="$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")"
    execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$run/log" | tail -n 1)"
    rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$run/log" | tail -n 1)"
    if [ "$status" -ne 0 ] || compgen -G "$run/artifacts/*" >/dev/null; then
        result="FAILED (exit $status): $(ls "$run/artifacts" | tr '\n' ' ')"
    fi
    printf '%-20s %8s %10s %7s %7s %7s  %s\n' "$target" "$seconds" "${execs:-?}" "${rate:-?}" \
        "${cov:-?}" "${ft:-?}" "$result" >"$run/result"
}

# The targets run FUZZ_JOBS at a time (default: one per core), each on one thread.
jobs="${FUZZ_JOBS:-$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)}"
for ((first = 0; first < ${#targets[@]}; first += jobs)); do
    for target in "${targets[@]:first:jobs}"; do fuzz_one "$target" & done
    wait
done
failed=()
printf '\n%-20s %8s %10s %7s %7s %7s  %s\n' target seconds executions exec/s cov ft result
for target in "${targets[@]}"; do
    row="$(cat "$build/runs/$target/result" 2>/dev/null || echo "$target: no result")"
    echo "$row"
    [[ "$row" == *"  ok" ]] || failed+=("$target")
done
for target in "${failed[@]}"; do
    echo
    echo "=== $target: $build/runs/$target/log (last 40 lines) ==="
    tail -n 40 "$build/runs/$target/log"
done
[ ${#failed[@]} -eq 0 ]
