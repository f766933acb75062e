// IEEE half (f16) and bfloat16 conversions, portable and bit-exact: float → half rounds to
// nearest, ties to even (NaN stays a quiet NaN, f16 overflow becomes ±inf); half → float is an
// exact widening. Shared by the .tinygpt and safetensors readers and writers.
#pragma once
#include <bit>
#include <cstdint>

namespace tinygpt {

// std::bit_cast where the standard library has it; the WebAssembly build's libc++ (emscripten
// 3.1.6) predates it, and both GCC and Clang provide the builtin it is made of.
template <typename To, typename From>
constexpr To bit_cast(const From& from) {
#if defined(__cpp_lib_bit_cast)
    return std::bit_cast<To>(from);
#else
    return __builtin_bit_cast(To, from);
#endif
}

inline uint16_t float_to_bf16(float f) {
    const uint32_t bits = bit_cast<uint32_t>(f);
    if ((bits & 0x7fffffffu) > 0x7f800000u)
        return static_cast<uint16_t>((bits >> 16) | 0x0040u);  // quiet NaN
    const uint32_t rounding = 0x7fffu + ((bits >> 16) & 1u);
    return static_cast<uint16_t>((bits + rounding) >> 16);
}
inline float bf16_to_float(uint16_t h) {
    return bit_cast<float>(static_cast<uint32_t>(h) << 16);
}

inline uint16_t float_to_f16(float f) {
    const uint32_t bits = bit_cast<uint32_t>(f);
    const uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000u);
    const uint32_t abs = bits & 0x7fffffffu;
    if (abs > 0x7f800000u)
        return static_cast<uint16_t>(sign | 0x7e00u | ((abs >> 13) & 0x3ffu));  // NaN
    if (abs >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // ≥ 65520 rounds to inf
    const int exp = static_cast<int>(abs >> 23) - 127;
    if (exp >= -14) {  // normal half
        uint32_t mant = abs & 0x7fffffu;
        uint32_t h = (static_cast<uint32_t>(exp + 15) << 10) | (mant >> 13);
        const uint32_t rest = mant & 0x1fffu;
        if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;  // may carry into the exponent
        return static_cast<uint16_t>(sign | h);
    }
    if (exp < -25) return sign;  // below half the smallest subnormal: ±0
    // Subnormal half: value = mant_full · 2^(exp − 23), units of 2^-24.
    const uint32_t mant_full = (abs & 0x7fffffu) | 0x800000u;
    const int shift = -exp - 1;  // 14 … 24: value / 2^-24 = mant_full >> shift
    const uint32_t h = mant_full >> shift;
    const uint32_t rest = mant_full & ((1u << shift) - 1u);
    const uint32_t half = 1u << (shift - 1);
    uint32_t r = h;
    if (rest > half || (rest == half && (h & 1u))) ++r;
    return static_cast<uint16_t>(sign | r);
}
inline float f16_to_float(uint16_t h) {
    const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
    const uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    uint32_t bits;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (mant << 13);
    } else if (exp != 0) {
        bits = sign | ((exp + 112u) << 23) | (mant << 13);
    } else if (mant == 0) {
        bits = sign;
    } else {  // subnormal: normalise
        int e = -1;
        do {
            mant <<= 1;
            ++e;
        } while ((mant & 0x400u) == 0);
        bits = sign | (static_cast<uint32_t>(112 - e) << 23) | ((mant & 0x3ffu) << 13);
    }
    return bit_cast<float>(bits);
}

}  // namespace tinygpt
