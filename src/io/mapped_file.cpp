#include "io/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "util/error.h"

namespace tinygpt::io {

namespace {

struct Fd {
    int fd = -1;
    ~Fd() {
        if (fd >= 0) ::close(fd);
    }
};

}  // namespace

MappedFile::MappedFile(const std::string& path) {
    Fd f;
    // O_NONBLOCK: opening a FIFO for reading must not wait for a writer; it is refused below.
    do {
        f.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    } while (f.fd < 0 && errno == EINTR);
    if (f.fd < 0) {
        if (errno == EISDIR) throw Error("is a directory, not a model file");
        throw Error(std::string("cannot open: ") + std::strerror(errno));
    }
    struct stat st {};
    if (::fstat(f.fd, &st) != 0) throw Error(std::string("cannot stat: ") + std::strerror(errno));
    if (S_ISDIR(st.st_mode)) throw Error("is a directory, not a model file");
    if (!S_ISREG(st.st_mode)) throw Error("is not a regular file");
    if (st.st_size <= 0) throw Error("file is empty (0 bytes), not a model file");
    if (static_cast<uint64_t>(st.st_size) > std::numeric_limits<size_t>::max())
        throw Error("file is too large to map on this machine");
    size_ = static_cast<uint64_t>(st.st_size);
#if defined(__EMSCRIPTEN__)
    // Emscripten's file systems for files from the page (WORKERFS) cannot mmap, and an mmap of
    // the in-memory FS copies the file anyway: read it once into the heap instead.
    auto* bytes = static_cast<uint8_t*>(std::malloc(static_cast<size_t>(size_)));
    if (bytes == nullptr)
        throw Error("the file (" + std::to_string(size_ >> 20) +
                    " MB) does not fit in the memory left to this page (WebAssembly has 4 GB at "
                    "most)");
    for (uint64_t done = 0; done < size_;) {
        const ssize_t n = ::pread(f.fd, bytes + done, static_cast<size_t>(size_ - done),
                                  static_cast<off_t>(done));
        if (n <= 0) {
            std::free(bytes);
            throw Error(std::string("cannot read the file: ") +
                        (n == 0 ? "it ended early" : std::strerror(errno)));
        }
        done += static_cast<uint64_t>(n);
    }
    data_ = bytes;
#else
    void* p = ::mmap(nullptr, static_cast<size_t>(size_), PROT_READ, MAP_PRIVATE, f.fd, 0);
    if (p == MAP_FAILED) throw Error(std::string("cannot map the file: ") + std::strerror(errno));
    data_ = static_cast<const uint8_t*>(p);
    // The descriptor can be closed now; the mapping keeps the file's pages reachable.
#endif
}

MappedFile::~MappedFile() {
    if (data_ == nullptr) return;
#if defined(__EMSCRIPTEN__)
    std::free(const_cast<uint8_t*>(data_));
#else
    ::munmap(const_cast<uint8_t*>(data_), static_cast<size_t>(size_));
#endif
}

bool file_starts_with(const std::string& path, const std::string& magic) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return false;
    Fd f;
    f.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (f.fd < 0) return false;
    std::string head(magic.size(), '\0');
    return ::read(f.fd, head.data(), head.size()) == static_cast<ssize_t>(head.size()) &&
           head == magic;
}

void release_mapped_pages(const void* data, uint64_t bytes) {
#if defined(__EMSCRIPTEN__)
    (void)data;  // the "mapping" is heap memory (see MappedFile): nothing to give back early
    (void)bytes;
#else
    const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
    const uintptr_t start = reinterpret_cast<uintptr_t>(data);
    const uintptr_t begin = (start + page - 1) / page * page;
    const uintptr_t end = (start + bytes) / page * page;
    if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
#endif
}

}  // namespace tinygpt::io
