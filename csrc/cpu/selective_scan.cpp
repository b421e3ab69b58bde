// The selective scan's scalar reference (one channel at a time, the state in a small array)
// and the ISA selection. The vectorised kernels are in selective_scan_vec.cpp.
#include "cpu/selective_scan.h"

#include <cmath>
#include <vector>

#include "core/parallel.h"
#include "cpu/elementwise.h"

namespace fastdl::cpu {

namespace {

template <class T> T softplus(T x) { return x > T(20) ? x : std::log1p(std::exp(x)); }
template <class T> T sigmoid(T x) { return T(1) / (T(1) + std::exp(-x)); }

template <class T> struct View {
  const SelectiveScanParams& p;
  int64_t dpg;  // channels per group
  explicit View(const SelectiveScanParams& q) : p(q), dpg(q.dim / q.groups) {}
  const T* row(const void* base, int64_t b, int64_t d) const { return static_cast<const T*>(base) + (b * p.dim + d) * p.L; }
  const T* bc(const void* base, int64_t b, int64_t d) const {  // B or C of channel d: (N, L)
    return static_cast<const T*>(base) + (b * p.groups + d / dpg) * p.N * p.L;
  }
  T dlt(int64_t b, int64_t d, int64_t l, T* raw = nullptr) const {
    T v = row(p.delta, b, d)[l] + (p.delta_bias ? static_cast<const T*>(p.delta_bias)[d] : T(0));
    if (raw) *raw = v;
    return p.softplus ? softplus(v) : v;
  }
};

template <class T>
void fwd_ref(const SelectiveScanParams& p) {
  View<T> v(p);
  const T* A = static_cast<const T*>(p.A);
  const int64_t N = p.N, nch = scan_chunks(p);
  parallel_for(0, p.batch * p.dim, 1, [&](int64_t r0, int64_t r1) {
    std::vector<T> x(static_cast<size_t>(N));
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t b = r / p.dim, d = r % p.dim;
      const T *u = v.row(p.u, b, d), *Bm = v.bc(p.B, b, d), *Cm = v.bc(p.C, b, d);
      const T* z = p.z ? v.row(p.z, b, d) : nullptr;
      T* out = static_cast<T*>(p.out) + (b * p.dim + d) * p.L;
      std::fill(x.begin(), x.end(), T(0));
      for (int64_t l = 0; l < p.L; ++l) {
        if (p.checkpoints && l % p.chunk == 0)
          for (int64_t n = 0; n < N; ++n)
            static_cast<T*>(p.checkpoints)[((b * p.dim + d) * nch + l / p.chunk) * N + n] = x[size_t(n)];
        const T dl = v.dlt(b, d, l);
        T y = 0;
        for (int64_t n = 0; n < N; ++n) {
          x[size_t(n)] = std::exp(dl * A[d * N + n]) * x[size_t(n)] + dl * Bm[n * p.L + l] * u[l];
          y += x[size_t(n)] * Cm[n * p.L + l];
        }
        T o = y + (p.D ? static_cast<const T*>(p.D)[d] * u[l] : T(0));
        out[l] = z ? o * z[l] * sigmoid(z[l]) : o;
      }
      if (p.last_state)
        for (int64_t n = 0; n < N; ++n) static_cast<T*>(p.last_state)[(b * p.dim + d) * N + n] = x[size_t(n)];
    }
  });
}

// Per channel: recompute every state (L x N, one channel's worth), then walk back in time.
// Channels run one after another (dA, dB, dC sum over batch and channels in a fixed order).
template <class T>
void bwd_ref(const SelectiveScanParams& p) {
  View<T> v(p);
  const T* A = static_cast<const T*>(p.A);
  const int64_t N = p.N, L = p.L;
  T* dA = static_cast<T*>(p.dA);
  T* dB = static_cast<T*>(p.dB);
  T* dC = static_cast<T*>(p.dC);
  std::fill(dA, dA + p.dim * N, T(0));
  std::fill(dB, dB + p.batch * p.groups * N * L, T(0));
  std::fill(dC, dC + p.batch * p.groups * N * L, T(0));
  if (p.dD) std::fill(static_cast<T*>(p.dD), static_cast<T*>(p.dD) + p.dim, T(0));
  if (p.ddelta_bias) std::fill(static_cast<T*>(p.ddelta_bias), static_cast<T*>(p.ddelta_bias) + p.dim, T(0));
  std::vector<T> xs(static_cast<size_t>((L + 1) * N)), h(static_cast<size_t>(N)), dl(static_cast<size_t>(L)),
      raw(static_cast<size_t>(L)), gy(static_cast<size_t>(L));
  for (int64_t b = 0; b < p.batch; ++b)
    for (int64_t d = 0; d < p.dim; ++d) {
      const T *u = v.row(p.u, b, d), *Bm = v.bc(p.B, b, d), *Cm = v.bc(p.C, b, d), *go = v.row(p.gout, b, d);
      const T* z = p.z ? v.row(p.z, b, d) : nullptr;
      const T Dd = p.D ? static_cast<const T*>(p.D)[d] : T(0);
      T* dBm = dB + (b * p.groups + d / v.dpg) * N * L;
      T* dCm = dC + (b * p.groups + d / v.dpg) * N * L;
      T *du = static_cast<T*>(p.du) + (b * p.dim + d) * L, *ddel = static_cast<T*>(p.ddelta) + (b * p.dim + d) * L;
      std::fill(xs.begin(), xs.begin() + N, T(0));   // xs[l + 1] = state after step l
      for (int64_t l = 0; l < L; ++l) {
        dl[size_t(l)] = v.dlt(b, d, l, &raw[size_t(l)]);
        T y = 0;
        for (int64_t n = 0; n < N; ++n) {
          T x = std::exp(dl[size_t(l)] * A[d * N + n]) * xs[size_t(l * N + n)] + dl[size_t(l)] * Bm[n * L + l] * u[l];
          xs[size_t((l + 1) * N + n)] = x;
          y += x * Cm[n * L + l];
        }
        T g = go[l];
        if (z) {
          const T s = sigmoid(z[l]), pre = y + Dd * u[l];
          static_cast<T*>(p.dz)[(b * p.dim + d) * L + l] = g * pre * s * (T(1) + z[l] * (T(1) - s));
          g *= z[l] * s;
        }
        gy[size_t(l)] = g;
        du[l] = g * Dd;
        if (p.dD) static_cast<T*>(p.dD)[d] += g * u[l];
      }
      std::fill(h.begin(), h.end(), T(0));  // h: dL/dx_l carried back through exp(delta A)
      for (int64_t l = L - 1; l >= 0; --l) {
        T gd = 0;
        for (int64_t n = 0; n < N; ++n) {
          const T x = xs[size_t((l + 1) * N + n)], xp = xs[size_t(l * N + n)];
          dCm[n * L + l] += gy[size_t(l)] * x;
          const T hn = h[size_t(n)] + gy[size_t(l)] * Cm[n * L + l];
          const T e = std::exp(dl[size_t(l)] * A[d * N + n]);
          const T t = hn * xp * e;                 // dL/d(dA) * dA
          gd += t * A[d * N + n] + hn * Bm[n * L + l] * u[l];
          dA[d * N + n] += t * dl[size_t(l)];
          dBm[n * L + l] += hn * dl[size_t(l)] * u[l];
          du[l] += hn * dl[size_t(l)] * Bm[n * L + l];
          h[size_t(n)] = hn * e;
        }
        if (p.softplus) gd *= raw[size_t(l)] > T(20) ? T(1) : sigmoid(raw[size_t(l)]);
        ddel[l] = gd;
        if (p.ddelta_bias) static_cast<T*>(p.ddelta_bias)[d] += gd;
      }
    }
}

}  // namespace

void selective_scan_fwd_ref(const SelectiveScanParams& p) {
  if (p.dt == DType::f64) fwd_ref<double>(p); else fwd_ref<float>(p);
}
void selective_scan_bwd_ref(const SelectiveScanParams& p) {
  if (p.dt == DType::f64) bwd_ref<double>(p); else bwd_ref<float>(p);
}

#ifdef FASTDL_NO_X86_ISA
namespace avx2 { const ScanKernels& scan_table() { static const ScanKernels k{selective_scan_fwd_ref, selective_scan_bwd_ref}; return k; } }
namespace avx512 { const ScanKernels& scan_table() { return avx2::scan_table(); } }
#endif

const ScanKernels& scan_kernels() {
  static const ScanKernels ref{selective_scan_fwd_ref, selective_scan_bwd_ref};
  return pick_isa(cpu_isa(), ref, avx2::scan_table(), avx512::scan_table());
}

}  // namespace fastdl::cpu
