#include "io/atomic_write.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <new>
#include <optional>
#include <set>

#include "io/format_internal.h"
#include "util/error.h"

namespace tinygpt::io {

namespace {

std::string errno_text(int err) {
    return std::strerror(err);
}

// Flush file data to stable storage. macOS's fsync does not flush the drive's cache; F_FULLFSYNC
// does (and is not supported by every file system, hence the fallback).
int full_fsync(int fd) {
#ifdef F_FULLFSYNC
    if (::fcntl(fd, F_FULLFSYNC) == 0) return 0;
#endif
    int rc;
    do {
        rc = ::fsync(fd);
    } while (rc != 0 && errno == EINTR);
    return rc;
}

// The file a save must replace: `path`, or, when `path` is a symbolic link, the file it points to
// (followed link by link, relative targets against the link's directory), so that a link such as
// latest.tinygpt -> run3.tinygpt keeps pointing at the new content.
std::string resolve_links(const std::string& path) {
    std::string current = path;
    for (int hops = 0; hops < 40; ++hops) {
        struct stat lst {};
        if (::lstat(current.c_str(), &lst) != 0 || !S_ISLNK(lst.st_mode)) return current;
        std::string target(static_cast<size_t>(lst.st_size > 0 ? lst.st_size : 4096) + 1, '\0');
        const ssize_t n = ::readlink(current.c_str(), target.data(), target.size());
        if (n < 0) throw Error(path + ": cannot read the symbolic link: " + std::strerror(errno));
        target.resize(static_cast<size_t>(n));
        if (!target.empty() && target[0] != '/') {
            const size_t slash = current.find_last_of('/');
            if (slash != std::string::npos) target = current.substr(0, slash + 1) + target;
        }
        current = target;
    }
    throw Error(path + ": too many levels of symbolic links");
}

// Removes the temporary files of earlier saves to `name` in `dir` whose process is gone (a
// SIGKILL or a power cut mid-save leaves a full-size `.NAME.tmp.PID`).
void remove_stale_temps(const std::string& dir, const std::string& name) {
    DIR* d = ::opendir(dir.c_str());
    if (!d) return;
    const std::string prefix = "." + name + ".tmp.";
    while (const dirent* e = ::readdir(d)) {
        const std::string entry = e->d_name;
        if (entry.size() <= prefix.size() || entry.compare(0, prefix.size(), prefix) != 0) continue;
        const std::string digits = entry.substr(prefix.size());
        if (digits.size() > 9 || digits.find_first_not_of("0123456789") != std::string::npos)
            continue;
        const pid_t pid = static_cast<pid_t>(std::stol(digits));
        if (pid <= 0 || pid == ::getpid()) continue;
        if (::kill(pid, 0) == 0 || errno != ESRCH) continue;  // alive (or not ours to judge)
        ::unlink((dir + "/" + entry).c_str());
    }
    ::closedir(d);
}

// The targets this process has claimed (SaveClaim), resolved through links.
std::mutex g_claims_mutex;
std::set<std::string> g_claims;

bool claimed_here(const std::string& target) {
    std::lock_guard<std::mutex> guard(g_claims_mutex);
    return g_claims.count(target) != 0;
}

void split_path(const std::string& path, std::string& dir, std::string& name) {
    const size_t slash = path.find_last_of('/');
    // Assigned from temporaries: GCC 12 sees a false overlap in assigning literals here.
    dir = slash == std::string::npos ? std::string(".")
          : slash == 0               ? std::string("/")
                                     : path.substr(0, slash);
    name = slash == std::string::npos ? path : path.substr(slash + 1);
}

}  // namespace

// --- FileSink
// -------------------------------------------------------------------------------------

FileSink::FileSink(int fd) : fd_(fd), buffer_(size_t{1} << 20) {}

FileSink::~FileSink() = default;

void FileSink::flush() {
    size_t done = 0;
    while (done < used_) {
        const ssize_t n = ::write(fd_, buffer_.data() + done, used_ - done);
        if (n < 0) {
            if (errno == EINTR) continue;
            throw Error("cannot write: " + errno_text(errno));
        }
        if (n == 0) throw Error("cannot write: no progress (disk full?)");
        done += static_cast<size_t>(n);
    }
    used_ = 0;
}

void FileSink::write(const void* data, size_t bytes) {
    const auto* p = static_cast<const uint8_t*>(data);
    offset_ += bytes;
    while (bytes > 0) {
        if (used_ == buffer_.size()) flush();
        const size_t n = std::min(bytes, buffer_.size() - used_);
        std::memcpy(buffer_.data() + used_, p, n);
        used_ += n;
        p += n;
        bytes -= n;
    }
}

void FileSink::zeros(size_t bytes) {
    offset_ += bytes;
    while (bytes > 0) {
        if (used_ == buffer_.size()) flush();
        const size_t n = std::min(bytes, buffer_.size() - used_);
        std::memset(buffer_.data() + used_, 0, n);
        used_ += n;
        bytes -= n;
    }
}

void FileSink::pad_to(uint64_t offset) {
    if (offset < offset_) throw Error("internal error: writer went past a section start");
    zeros(static_cast<size_t>(offset - offset_));
}

// --- claims ---------------------------------------------------------------------------------

SaveClaim::SaveClaim(const std::string& path) : target_(resolve_links(path)) {
    std::string dir, name;
    split_path(target_, dir, name);
    lock_path_ = dir + "/." + name + ".lock";
    for (int attempt = 0; attempt < 10; ++attempt) {
        int fd;
        do {
            fd = ::open(lock_path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        } while (fd < 0 && errno == EINTR);
        if (fd < 0)
            throw Error(path + ": cannot create the lock file " + lock_path_ + ": " +
                        errno_text(errno));
        if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
            const int err = errno;
            char pid[32] = {};
            const ssize_t n = ::pread(fd, pid, sizeof pid - 1, 0);
            ::close(fd);
            if (err == EWOULDBLOCK) {
                std::string holder = n > 0 ? std::string(pid, static_cast<size_t>(n)) : "?";
                while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' '))
                    holder.pop_back();
                throw Error(path + ": another tinygpt process (pid " + holder +
                            ") is saving to this file; wait for it, or choose another name");
            }
            throw Error(path + ": cannot lock " + lock_path_ + ": " + errno_text(err));
        }
        // The holder before us may have removed the file between our open and our lock: then
        // we hold a lock on a file nobody else will open. Start again.
        struct stat held {
        }, now{};
        if (::fstat(fd, &held) != 0 || ::stat(lock_path_.c_str(), &now) != 0 ||
            held.st_ino != now.st_ino || held.st_dev != now.st_dev) {
            ::close(fd);
            continue;
        }
        const std::string pid = std::to_string(static_cast<long>(::getpid())) + "\n";
        if (::ftruncate(fd, 0) == 0) (void)!::pwrite(fd, pid.data(), pid.size(), 0);
        fd_ = fd;
        std::lock_guard<std::mutex> guard(g_claims_mutex);
        g_claims.insert(target_);
        return;
    }
    throw Error(path + ": cannot lock " + lock_path_ + ": it keeps being replaced");
}

SaveClaim::~SaveClaim() {
    if (fd_ < 0) return;
    {
        std::lock_guard<std::mutex> guard(g_claims_mutex);
        g_claims.erase(target_);
    }
    ::unlink(lock_path_.c_str());
    ::close(fd_);
}

// --- atomic replacement -----------------------------------------------------------------------

std::string atomic_temp_path(const std::string& path) {
    const size_t slash = path.find_last_of('/');
    const std::string prefix = slash == std::string::npos ? "" : path.substr(0, slash + 1);
    const std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
    return prefix + "." + name + ".tmp." + std::to_string(static_cast<long>(::getpid()));
}

void atomic_write_file(const std::string& shown_path, const std::function<void(FileSink&)>& fill) {
    // A file-size limit (ulimit -f) must end in an error (EFBIG) that removes the temporary
    // file, not in SIGXFSZ killing the process.
    static const bool ignore_sigxfsz = [] {
        ::signal(SIGXFSZ, SIG_IGN);
        return true;
    }();
    (void)ignore_sigxfsz;
    const std::string path = resolve_links(shown_path);
    std::string dir, name;
    split_path(path, dir, name);
    if (name.empty() || name == "." || name == "..")
        throw Error(shown_path + ": not a file name to save to");
    struct stat st {};
    const bool exists = ::stat(path.c_str(), &st) == 0;
    if (exists && S_ISDIR(st.st_mode))
        throw Error(shown_path + ": is a directory; cannot save a model file there");
    // Never replace a device, a FIFO or a socket (as root, /dev/null would become a file).
    if (exists && !S_ISREG(st.st_mode))
        throw Error(shown_path +
                    ": exists and is not a regular file (a device, FIFO or socket); not "
                    "replacing it");
    remove_stale_temps(dir, name);
    std::optional<SaveClaim> claim;  // for this write, unless the process holds one already
    if (!claimed_here(path)) claim.emplace(shown_path);

    const std::string tmp = atomic_temp_path(path);
    ::unlink(tmp.c_str());  // a stale file of an earlier process that had our pid
    int fd;
    do {
        fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) {
        const int err = errno;
        throw Error(shown_path + ": cannot create the temporary file " + tmp + ": " +
                    errno_text(err));
    }
    if (exists && S_ISREG(st.st_mode))
        (void)::fchmod(fd, st.st_mode & 07777);  // keep the target's mode
    auto fail = [&](const std::string& what) {
        if (fd >= 0) ::close(fd);
        ::unlink(tmp.c_str());
        throw Error(shown_path + ": " + what);
    };
    try {
        FileSink sink(fd);
        fill(sink);
        sink.flush();
    } catch (const std::bad_alloc&) {
        fail("out of memory while writing the model file");
    } catch (const std::exception& e) {
        fail(e.what());
    }
    if (full_fsync(fd) != 0) fail("cannot write (fsync failed): " + errno_text(errno));
    const int fd_copy = fd;
    fd = -1;
    if (::close(fd_copy) != 0) fail("cannot write (close failed): " + errno_text(errno));
    if (::rename(tmp.c_str(), path.c_str()) != 0)
        fail("cannot replace the file: " + errno_text(errno));

    // Make the rename itself durable. Some file systems cannot fsync a directory (EINVAL); the
    // file is already complete and in place then, so that is not an error.
    int dfd;
    do {
        dfd = ::open(dir.c_str(), O_RDONLY | O_CLOEXEC | O_DIRECTORY);
    } while (dfd < 0 && errno == EINTR);
    if (dfd >= 0) {
        const int rc = full_fsync(dfd);
        const int err = errno;
        ::close(dfd);
        if (rc != 0 && err != EINVAL && err != ENOTSUP && err != EBADF)
            throw Error(shown_path +
                        ": saved, but syncing its directory failed: " + errno_text(err));
    }
}

void atomic_write_text(const std::string& path, std::string_view text) {
    atomic_write_file(path, [&](FileSink& sink) { sink.write(text.data(), text.size()); });
}

}  // namespace tinygpt::io
