# The WebAssembly build (emscripten; run scripts/build-web.sh, which prepares TINYGPT_WEB_DEPS):
# the engine without a BLAS (kernels/portable_sgemm.cpp) and without OpenMP
# (src/util/no_openmp/omp.h: one thread), with WebAssembly SIMD128, plus the page's binding
# (src/web/) → tinygpt.js + tinygpt.wasm. Dependencies come from TINYGPT_WEB_DEPS/include and
# /lib: PCRE2 and utf8proc built for WebAssembly from their sources, nlohmann-json, and xxHash
# header-only (XXH_INLINE_ALL).
set(TINYGPT_WEB_DEPS "" CACHE PATH "Prefix with the WebAssembly builds of PCRE2 and utf8proc")
if(NOT TINYGPT_WEB_DEPS)
  message(FATAL_ERROR "TINYGPT_WEB_DEPS is not set: build with scripts/build-web.sh")
endif()

include(${PROJECT_SOURCE_DIR}/cmake/engine_sources.cmake)
# WebAssembly exceptions (zero-cost, in every current browser and Node ≥ 17): the engine reports
# bad input by throwing, and the page must get the message, not an abort.
set(_web_flags -msimd128 -fwasm-exceptions)
# -fopenmp-simd: the kernels' `#pragma omp simd` loops still vectorise (no OpenMP runtime needed);
# the other OpenMP pragmas are ignored. -Wno-pass-failed: clang reports every `omp simd` loop it
# could not vectorise, noise here (as in the sanitized build).
add_compile_options(${_web_flags} -fopenmp-simd -Wno-unknown-pragmas -Wno-pass-failed)
add_link_options(${_web_flags})

add_library(tinygpt_core STATIC ${TINYGPT_CORE_SOURCES})
target_include_directories(tinygpt_core PUBLIC src src/util/no_openmp)
target_include_directories(tinygpt_core SYSTEM PUBLIC ${TINYGPT_WEB_DEPS}/include)
target_compile_definitions(tinygpt_core PUBLIC TINYGPT_NO_BLAS XXH_INLINE_ALL
                           TINYGPT_VERSION="${PROJECT_VERSION}")
target_link_libraries(tinygpt_core PUBLIC ${TINYGPT_WEB_DEPS}/lib/libpcre2-8.a
                      ${TINYGPT_WEB_DEPS}/lib/libutf8proc.a)

add_executable(tinygpt_web src/web/web_bindings.cpp)
target_link_libraries(tinygpt_web PRIVATE tinygpt_core)
set_target_properties(tinygpt_web PROPERTIES OUTPUT_NAME tinygpt SUFFIX ".js")
# A classic script defining createTinygpt() (importScripts in a worker, require in Node); the
# heap grows on demand up to wasm32's 4 GB; WORKERFS mounts the page's File/Blob objects without
# copying them into the heap; FS is exported for the worker to mount and read files.
target_link_options(tinygpt_web PRIVATE
  --bind
  -sMODULARIZE=1 -sEXPORT_NAME=createTinygpt
  -sENVIRONMENT=web,worker,node
  -sALLOW_MEMORY_GROWTH=1 -sINITIAL_MEMORY=33554432 -sMAXIMUM_MEMORY=4294967296
  -sFORCE_FILESYSTEM=1 -lworkerfs.js
  "-sEXPORTED_RUNTIME_METHODS=['FS']"
  -sEXIT_RUNTIME=0)
# Function names in the .wasm for profilers (node --cpu-prof, the browser's profiler): +~10% size.
option(TINYGPT_WEB_PROFILING "Keep function names in tinygpt.wasm for profiling" OFF)
if(TINYGPT_WEB_PROFILING)
  target_link_options(tinygpt_web PRIVATE --profiling-funcs)
endif()
