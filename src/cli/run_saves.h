// The saves of one training run (train --out). A periodic save that fails (a full disk, a
// file-size limit, a permission) is a warning: the run goes on, the file keeps the last good
// save (saves are atomic: io/atomic_write.h), and the next periodic save tries again, because
// hours of training are worth more than one checkpoint. Only the final save (the end, --stop-at,
// Ctrl-C) is an error when it fails, and its message says where the last good file is.
#pragma once
#include <cstdint>
#include <functional>
#include <string>

namespace tinygpt::cli {

class RunSaves {
  public:
    // Notes whether `path` already holds a file, which then stays the last good one until a
    // save of this run succeeds.
    explicit RunSaves(std::string path);

    // `save` writes the file for step `step` (throwing tinygpt::Error when it cannot). A failure
    // is reported on stderr as a warning; `next_step` (0 = none) is when it will be tried again.
    void periodic(int64_t step, int64_t next_step, const std::function<void()>& save);
    // A failure is rethrown as an Error naming the last good file, or saying there is none.
    void final(int64_t step, const std::function<void()>& save);

    int failures() const { return failures_; }

  private:
    std::string last_good() const;  // "'out.tinygpt' (step 300)", "…from before this run", …
    std::string path_;
    bool existed_before_ = false;
    int64_t last_good_step_ = -1;  // the last step this run saved, -1 for none
    int failures_ = 0;
};

}  // namespace tinygpt::cli
