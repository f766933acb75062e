// Tokenizer::encode_parallel: added-token matching, normalisation and pre-tokenization run
// serially (they decide where pieces begin, so splitting the text for them could change ids);
// the BPE of the pieces, the expensive part, runs on `threads` threads (util/parallel.h) with a
// word cache each. The text is handled in blocks so the piece list stays small.
#include <algorithm>

#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_impl.h"
#include "util/parallel.h"

namespace tinygpt {

namespace {

// Text per block: big enough that a parallel BPE pass amortises its fork/join.
constexpr size_t kBlockBytes = 1 << 20;
// Below this a text is encoded serially.
constexpr size_t kParallelMinBytes = 1 << 16;

struct Item {
    const char* data;
    uint32_t size;
    int32_t id;  // >= 0: an added token
};

class Collector : public EncodeSink {
  public:
    explicit Collector(std::vector<Item>& items) : items_(items) {}
    void piece(std::string_view bytes) override {
        items_.push_back({bytes.data(), static_cast<uint32_t>(bytes.size()), -1});
    }
    void token(int id) override { items_.push_back({nullptr, 0, id}); }

  private:
    std::vector<Item>& items_;
};

}  // namespace

std::vector<int> Tokenizer::encode_parallel(
    std::string_view text, int threads, const std::function<void(size_t, size_t)>& progress) const {
    const TokenizerImpl& t = *impl_;
    if (t.bytes_kind || threads <= 1 || text.size() < kParallelMinBytes) {
        std::vector<int> ids = encode(text);
        if (progress) progress(text.size(), text.size());
        return ids;
    }
    require_valid_utf8(text);
    std::vector<TokenizerImpl::WordCache> caches(threads);
    std::vector<std::vector<int>> outputs(threads);
    std::vector<int> ids;
    ids.reserve(text.size() / 3 + 8);

    std::vector<Item> items;
    std::deque<std::string> keep;
    Collector collector(items);
    // `final`: the last call; otherwise the normalised stretch being pre-tokenized (the last one
    // in `keep`) must survive.
    auto flush = [&](size_t done, bool final) {
        const size_t n = items.size();
        for (std::vector<int>& out : outputs) out.clear();  // a region may get fewer threads
        parallel_region(threads, [&](int tid, int nt) {
            const size_t begin = n * tid / nt, end = n * (tid + 1) / nt;
            std::vector<int>& out = outputs[tid];
            for (size_t i = begin; i < end; ++i) {
                const Item& it = items[i];
                if (it.id >= 0)
                    out.push_back(it.id);
                else
                    t.encode_piece(std::string_view(it.data, it.size), out, caches[tid]);
            }
        });
        for (int i = 0; i < threads; ++i)
            ids.insert(ids.end(), outputs[i].begin(), outputs[i].end());
        items.clear();
        while (keep.size() > (final ? 0u : 1u)) keep.pop_front();
        if (progress) progress(done, text.size());
    };
    // Pre-tokenize the whole text serially, flushing whenever enough pieces have piled up. The
    // pieces point into `text` or into `keep`, which both outlive the flush.
    class BlockSink : public EncodeSink {
      public:
        BlockSink(Collector& c, std::string_view text, const std::function<void(size_t)>& flush)
            : c_(c), text_(text), flush_(flush) {}
        void piece(std::string_view bytes) override {
            c_.piece(bytes);
            maybe_flush(bytes);
        }
        void token(int id) override { c_.token(id); }

      private:
        void maybe_flush(std::string_view bytes) {
            bytes_ += bytes.size();
            if (bytes_ < kBlockBytes) return;
            bytes_ = 0;
            // Progress in the original text: exact when the piece points into it.
            const char* p = bytes.data();
            size_t done = (p >= text_.data() && p <= text_.data() + text_.size())
                              ? static_cast<size_t>(p - text_.data()) + bytes.size()
                              : last_done_;
            last_done_ = done;
            flush_(done);
        }
        Collector& c_;
        std::string_view text_;
        const std::function<void(size_t)>& flush_;
        size_t bytes_ = 0, last_done_ = 0;
    };
    const std::function<void(size_t)> flush_fn = [&](size_t done) { flush(done, false); };
    BlockSink sink(collector, text, flush_fn);
    t.pre_tokenize(text, sink, &keep);
    flush(text.size(), true);
    return ids;
}

}  // namespace tinygpt
