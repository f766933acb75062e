# The WebAssembly build (emscripten; run scripts/build-web.sh, which prepares the dependencies):
# the engine without a BLAS (kernels/portable_sgemm.cpp), with WebAssembly SIMD128, plus the
# page's binding (src/web/), in two variants:
#   tinygpt.js + .wasm          one thread (util/parallel/serial.h), for any page;
#   tinygpt-threads.js + .wasm  WebAssembly pthreads (util/parallel/thread_pool.cpp), for pages
#                               that are cross-origin isolated (SharedArrayBuffer), docs/WEB.md.
# Each variant has its own dependencies in TINYGPT_WEB_DEPS/<variant>/{include,lib}: PCRE2 and
# utf8proc built for WebAssembly from their sources (threads need every object built with
# atomics), nlohmann-json and xxHash header-only (XXH_INLINE_ALL).
set(TINYGPT_WEB_DEPS "" CACHE PATH "Folder with the WebAssembly builds of PCRE2 and utf8proc")
if(NOT TINYGPT_WEB_DEPS)
  message(FATAL_ERROR "TINYGPT_WEB_DEPS is not set: build with scripts/build-web.sh")
endif()

include(${PROJECT_SOURCE_DIR}/cmake/engine_sources.cmake)
# -fwasm-exceptions: WebAssembly exceptions (zero-cost, in every current browser and Node ≥ 17):
# the engine reports bad input by throwing, and the page must get the message, not an abort.
# -fopenmp-simd: the kernels' `#pragma omp simd` loops still vectorise (no OpenMP runtime);
# -Wno-pass-failed: clang reports every `omp simd` loop it could not vectorise, noise here.
set(_web_flags -msimd128 -fwasm-exceptions)
set(_web_compile_flags ${_web_flags} -fopenmp-simd -Wno-pass-failed)
# Function names in the .wasm for profilers (node --cpu-prof, the browser's profiler): +~10% size.
option(TINYGPT_WEB_PROFILING "Keep function names in the .wasm files for profiling" OFF)

# tinygpt_web_variant(NAME THREADS): the engine library and the module NAME.js + NAME.wasm.
function(tinygpt_web_variant name threads)
  set(deps ${TINYGPT_WEB_DEPS}/${name})
  set(sources ${TINYGPT_CORE_SOURCES})
  set(flags ${_web_compile_flags})
  # Linked at -O2 (the code is compiled at -O3): Binaryen's -O3 pass over the linked module took
  # 26-35 s per module and the last link runs alone; -O2 takes 12 s, with the same speed within
  # noise in Node (bench/compare_web_builds.mjs; BENCHMARKS.md, "The CI run") and a module
  # 0.6-0.8% larger.
  set(link_flags ${_web_flags} -O2)
  if(threads)
    list(APPEND sources ${PROJECT_SOURCE_DIR}/src/util/parallel/thread_pool.cpp)
    # Compiled alone, as natively (CMakeLists.txt).
    set_source_files_properties(${PROJECT_SOURCE_DIR}/src/util/parallel/thread_pool.cpp
                                PROPERTIES SKIP_UNITY_BUILD_INCLUSION ON)
    list(APPEND flags -pthread)
    # Web Workers started with the module, as many as the machine's cores (at most 16, the
    # pool's own limit in thread_pool.cpp): a thread cannot be started later while the engine
    # waits for it, and STRICT=2 makes asking for one more than the pool fail, not hang.
    list(APPEND link_flags -pthread
         "-sPTHREAD_POOL_SIZE=Math.min(16,(typeof navigator!='undefined'&&navigator.hardwareConcurrency)||(typeof require=='function'&&require('os').cpus().length)||4)"
         -sPTHREAD_POOL_SIZE_STRICT=2 -sDEFAULT_PTHREAD_STACK_SIZE=4194304)
  endif()
  add_library(${name}_core STATIC ${sources})
  # In batches of files, as natively (CMakeLists.txt, TINYGPT_UNITY_BUILD).
  set_target_properties(${name}_core PROPERTIES UNITY_BUILD ON UNITY_BUILD_BATCH_SIZE 8)
  target_compile_options(${name}_core PUBLIC ${flags})
  target_include_directories(${name}_core PUBLIC src)
  target_include_directories(${name}_core SYSTEM PUBLIC ${deps}/include)
  target_compile_definitions(${name}_core PUBLIC TINYGPT_NO_BLAS XXH_INLINE_ALL
                             TINYGPT_VERSION="${PROJECT_VERSION}"
                             $<$<BOOL:${threads}>:TINYGPT_THREAD_POOL>)
  target_link_libraries(${name}_core PUBLIC ${deps}/lib/libpcre2-8.a ${deps}/lib/libutf8proc.a)
  # clang 14's exceptions with threads: see scripts/build-web.sh (ahead of the system unwinder).
  if(EXISTS ${deps}/lib/libunwind-lpad-global.a)
    target_link_libraries(${name}_core PUBLIC ${deps}/lib/libunwind-lpad-global.a)
  endif()

  add_executable(${name}_web src/web/web_bindings.cpp)
  target_link_libraries(${name}_web PRIVATE ${name}_core)
  set_target_properties(${name}_web PROPERTIES OUTPUT_NAME ${name} SUFFIX ".js")
  # A classic script defining createTinygpt() (importScripts in a worker, require in Node); the
  # heap grows on demand up to wasm32's 4 GB; WORKERFS mounts the page's File/Blob objects
  # without copying them into the heap; FS is exported for the worker to mount and read files.
  target_link_options(${name}_web PRIVATE ${link_flags}
    --bind
    -sMODULARIZE=1 -sEXPORT_NAME=createTinygpt
    -sENVIRONMENT=web,worker,node
    -sALLOW_MEMORY_GROWTH=1 -sINITIAL_MEMORY=33554432 -sMAXIMUM_MEMORY=4294967296
    -sFORCE_FILESYSTEM=1 -lworkerfs.js
    "-sEXPORTED_RUNTIME_METHODS=['FS']"
    -sEXIT_RUNTIME=0)
  if(TINYGPT_WEB_PROFILING)
    target_link_options(${name}_web PRIVATE --profiling-funcs)
  endif()
endfunction()

tinygpt_web_variant(tinygpt OFF)
tinygpt_web_variant(tinygpt-threads ON)
