#include "train/teacher_cache.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "io/format_internal.h"
#include "util/error.h"

namespace tinygpt {

namespace {

constexpr char kTopKFileMagic[4] = {'T', 'G', 'T', 'C'};
constexpr uint32_t kTopKFileVersion = 1;

struct TopKFileHeader {
    char magic[4];
    uint32_t version;
    uint64_t key;
    uint32_t k, reserved;
    uint64_t checksum;  // XXH3 of the bytes before it
};
static_assert(sizeof(TopKFileHeader) == 32);

// A record: this header, then the window's T tokens (int32), T·k ids (int32), T·k
// log-probabilities (f32) and T log-rests (f32). The checksum covers the header's first 8 bytes
// and the payload.
struct TopKRecordHeader {
    uint32_t tokens;
    uint32_t reserved;
    uint64_t checksum;
};
static_assert(sizeof(TopKRecordHeader) == 16);

// A window longer than any context a model here can have.
constexpr uint32_t kMaxWindowTokens = 1u << 24;

uint64_t payload_bytes(uint64_t T, uint64_t k) {
    return T * 4 * (2 + 2 * k);
}

uint64_t record_checksum(const TopKRecordHeader& h, const unsigned char* payload, uint64_t bytes) {
    XXH3_state_t* state = XXH3_createState();
    XXH3_64bits_reset(state);
    XXH3_64bits_update(state, &h, 8);
    XXH3_64bits_update(state, payload, bytes);
    const uint64_t sum = XXH3_64bits_digest(state);
    XXH3_freeState(state);
    return sum;
}

uint64_t window_hash(const int* window, int T) {
    return XXH3_64bits(window, static_cast<size_t>(T) * sizeof(int));
}

// pread/pwrite the whole range (they may transfer less at once); false on an error or end of file.
template <typename Byte, typename Transfer>
bool transfer_all(Transfer transfer, int fd, Byte* p, uint64_t bytes, uint64_t offset) {
    while (bytes > 0) {
        const ssize_t n = transfer(fd, p, bytes, static_cast<off_t>(offset));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        p += n, bytes -= static_cast<uint64_t>(n), offset += static_cast<uint64_t>(n);
    }
    return true;
}

bool read_at(int fd, void* dst, uint64_t bytes, uint64_t offset) {
    return transfer_all(::pread, fd, static_cast<unsigned char*>(dst), bytes, offset);
}

bool write_at(int fd, const void* src, uint64_t bytes, uint64_t offset) {
    return transfer_all(::pwrite, fd, static_cast<const unsigned char*>(src), bytes, offset);
}

}  // namespace

uint64_t teacher_cache_key(const ModelWeights& teacher, int k, double temperature) {
    XXH3_state_t* state = XXH3_createState();
    XXH3_64bits_reset(state);
    const std::string config = io::config_to_json(teacher.config()).dump();
    XXH3_64bits_update(state, config.data(), config.size());
    const auto& entries = teacher.layout().entries();
    for (size_t i = 0; i < entries.size(); ++i) {
        const TensorView& v = teacher.view(i);
        const auto dtype = static_cast<uint32_t>(v.dtype);
        XXH3_64bits_update(state, &dtype, sizeof dtype);
        XXH3_64bits_update(state, v.data, dtype_tensor_bytes(v.dtype, entries[i].shape));
    }
    XXH3_64bits_update(state, &k, sizeof k);
    XXH3_64bits_update(state, &temperature, sizeof temperature);
    const uint64_t key = XXH3_64bits_digest(state);
    XXH3_freeState(state);
    return key;
}

TeacherCache::TeacherCache(const std::string& dir, const ModelWeights& teacher, int k,
                           double temperature)
    : k_(std::min(k, teacher.config().vocab)) {  // the top-K of teacher_topk()
    require(k > 0, "the teacher cache keeps a top-K: it needs --teacher-topk K > 0");
    namespace fs = std::filesystem;
    std::error_code ec;
    if (fs::exists(dir, ec) && !fs::is_directory(dir, ec))
        throw Error("--teacher-cache '" + dir + "' is not a directory");
    fs::create_directories(dir, ec);
    if (ec) throw Error("cannot create --teacher-cache directory '" + dir + "': " + ec.message());
    const uint64_t key = teacher_cache_key(teacher, k_, temperature);
    path_ = (fs::path(dir) / (io::hex64(key) + ".topk")).string();
    if (fs::exists(path_, ec) && !fs::is_regular_file(path_, ec))
        throw Error("the teacher cache '" + path_ + "' is not a regular file");
    fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0)
        throw Error("cannot open the teacher cache '" + path_ + "': " + std::strerror(errno));
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
        ::close(fd_);
        fd_ = -1;
        note_ =
            "is in use by another process (another run, or another rank): this one goes without it";
        return;
    }
    // A file-size limit must end in a failed append (the cache stops growing), not in SIGXFSZ.
    ::signal(SIGXFSZ, SIG_IGN);
    try {
        const off_t size = ::lseek(fd_, 0, SEEK_END);
        if (size < 0) throw Error("cannot read the teacher cache '" + path_ + "'");
        TopKFileHeader h{};
        if (size == 0) {
            std::memcpy(h.magic, kTopKFileMagic, 4);
            h.version = kTopKFileVersion;
            h.key = key;
            h.k = static_cast<uint32_t>(k_);
            h.checksum = XXH3_64bits(&h, offsetof(TopKFileHeader, checksum));
            if (!write_at(fd_, &h, sizeof h, 0))
                throw Error("cannot write the teacher cache '" + path_ +
                            "': " + std::strerror(errno));
            end_ = sizeof h;
            return;
        }
        const std::string delete_it = ": delete it and the cache starts afresh";
        if (static_cast<uint64_t>(size) < sizeof h || !read_at(fd_, &h, sizeof h, 0) ||
            std::memcmp(h.magic, kTopKFileMagic, 4) != 0 ||
            h.checksum != XXH3_64bits(&h, offsetof(TopKFileHeader, checksum)))
            throw Error("'" + path_ + "' is not a teacher cache (bad header)" + delete_it);
        if (h.version != kTopKFileVersion)
            throw Error("the teacher cache '" + path_ + "' has version " +
                        std::to_string(h.version) + " (this build reads " +
                        std::to_string(kTopKFileVersion) + ")" + delete_it);
        if (h.key != key || h.k != static_cast<uint32_t>(k_))
            throw Error("the teacher cache '" + path_ +
                        "' was written for another teacher, K or temperature" + delete_it);
        end_ = sizeof h;
        load_records();
    } catch (...) {
        ::close(fd_);
        fd_ = -1;
        throw;
    }
}

TeacherCache::~TeacherCache() {
    if (fd_ >= 0) ::close(fd_);
}

// Indexes every record. Only the last one may be cut short or torn (appends are sequential):
// that one is dropped and the file truncated to the records before it.
void TeacherCache::load_records() {
    struct stat st {};
    if (::fstat(fd_, &st) != 0) throw Error("cannot read the teacher cache '" + path_ + "'");
    const uint64_t size = static_cast<uint64_t>(st.st_size);
    uint64_t offset = end_;
    while (offset < size) {
        TopKRecordHeader r{};
        bool whole = size - offset >= sizeof r && read_at(fd_, &r, sizeof r, offset);
        // A length no writer gives is corruption, not a cut: cutting there would drop every
        // record after it. (Zeros are a tail the file system extended but never wrote.)
        if (whole && r.tokens != 0 && (r.tokens > kMaxWindowTokens || r.reserved != 0))
            throw Error("the teacher cache '" + path_ + "' is corrupt at byte " +
                        std::to_string(offset) + ": delete it and the cache starts afresh");
        const uint64_t bytes = whole ? payload_bytes(r.tokens, k_) : 0;
        whole = whole && r.tokens > 0 && bytes <= size - offset - sizeof r;
        bool valid = false;
        if (whole) {
            buffer_.resize(bytes);
            valid = read_at(fd_, buffer_.data(), bytes, offset + sizeof r) &&
                    record_checksum(r, buffer_.data(), bytes) == r.checksum;
        }
        const uint64_t next = offset + sizeof r + bytes;
        if (!valid) {
            if (whole && next < size)
                throw Error("the teacher cache '" + path_ + "' is corrupt at byte " +
                            std::to_string(offset) + ": delete it and the cache starts afresh");
            // The tail of an interrupted append.
            if (::ftruncate(fd_, static_cast<off_t>(offset)) != 0)
                throw Error("cannot repair the teacher cache '" + path_ +
                            "': " + std::strerror(errno));
            note_ = "had " + std::to_string(size - offset) +
                    " bytes of an interrupted write at its end: dropped";
            break;
        }
        const auto* window = reinterpret_cast<const int*>(buffer_.data());
        index_.emplace(window_hash(window, static_cast<int>(r.tokens)), offset);
        offset = next;
    }
    end_ = offset;
}

bool TeacherCache::find(const int* window, int T, TeacherTopK& top, int row) {
    if (fd_ < 0) {
        ++misses_;
        return false;
    }
    const auto range = index_.equal_range(window_hash(window, T));
    for (auto it = range.first; it != range.second; ++it) {
        TopKRecordHeader r{};
        if (!read_at(fd_, &r, sizeof r, it->second))
            throw Error("cannot read the teacher cache '" + path_ + "'");
        if (r.tokens != static_cast<uint32_t>(T)) continue;
        const uint64_t bytes = payload_bytes(r.tokens, k_);
        buffer_.resize(bytes);
        if (!read_at(fd_, buffer_.data(), bytes, it->second + sizeof r) ||
            record_checksum(r, buffer_.data(), bytes) != r.checksum)
            throw Error("the teacher cache '" + path_ + "' changed under this run at byte " +
                        std::to_string(it->second));
        const unsigned char* p = buffer_.data();
        if (std::memcmp(p, window, static_cast<size_t>(T) * 4) != 0) continue;
        p += static_cast<size_t>(T) * 4;
        const size_t n = static_cast<size_t>(T) * k_, first = static_cast<size_t>(row) * k_;
        std::memcpy(top.ids.data() + first, p, n * 4);
        std::memcpy(top.log_probs.data() + first, p + n * 4, n * 4);
        std::memcpy(top.log_rest.data() + row, p + n * 8, static_cast<size_t>(T) * 4);
        ++hits_;
        return true;
    }
    ++misses_;
    return false;
}

void TeacherCache::add(const int* window, int T, const TeacherTopK& top, int row) {
    if (fd_ < 0 || !writable_) return;
    TopKRecordHeader r{};
    r.tokens = static_cast<uint32_t>(T);
    const uint64_t bytes = payload_bytes(r.tokens, k_);
    std::vector<unsigned char> record(sizeof r + bytes);
    unsigned char* p = record.data() + sizeof r;
    const size_t n = static_cast<size_t>(T) * k_, first = static_cast<size_t>(row) * k_;
    std::memcpy(p, window, static_cast<size_t>(T) * 4);
    std::memcpy(p + T * 4, top.ids.data() + first, n * 4);
    std::memcpy(p + T * 4 + n * 4, top.log_probs.data() + first, n * 4);
    std::memcpy(p + T * 4 + n * 8, top.log_rest.data() + row, static_cast<size_t>(T) * 4);
    r.checksum = record_checksum(r, p, bytes);
    std::memcpy(record.data(), &r, sizeof r);
    if (!write_at(fd_, record.data(), record.size(), end_)) {
        // Disk full or a size limit: keep what is there, stop growing, go on with the run.
        const int err = errno;
        if (::ftruncate(fd_, static_cast<off_t>(end_)) != 0) {
            // The torn tail is dropped when the file is next opened.
        }
        writable_ = false;
        std::fprintf(stderr, "warning: the teacher cache '%s' stops growing: %s\n", path_.c_str(),
                     std::strerror(err ? err : ENOSPC));
        return;
    }
    index_.emplace(window_hash(window, T), end_);
    end_ += record.size();
}

}  // namespace tinygpt
