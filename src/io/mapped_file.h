// A whole file mapped read-only (POSIX open / fstat / mmap). The mapping is released by the
// destructor. Refuses directories and anything that is not a regular file (opening a FIFO does
// not block), so a reader never hangs.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace tinygpt::io {

class MappedFile {
  public:
    // Throws tinygpt::Error WITHOUT the path prefix (the caller adds it): "cannot open: <errno>",
    // "is a directory", "is not a regular file", "file is empty", "cannot map: <errno>".
    explicit MappedFile(const std::string& path);
    ~MappedFile();
    MappedFile(const MappedFile&) = delete;
    MappedFile& operator=(const MappedFile&) = delete;

    const uint8_t* data() const { return data_; }
    uint64_t size() const { return size_; }

  private:
    const uint8_t* data_ = nullptr;
    uint64_t size_ = 0;
};

// True for a regular file whose first bytes are `magic` (a format's signature: "TGPT", "GGUF").
bool file_starts_with(const std::string& path, const std::string& magic);

// Drops the whole pages of [data, data + bytes), a part of a read-only mapping, from this
// process's resident set once they are consumed: they are clean file pages (a later read faults
// them in again), so converting a big file tensor by tensor keeps peak memory near the result.
void release_mapped_pages(const void* data, uint64_t bytes);

}  // namespace tinygpt::io
