// GgufValue: GGUF metadata values (src/io/gguf_file.h) and their typed accessors.
#include <cmath>
#include <limits>

#include "io/gguf_file.h"
#include "util/error.h"

namespace tinygpt::io {

namespace {

bool is_unsigned(GgufType t) {
    return t == GgufType::U8 || t == GgufType::U16 || t == GgufType::U32 || t == GgufType::U64;
}
bool is_signed(GgufType t) {
    return t == GgufType::I8 || t == GgufType::I16 || t == GgufType::I32 || t == GgufType::I64;
}
bool is_integer(GgufType t) {
    return is_unsigned(t) || is_signed(t);
}
bool is_float(GgufType t) {
    return t == GgufType::F32 || t == GgufType::F64;
}

// The range of an integer (or Bool) element type.
bool fits(GgufType t, int64_t v) {
    switch (t) {
        case GgufType::U8:
            return v >= 0 && v <= 0xff;
        case GgufType::I8:
            return v >= -128 && v <= 127;
        case GgufType::U16:
            return v >= 0 && v <= 0xffff;
        case GgufType::I16:
            return v >= -32768 && v <= 32767;
        case GgufType::U32:
            return v >= 0 && v <= 0xffffffffll;
        case GgufType::I32:
            return v >= std::numeric_limits<int32_t>::min() &&
                   v <= std::numeric_limits<int32_t>::max();
        case GgufType::U64:
            return v >= 0;
        case GgufType::I64:
            return true;
        case GgufType::Bool:
            return v == 0 || v == 1;
        default:
            return false;
    }
}

std::string describe(GgufType type, GgufType array_type) {
    if (type != GgufType::Array) return gguf_type_name(type);
    return std::string("array of ") + gguf_type_name(array_type);
}

}  // namespace

const char* gguf_type_name(GgufType type) {
    switch (type) {
        case GgufType::U8:
            return "uint8";
        case GgufType::I8:
            return "int8";
        case GgufType::U16:
            return "uint16";
        case GgufType::I16:
            return "int16";
        case GgufType::U32:
            return "uint32";
        case GgufType::I32:
            return "int32";
        case GgufType::F32:
            return "float32";
        case GgufType::Bool:
            return "bool";
        case GgufType::String:
            return "string";
        case GgufType::Array:
            return "array";
        case GgufType::U64:
            return "uint64";
        case GgufType::I64:
            return "int64";
        case GgufType::F64:
            return "float64";
    }
    return "unknown type";
}

// --- factories ----------------------------------------------------------------------------------

GgufValue GgufValue::unsigned_scalar(GgufType type, uint64_t v) {
    GgufValue r;
    r.type_ = type;
    r.u_ = v;
    return r;
}
GgufValue GgufValue::signed_scalar(GgufType type, int64_t v) {
    GgufValue r;
    r.type_ = type;
    r.i_ = v;
    return r;
}

GgufValue GgufValue::u8(uint8_t v) {
    return unsigned_scalar(GgufType::U8, v);
}
GgufValue GgufValue::i8(int8_t v) {
    return signed_scalar(GgufType::I8, v);
}
GgufValue GgufValue::u16(uint16_t v) {
    return unsigned_scalar(GgufType::U16, v);
}
GgufValue GgufValue::i16(int16_t v) {
    return signed_scalar(GgufType::I16, v);
}
GgufValue GgufValue::u32(uint32_t v) {
    return unsigned_scalar(GgufType::U32, v);
}
GgufValue GgufValue::i32(int32_t v) {
    return signed_scalar(GgufType::I32, v);
}
GgufValue GgufValue::u64(uint64_t v) {
    return unsigned_scalar(GgufType::U64, v);
}
GgufValue GgufValue::i64(int64_t v) {
    return signed_scalar(GgufType::I64, v);
}
GgufValue GgufValue::f32(float v) {
    GgufValue r;
    r.type_ = GgufType::F32;
    r.f_ = v;
    return r;
}
GgufValue GgufValue::f64(double v) {
    GgufValue r;
    r.type_ = GgufType::F64;
    r.f_ = v;
    return r;
}
GgufValue GgufValue::boolean(bool v) {
    return unsigned_scalar(GgufType::Bool, v ? 1 : 0);
}
GgufValue GgufValue::string(std::string v) {
    GgufValue r;
    r.type_ = GgufType::String;
    r.s_ = std::move(v);
    return r;
}

GgufValue GgufValue::string_array(std::vector<std::string> v) {
    GgufValue r;
    r.type_ = GgufType::Array;
    r.array_type_ = GgufType::String;
    r.strings_ = std::move(v);
    return r;
}
GgufValue GgufValue::int_array(GgufType element_type, std::vector<int64_t> v) {
    require(is_integer(element_type) || element_type == GgufType::Bool,
            std::string("GgufValue::int_array: element type ") + gguf_type_name(element_type) +
                " is not an integer type");
    for (size_t i = 0; i < v.size(); ++i)
        require(fits(element_type, v[i]), "GgufValue::int_array: element " + std::to_string(i) +
                                              " (" + std::to_string(v[i]) + ") does not fit " +
                                              gguf_type_name(element_type));
    GgufValue r;
    r.type_ = GgufType::Array;
    r.array_type_ = element_type;
    r.ints_ = std::move(v);
    return r;
}
GgufValue GgufValue::i32_array(std::vector<int32_t> v) {
    return int_array(GgufType::I32, std::vector<int64_t>(v.begin(), v.end()));
}
GgufValue GgufValue::u32_array(std::vector<uint32_t> v) {
    return int_array(GgufType::U32, std::vector<int64_t>(v.begin(), v.end()));
}
GgufValue GgufValue::f32_array(std::vector<float> v) {
    GgufValue r;
    r.type_ = GgufType::Array;
    r.array_type_ = GgufType::F32;
    r.floats_.assign(v.begin(), v.end());
    return r;
}
GgufValue GgufValue::f64_array(std::vector<double> v) {
    GgufValue r;
    r.type_ = GgufType::Array;
    r.array_type_ = GgufType::F64;
    r.floats_ = std::move(v);
    return r;
}

// --- accessors ----------------------------------------------------------------------------------

size_t GgufValue::array_size() const {
    if (type_ != GgufType::Array) return 0;
    if (array_type_ == GgufType::String) return strings_.size();
    if (is_float(array_type_)) return floats_.size();
    return ints_.size();
}

[[noreturn]] void GgufValue::mismatch(const std::string& what, const char* expected) const {
    std::string found = describe(type_, array_type_);
    if (is_unsigned(type_) || type_ == GgufType::Bool)
        found += " " + std::to_string(u_);
    else if (is_signed(type_))
        found += " " + std::to_string(i_);
    throw Error(what + ": expected " + expected + ", found " + found);
}

uint64_t GgufValue::as_uint(const std::string& what) const {
    if (is_unsigned(type_)) return u_;
    if (is_signed(type_) && i_ >= 0) return static_cast<uint64_t>(i_);
    mismatch(what, "an unsigned integer");
}

int64_t GgufValue::as_int(const std::string& what) const {
    if (is_signed(type_)) return i_;
    if (is_unsigned(type_) && u_ <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        return static_cast<int64_t>(u_);
    mismatch(what, "an integer");
}

double GgufValue::as_float(const std::string& what) const {
    if (is_float(type_)) return f_;
    if (is_unsigned(type_)) return static_cast<double>(u_);
    if (is_signed(type_)) return static_cast<double>(i_);
    mismatch(what, "a number");
}

bool GgufValue::as_bool(const std::string& what) const {
    if (type_ == GgufType::Bool) return u_ != 0;
    mismatch(what, "bool");
}

const std::string& GgufValue::as_string(const std::string& what) const {
    if (type_ == GgufType::String) return s_;
    mismatch(what, "string");
}

const std::vector<std::string>& GgufValue::as_string_array(const std::string& what) const {
    if (type_ == GgufType::Array && array_type_ == GgufType::String) return strings_;
    mismatch(what, "array of string");
}

std::vector<int64_t> GgufValue::as_int_array(const std::string& what) const {
    if (type_ == GgufType::Array && is_integer(array_type_)) return ints_;
    mismatch(what, "array of integers");
}

std::vector<float> GgufValue::as_float_array(const std::string& what) const {
    if (type_ == GgufType::Array && is_float(array_type_))
        return std::vector<float>(floats_.begin(), floats_.end());
    if (type_ == GgufType::Array && is_integer(array_type_))
        return std::vector<float>(ints_.begin(), ints_.end());
    mismatch(what, "array of numbers");
}

}  // namespace tinygpt::io
