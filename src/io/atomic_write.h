// Crash-safe file replacement: the content goes to `<dir>/.<name>.tmp.<pid>` (same directory,
// so the rename cannot cross file systems), which is fsynced, renamed over the target, and the
// directory is fsynced. At every instant the target holds either its old or its new content.
#pragma once
#include <functional>
#include <string>
#include <string_view>

namespace tinygpt::io {

class FileSink;

// Calls `fill` with a sink on the temporary file, then commits. On any failure (including an
// exception from `fill`, a full disk or a file-size limit: SIGXFSZ is ignored so that the write
// fails with EFBIG) the temporary file is removed and a tinygpt::Error whose message starts with
// `path` is thrown; the target is left untouched. A symbolic link at `path` is followed: its
// target is replaced and the link stays. Anything but a regular file (a device, a FIFO, a
// socket) is refused, never replaced. Temporary files of earlier saves to the same name whose
// process is gone (killed mid-save) are removed first.
void atomic_write_file(const std::string& path, const std::function<void(FileSink&)>& fill);
// atomic_write_file of a text (an HTML page, an SVG file).
void atomic_write_text(const std::string& path, std::string_view text);

// Claims `path` (through symbolic links) for this process's saves while it lives: a lock file
// `.<name>.lock` beside it holds our pid under flock, and is removed when the claim ends (a
// killed process's lock is released by the kernel; its file is taken over). Another process's
// claim on the same file is an Error naming its pid, so two runs saving to one --out never
// silently overwrite each other. atomic_write_file claims its target for the write unless this
// process already does.
class SaveClaim {
  public:
    explicit SaveClaim(const std::string& path);
    ~SaveClaim();
    SaveClaim(const SaveClaim&) = delete;
    SaveClaim& operator=(const SaveClaim&) = delete;

  private:
    std::string target_, lock_path_;
    int fd_ = -1;
};

// The temporary name used for `path` by this process (for tests and documentation).
std::string atomic_temp_path(const std::string& path);

}  // namespace tinygpt::io
