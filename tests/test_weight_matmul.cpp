// weight_matmul and weight_rows_to_f32 (kernels/weight_matmul.h) on every instruction-set path
// this CPU has (the others skip, saying so): every dtype against a double-precision reference on
// random data, the SIMD paths against the portable one, the same bits on 1 and 2 threads and for
// a row alone or in a batch, exact widening.
//
// Tolerances are bounds, not guesses. Summing K products in f32, in any order where each product
// passes through at most D roundings, is within D · 2^-24 · Σ|w·x| of the exact sum (Higham,
// "Accuracy and Stability of Numerical Algorithms", §3.1). The kernels keep 8 to 16 partial sums,
// each over K / 8 products at most, then a fixed tree and a tail of fewer than 8: D ≤ K/8 + 40.
// (cblas_sgemm, for f32 with n > 1, promises no order: D = K + 2 there.) Q8_0 is checked twice:
// against the product of the activations quantised as the kernels quantise them (bounds as
// above, with K/32 + 16 roundings: one block is an exact integer), and against the f32 product,
// which it differs from by the activation rounding: |x − x̂| ≤ scale / 2 (+ the f32 rounding of
// x · (1 / scale), < 2e-5 · scale), so |Σ ŵ·(x − x̂)| ≤ Σ_blocks 0.50002 · scale · Σ|ŵ|.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "kernels/gelu.h"
#include "kernels/weight_matmul.h"
#include "kernels/weight_matmul/kernels.h"
#include "quant/q8_0.h"
#include "util/half.h"
#include "util/parallel.h"
#include "util/rng.h"

namespace tinygpt {
namespace {

constexpr double kUnit = 0x1.0p-24;  // f32 unit roundoff

// A weight matrix in its stored bytes, and the exact value of every stored weight.
struct StoredWeights {
    WeightDtype dtype;
    int rows, cols;
    std::vector<uint8_t> bytes;
    std::vector<double> exact;  // [rows, cols]
    WeightMatrix view() const { return {bytes.data(), dtype, rows, cols}; }
};

// Normal values whose scale varies by row and by stretch of 32, a few far below one (f16
// subnormals), and whole zero blocks.
std::vector<float> random_values(size_t rows, size_t cols, uint64_t seed) {
    Rng rng(seed);
    std::vector<float> v(rows * cols);
    for (size_t r = 0; r < rows; ++r) {
        for (size_t c0 = 0; c0 < cols; c0 += 32) {
            const double scale = std::exp(rng.normal()) * (rng.uniform() < 0.05 ? 0.0 : 1.0);
            for (size_t c = c0; c < std::min(cols, c0 + 32); ++c) {
                double value = rng.normal() * scale;
                if (rng.uniform() < 0.02) value *= 1e-6;
                v[r * cols + c] = static_cast<float>(value);
            }
        }
    }
    return v;
}

StoredWeights make_weights(WeightDtype dtype, int rows, int cols, uint64_t seed) {
    StoredWeights w{dtype, rows, cols, {}, {}};
    std::vector<float> values = random_values(rows, cols, seed);
    w.bytes.resize(dtype_row_bytes(dtype, cols) * rows);
    w.exact.resize(values.size());
    switch (dtype) {
        case WeightDtype::F32:
            std::memcpy(w.bytes.data(), values.data(), values.size() * 4);
            for (size_t k = 0; k < values.size(); ++k) w.exact[k] = values[k];
            break;
        case WeightDtype::BF16:
        case WeightDtype::F16:
            for (size_t k = 0; k < values.size(); ++k) {
                const bool bf16 = dtype == WeightDtype::BF16;
                const uint16_t h = bf16 ? float_to_bf16(values[k]) : float_to_f16(values[k]);
                std::memcpy(w.bytes.data() + 2 * k, &h, 2);
                w.exact[k] = bf16 ? bf16_to_float(h) : f16_to_float(h);
            }
            break;
        case WeightDtype::Q8_0: {
            quant::quantize_q8_0(values.data(), static_cast<int64_t>(values.size()),
                                 w.bytes.data());
            std::vector<float> back(values.size());
            quant::dequantize_q8_0(w.bytes.data(), static_cast<int64_t>(values.size()),
                                   back.data());
            for (size_t k = 0; k < values.size(); ++k) w.exact[k] = back[k];
            break;
        }
    }
    return w;
}

// The activations as the kernels quantise them for Q8_0 (kernels.h: quantise_rows), and each
// value's block scale.
struct QuantisedX {
    std::vector<double> values, scales;
};
QuantisedX quantise_like_the_kernels(const std::vector<float>& x) {
    QuantisedX q{std::vector<double>(x.size()), std::vector<double>(x.size())};
    for (size_t b = 0; b < x.size(); b += 32) {
        float amax = 0.0f;
        for (size_t t = b; t < b + 32; ++t) amax = std::max(amax, std::fabs(x[t]));
        const float d = amax / 127.0f;
        const float id = d >= 1.17549435e-38f ? 1.0f / d : 0.0f;
        for (size_t t = b; t < b + 32; ++t) {
            q.values[t] = static_cast<double>(std::nearbyint(x[t] * id)) * d;
            q.scales[t] = d;
        }
    }
    return q;
}

// x rounded to bf16 as the AVX512_BF16 path does: nearest even, denormals to zero.
double bf16_activation(float x) {
    if (std::fabs(x) < 1.17549435e-38f) return 0.0;
    return tinygpt::bf16_to_float(tinygpt::float_to_bf16(x));
}

// One product: the exact result and the bound on a kernel's error, per output.
struct ExpectedProduct {
    std::vector<double> value, tolerance;
};

ExpectedProduct expected_product(const StoredWeights& w, const std::vector<float>& x, int n,
                                 const std::vector<float>& bias, bool activations_as_bf16) {
    ExpectedProduct e{std::vector<double>(static_cast<size_t>(n) * w.rows),
                      std::vector<double>(static_cast<size_t>(n) * w.rows)};
    const bool q8 = w.dtype == WeightDtype::Q8_0;
    const QuantisedX xq = q8 ? quantise_like_the_kernels(x) : QuantisedX{};
    const double depth = q8                                     ? w.cols / 32.0 + 16
                         : w.dtype == WeightDtype::F32 && n > 1 ? w.cols + 2.0
                                                                : w.cols / 8.0 + 40;
    for (int i = 0; i < n; ++i) {
        for (int j = 0; j < w.rows; ++j) {
            double sum = 0, magnitude = 0, activation_error = 0;
            for (int k = 0; k < w.cols; ++k) {
                const size_t at = static_cast<size_t>(i) * w.cols + k;
                const double wk = w.exact[static_cast<size_t>(j) * w.cols + k];
                const double xk = q8 ? xq.values[at] : x[at];
                sum += wk * x[at];
                magnitude += std::fabs(wk * xk);
                if (q8) activation_error += 0.50002 * xq.scales[at] * std::fabs(wk);
                // The activation as vcvtne2ps2bf16 rounds it (nearest even; denormals flushed):
                // its error is known exactly, so the bound keeps only the accumulation's.
                if (activations_as_bf16)
                    activation_error += std::fabs(wk * (bf16_activation(x[at]) - x[at]));
            }
            const double b = bias.empty() ? 0.0 : bias[j];
            const size_t out = static_cast<size_t>(i) * w.rows + j;
            e.value[out] = sum + b;
            // 1e-35: products below f32's normal range, which BF16 dot products flush to zero.
            e.tolerance[out] =
                depth * kUnit * (magnitude + std::fabs(b)) + activation_error + w.cols * 1e-35;
        }
    }
    return e;
}

const WeightDtype kDtypes[] = {WeightDtype::F32, WeightDtype::BF16, WeightDtype::F16,
                               WeightDtype::Q8_0};

struct MatrixShape {
    int rows, cols;
};
// Odd row counts (tails of every register block), real widths and one odd width (bf16 / f16).
const MatrixShape kShapes[] = {{37, 32}, {19, 96}, {67, 512}, {33, 2048}, {5, 1408}, {23, 45}};
const int kRowCounts[] = {1, 2, 3, 7, 17, 64, 130};

bool is_available(const std::string& isa) {
    const std::vector<std::string> all = available_weight_kernel_isas();
    return std::find(all.begin(), all.end(), isa) != all.end();
}

const char* requirement(const std::string& isa) {
    if (isa == "avx512") return "an x86-64 CPU with AVX-512F/BW/VL (and AVX2, FMA, F16C)";
    if (isa == "avx2") return "an x86-64 CPU with AVX2, FMA and F16C";
    if (isa == "neon") return "an AArch64 build";
    return "nothing";
}

// Runs the tests of one instruction-set path; skips with a message when this CPU lacks it.
class WeightMatmulPath : public ::testing::TestWithParam<std::string> {
  protected:
    void SetUp() override {
        if (!is_available(GetParam()))
            GTEST_SKIP() << "weight_matmul's " << GetParam() << " path needs "
                         << requirement(GetParam()) << ", which this build or CPU lacks";
        default_isa_ = weight_kernel_isa();
        ASSERT_TRUE(set_weight_kernel_isa(GetParam()));
        threads_ = parallel_threads();
    }
    void TearDown() override {
        if (!default_isa_.empty()) set_weight_kernel_isa(default_isa_);
        if (threads_ > 0) set_parallel_threads(threads_);
    }
    bool rounds_bf16_activations() const {
        return weight_kernels::active_kernels().bf16_activations;
    }

    std::string default_isa_;
    int threads_ = 0;
};

std::vector<float> run(const StoredWeights& w, const std::vector<float>& x, int n,
                       const std::vector<float>& bias) {
    std::vector<float> y(static_cast<size_t>(n) * w.rows, -7.0f);
    weight_matmul(y.data(), x.data(), n, w.view(), bias.empty() ? nullptr : bias.data());
    return y;
}

TEST_P(WeightMatmulPath, MatchesDoubleReferenceAndPortable) {
    uint64_t seed = 1;
    for (WeightDtype dtype : kDtypes) {
        for (const MatrixShape& s : kShapes) {
            if (dtype == WeightDtype::Q8_0 && s.cols % 32 != 0) continue;
            const StoredWeights w = make_weights(dtype, s.rows, s.cols, ++seed);
            for (int n : kRowCounts) {
                if (static_cast<long>(n) * s.rows * s.cols > (5L << 19)) continue;  // time
                const std::vector<float> x = random_values(n, s.cols, ++seed);
                const bool with_bias = (n + s.rows) % 2 == 1;
                const std::vector<float> bias =
                    with_bias ? random_values(1, s.rows, ++seed) : std::vector<float>{};
                const bool bf16_dot = dtype == WeightDtype::BF16 && rounds_bf16_activations();
                const ExpectedProduct e = expected_product(w, x, n, bias, bf16_dot);
                const std::vector<float> y = run(w, x, n, bias);
                ASSERT_TRUE(set_weight_kernel_isa("portable"));
                const std::vector<float> reference_path = run(w, x, n, bias);
                ASSERT_TRUE(set_weight_kernel_isa(GetParam()));
                const ExpectedProduct portable_e =
                    bf16_dot ? expected_product(w, x, n, bias, false) : e;
                for (size_t o = 0; o < y.size(); ++o) {
                    ASSERT_NEAR(y[o], e.value[o], e.tolerance[o])
                        << dtype_name(dtype) << " " << s.rows << "x" << s.cols << " n=" << n
                        << " output " << o << (with_bias ? " with bias" : "");
                    ASSERT_NEAR(y[o], reference_path[o], e.tolerance[o] + portable_e.tolerance[o])
                        << "against the portable path: " << dtype_name(dtype) << " " << s.rows
                        << "x" << s.cols << " n=" << n << " output " << o;
                }
            }
        }
    }
}

// Q8_0 against the product of the activations quantised as documented: only f32 rounding left.
TEST_P(WeightMatmulPath, Q8_0IsTheProductOfTheQuantisedActivations) {
    const StoredWeights w = make_weights(WeightDtype::Q8_0, 41, 1024, 5);
    for (int n : {1, 5, 64}) {
        const std::vector<float> x = random_values(n, w.cols, 6 + n);
        const QuantisedX xq = quantise_like_the_kernels(x);
        const std::vector<float> y = run(w, x, n, {});
        for (int i = 0; i < n; ++i) {
            for (int j = 0; j < w.rows; ++j) {
                double sum = 0, magnitude = 0;
                for (int k = 0; k < w.cols; ++k) {
                    const double p = w.exact[static_cast<size_t>(j) * w.cols + k] *
                                     xq.values[static_cast<size_t>(i) * w.cols + k];
                    sum += p;
                    magnitude += std::fabs(p);
                }
                ASSERT_NEAR(y[static_cast<size_t>(i) * w.rows + j], sum,
                            (w.cols / 32.0 + 16) * kUnit * magnitude)
                    << "n=" << n << " row " << i << " output " << j;
            }
        }
    }
}

// Fixed chunks and a fixed order per output: 1 and 2 threads give the same bits, for shapes
// large enough to be split (≥ 2^17 multiply-adds, several chunks of rows).
TEST_P(WeightMatmulPath, SameBitsOnOneAndTwoThreads) {
    for (WeightDtype dtype : kDtypes) {
        const StoredWeights w = make_weights(dtype, 333, 512, 11);
        for (int n : {1, 7, 64}) {
            const std::vector<float> x = random_values(n, w.cols, 12 + n);
            const std::vector<float> bias = random_values(1, w.rows, 13);
            set_parallel_threads(1);
            const std::vector<float> one = run(w, x, n, bias);
            set_parallel_threads(2);
            const std::vector<float> two = run(w, x, n, bias);
            ASSERT_EQ(std::memcmp(one.data(), two.data(), one.size() * 4), 0)
                << dtype_name(dtype) << " n=" << n;
        }
    }
}

// For bf16, f16 and q8_0, a row of a batch gives the bits the same row gives alone (prefill and
// decode agree); f32 uses sgemm for batches and promises nothing.
TEST_P(WeightMatmulPath, RowBitsDoNotDependOnTheBatch) {
    for (WeightDtype dtype : {WeightDtype::BF16, WeightDtype::F16, WeightDtype::Q8_0}) {
        const StoredWeights w = make_weights(dtype, 45, 1056, 21);
        const int n = 29;  // ≥ 24: through the widened tiles, where the paths have them
        const std::vector<float> x = random_values(n, w.cols, 22);
        const std::vector<float> batch = run(w, x, n, {});
        for (int i = 0; i < n; ++i) {
            const std::vector<float> row(x.begin() + static_cast<size_t>(i) * w.cols,
                                         x.begin() + static_cast<size_t>(i + 1) * w.cols);
            const std::vector<float> alone = run(w, row, 1, {});
            ASSERT_EQ(std::memcmp(alone.data(), batch.data() + static_cast<size_t>(i) * w.rows,
                                  alone.size() * 4),
                      0)
                << dtype_name(dtype) << " row " << i;
        }
    }
}

TEST_P(WeightMatmulPath, NonFiniteActivationsGiveNonFiniteOutputs) {
    for (WeightDtype dtype : kDtypes) {
        const StoredWeights w = make_weights(dtype, 9, 64, 31);
        for (float bad : {std::nanf(""), INFINITY}) {
            std::vector<float> x = random_values(3, w.cols, 32);
            x[w.cols + 40] = bad;  // row 1
            const std::vector<float> y = run(w, x, 3, {});
            for (int j = 0; j < w.rows; ++j) {
                EXPECT_TRUE(std::isfinite(y[j])) << dtype_name(dtype);
                EXPECT_FALSE(std::isfinite(y[w.rows + j])) << dtype_name(dtype) << " " << bad;
            }
        }
    }
}

// Widening is exact: every f16 and bf16 bit pattern (NaNs stay NaNs), and Q8_0 blocks as
// quant::dequantize_q8_0 gives them.
// GELU applied to each chunk of outputs inside the product gives the bits of the product, then
// the training side's bias + GELU pass over all of it: the fused inference MLP and the training
// forward agree bit for bit. Sizes that cross every path's chunk and tile boundaries.
TEST_P(WeightMatmulPath, GeluInTheProductEqualsAPassAfterIt) {
    for (WeightDtype dtype : kDtypes) {
        const StoredWeights w = make_weights(dtype, 150, 96, 41);
        const std::vector<float> bias = random_values(1, w.rows, 42);
        for (int n : {1, 5, 70}) {
            const std::vector<float> x = random_values(n, w.cols, 43 + n);
            std::vector<float> fused(static_cast<size_t>(n) * w.rows);
            weight_matmul(fused.data(), x.data(), n, w.view(), bias.data(), Activation::Gelu);
            std::vector<float> pre = run(w, x, n, {}), after(pre.size());
            bias_gelu_forward(after.data(), pre.data(), bias.data(), n, w.rows);
            ASSERT_EQ(std::memcmp(fused.data(), after.data(), after.size() * 4), 0)
                << dtype_name(dtype) << " n " << n;
        }
    }
}

TEST_P(WeightMatmulPath, RowsToF32IsExact) {
    for (WeightDtype dtype : {WeightDtype::BF16, WeightDtype::F16}) {
        const int cols = 4099;  // all 65536 patterns over 16 rows, and a tail
        StoredWeights w{dtype, 16, cols, std::vector<uint8_t>(16 * cols * 2), {}};
        for (int k = 0; k < 16 * cols; ++k) {
            const uint16_t h = static_cast<uint16_t>(k * 40503u);  // odd multiplier: a permutation
            std::memcpy(w.bytes.data() + 2 * k, &h, 2);
        }
        std::vector<float> out(static_cast<size_t>(13) * cols);
        weight_rows_to_f32(out.data(), w.view(), 3, 13);
        for (int k = 0; k < 13 * cols; ++k) {
            uint16_t h;
            std::memcpy(&h, w.bytes.data() + 2 * (3 * cols + k), 2);
            const float want = dtype == WeightDtype::BF16 ? bf16_to_float(h) : f16_to_float(h);
            if (std::isnan(want))
                ASSERT_TRUE(std::isnan(out[k])) << dtype_name(dtype) << " " << h;
            else
                ASSERT_EQ(std::memcmp(&out[k], &want, 4), 0) << dtype_name(dtype) << " " << h;
        }
    }
    for (WeightDtype dtype : {WeightDtype::F32, WeightDtype::Q8_0}) {
        const StoredWeights w = make_weights(dtype, 7, 160, 41);
        std::vector<float> out(static_cast<size_t>(5) * w.cols);
        weight_rows_to_f32(out.data(), w.view(), 2, 5);
        for (size_t k = 0; k < out.size(); ++k)
            ASSERT_EQ(out[k], w.exact[2 * w.cols + k]) << dtype_name(dtype) << " " << k;
    }
}

// With VNNI, vpdpbusd sums the same four exact products per lane that AVX2's vpmaddubsw +
// vpmaddwd do, so the AVX-512 path's q8_0 products are the AVX2 path's bits.
TEST_P(WeightMatmulPath, Q8_0BitsEqualTheAvx2Path) {
    if (GetParam() != "avx512") GTEST_SKIP() << "a check of the avx512 path only";
    const StoredWeights w = make_weights(WeightDtype::Q8_0, 45, 1024, 51);
    for (int n : {1, 3, 17}) {
        const std::vector<float> x = random_values(n, w.cols, 52);
        const std::vector<float> wide = run(w, x, n, {});
        ASSERT_TRUE(set_weight_kernel_isa("avx2"));
        const std::vector<float> narrow = run(w, x, n, {});
        ASSERT_TRUE(set_weight_kernel_isa(GetParam()));
        ASSERT_EQ(std::memcmp(wide.data(), narrow.data(), wide.size() * 4), 0) << "n=" << n;
    }
}

INSTANTIATE_TEST_SUITE_P(Isa, WeightMatmulPath,
                         ::testing::Values("portable", "avx2", "avx512", "neon"),
                         [](const auto& test) { return test.param; });

TEST(WeightMatmul, ChoosesTheBestPathAndCanBeForced) {
    const std::vector<std::string> all = available_weight_kernel_isas();
    ASSERT_FALSE(all.empty());
    EXPECT_EQ(all.back(), "portable");
    const std::string chosen = weight_kernel_isa();
    if (!std::getenv("TINYGPT_WEIGHT_ISA")) {
        EXPECT_EQ(chosen, all.front());
    }
    EXPECT_FALSE(set_weight_kernel_isa("sse1"));
    EXPECT_EQ(weight_kernel_isa(), chosen);
    for (const std::string& isa : all) {
        EXPECT_TRUE(set_weight_kernel_isa(isa));
        EXPECT_EQ(weight_kernel_isa(), isa);
    }
    set_weight_kernel_isa(chosen);
    std::string list;
    for (const std::string& isa : all) list += " " + isa;
    std::printf("weight_matmul paths on this CPU:%s (using %s)\n", list.c_str(), chosen.c_str());
}

TEST(WeightMatmul, EmptyProducts) {
    const StoredWeights w = make_weights(WeightDtype::BF16, 3, 0, 1);
    const float bias[3] = {1, 2, 3};
    float y[6] = {9, 9, 9, 9, 9, 9};
    weight_matmul(y, nullptr, 2, w.view(), bias);
    EXPECT_EQ(std::vector<float>(y, y + 6), (std::vector<float>{1, 2, 3, 1, 2, 3}));
    weight_matmul(y, nullptr, 0, w.view(), bias);  // n = 0: nothing written
    EXPECT_EQ(y[0], 1.0f);
}

}  // namespace
}  // namespace tinygpt
