#!/usr/bin/env bash
# Builds the engine to WebAssembly with emscripten (Debian's `emscripten` 3.1.6; Homebrew's works
# too) into build-web/: tinygpt.js + .wasm (one thread), tinygpt-threads.js + .wasm + .worker.js
# (WebAssembly pthreads, for cross-origin isolated pages) and the page of web/ (static files,
# no server code). Serve that folder with any static server, e.g.
# `python3 -m http.server -d build-web` (one thread; docs/WEB.md says how to serve it threaded).
#
# PCRE2 and utf8proc (the tokenizers' regexes and NFC) have no WebAssembly packages: their
# sources are fetched once with `apt-get source` (Debian's, the versions the native build links)
# into build-web-deps/ and built there with emcmake. Elsewhere, put pcre2-*.tar.gz and
# utf8proc-*.tar.gz (upstream release tarballs) into build-web-deps/ first.
# Debian's emscripten needs NODE_PATH=/usr/share/nodejs for its JS optimiser and Debian's python3
# first in PATH; both are set here.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
deps="$root/build-web-deps"
jobs="${JOBS:-2}"
export NODE_PATH="${NODE_PATH:-/usr/share/nodejs}"
export PATH="/usr/bin:$PATH"
command -v emcmake >/dev/null || { echo "error: emscripten (emcmake) is not installed (Debian: apt-get install emscripten)" >&2; exit 1; }
mkdir -p "$deps"

# --- sources of PCRE2 and utf8proc -----------------------------------------------------------
fetch_sources() {
    ls "$deps"/pcre2*.orig.tar.gz "$deps"/pcre2-*.tar.gz >/dev/null 2>&1 &&
        ls "$deps"/utf8proc*.orig.tar.gz "$deps"/utf8proc-*.tar.gz >/dev/null 2>&1 && return
    command -v apt-get >/dev/null || {
        echo "error: put the PCRE2 and utf8proc source tarballs into $deps (no apt-get here)" >&2
        exit 1
    }
    # A private source list and package lists: the system's apt configuration is left alone.
    local apt="$deps/apt"
    mkdir -p "$apt/lists/partial"
    . /etc/os-release
    echo "deb-src http://deb.debian.org/debian ${VERSION_CODENAME:-bookworm} main" >"$apt/sources.list"
    local options=(-o "Dir::Etc::SourceList=$apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
                   -o "Dir::State::Lists=$apt/lists" -o APT::Sandbox::User=root)
    apt-get -qq "${options[@]}" update
    (cd "$deps" && apt-get -qq "${options[@]}" source --download-only pcre2 utf8proc)
}

unpack() {  # unpack NAME → the source folder's path
    local tarball
    tarball="$(ls "$deps"/"$1"*.tar.gz | grep -v debian | head -1)"
    local dir="$deps/src-$1"
    if [ ! -d "$dir" ]; then
        mkdir -p "$dir"
        tar -xzf "$tarball" -C "$dir" --strip-components=1
    fi
    echo "$dir"
}

needs_deps() {  # needs_deps VARIANT: true when its libraries are not built yet
    [ ! -f "$deps/$1/lib/libpcre2-8.a" ] || [ ! -f "$deps/$1/lib/libutf8proc.a" ]
}

# PCRE2's 8-bit library the way its NON-AUTOTOOLS-BUILD describes: its generic config.h and
# pcre2.h, and the library's sources compiled directly. (A CMake configure of PCRE2 runs dozens
# of one-core emcc checks whose answers are known here: 40 s of the deps' 83 s.) The settings its
# CMake build would find for emscripten: Unicode properties, memmove and strerror; no JIT
# (WebAssembly cannot generate code). The list of sources is the one in PCRE2's CMakeLists.txt.
pcre2_flags=(-O3 -DNDEBUG -DHAVE_CONFIG_H -DPCRE2_CODE_UNIT_WIDTH=8 -DPCRE2_STATIC
             -DSUPPORT_UNICODE=1 -DHAVE_MEMMOVE=1 -DHAVE_STRERROR=1)

# compile_deps VARIANT FLAGS: the emcc arguments that compile PCRE2 and utf8proc for one variant
# of the module (the threaded one needs every object compiled with -pthread, i.e. with
# WebAssembly atomics) into $deps/obj-VARIANT/, one object per line.
compile_deps() {
    local objects="$deps/obj-$1" flags="$2" config="$deps/pcre2-config" sources source
    mkdir -p "$objects"
    sources="$(sed -n '/^SET(PCRE2_SOURCES/,/^)/s#^ *src/\(pcre2_[a-z0-9_]*\)\.c$#\1#p' \
        "$deps/src-pcre2/CMakeLists.txt")"
    [ -n "$sources" ] || { echo "error: no PCRE2_SOURCES in $deps/src-pcre2/CMakeLists.txt" >&2; exit 1; }
    # pcre2_chartables.c is the one made from pcre2_chartables.c.dist (in $config).
    for source in $sources $config/pcre2_chartables; do
        [ "${source#/}" = "$source" ] && source="$deps/src-pcre2/src/$source"
        echo "${pcre2_flags[*]} $flags -I$config -I$deps/src-pcre2/src -c $source.c" \
             "-o $objects/$(basename "$source").o"
    done
    echo "-O2 $flags -DUTF8PROC_STATIC -c $deps/src-utf8proc/utf8proc.c -o $objects/utf8proc.o"
}

# install_deps VARIANT: the variant's libraries and headers into $deps/VARIANT/.
install_deps() {
    local prefix="$deps/$1" objects="$deps/obj-$1"
    mkdir -p "$prefix/include" "$prefix/lib"
    rm -f "$prefix/lib/libpcre2-8.a" "$prefix/lib/libutf8proc.a"
    emar rcs "$prefix/lib/libpcre2-8.a" "$objects"/pcre2_*.o
    emar rcs "$prefix/lib/libutf8proc.a" "$objects/utf8proc.o"
    cp "$deps/pcre2-config/pcre2.h" "$deps/src-utf8proc/utf8proc.h" "$prefix/include/"
}

# The sources are fetched and unpacked once; both variants' objects then compile in one pool.
variants=()
needs_deps tinygpt && variants+=(tinygpt)
needs_deps tinygpt-threads && variants+=(tinygpt-threads)
if [ ${#variants[@]} -gt 0 ]; then
    fetch_sources
    unpack pcre2 >/dev/null
    unpack utf8proc >/dev/null
    config="$deps/pcre2-config"
    mkdir -p "$config"
    cp "$deps/src-pcre2/src/config.h.generic" "$config/config.h"
    cp "$deps/src-pcre2/src/pcre2.h.generic" "$config/pcre2.h"
    cp "$deps/src-pcre2/src/pcre2_chartables.c.dist" "$config/pcre2_chartables.c"
    for variant in "${variants[@]}"; do
        if [ "$variant" = tinygpt-threads ]; then compile_deps "$variant" -pthread; else compile_deps "$variant" ""; fi
    done | xargs -P "$jobs" -L 1 emcc
    for variant in "${variants[@]}"; do install_deps "$variant"; done
fi
# Header-only libraries, from the native packages (scripts/install-deps.sh installs them).
# Their times are kept (-p): a new time on every run would rebuild the whole engine.
for variant in tinygpt tinygpt-threads; do
    mkdir -p "$deps/$variant/include"
    for header in /usr/include/nlohmann /usr/include/xxhash.h; do
        [ -e "$header" ] || { echo "error: $header is missing (scripts/install-deps.sh)" >&2; exit 1; }
        cp -rp "$header" "$deps/$variant/include/"
    done
done

# Debian's emscripten 3.1.6 pairs clang 14, which writes the landing-pad context of WebAssembly
# exceptions (__wasm_lpad_context) as a plain global, with a prebuilt multithreaded libunwind
# that declares it thread_local (the convention from LLVM 15 on). In a -pthread build the C++
# personality then reads a context nobody wrote, and no `catch (const T&)` ever matches: every
# error would escape the engine. The toolchain's own unwinder, compiled with the context as a
# plain global (what clang 14 expects), links ahead of the prebuilt one. Newer toolchains agree
# with themselves and need nothing.
unwind_fix="$deps/tinygpt-threads/lib/libunwind-lpad-global.a"
llvm_major="$("$(em-config LLVM_ROOT)/clang" --version | sed -n 's/.*clang version \([0-9]*\).*/\1/p' | head -1)"
if [ "${llvm_major:-99}" -lt 15 ] && [ ! -f "$unwind_fix" ]; then
    unwind_src="$(em-config EMSCRIPTEN_ROOT)/system/lib/libunwind"
    emcc -Oz -pthread -fwasm-exceptions -DNDEBUG -D_LIBUNWIND_DISABLE_VISIBILITY_ANNOTATIONS \
        -D__USING_WASM_EXCEPTIONS__ -D_Thread_local= -I"$unwind_src/include" \
        -c "$unwind_src/src/Unwind-wasm.c" -o "$deps/unwind-lpad-global.o"
    emar rcs "$unwind_fix" "$deps/unwind-lpad-global.o"
fi

# --- the engine and the page ------------------------------------------------------------------
# Ninja where installed, as in scripts/test-sanitized.sh (a new build tree only).
if command -v ninja >/dev/null 2>&1; then export CMAKE_GENERATOR="${CMAKE_GENERATOR:-Ninja}"; fi
emcmake cmake -S . -B build-web-cmake -DCMAKE_BUILD_TYPE=Release -DTINYGPT_WEB_DEPS="$deps" >/dev/null
cmake --build build-web-cmake -j"$jobs"
mkdir -p build-web
cp build-web-cmake/tinygpt.js build-web-cmake/tinygpt.wasm build-web-cmake/tinygpt-threads.js \
    build-web-cmake/tinygpt-threads.wasm build-web-cmake/tinygpt-threads.worker.js build-web/
cp -r web/. build-web/
echo "build-web/: $(du -sh build-web | cut -f1) (WebAssembly: $(stat -c %s build-web/tinygpt.wasm) bytes, threaded $(stat -c %s build-web/tinygpt-threads.wasm))"
