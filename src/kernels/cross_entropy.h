#pragma once

namespace tinygpt {

// Row-wise softmax of logits[rows, V] into probs (may alias logits), and if targets is non-null,
// losses[r] = -log probs[r, targets[r]].
void softmax_cross_entropy_forward(float* probs, float* losses, const float* logits,
                                   const int* targets, int rows, int V);

// d_logits = (probs - onehot(targets)) · scale. d_logits may alias probs.
void softmax_cross_entropy_backward(float* d_logits, const float* probs, const int* targets,
                                    int rows, int V, float scale);

}  // namespace tinygpt
