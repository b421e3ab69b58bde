// The CSR cache of the message passing ops (ops/csr.h). A CSR is built by a stable counting
// sort (edges keep their order within a row, so the summation order is fixed) after every index
// was checked, and cached on the indices' content: a 128-bit fingerprint (two sums of
// independently mixed (position, value) words; integer sums, so the same for any thread count)
// plus the sizes. Keying on content rather than on the tensor object catches in-place writes
// (there is no version counter on storages, and numpy can write a from_numpy view) and lets
// layers that rebuild the same edge_index (self loops added per call) share one CSR.
#include "ops/csr.h"

#include <algorithm>
#include <atomic>
#include <list>
#include <vector>

#include "core/error.h"
#include "core/parallel.h"
#include "ops/ops.h"

namespace fastdl {

namespace {

inline uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

struct Key {
  uint64_t h1, h2;
  int64_t n, n_src, n_dst;
  bool has_src;
  bool operator==(const Key& o) const {
    return h1 == o.h1 && h2 == o.h2 && n == o.n && n_src == o.n_src && n_dst == o.n_dst && has_src == o.has_src;
  }
};

void fingerprint(const int64_t* v, int64_t n, uint64_t salt, uint64_t& h1, uint64_t& h2) {
  std::atomic<uint64_t> a1{0}, a2{0};
  parallel_for(0, n, int64_t(1) << 18, [&](int64_t b, int64_t e) {
    uint64_t s1 = 0, s2 = 0;
    for (int64_t k = b; k < e; ++k) {
      const uint64_t w = uint64_t(v[k]) + uint64_t(k) * 0x9E3779B97F4A7C15ull + salt;
      s1 += mix64(w);
      s2 += mix64(w ^ 0xD1B54A32D192ED03ull) * 0x2545F4914F6CDD1Dull;
    }
    a1.fetch_add(s1);
    a2.fetch_add(s2);
  });
  h1 += a1.load();
  h2 += a2.load();
}

void check_range(const int64_t* v, int64_t n, int64_t bound, const char* op, const char* name) {
  std::atomic<int64_t> first{n};
  parallel_for(0, n, int64_t(1) << 18, [&](int64_t b, int64_t e) {
    for (int64_t k = b; k < e; ++k)
      if (uint64_t(v[k]) >= uint64_t(bound)) {
        int64_t cur = first.load();
        while (k < cur && !first.compare_exchange_weak(cur, k)) {}
        return;
      }
  });
  const int64_t k = first.load();
  FASTDL_CHECK(k == n, IndexError, op, ": ", name, "[", k, "] = ", k < n ? v[k] : 0, " is out of range for ", bound,
               " nodes (valid: 0 <= index < ", bound, ")");
}

// Stable counting sort of entries by `key` (n entries, keys < rows).
Ref<Csr> build(const int64_t* src, const int64_t* dst, int64_t n, int64_t n_src, int64_t n_dst) {
  Ref<Csr> c = make_ref<Csr>();
  c->rows = n_dst;
  c->cols = n_src;
  c->nnz = n;
  c->rowptr = zeros(Dims{n_dst + 1}, DType::i64);
  c->col = empty(Dims{n}, DType::i64);
  c->eid = src ? empty(Dims{n}, DType::i64) : c->col;
  int64_t* rp = c->rowptr.data<int64_t>();
  int64_t* col = c->col.data<int64_t>();
  int64_t* eid = c->eid.data<int64_t>();
  for (int64_t e = 0; e < n; ++e) ++rp[dst[e] + 1];
  for (int64_t r = 0; r < n_dst; ++r) rp[r + 1] += rp[r];
  std::vector<int64_t> pos(rp, rp + n_dst);
  for (int64_t e = 0; e < n; ++e) {
    const int64_t k = pos[size_t(dst[e])]++;
    col[k] = src ? src[e] : e;
    if (src) eid[k] = e;
  }
  return c;
}

struct Cache {
  std::mutex mu;
  std::list<std::pair<Key, Ref<Csr>>> lru;  // most recent first
  int64_t builds = 0;
  static constexpr size_t kMax = 8;
};
Cache& cache() {
  static Cache* c = new Cache();  // never destroyed: outlives tensors released at exit
  return *c;
}

}  // namespace

Ref<Csr> Csr::transposed() {
  std::lock_guard<std::mutex> g(mu_);
  if (t_) return t_;
  Ref<Csr> t = make_ref<Csr>();
  t->rows = cols;
  t->cols = rows;
  t->nnz = nnz;
  t->rowptr = zeros(Dims{cols + 1}, DType::i64);
  t->col = empty(Dims{nnz}, DType::i64);
  t->eid = empty(Dims{nnz}, DType::i64);
  const int64_t *rp = rowptr.data<int64_t>(), *c = col.data<int64_t>(), *e = eid.data<int64_t>();
  int64_t *trp = t->rowptr.data<int64_t>(), *tc = t->col.data<int64_t>(), *te = t->eid.data<int64_t>();
  for (int64_t k = 0; k < nnz; ++k) ++trp[c[k] + 1];
  for (int64_t r = 0; r < cols; ++r) trp[r + 1] += trp[r];
  std::vector<int64_t> pos(trp, trp + cols);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t k = rp[r]; k < rp[r + 1]; ++k) {
      const int64_t q = pos[size_t(c[k])]++;
      tc[q] = r;
      te[q] = e[k];
    }
  t_ = t;
  return t_;
}

const Tensor* Csr::on_device(Device d) {
  std::lock_guard<std::mutex> g(mu_);
  if (!d_[0].defined() || !(dev_ == d)) {
    dev_ = d;
    d_[0] = to_device(rowptr, d);
    d_[1] = to_device(col, d);
    d_[2] = eid.same(col) ? d_[1] : to_device(eid, d);
  }
  return d_;
}

Ref<Csr> csr_for(const Tensor& src, const Tensor& dst, int64_t n_src, int64_t n_dst, const char* op,
                 const char* src_name, const char* dst_name) {
  const int64_t n = dst.numel();
  const int64_t* dp = dst.data<int64_t>();
  const int64_t* sp = src.defined() ? src.data<int64_t>() : nullptr;
  Key key{0, 0, n, n_src, n_dst, sp != nullptr};
  fingerprint(dp, n, 0x51ED270B27ull, key.h1, key.h2);
  if (sp) fingerprint(sp, n, 0x8CB92BA72F3D8DD7ull, key.h1, key.h2);
  Cache& C = cache();
  {
    std::lock_guard<std::mutex> g(C.mu);
    for (auto it = C.lru.begin(); it != C.lru.end(); ++it)
      if (it->first == key) {
        C.lru.splice(C.lru.begin(), C.lru, it);
        return C.lru.front().second;
      }
  }
  if (sp) check_range(sp, n, n_src, op, src_name);
  check_range(dp, n, n_dst, op, dst_name);
  Ref<Csr> c = build(sp, dp, n, n_src, n_dst);
  std::lock_guard<std::mutex> g(C.mu);
  ++C.builds;
  C.lru.emplace_front(key, c);
  if (C.lru.size() > Cache::kMax) C.lru.pop_back();
  return c;
}

void csr_cache_clear() {
  std::lock_guard<std::mutex> g(cache().mu);
  cache().lru.clear();
}
int64_t csr_cache_size() {
  std::lock_guard<std::mutex> g(cache().mu);
  return int64_t(cache().lru.size());
}
int64_t csr_cache_builds() {
  std::lock_guard<std::mutex> g(cache().mu);
  return cache().builds;
}

}  // namespace fastdl
