// Native benchmark of the sorting kernels (cpu/sort.h), without Python: validates sort, topk and
// kthvalue on float32 rows with ties, NaN and signed zeros against a plain reference (std::stable_sort
// with NaN largest), then times sort along the last and the first dim, topk and kthvalue, and prints
// ms, elements per second and GB/s (input read once, values + int64 indices written once).
//   sort [--rows 1024] [--n 4096] [--vocab 50257] [--k 50] [--threads N]
#include <random>

#include "common.h"
#include "cpu/sort.h"

using namespace fastdl;
using namespace fastdl::bench;

namespace {

// NaN is the largest value; -0.0 ties +0.0 (operator< already says so).
bool less_nan(float a, float b) { return !std::isnan(a) && (std::isnan(b) || a < b); }

// Row-major (rows, n) input ordered along n (dim 1) or rows (dim 0); out is (rows, m) or (m, n).
cpu::SortParams params(const std::vector<float>& x, int64_t rows, int64_t n, int dim, int64_t m,
                       std::vector<float>& v, std::vector<int64_t>& i) {
  cpu::SortParams p{};
  p.dt = DType::f32;
  p.in = reinterpret_cast<const char*>(x.data());
  v.assign(size_t(dim == 1 ? rows * m : m * n), 0.f);
  i.assign(v.size(), -1);
  p.values = reinterpret_cast<char*>(v.data());
  p.indices = i.data();
  p.n = dim == 1 ? n : rows;
  p.in_stride = dim == 1 ? 1 : n;
  p.out_stride = dim == 1 ? 1 : n;
  p.shape = Dims{dim == 1 ? rows : n};
  p.in_strides = Dims{dim == 1 ? n : 1};
  p.out_strides = Dims{dim == 1 ? m : 1};
  return p;
}

// Checks rows of (values, indices) against a stable reference sort of each input row.
bool check(const char* what, const std::vector<float>& x, int64_t rows, int64_t n, int64_t k, bool largest,
           bool exact_idx, int64_t first, int64_t m, const std::vector<float>& v, const std::vector<int64_t>& idx) {
  std::vector<int64_t> ord(static_cast<size_t>(n));
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = x.data() + r * n;
    for (int64_t j = 0; j < n; ++j) ord[size_t(j)] = j;
    std::stable_sort(ord.begin(), ord.end(), [&](int64_t a, int64_t b) {
      return largest ? less_nan(row[b], row[a]) : less_nan(row[a], row[b]);
    });
    for (int64_t j = 0; j < m; ++j) {
      float want = row[ord[size_t(first + j)]], got = v[size_t(r * m + j)];
      int64_t gi = idx[size_t(r * m + j)];
      bool ok = (std::isnan(want) ? std::isnan(got) : got == want) && gi >= 0 && gi < n &&
                (exact_idx ? gi == ord[size_t(first + j)] : (std::isnan(got) ? std::isnan(row[gi]) : row[gi] == got));
      if (!ok) {
        std::printf("%s: MISMATCH row %ld pos %ld: got %g (index %ld), want %g (index %ld)\n", what, long(r),
                    long(j), double(got), long(gi), double(want), long(ord[size_t(first + j)]));
        return false;
      }
    }
  }
  return true;
}

std::vector<float> make_rows(int64_t rows, int64_t n, bool specials, uint32_t seed) {
  std::mt19937 g(seed);
  std::normal_distribution<float> nd;
  std::vector<float> x(size_t(rows * n));
  for (float& e : x) e = specials && g() % 3 == 0 ? float(int(g() % 7) - 3) * 0.5f : nd(g);
  if (specials)
    for (size_t e = 0; e < x.size(); e += 17) x[e] = (e / 17) % 3 == 0 ? NAN : (e / 17) % 3 == 1 ? -0.f : INFINITY;
  return x;
}

bool validate() {
  bool ok = true;
  std::vector<float> v;
  std::vector<int64_t> i;
  for (int64_t n : {37, 300, 5000}) {
    const int64_t rows = 7;
    auto x = make_rows(rows, n, true, uint32_t(n));
    for (bool desc : {false, true}) {
      auto p = params(x, rows, n, 1, n, v, i);
      p.descending = desc;
      cpu::sort_fwd(p);
      ok &= check(desc ? "sort descending" : "sort", x, rows, n, n, desc, true, 0, n, v, i);
    }
    for (int64_t k : {int64_t(1), int64_t(3), n / 2}) {
      auto p = params(x, rows, n, 1, k, v, i);
      p.k = k;
      p.descending = p.sorted = true;
      cpu::topk_fwd(p);
      ok &= check("topk", x, rows, n, k, true, false, 0, k, v, i);
      p = params(x, rows, n, 1, 1, v, i);
      p.k = k;
      cpu::kthvalue_fwd(p);
      ok &= check("kthvalue", x, rows, n, k, false, true, k - 1, 1, v, i);
    }
  }
  return ok;
}

void report(const char* name, int64_t elems, int64_t outs, double s) {
  double gb = (double(elems) * 4 + double(outs) * 12) / s * 1e-9;
  std::printf("  %-34s %9.3f ms  %8.1f Melem/s  %6.2f GB/s\n", name, s * 1e3, double(elems) / s * 1e-6, gb);
}

}  // namespace

int main(int argc, char** argv) {
  Args a{argc, argv};
  if (!apply_impl_threads(a)) return 2;
  const int64_t rows = a.geti("--rows", 1024), n = a.geti("--n", 4096), vocab = a.geti("--vocab", 50257),
                k = a.geti("--k", 50);
  if (!validate()) return 1;
  std::printf("sort, topk, kthvalue match the stable reference (ties, NaN, -0.0, rows of 37 / 300 / 5000)\n");
  std::printf("%d threads\n", get_num_threads());
  std::vector<float> v;
  std::vector<int64_t> i;
  auto x = make_rows(rows, n, false, 1);
  for (int dim : {1, 0}) {
    auto p = params(x, rows, n, dim, dim == 1 ? n : rows, v, i);
    double s = time_median([&] { cpu::sort_fwd(p); });
    char name[64];
    std::snprintf(name, sizeof name, "sort (%ld,%ld) dim %d", long(rows), long(n), dim);
    report(name, rows * n, rows * n, s);
  }
  auto logits = make_rows(64, vocab, false, 2);
  auto p = params(logits, 64, vocab, 1, k, v, i);
  p.k = k;
  p.descending = p.sorted = true;
  double s = time_median([&] { cpu::topk_fwd(p); });
  char name[64];
  std::snprintf(name, sizeof name, "topk k=%ld (64,%ld)", long(k), long(vocab));
  report(name, 64 * vocab, 64 * k, s);
  p = params(x, rows, n, 1, 1, v, i);
  p.k = 100;
  s = time_median([&] { cpu::kthvalue_fwd(p); });
  std::snprintf(name, sizeof name, "kthvalue k=100 (%ld,%ld)", long(rows), long(n));
  report(name, rows * n, rows, s);
  return 0;
}
