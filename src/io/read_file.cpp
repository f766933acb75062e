#include "io/read_file.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <system_error>

#include "util/error.h"

namespace tinygpt {

std::string read_file_bytes(const std::string& path) {
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) throw Error(path + ": is a directory");
    std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path.c_str(), "rb"),
                                                         &std::fclose);
    if (!file) throw Error(path + ": cannot open: " + std::strerror(errno));
    const uintmax_t length = std::filesystem::file_size(path, ec);
    std::string bytes;
    size_t filled = 0;
    // One more byte than the length, so that the file's end is seen by the first read.
    size_t capacity = ec ? 0 : static_cast<size_t>(length) + 1;
    for (;;) {
        if (filled == bytes.size()) {
            capacity = std::max(capacity, std::max<size_t>(bytes.size() * 2, 1 << 16));
            bytes.resize(capacity);
        }
        const size_t got = std::fread(bytes.data() + filled, 1, bytes.size() - filled, file.get());
        filled += got;
        if (filled < bytes.size()) {  // fread stops short only at the end of file or an error
            if (std::ferror(file.get()))
                throw Error(path + ": read error: " + std::strerror(errno));
            break;
        }
    }
    bytes.resize(filled);
    return bytes;
}

}  // namespace tinygpt
