#include "kernels/ffn.h"

#include "kernels/swiglu.h"

namespace tinygpt {

void ffn_forward(FfnKind kind, float* y, float* pre, float* h, const float* x, const MlpWeights& w,
                 int rows, int C, int M) {
    if (kind == FfnKind::SwiGlu) {
        swiglu_mlp_forward(y, pre, h, x, w.w_in, w.w_out, rows, C, M);
    } else {
        mlp_forward(y, pre, h, x, w, rows, C, M);
    }
}

void ffn_backward(FfnKind kind, float* dx, const MlpGrads& grads, float* scratch, const float* dy,
                  const float* x, const float* pre, const float* h, const MlpWeights& w, int rows,
                  int C, int M) {
    if (kind == FfnKind::SwiGlu) {
        swiglu_mlp_backward(dx, grads.w_in, grads.w_out, scratch, dy, x, pre, h, w.w_in, w.w_out,
                            rows, C, M);
    } else {
        mlp_backward(dx, grads, scratch, dy, x, pre, h, w, rows, C, M);
    }
}

}  // namespace tinygpt
