// Native benchmark of the random fill kernels (cpu/random.h), without Python: validates the fills
// against the scalar Philox reference (kernels/random.h philox_word; uniform and 64-bit draws bit
// for bit, normals against Box-Muller in double with libm), then times uniform and normal fills in
// float32, bfloat16 and float64 and prints ms, elements per second and GB/s of output written.
//   random [--n 4194304] [--impl ref|avx2|avx512] [--threads N]
#include "common.h"
#include "core/dtype.h"
#include "cpu/random.h"
#include "kernels/random.h"

using namespace fastdl;
using namespace fastdl::bench;

namespace {

constexpr uint64_t kKey = 0x243F6A8885A308D3ull;

double u53_ref(uint64_t key, int64_t i) {  // float64 element i: words 2 (i % 32 / 16) + {0, 1} of its block
  const uint64_t g = uint64_t(i) / 32, q = uint64_t(i) % 32, s = 64 * g + 32 * (q / 16) + q % 16;
  return double(philox_word(key, s) >> 6) * 0x1p-26 + double(philox_word(key, s + 16) >> 5) * 0x1p-53;
}

bool validate() {
  const auto& k = cpu::random_kernels();
  bool ok = true;
  auto fail = [&](const char* what, int64_t i, double got, double want) {
    std::printf("%s: MISMATCH at %ld: got %.17g, want %.17g\n", what, long(i), got, want);
    ok = false;
  };
  for (int64_t n : {1, 63, 64, 1000, 70001}) {
    std::vector<float> f(static_cast<size_t>(n)), z(static_cast<size_t>(n));
    std::vector<double> d(static_cast<size_t>(n)), zd(static_cast<size_t>(n));
    std::vector<uint64_t> b(static_cast<size_t>(n));
    k.uniform(DType::f32, f.data(), n, kKey, 0.0, 1.0, std::nextafter(1.0f, 0.0f));
    k.uniform(DType::f64, d.data(), n, kKey, 0.0, 1.0, std::nextafter(1.0, 0.0));
    k.normal(DType::f32, z.data(), n, kKey, 0.0, 1.0);
    k.normal(DType::f64, zd.data(), n, kKey, 0.0, 1.0);
    k.bits64(b.data(), n, kKey, 0);
    for (int64_t i = 0; i < n && ok; ++i) {
      const uint64_t s = uint64_t(i);
      if (double(f[size_t(i)]) != double(philox_word(kKey, s) >> 8) * 0x1p-24) fail("uniform f32", i, f[size_t(i)], 0);
      if (d[size_t(i)] != u53_ref(kKey, i)) fail("uniform f64", i, d[size_t(i)], u53_ref(kKey, i));
      const uint64_t q = s % 32, sb = 64 * (s / 32) + 32 * (q / 16) + q % 16;
      const uint64_t want = (uint64_t(philox_word(kKey, sb)) << 32) | philox_word(kKey, sb + 16);
      if (b[size_t(i)] != want) fail("bits64", i, double(b[size_t(i)]), double(want));
      // float32 normal: slot s pairs with its partner 16 slots away (words 2k, 2k + 1 of a block)
      const uint64_t base = s - (s % 32 >= 16 ? 16 : 0);
      // u1 as the kernel rounds it to float (near 1 that rounding, not the math, sets r's precision)
      const double u1 = float(int32_t(philox_word(kKey, base) >> 1)) * 0x1p-31f + 0x1p-32f;
      const double th = 6.283185307179586 * double(philox_word(kKey, base + 16) >> 8) * 0x1p-24;
      const double r = std::sqrt(-2 * std::log(u1)), zw = s == base ? r * std::cos(th) : r * std::sin(th);
      if (std::fabs(z[size_t(i)] - zw) > 2e-6 * std::max(1.0, std::fabs(zw))) fail("normal f32", i, z[size_t(i)], zw);
      const uint64_t g = s / 32, l = s % 16;
      const double v1 = 1 - u53_ref(kKey, int64_t(32 * g + l)), v2 = u53_ref(kKey, int64_t(32 * g + 16 + l));
      const double rd = std::sqrt(-2 * std::log(v1)), t = 6.283185307179586 * v2;
      const double zdw = (s % 32) < 16 ? rd * std::cos(t) : rd * std::sin(t);
      if (std::fabs(zd[size_t(i)] - zdw) > 1e-13 * std::max(1.0, std::fabs(zdw)))
        fail("normal f64", i, zd[size_t(i)], zdw);
    }
  }
  return ok;
}

void report(const char* name, int64_t n, int bytes, double s) {
  std::printf("  %-26s %9.3f ms  %8.1f Melem/s  %6.2f GB/s\n", name, s * 1e3, double(n) / s * 1e-6,
              double(n) * bytes / s * 1e-9);
}

}  // namespace

int main(int argc, char** argv) {
  Args a{argc, argv};
  if (!apply_impl_threads(a)) return 2;
  const int64_t n = a.geti("--n", 1024 * 4096);
  if (!validate()) return 1;
  std::printf("uniform, normal (float32, float64) and 64-bit draws match the Philox reference\n");
  std::printf("%s, %d threads, %ld elements\n", isa_name(cpu_isa()), get_num_threads(), long(n));
  const auto& k = cpu::random_kernels();
  std::vector<double> buf(static_cast<size_t>(n));  // room for n float64
  void* p = buf.data();
  uint64_t key = 1;
  struct Row { const char* name; DType dt; bool normal; int bytes; };
  for (const Row& r : {Row{"uniform float32", DType::f32, false, 4}, Row{"normal float32", DType::f32, true, 4},
                       Row{"uniform bfloat16", DType::bf16, false, 2}, Row{"normal bfloat16", DType::bf16, true, 2},
                       Row{"uniform float64", DType::f64, false, 8}, Row{"normal float64", DType::f64, true, 8}}) {
    const double s = time_median([&] {
      if (r.normal) k.normal(r.dt, p, n, ++key, 0.0, 1.0);
      else k.uniform(r.dt, p, n, ++key, 0.0, 1.0, 0.99);
    });
    report(r.name, n, r.bytes, s);
  }
  return 0;
}
