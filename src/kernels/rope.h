// Rotary position embeddings in the rotate-half convention of HF Llama/Qwen (so imported
// checkpoints work): inside each head vector of hd (even) floats, the pair (x_i, x_{i+hd/2}) for
// i < hd/2 is rotated by the angle pos·θ^(−2i/hd).
#pragma once
#include <cstddef>
#include <vector>

namespace tinygpt {

// cos/sin of every (position, frequency) pair, [max_positions, hd/2].
class RopeTable {
  public:
    RopeTable() = default;
    RopeTable(int max_positions, int head_dim, float theta);
    const float* cos(int pos) const { return cos_.data() + static_cast<size_t>(pos) * half_; }
    const float* sin(int pos) const { return sin_.data() + static_cast<size_t>(pos) * half_; }
    int head_dim() const { return 2 * half_; }
    int max_positions() const { return max_positions_; }

  private:
    int half_ = 0, max_positions_ = 0;
    std::vector<float> cos_, sin_;
};

// In place on `heads` head vectors per token: token (b, t) is the row x + (b·T + t)·ld, its heads
// are contiguous from the row start, and its position is pos0 + t.
void rope_forward(float* x, int ld, int B, int T, int heads, int pos0, const RopeTable& table);

// The backward is the inverse rotation (by −angle), in place on the gradient.
void rope_backward(float* dx, int ld, int B, int T, int heads, int pos0, const RopeTable& table);

}  // namespace tinygpt
