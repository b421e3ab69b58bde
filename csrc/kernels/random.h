// Counter-based random numbers: a value is a pure function of (seed, counter), so kernels draw
// in parallel in any order, a backward pass regenerates a forward's mask instead of storing it,
// and the CPU and CUDA backends agree bit for bit. The op draws `seed` once from the global
// generator (fd.manual_seed makes runs reproducible).
#pragma once
#include <cstdint>

#include "kernels/common.h"

namespace fastdl {

// splitmix64's finaliser over seed + (counter + 1) * golden ratio: 64 well-mixed bits.
FASTDL_HD uint64_t counter_hash(uint64_t seed, uint64_t counter) {
  uint64_t z = seed + (counter + 1) * 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Uniform in [0, 1) from the top 24 bits (attention's dropout).
FASTDL_HD float dropout_uniform(uint64_t seed, uint64_t counter) {
  return float(counter_hash(seed, counter) >> 40) * (1.0f / 16777216.0f);
}

// Element dropout (F.dropout): element i is kept iff dropout_u24(seed, i) >= drop24
// (= round(p * 2^24)), so P(keep) = 1 - p to 2^-24. A cheaper mix than counter_hash, built of
// 32-bit multiplies so that CPU kernels vectorise it (8 or 16 lanes): two rounds of a 32-bit
// integer hash (the "lowbias32" constants), the seed's halves entering one per round, and the
// index's high word folded in for tensors past 2^32 elements. Dropout needs independence
// between elements and between calls, not cryptographic quality.
FASTDL_HD uint32_t hash32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352du;
  x ^= x >> 15;
  x *= 0x846ca68bu;
  x ^= x >> 16;
  return x;
}
FASTDL_HD uint32_t dropout_threshold24(double p) { return uint32_t(p * 16777216.0 + 0.5); }
// The seed's two halves; hi also takes the index's high word (constant over 2^32 elements).
FASTDL_HD uint32_t dropout_u24(uint32_t seed_lo, uint32_t seed_hi, uint32_t i_lo) {
  return hash32(hash32(i_lo ^ seed_lo) ^ seed_hi) >> 8;
}
FASTDL_HD uint32_t dropout_seed_hi(uint64_t seed, uint64_t i) {
  return uint32_t(seed >> 32) ^ (uint32_t(i >> 32) * 0x9E3779B9u);
}
FASTDL_HD bool dropout_keep(uint64_t seed, uint64_t i, uint32_t drop24) {
  return dropout_u24(uint32_t(seed), dropout_seed_hi(seed, i), uint32_t(i)) >= drop24;
}

}  // namespace fastdl
