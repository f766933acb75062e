// Whether this build runs under AddressSanitizer, for the tests whose numbers it changes: it
// keeps freed memory in quarantine and adds a shadow byte per 8 bytes touched (resident set
// sizes), and it slows every start-up (timings).
#pragma once

namespace tinygpt::test {

#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kUnderAddressSanitizer = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
inline constexpr bool kUnderAddressSanitizer = true;
#else
inline constexpr bool kUnderAddressSanitizer = false;
#endif
#else
inline constexpr bool kUnderAddressSanitizer = false;
#endif

}  // namespace tinygpt::test
