// The teacher's top-K per window, kept on disk for reuse across runs (`distill --teacher-topk K
// --teacher-cache DIR`): students distilled from one teacher on one corpus (another alpha,
// another student shape, a resumed run) skip the teacher's forward for every window it has seen.
//
// One file per teacher, K and temperature, DIR/<key>.topk, where the key hashes the teacher's
// weights as stored and its configuration. It is an append-only log of records, one per window
// (the tokens the teacher read from position 0, kept in the record, so that the corpus and the
// position are part of the key by content: a hit is exact, never a hash match). Every record is
// checksummed. A record cut short at the end (a run killed while appending) is dropped; a bad
// record anywhere else is an error that names the file and the offset. A file held by another
// run (flock) is left to it: this run goes on without a cache. A full disk stops the appends,
// never the run.
#pragma once
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "model/model_weights.h"
#include "train/distillation.h"

namespace tinygpt {

class TeacherCache {
  public:
    // The file for this teacher, K and temperature under `dir` (created if needed). Throws an
    // Error for a path that is not a directory, an unreadable or foreign file, a corrupt record.
    TeacherCache(const std::string& dir, const ModelWeights& teacher, int k, double temperature);
    ~TeacherCache();
    TeacherCache(const TeacherCache&) = delete;
    TeacherCache& operator=(const TeacherCache&) = delete;

    // False when another run holds the file: lookups then miss and nothing is written.
    bool usable() const { return fd_ >= 0; }
    const std::string& path() const { return path_; }
    // Why the cache is not usable, or what opening it repaired ("" when nothing).
    const std::string& note() const { return note_; }

    // Fills rows [row, row + T) of `top` (already sized, top.k == k) from the record of this
    // window; false when there is none.
    bool find(const int* window, int T, TeacherTopK& top, int row);
    // Appends the rows [row, row + T) of `top` as the record of this window.
    void add(const int* window, int T, const TeacherTopK& top, int row);

    int64_t hits() const { return hits_; }
    int64_t misses() const { return misses_; }
    int64_t windows() const { return static_cast<int64_t>(index_.size()); }
    uint64_t file_bytes() const { return end_; }

  private:
    void load_records();
    std::string path_, note_;
    int fd_ = -1;
    int k_ = 0;
    uint64_t end_ = 0;      // where the next record goes
    bool writable_ = true;  // false after a failed append (disk full)
    int64_t hits_ = 0, misses_ = 0;
    // Window hash → offsets of the records with that hash (compared token by token).
    std::unordered_multimap<uint64_t, uint64_t> index_;
    std::vector<unsigned char> buffer_;
};

// The key of a teacher's cache file: a hash of its weights as stored, its configuration, K and
// the temperature.
uint64_t teacher_cache_key(const ModelWeights& teacher, int k, double temperature);

}  // namespace tinygpt
