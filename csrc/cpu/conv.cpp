// 2-D convolution: the scalar reference (plain loops over one output / input / weight plane
// at a time) and the ISA selection. The implicit-GEMM and direct kernels are in conv_vec.cpp.
#include "cpu/conv.h"

#include <algorithm>

#include "core/parallel.h"
#include "cpu/elementwise.h"

namespace fastdl::cpu {

namespace {

// y[n, k] = b[k] + sum_{c, r, s} w[k, c, r, s] x[n, g Cg + c] shifted; one (n, k) plane per task.
template <class T>
void fwd_ref(const Conv2dParams& p) {
  const T* x = static_cast<const T*>(p.x);
  const T* w = static_cast<const T*>(p.w);
  const T* b = static_cast<const T*>(p.b);
  T* y = static_cast<T*>(p.y);
  const int64_t Cg = p.C / p.groups, Kg = p.K / p.groups, HW = p.H * p.W, OHW = p.OH * p.OW;
  parallel_for(0, p.N * p.K, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t n = t / p.K, k = t % p.K, g = k / Kg;
      T* yp = y + t * OHW;
      std::fill(yp, yp + OHW, b ? b[k] : T(0));
      for (int64_t c = 0; c < Cg; ++c) {
        const T* xp = x + (n * p.C + g * Cg + c) * HW;
        for (int64_t r = 0; r < p.R; ++r) {
          int64_t oh0, oh1;
          conv_out_span(p.OH, p.H, p.sh, p.ph, r * p.dh, oh0, oh1);
          for (int64_t s = 0; s < p.S; ++s) {
            int64_t ow0, ow1;
            conv_out_span(p.OW, p.W, p.sw, p.pw, s * p.dw, ow0, ow1);
            const T wv = w[((k * Cg + c) * p.R + r) * p.S + s];
            for (int64_t oh = oh0; oh < oh1; ++oh) {
              const T* xr = xp + (oh * p.sh - p.ph + r * p.dh) * p.W - p.pw + s * p.dw;
              T* yr = yp + oh * p.OW;
              for (int64_t ow = ow0; ow < ow1; ++ow) yr[ow] += wv * xr[ow * p.sw];
            }
          }
        }
      }
    }
  });
}

// gx[n, c] = sum_{k in c's group, r, s} w[k, c, r, s] gy[n, k] scattered back; one (n, c) plane per task.
template <class T>
void bwd_input_ref(const Conv2dParams& p) {
  const T* gy = static_cast<const T*>(p.gy);
  const T* w = static_cast<const T*>(p.w);
  T* gx = static_cast<T*>(p.gx);
  const int64_t Cg = p.C / p.groups, Kg = p.K / p.groups, HW = p.H * p.W, OHW = p.OH * p.OW;
  parallel_for(0, p.N * p.C, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t n = t / p.C, ci = t % p.C, g = ci / Cg, c = ci % Cg;
      T* xp = gx + t * HW;
      std::fill(xp, xp + HW, T(0));
      for (int64_t k = g * Kg; k < (g + 1) * Kg; ++k) {
        const T* yp = gy + (n * p.K + k) * OHW;
        for (int64_t r = 0; r < p.R; ++r) {
          int64_t oh0, oh1;
          conv_out_span(p.OH, p.H, p.sh, p.ph, r * p.dh, oh0, oh1);
          for (int64_t s = 0; s < p.S; ++s) {
            int64_t ow0, ow1;
            conv_out_span(p.OW, p.W, p.sw, p.pw, s * p.dw, ow0, ow1);
            const T wv = w[((k * Cg + c) * p.R + r) * p.S + s];
            for (int64_t oh = oh0; oh < oh1; ++oh) {
              T* xr = xp + (oh * p.sh - p.ph + r * p.dh) * p.W - p.pw + s * p.dw;
              const T* yr = yp + oh * p.OW;
              for (int64_t ow = ow0; ow < ow1; ++ow) xr[ow * p.sw] += wv * yr[ow];
            }
          }
        }
      }
    }
  });
}

// gw[k, c, r, s] = sum_{n, oh, ow} gy[n, k, oh, ow] x[n, g Cg + c, ...]; gb[k] = sum gy[n, k].
// One output channel k per task: every sum runs in a fixed order.
template <class T>
void bwd_weight_ref(const Conv2dParams& p) {
  const T* gy = static_cast<const T*>(p.gy);
  const T* x = static_cast<const T*>(p.x);
  T* gw = static_cast<T*>(p.gw);
  T* gb = static_cast<T*>(p.gb);
  const int64_t Cg = p.C / p.groups, Kg = p.K / p.groups, HW = p.H * p.W, OHW = p.OH * p.OW;
  parallel_for(0, p.K, 1, [&](int64_t k0, int64_t k1) {
    for (int64_t k = k0; k < k1; ++k) {
      const int64_t g = k / Kg;
      for (int64_t c = 0; c < Cg; ++c)
        for (int64_t r = 0; r < p.R; ++r) {
          int64_t oh0, oh1;
          conv_out_span(p.OH, p.H, p.sh, p.ph, r * p.dh, oh0, oh1);
          for (int64_t s = 0; s < p.S; ++s) {
            int64_t ow0, ow1;
            conv_out_span(p.OW, p.W, p.sw, p.pw, s * p.dw, ow0, ow1);
            T acc = 0;
            for (int64_t n = 0; n < p.N; ++n) {
              const T* xp = x + (n * p.C + g * Cg + c) * HW;
              const T* yp = gy + (n * p.K + k) * OHW;
              for (int64_t oh = oh0; oh < oh1; ++oh) {
                const T* xr = xp + (oh * p.sh - p.ph + r * p.dh) * p.W - p.pw + s * p.dw;
                const T* yr = yp + oh * p.OW;
                for (int64_t ow = ow0; ow < ow1; ++ow) acc += yr[ow] * xr[ow * p.sw];
              }
            }
            gw[((k * Cg + c) * p.R + r) * p.S + s] = acc;
          }
        }
      if (gb) {
        T acc = 0;
        for (int64_t n = 0; n < p.N; ++n) {
          const T* yp = gy + (n * p.K + k) * OHW;
          for (int64_t i = 0; i < OHW; ++i) acc += yp[i];
        }
        gb[k] = acc;
      }
    }
  });
}

template <class T>
void bias_add(void* y_, const void* b_, int64_t N, int64_t K, int64_t HW) {
  T* y = static_cast<T*>(y_);
  const T* b = static_cast<const T*>(b_);
  parallel_for(0, N * K, std::max<int64_t>(1, 16384 / std::max<int64_t>(HW, 1)), [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const T v = b[t % K];
      T* yp = y + t * HW;
      for (int64_t i = 0; i < HW; ++i) yp[i] += v;
    }
  });
}

template <class T>
void bias_grad(const void* gy_, void* gb_, int64_t N, int64_t K, int64_t HW) {
  const T* gy = static_cast<const T*>(gy_);
  T* gb = static_cast<T*>(gb_);
  parallel_for(0, K, std::max<int64_t>(1, 16384 / std::max<int64_t>(N * HW, 1)), [&](int64_t k0, int64_t k1) {
    for (int64_t k = k0; k < k1; ++k) {
      T acc = 0;
      for (int64_t n = 0; n < N; ++n) {
        const T* yp = gy + (n * K + k) * HW;
        T part = 0;
        for (int64_t i = 0; i < HW; ++i) part += yp[i];
        acc += part;
      }
      gb[k] = acc;
    }
  });
}

}  // namespace

void conv2d_fwd_ref(const Conv2dParams& p) { if (p.dt == DType::f64) fwd_ref<double>(p); else fwd_ref<float>(p); }
void conv2d_bwd_input_ref(const Conv2dParams& p) {
  if (p.dt == DType::f64) bwd_input_ref<double>(p); else bwd_input_ref<float>(p);
}
void conv2d_bwd_weight_ref(const Conv2dParams& p) {
  if (p.dt == DType::f64) bwd_weight_ref<double>(p); else bwd_weight_ref<float>(p);
}
void conv_bias_add(DType dt, void* y, const void* b, int64_t N, int64_t K, int64_t HW) {
  if (dt == DType::f64) bias_add<double>(y, b, N, K, HW); else bias_add<float>(y, b, N, K, HW);
}
void conv_bias_grad(DType dt, const void* gy, void* gb, int64_t N, int64_t K, int64_t HW) {
  if (dt == DType::f64) bias_grad<double>(gy, gb, N, K, HW); else bias_grad<float>(gy, gb, N, K, HW);
}

const ConvKernels& conv_ref_kernels() {
  static const ConvKernels k{conv2d_fwd_ref, conv2d_bwd_input_ref, conv2d_bwd_weight_ref, "ref"};
  return k;
}

#ifdef FASTDL_NO_X86_ISA
namespace avx2 { const ConvKernels& conv_table() { return conv_ref_kernels(); } }
namespace avx512 { const ConvKernels& conv_table() { return conv_ref_kernels(); } }
#endif

const ConvKernels& conv_kernels() {
  return pick_isa(cpu_isa(), conv_ref_kernels(), avx2::conv_table(), avx512::conv_table());
}

}  // namespace fastdl::cpu
