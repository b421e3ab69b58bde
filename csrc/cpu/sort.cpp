// Sorting kernels (sort.h). Each element becomes an unsigned key that orders like the value
// (NaN largest, -0.0 == +0.0; bits flipped for descending / largest) beside its uint32 index.
// sort: stable LSD radix sort on 8- or 11-bit digits of the key (std::sort on (key, index) for short
// rows); topk: std::partial_sort / std::nth_element on the key alone, the calls PyTorch's CPU topk
// makes, so ties resolve to the same indices; kthvalue: nth_element on (key, index).
#include "cpu/sort.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "core/parallel.h"

namespace fastdl::cpu {

namespace {

template <class K> struct Item {
  K key;
  uint32_t idx;
};

inline uint32_t float_key(float x) {
  if (x != x) return 0xffffffffu;
  if (x == 0) return 0x80000000u;  // -0.0 ties +0.0
  uint32_t u;
  std::memcpy(&u, &x, 4);
  return (u >> 31) ? ~u : u | 0x80000000u;
}
inline uint64_t double_key(double x) {
  if (x != x) return ~uint64_t(0);
  if (x == 0) return uint64_t(1) << 63;
  uint64_t u;
  std::memcpy(&u, &x, 8);
  return (u >> 63) ? ~u : u | (uint64_t(1) << 63);
}

// Storage type T and key type K per dtype.
template <DType D> struct Traits;
template <> struct Traits<DType::f32> { using T = float; using K = uint32_t; static K key(T v) { return float_key(v); } };
template <> struct Traits<DType::f64> { using T = double; using K = uint64_t; static K key(T v) { return double_key(v); } };
template <> struct Traits<DType::f16> {
  using T = uint16_t; using K = uint32_t;
  static K key(T v) { return float_key(f16_to_f32(v)); }
};
template <> struct Traits<DType::bf16> {
  using T = uint16_t; using K = uint32_t;
  static K key(T v) { return float_key(bf16_to_f32(v)); }
};
template <> struct Traits<DType::i32> {
  using T = int32_t; using K = uint32_t;
  static K key(T v) { return uint32_t(v) ^ 0x80000000u; }
};
template <> struct Traits<DType::i64> {
  using T = int64_t; using K = uint64_t;
  static K key(T v) { return uint64_t(v) ^ (uint64_t(1) << 63); }
};
template <> struct Traits<DType::b8> { using T = uint8_t; using K = uint32_t; static K key(T v) { return v != 0; } };
template <> struct Traits<DType::u8> { using T = uint8_t; using K = uint32_t; static K key(T v) { return v; } };
template <> struct Traits<DType::i8> { using T = int8_t; using K = uint32_t; static K key(T v) { return uint32_t(v + 128); } };
template <> struct Traits<DType::i16> { using T = int16_t; using K = uint32_t; static K key(T v) { return uint32_t(v + 32768); } };

// Stable LSD radix sort of a[0, n) by key, kBits a pass, skipping digits every key shares; cnt
// holds kPasses * 2^kBits counters; returns whichever of a / tmp holds the result. 11-bit digits
// (3 passes for 32-bit keys) beat bytes (4) once rows are long enough to fill the larger tables.
template <int kBits, class K> Item<K>* radix_sort(Item<K>* a, Item<K>* tmp, uint32_t* cnt, int64_t n) {
  constexpr int kPasses = (int(sizeof(K)) * 8 + kBits - 1) / kBits;
  constexpr uint32_t kMask = (1u << kBits) - 1;
  std::memset(cnt, 0, sizeof(uint32_t) * (size_t(kPasses) << kBits));
  for (int64_t i = 0; i < n; ++i) {
    K k = a[i].key;
    for (int b = 0; b < kPasses; ++b) ++cnt[(b << kBits) + int((k >> (kBits * b)) & kMask)];
  }
  for (int b = 0; b < kPasses; ++b) {
    uint32_t* c = cnt + (b << kBits);
    if (c[(a[0].key >> (kBits * b)) & kMask] == uint32_t(n)) continue;
    uint32_t sum = 0;
    for (uint32_t d = 0; d <= kMask; ++d) { uint32_t t = c[d]; c[d] = sum; sum += t; }
    for (int64_t i = 0; i < n; ++i) {
      Item<K> it = a[i];
      tmp[c[(it.key >> (kBits * b)) & kMask]++] = it;
    }
    std::swap(a, tmp);
  }
  return a;
}
constexpr size_t kRadixCounters = size_t(6) << 11;  // the most radix_sort uses (64-bit keys, 11 bits)

enum class Mode { sort, topk, kth };

// Orders one row's items in place per mode; returns the first of the m results.
template <class K>
Item<K>* order_row(Mode mode, Item<K>* it, Item<K>* tmp, uint32_t* cnt, int64_t n, int64_t k, bool sorted) {
  auto by_key = [](const Item<K>& a, const Item<K>& b) { return a.key < b.key; };
  auto by_key_idx = [](const Item<K>& a, const Item<K>& b) { return a.key < b.key || (a.key == b.key && a.idx < b.idx); };
  if (mode == Mode::sort) {
    if (n < 256) return std::sort(it, it + n, by_key_idx), it;
    return n < 2048 ? radix_sort<8>(it, tmp, cnt, n) : radix_sort<11>(it, tmp, cnt, n);
  }
  if (mode == Mode::kth) {
    std::nth_element(it, it + k - 1, it + n, by_key_idx);
    return it + k - 1;
  }
  if (k * 64 <= n) {  // PyTorch's choice between the two, kept for its tie order
    std::partial_sort(it, it + k, it + n, by_key);
  } else {
    std::nth_element(it, it + k - 1, it + n, by_key);
    if (sorted) std::sort(it, it + k - 1, by_key);
  }
  return it;
}

template <DType D> void run(const SortParams& p, Mode mode) {
  using T = typename Traits<D>::T;
  using K = typename Traits<D>::K;
  const int nb = p.shape.size();
  int64_t rows = 1;
  for (int d = 0; d < nb; ++d) rows *= p.shape[d];
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(p.n, 1));
  parallel_for(0, rows, grain, [&p, mode, nb](int64_t rb, int64_t re) {
    // Locals, not closure reads, in the loops below.
    const int64_t n = p.n, k = p.k, is = p.in_stride, os = p.out_stride;
    const int64_t m = mode == Mode::sort ? n : mode == Mode::topk ? k : 1;
    const bool sorted = p.sorted;
    const K flip = (mode != Mode::kth && p.descending) ? K(~K(0)) : K(0);
    const T* in = reinterpret_cast<const T*>(p.in);
    T* vals = reinterpret_cast<T*>(p.values);
    int64_t* inds = p.indices;
    const Dims shape = p.shape, ist = p.in_strides, ost = p.out_strides;
    // A strided ordered dim is read (and written) for up to 16 neighbouring rows of the last other
    // dim at once, so each cache line fetched serves them all.
    const int64_t last = nb ? shape[nb - 1] : 1, gin = nb ? ist[nb - 1] : 0, gout = nb ? ost[nb - 1] : 0;
    const int64_t tile = is == 1 ? 1 : std::max<int64_t>(1, std::min<int64_t>({16, last, (int64_t(1) << 21) / n}));
    const size_t nz = static_cast<size_t>(n);
    std::vector<T> raw(nz * size_t(tile));
    std::vector<uint32_t> ord(size_t(m) * size_t(tile));
    std::vector<Item<K>> items(nz), tmp(mode == Mode::sort ? nz : 0);
    std::vector<uint32_t> cnt(mode == Mode::sort ? kRadixCounters : 0);
    for (int64_t r = rb; r < re;) {
      int64_t io = 0, oo = 0, rem = r;
      for (int d = nb - 1; d >= 0; --d) {
        int64_t i = rem % shape[d];
        rem /= shape[d];
        io += i * ist[d];
        oo += i * ost[d];
      }
      const int64_t g = std::min({tile, re - r, last - r % last});
      const T* src = in + io;
      T* rw = raw.data();
      if (g == 1 && is == 1) std::memcpy(rw, src, nz * sizeof(T));
      else for (int64_t j = 0; j < n; ++j) for (int64_t c = 0; c < g; ++c) rw[c * n + j] = src[j * is + c * gin];
      for (int64_t c = 0; c < g; ++c) {
        Item<K>* it = items.data();
        const T* row = rw + c * n;
        for (int64_t j = 0; j < n; ++j) it[j] = Item<K>{K(Traits<D>::key(row[j]) ^ flip), uint32_t(j)};
        it = order_row(mode, it, tmp.data(), cnt.data(), n, k, sorted);
        uint32_t* o = ord.data() + c * m;
        for (int64_t j = 0; j < m; ++j) o[j] = it[j].idx;
      }
      const uint32_t* o = ord.data();
      for (int64_t j = 0; j < m; ++j) {
        for (int64_t c = 0; c < g; ++c) {
          uint32_t s = o[c * m + j];
          vals[oo + j * os + c * gout] = rw[c * n + s];
          inds[oo + j * os + c * gout] = int64_t(s);
        }
      }
      r += g;
    }
  });
}

void dispatch(const SortParams& p, Mode mode) {
  switch (p.dt) {
    case DType::f32: return run<DType::f32>(p, mode);
    case DType::f64: return run<DType::f64>(p, mode);
    case DType::f16: return run<DType::f16>(p, mode);
    case DType::bf16: return run<DType::bf16>(p, mode);
    case DType::i32: return run<DType::i32>(p, mode);
    case DType::i64: return run<DType::i64>(p, mode);
    case DType::b8: return run<DType::b8>(p, mode);
    case DType::u8: return run<DType::u8>(p, mode);
    case DType::i8: return run<DType::i8>(p, mode);
    case DType::i16: return run<DType::i16>(p, mode);
  }
}

}  // namespace

void sort_fwd(const SortParams& p) { dispatch(p, Mode::sort); }
void topk_fwd(const SortParams& p) { dispatch(p, Mode::topk); }
void kthvalue_fwd(const SortParams& p) { dispatch(p, Mode::kth); }

}  // namespace fastdl::cpu
