// Whole small files (JSON, corpora, texts) read into memory in one go.
#pragma once
#include <string>

namespace tinygpt {

// The bytes of the file at `path`. Sized from the file's length, so an 11 MB tokenizer.json is
// one allocation and one read (a stream copy through std::ostringstream took an eighth of a
// tokenizer's load); read on to the end of file in any case, so pipes and /proc files, which
// report no length, work too. Throws Error naming the path and the system's reason.
std::string read_file_bytes(const std::string& path);

}  // namespace tinygpt
