// .tinygpt model files, v1, v2 and v3 (src/io/model_file.*, original_format.cpp, v3_format.cpp,
// v3_config.cpp), as raw bytes: mutated v3 files mostly stop at their checksums here, which
// fuzz_model_file_v3 repairs.
#include <cstddef>
#include <cstdint>

#include "model_file_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    tinygpt::fuzz::load_model_file_input(data, size);
    return 0;
}
