# The engine's sources (TINYGPT_CORE_SOURCES) for this platform: shared by the native build
# (CMakeLists.txt) and the WebAssembly build (cmake/web.cmake).
file(GLOB TINYGPT_CORE_SOURCES CONFIGURE_DEPENDS
     src/util/*.cpp src/kernels/*.cpp src/kernels/weight_matmul/*.cpp src/moe/*.cpp src/model/*.cpp src/train/*.cpp src/infer/*.cpp src/io/*.cpp
     src/tokenizer/*.cpp src/hf/*.cpp src/gguf/*.cpp src/quant/*.cpp src/load/*.cpp
     src/analysis/*.cpp src/report/*.cpp src/dist/*.cpp)
# The browser page's session (JSON in and out): built natively too, so the test suite checks it.
list(APPEND TINYGPT_CORE_SOURCES ${PROJECT_SOURCE_DIR}/src/web/web_session.cpp)
# src/dist/: the MPI communicator or, without MPI, the single-process world (no_mpi.cpp).
if(TINYGPT_MPI)
  list(REMOVE_ITEM TINYGPT_CORE_SOURCES ${PROJECT_SOURCE_DIR}/src/dist/no_mpi.cpp)
else()
  list(REMOVE_ITEM TINYGPT_CORE_SOURCES ${PROJECT_SOURCE_DIR}/src/dist/mpi_communicator.cpp)
endif()
# weight_matmul's paths per instruction set (src/kernels/weight_matmul/, chosen at run time by
# dispatch.cpp): each SIMD file is compiled for its own instruction set whatever TINYGPT_NATIVE
# says, and only for the architecture it belongs to.
set(_wm ${PROJECT_SOURCE_DIR}/src/kernels/weight_matmul)
if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64|amd64")
  set_property(SOURCE ${_wm}/avx2.cpp APPEND PROPERTY COMPILE_OPTIONS -mavx2 -mfma -mf16c)
  # BF16 (vdpbf16ps) and VNNI (vpdpbusd) are enabled per function in avx512.cpp, where the CPU
  # is checked for them.
  set_property(SOURCE ${_wm}/avx512.cpp APPEND PROPERTY COMPILE_OPTIONS
               -mavx2 -mfma -mf16c -mavx512f -mavx512bw -mavx512vl)
else()
  list(REMOVE_ITEM TINYGPT_CORE_SOURCES ${_wm}/avx2.cpp ${_wm}/avx512.cpp)
endif()
if(NOT CMAKE_SYSTEM_PROCESSOR MATCHES "aarch64|arm64|ARM64")
  list(REMOVE_ITEM TINYGPT_CORE_SOURCES ${_wm}/neon.cpp)
endif()
