// .tinygpt v3 files whose checksums are repaired after every mutation (a custom mutator), so
// that inputs reach the JSON header, config, tensor table, section and tokenizer parsers. The
// corpus holds the repaired files, so a crash reproduces from its file with this target or
// fuzz_model_file.
#include <cstddef>
#include <cstdint>

#include "model_file_input.h"

extern "C" size_t LLVMFuzzerMutate(uint8_t* data, size_t size, size_t max_size);

extern "C" size_t LLVMFuzzerCustomMutator(uint8_t* data, size_t size, size_t max_size,
                                          unsigned int /*seed*/) {
    const size_t mutated_size = LLVMFuzzerMutate(data, size, max_size);
    tinygpt::fuzz::repair_v3_checksums(data, mutated_size);
    return mutated_size;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    tinygpt::fuzz::load_model_file_input(data, size);
    return 0;
}
