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

// Random fills (rand, randn, uniform_, normal_, bernoulli, randint, randperm): Philox-4x32-10
// (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011), the generator of
// cuRAND and of PyTorch's CUDA fills. It passes TestU01's BigCrush with margin (7 of its 10
// rounds already do), where a couple of rounds of a 32-bit hash, enough for a dropout mask, leave
// correlations a normal's tail or a moment test of many samples can find. Its rounds are 32x32 ->
// 64-bit multiplies, which AVX2 and AVX-512 do 4 or 8 at a time (vpmuludq); a 64-bit mixer
// (counter_hash) needs 64-bit multiplies AVX2 lacks.
// Block b (64-bit counter in the first two words, the call's 64-bit key) gives four words. The
// words of blocks 16 g .. 16 g + 15 fill word slots 64 g .. 64 g + 63, word w of block 16 g + l at
// slot 64 g + 16 w + l: sixteen blocks side by side are one AVX-512 vector (two AVX2 ones) per
// word, stored without shuffles, on every ISA and on the GPU alike.
constexpr int kPhiloxLanes = 16;           // blocks per group
constexpr int kPhiloxGroupWords = 64;      // words per group
FASTDL_HD void philox4x32_10(uint32_t& c0, uint32_t& c1, uint32_t& c2, uint32_t& c3, uint32_t k0, uint32_t k1) {
  for (int r = 0; r < 10; ++r) {
    const uint64_t p0 = uint64_t(c0) * 0xD2511F53u, p1 = uint64_t(c2) * 0xCD9E8D57u;
    const uint32_t n0 = uint32_t(p1 >> 32) ^ c1 ^ k0, n2 = uint32_t(p0 >> 32) ^ c3 ^ k1;
    c1 = uint32_t(p1);
    c3 = uint32_t(p0);
    c0 = n0;
    c2 = n2;
    k0 += 0x9E3779B9u;  // the Weyl key schedule
    k1 += 0xBB67AE85u;
  }
}
// Word slot s of the stream with this key (the scalar reference for every fill kernel).
FASTDL_HD uint32_t philox_word(uint64_t key, uint64_t s) {
  const uint64_t g = s / kPhiloxGroupWords, r = s % kPhiloxGroupWords;
  const uint64_t b = g * kPhiloxLanes + r % kPhiloxLanes;
  uint32_t c0 = uint32_t(b), c1 = uint32_t(b >> 32), c2 = 0, c3 = 0;
  philox4x32_10(c0, c1, c2, c3, uint32_t(key), uint32_t(key >> 32));
  const uint32_t w = uint32_t(r / kPhiloxLanes);
  return w == 0 ? c0 : w == 1 ? c1 : w == 2 ? c2 : c3;
}

}  // namespace fastdl
