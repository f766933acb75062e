// The .tinygpt targets (fuzz_model_file, fuzz_model_file_v3): what one input goes through, and
// the repair that lets mutated v3 files past their checksums.
#pragma once
#include <cstddef>
#include <cstdint>

namespace tinygpt::fuzz {

// Writes the bytes as a .tinygpt file, opens it as every command does (open_model, with the
// AdamW sections, NaN/inf weights reported rather than refused), and runs a loaded model for a
// token or two. Returns normally on success or on a tinygpt::Error; anything else escapes.
void load_model_file_input(const uint8_t* data, size_t size);

// A v3 file's checksums made right for its current bytes, in place: each section whose header
// entry is readable and lies in the file gets the XXH3-64 of its bytes (the 16 hex digits are
// overwritten in the JSON text, so the header keeps its length), then the header checksum after
// the JSON is recomputed. Without it nearly every mutation stops at "checksum mismatch". Leaves
// anything that is not a v3 file alone.
void repair_v3_checksums(uint8_t* data, size_t size);

}  // namespace tinygpt::fuzz
