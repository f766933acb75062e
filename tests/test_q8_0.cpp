// Q8_0 quantisation (src/quant/q8_0.h): hand-computed blocks, ggml's rounding rules (f32 scale,
// ties away from zero, f16-rounded stored scale, subnormal scales), the error bound, random data.
#include <gtest/gtest.h>

#include <array>
#include <bit>
#include <cmath>
#include <cstring>
#include <vector>

#include "quant/q8_0.h"
#include "util/half.h"
#include "util/rng.h"

namespace tinygpt {
namespace {

using quant::kQ8_0BlockBytes;
using quant::kQ8_0BlockSize;

struct Block {
    uint16_t d = 0;
    std::array<int8_t, 32> q{};
};

Block quantize_block(const std::vector<float>& x) {
    EXPECT_EQ(x.size(), 32u);
    uint8_t bytes[kQ8_0BlockBytes];
    quant::quantize_q8_0(x.data(), 32, bytes);
    Block b;
    std::memcpy(&b.d, bytes, 2);
    std::memcpy(b.q.data(), bytes + 2, 32);
    return b;
}

std::vector<float> block_of(std::initializer_list<float> head) {
    std::vector<float> x(32, 0.0f);
    std::copy(head.begin(), head.end(), x.begin());
    return x;
}

TEST(Q8_0, Layout) {
    EXPECT_EQ(kQ8_0BlockSize, 32);
    EXPECT_EQ(kQ8_0BlockBytes, 34u);
}

TEST(Q8_0, ZeroBlockIsAllZeroBytes) {
    uint8_t bytes[2 * kQ8_0BlockBytes];
    std::memset(bytes, 0xAB, sizeof bytes);
    const std::vector<float> x(64, 0.0f);
    quant::quantize_q8_0(x.data(), 64, bytes);
    for (uint8_t b : bytes) EXPECT_EQ(b, 0);
    std::vector<float> back(64, 1.0f);
    quant::dequantize_q8_0(bytes, 64, back.data());
    for (float v : back) EXPECT_EQ(v, 0.0f);
    // -0.0 everywhere: amax is 0 as well.
    const Block neg = quantize_block(std::vector<float>(32, -0.0f));
    EXPECT_EQ(neg.d, 0);
    for (int8_t q : neg.q) EXPECT_EQ(q, 0);
}

TEST(Q8_0, ExtremesAreExactlyPlusMinus127) {
    // amax = 127 → d = 1 (f16 0x3C00), every integer value is exact.
    const Block b = quantize_block(block_of({127.0f, -127.0f, 1.0f, -1.0f, 0.0f, 64.0f, -100.0f}));
    EXPECT_EQ(b.d, 0x3C00);
    const int8_t expected[] = {127, -127, 1, -1, 0, 64, -100};
    for (int i = 0; i < 7; ++i) EXPECT_EQ(b.q[i], expected[i]) << i;
    for (int i = 7; i < 32; ++i) EXPECT_EQ(b.q[i], 0);
    // The largest magnitude maps to ±127 whatever the scale: d = 2/127 (f16 0x2008 · 2).
    const Block c = quantize_block(block_of({-2.0f, 1.0f, 2.0f}));
    EXPECT_EQ(c.q[0], -127);
    EXPECT_EQ(c.q[2], 127);
    EXPECT_EQ(c.d, float_to_f16(2.0f / 127.0f));
    EXPECT_EQ(c.d, 0x2408);  // 2/127 = 2^-6 · 1.00787…: exponent 9, mantissa 8
}

TEST(Q8_0, TiesRoundAwayFromZero) {
    // d = 1 exactly, so x·(1/d) = x: halves are exact ties; roundf rounds them away from zero
    // (nearbyint would give 2, -2, 0, -0, 4).
    const Block b = quantize_block(block_of({127.0f, 2.5f, -2.5f, 0.5f, -0.5f, 3.5f, 1.49999988f}));
    EXPECT_EQ(b.q[1], 3);
    EXPECT_EQ(b.q[2], -3);
    EXPECT_EQ(b.q[3], 1);
    EXPECT_EQ(b.q[4], -1);
    EXPECT_EQ(b.q[5], 4);
    EXPECT_EQ(b.q[6], 1);  // just below the tie
}

TEST(Q8_0, ScaleIsRoundedToF16ButQuantsUseTheF32Scale) {
    // amax = 1: d = 1/127 = 0.0078740157 in f32; f16 stores 0x2008 = 0.00787353515625.
    const Block b = quantize_block(block_of({1.0f, 0.25f, -0.125f}));
    EXPECT_EQ(b.d, 0x2008);
    EXPECT_EQ(b.q[0], 127);
    EXPECT_EQ(b.q[1], 32);   // 31.75
    EXPECT_EQ(b.q[2], -16);  // -15.875
    std::vector<float> back(32);
    uint8_t bytes[kQ8_0BlockBytes];
    std::memcpy(bytes, &b.d, 2);
    std::memcpy(bytes + 2, b.q.data(), 32);
    quant::dequantize_q8_0(bytes, 32, back.data());
    EXPECT_EQ(back[0], 127.0f * 0.00787353515625f);
    EXPECT_EQ(back[1], 32.0f * 0.00787353515625f);
    EXPECT_EQ(back[2], -16.0f * 0.00787353515625f);
}

TEST(Q8_0, SubnormalScales) {
    // amax = 127 · 2^-20 → d = 2^-20 exactly, an f16 subnormal (16 · 2^-24 = 0x0010).
    const float amax = 127.0f * std::ldexp(1.0f, -20);
    Block b = quantize_block(block_of({amax, -amax / 2}));
    EXPECT_EQ(b.d, 0x0010);
    EXPECT_EQ(b.q[0], 127);
    EXPECT_EQ(b.q[1], -64);  // -63.5 rounds away from zero
    // d = 3.3 · 2^-24 is stored as 3 · 2^-24 (0x0003); the quants still use the f32 d.
    const float amax2 = 127.0f * 3.3f * std::ldexp(1.0f, -24);
    b = quantize_block(block_of({amax2}));
    EXPECT_EQ(b.d, 0x0003);
    EXPECT_EQ(b.q[0], 127);
    // d = 2.5 · 2^-24 is a tie between the subnormals 2 and 3: to even (0x0002).
    const float amax3 = 127.0f * 2.5f * std::ldexp(1.0f, -24);
    b = quantize_block(block_of({-amax3}));
    EXPECT_EQ(b.d, 0x0002);
    EXPECT_EQ(b.q[0], -127);
    // amax = 1e-6 gives d ≈ 0.13 · 2^-24, which f16 flushes to 0: ggml stores d = 0 with
    // non-zero quants, and the block dequantises to zeros.
    b = quantize_block(block_of({1e-6f, -1e-6f / 4}));
    EXPECT_EQ(b.d, 0);
    EXPECT_EQ(b.q[0], 127);
    EXPECT_EQ(b.q[1], -32);  // -31.75
}

// The stored bytes against the definition, block by block.
void expect_matches_definition(const std::vector<float>& x, const std::vector<uint8_t>& bytes) {
    for (size_t blk = 0; blk < x.size() / 32; ++blk) {
        const float* xb = x.data() + blk * 32;
        const uint8_t* out = bytes.data() + blk * kQ8_0BlockBytes;
        float amax = 0.0f;
        for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(xb[j]));
        const float d = amax / 127.0f;
        uint16_t dh;
        std::memcpy(&dh, out, 2);
        ASSERT_EQ(dh, float_to_f16(d)) << "block " << blk;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        int max_q = 0;
        for (int j = 0; j < 32; ++j) {
            const auto q = static_cast<int8_t>(out[2 + j]);
            ASSERT_GE(q, -127);
            ASSERT_LE(std::fabs(static_cast<float>(q) - xb[j] * id), 0.5f) << blk << "/" << j;
            max_q = std::max(max_q, std::abs(static_cast<int>(q)));
        }
        if (amax > 0.0f) {
            EXPECT_EQ(max_q, 127);
        }
    }
}

TEST(Q8_0, RandomDataMatchesTheDefinitionAndTheErrorBound) {
    Rng rng(42);
    const int64_t n = 32 * 512;
    std::vector<float> x(static_cast<size_t>(n));
    for (size_t i = 0; i < x.size(); ++i) {
        // Blocks of very different magnitudes, including tiny (subnormal-scale) ones.
        const double scale = std::ldexp(1.0, static_cast<int>(i / 32 % 40) - 30);
        x[i] = static_cast<float>(rng.normal() * scale);
    }
    std::vector<uint8_t> bytes(static_cast<size_t>(n / 32) * kQ8_0BlockBytes);
    quant::quantize_q8_0(x.data(), n, bytes.data());
    expect_matches_definition(x, bytes);

    std::vector<float> back(x.size());
    quant::dequantize_q8_0(bytes.data(), n, back.data());
    for (size_t blk = 0; blk < x.size() / 32; ++blk) {
        float amax = 0.0f;
        for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[blk * 32 + j]));
        const float d = amax / 127.0f;
        uint16_t dh;
        std::memcpy(&dh, bytes.data() + blk * kQ8_0BlockBytes, 2);
        const float d16 = f16_to_float(dh);
        for (int j = 0; j < 32; ++j) {
            const size_t i = blk * 32 + j;
            const auto q = static_cast<float>(static_cast<int8_t>(bytes[blk * 34 + 2 + j]));
            EXPECT_EQ(back[i], q * d16);
            // Rounding costs at most d/2 with the f32 scale; storing the scale as f16 adds up
            // to 127·|d16 − d| (at most 127 · 2^-11 · d for a normal f16 scale).
            EXPECT_LE(std::fabs(q * d - x[i]), 0.5f * d + 1e-4f * d) << i;
            EXPECT_LE(std::fabs(back[i] - x[i]), 0.5f * d + 127.0f * std::fabs(d16 - d) + 1e-4f * d)
                << i;
        }
    }
}

TEST(Q8_0, BlocksAreIndependent) {
    // Quantising two blocks at once gives the bytes of quantising each alone.
    Rng rng(7);
    std::vector<float> x(64);
    for (auto& v : x) v = static_cast<float>(rng.normal());
    x[40] = 1000.0f;  // a large value in the second block only
    std::vector<uint8_t> both(2 * kQ8_0BlockBytes), a(kQ8_0BlockBytes), b(kQ8_0BlockBytes);
    quant::quantize_q8_0(x.data(), 64, both.data());
    quant::quantize_q8_0(x.data(), 32, a.data());
    quant::quantize_q8_0(x.data() + 32, 32, b.data());
    EXPECT_TRUE(std::equal(a.begin(), a.end(), both.begin()));
    EXPECT_TRUE(std::equal(b.begin(), b.end(), both.begin() + kQ8_0BlockBytes));
}

TEST(Q8_0, NonFiniteInputIsDefinedNotUndefined) {
    // The GGUF writer refuses such tensors; the quantiser itself must still not invoke UB:
    // quants become 0, the scale inf / NaN.
    std::vector<float> x(32, 1.0f);
    x[3] = INFINITY;
    const Block b = quantize_block(x);
    EXPECT_EQ(b.d, 0x7C00);
    for (int8_t q : b.q) EXPECT_EQ(q, 0);
}

}  // namespace
}  // namespace tinygpt
