// Sizes in bytes as people write them: parsing `--max-memory 8G` and printing estimates.
// Units are binary (K = 1024), as in ulimit, Docker and the JVM's -Xmx.
#pragma once
#include <cstdint>
#include <string>

namespace tinygpt {

// "8G", "512M", "1.5GiB", "300000000" (bytes), "64k": a number (a decimal fraction is allowed)
// and an optional unit K, M, G or T, optionally followed by B or iB, in any case. Throws
// tinygpt::Error naming the text when it is not such a size, is 0, or exceeds 2^62 bytes.
uint64_t parse_byte_size(const std::string& text);

// "812 B", "9.4 MiB", "71.9 GiB", "3.2e+06 TiB": three significant digits at most. Doubles,
// because estimates of absurd shapes go far past 64 bits.
std::string format_bytes(double bytes);

}  // namespace tinygpt
