#include "model/weight_check.h"

#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "model/params.h"
#include "quant/q8_0.h"
#include "util/parallel.h"

namespace tinygpt {

namespace {

// Non-finite when every exponent bit is set (the mask selects the exponent field).
bool half_finite(uint16_t h, uint16_t exponent_mask) {
    return (h & exponent_mask) != exponent_mask;
}

// `n` items read by `finite(i)`; each non-finite item stands for `per_item` values.
template <typename Finite>
void scan(const std::string& name, long n, size_t per_item, Finite finite,
          std::vector<NonFiniteTensor>& bad) {
    std::atomic<size_t> non_finite{0};
    parallel_for_chunks(
        n,
        [&](long begin, long items) {
            size_t c = 0;
            for (long i = begin; i < begin + items; ++i) c += finite(i) ? 0 : 1;
            non_finite.fetch_add(c, std::memory_order_relaxed);
        },
        1L << 16);
    const size_t count = non_finite.load();
    if (count == 0) return;
    long first = 0;
    while (finite(first)) ++first;
    bad.push_back(NonFiniteTensor{name, count * per_item, static_cast<size_t>(first) * per_item});
}

}  // namespace

std::vector<NonFiniteTensor> find_non_finite(const ModelWeights& weights) {
    std::vector<NonFiniteTensor> bad;
    const auto& entries = weights.layout().entries();
    for (size_t e = 0; e < entries.size(); ++e) {
        const ParamInfo& p = entries[e];
        const TensorView& v = weights.view(e);
        const long n = static_cast<long>(p.numel);
        switch (v.dtype) {
            case WeightDtype::F32: {
                const auto* w = static_cast<const float*>(v.data);
                scan(
                    p.name, n, 1, [w](long i) { return std::isfinite(w[i]); }, bad);
                break;
            }
            case WeightDtype::BF16:
            case WeightDtype::F16: {
                const auto* h = static_cast<const uint16_t*>(v.data);
                const uint16_t mask = v.dtype == WeightDtype::BF16 ? 0x7f80 : 0x7c00;
                scan(
                    p.name, n, 1, [h, mask](long i) { return half_finite(h[i], mask); }, bad);
                break;
            }
            case WeightDtype::Q8_0: {
                // Blocks follow each other in row-major order, so block b holds values
                // [32 b, 32 b + 32) of the tensor.
                const auto* q = static_cast<const uint8_t*>(v.data);
                const long blocks = n / quant::kQ8_0BlockSize;
                scan(
                    p.name, blocks, quant::kQ8_0BlockSize,
                    [q](long b) {
                        uint16_t d;
                        std::memcpy(&d, q + static_cast<size_t>(b) * quant::kQ8_0BlockBytes, 2);
                        return half_finite(d, 0x7c00);
                    },
                    bad);
                break;
            }
        }
    }
    return bad;
}

std::vector<NonFiniteTensor> find_non_finite(const ModelConfig& cfg, const float* weights) {
    return find_non_finite(ModelWeights::from_f32(cfg, weights));
}

std::string describe_non_finite(const std::vector<NonFiniteTensor>& bad) {
    if (bad.empty()) return "no non-finite weights";
    const NonFiniteTensor& t = bad.front();
    std::string s = "tensor '" + t.name + "' holds " + std::to_string(t.count) + " NaN/inf value" +
                    (t.count == 1 ? "" : "s") + " (the first at index " + std::to_string(t.first) +
                    ")";
    if (bad.size() > 1)
        s += ", and " + std::to_string(bad.size() - 1) + " more tensor" +
             (bad.size() == 2 ? "" : "s") + " do";
    return s;
}

}  // namespace tinygpt
