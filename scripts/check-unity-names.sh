#!/usr/bin/env bash
# The engine is compiled in unity batches (CMakeLists.txt, TINYGPT_UNITY_BUILD), and which files
# share a batch differs between the release, sanitized and WebAssembly builds. So that no batch
# can clash, every engine source is checked here in ONE translation unit: two files with the same
# file-private name (anonymous namespace, static) fail with "redefinition" and the two places.
# A syntax check with clang, about 10 s; .ci/run runs it first. The instruction-set kernels
# (weight_matmul/{avx2,avx512,neon}.cpp), compiled alone with their own flags, are left out.
set -euo pipefail
cd "$(dirname "$0")/.."
cxx="${CHECK_CXX:-clang++}"
all="$(mktemp --suffix=.cpp)"
trap 'rm -f "$all"' EXIT
find src -name '*.cpp' -not -path 'src/cli/*' -not -path 'src/util/parallel/*' \
    -not -name web_bindings.cpp -not -name no_mpi.cpp \
    -not -regex 'src/kernels/weight_matmul/\(avx2\|avx512\|neon\)\.cpp' | sort |
    sed "s|^|#include \"$PWD/|; s|\$|\"|" >"$all"
mpi_flags=()
if command -v mpicxx >/dev/null; then read -ra mpi_flags <<<"$(mpicxx --showme:compile)"; fi
"$cxx" -std=c++20 -fsyntax-only -ferror-limit=0 -Isrc "${mpi_flags[@]}" -DTINYGPT_NO_BLAS \
    -DTINYGPT_VERSION='"check"' "$all"
echo "check-unity-names: $(wc -l <"$all") engine sources compile as one translation unit"
