#include "model/weight_check.h"

#include <cmath>

#include "model/params.h"

namespace tinygpt {

std::vector<NonFiniteTensor> find_non_finite(const ModelConfig& cfg, const float* weights) {
    const ParameterLayout layout(cfg);
    std::vector<NonFiniteTensor> bad;
    for (const ParamInfo& p : layout.entries()) {
        const float* w = weights + p.offset;
        const long n = static_cast<long>(p.numel);
        size_t count = 0;
#pragma omp parallel for reduction(+ : count) schedule(static) if (n > (1 << 16))
        for (long i = 0; i < n; ++i) count += std::isfinite(w[i]) ? 0 : 1;
        if (count == 0) continue;
        size_t first = 0;
        while (std::isfinite(w[first])) ++first;
        bad.push_back(NonFiniteTensor{p.name, count, first});
    }
    return bad;
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
