// Fused optimizer-step kernels, compiled once per ISA (the ref build, with no ISA flags, is
// the scalar reference). Each parameter is one flat loop over restrict pointers, with every
// hyperparameter hoisted out so the compiler vectorises it; parameters above kGrain elements
// are split over the thread pool. The update rules follow PyTorch's single-tensor code paths
// operation by operation so float64 trajectories agree to rounding.
#include <cmath>
#include <vector>

#include "core/parallel.h"
#include "cpu/optim.h"

namespace fastdl::cpu::FASTDL_ISA_NS {
namespace {

constexpr int64_t kGrain = 16384;

template <class F> void over(int64_t n, const F& f) { parallel_for(0, n, kGrain, f); }

// p, g, buf: (n,).  d = g (+ wd p); buf = fresh ? d : mom buf + (1 - damp) d; p -= lr d'.
template <class T> void sgd(const OptimHyper& h, const OptimTensor& t) {
  T* __restrict p = static_cast<T*>(t.p);
  const T* __restrict g = static_cast<const T*>(t.g);
  T* __restrict buf = static_cast<T*>(t.s0);
  const T sg = h.maximize ? T(-1) : T(1), wd = T(h.weight_decay), lr = T(h.lr), mom = T(h.momentum);
  const T keep = T(1) - T(h.dampening);
  const bool use_wd = h.weight_decay != 0, fresh = t.step <= 1, nest = h.nesterov;
  over(t.n, [&](int64_t b, int64_t e) {
    if (!buf) {
      if (use_wd) for (int64_t i = b; i < e; ++i) p[i] -= lr * (sg * g[i] + wd * p[i]);
      else for (int64_t i = b; i < e; ++i) p[i] -= lr * (sg * g[i]);
      return;
    }
    for (int64_t i = b; i < e; ++i) {
      T d = sg * g[i];
      if (use_wd) d += wd * p[i];
      T m = fresh ? d : mom * buf[i] + keep * d;
      buf[i] = m;
      p[i] -= lr * (nest ? d + mom * m : m);
    }
  });
}

// Adam / AdamW: m = lerp(m, g, 1-b1); v = b2 v + (1-b2) g^2; vmax = max(vmax, v);
// p -= lr/bc1 * m / (sqrt(v)/sqrt(bc2) + eps).
template <class T> void adam(const OptimHyper& h, const OptimTensor& t) {
  T* __restrict p = static_cast<T*>(t.p);
  const T* __restrict g = static_cast<const T*>(t.g);
  T* __restrict m = static_cast<T*>(t.s0);
  T* __restrict v = static_cast<T*>(t.s1);
  T* __restrict vmax = static_cast<T*>(t.s2);
  const double bc1 = 1 - std::pow(h.beta1, t.step), bc2 = 1 - std::pow(h.beta2, t.step);
  const T sg = h.maximize ? T(-1) : T(1), wd = T(h.weight_decay), w1 = T(1 - h.beta1), b2 = T(h.beta2);
  const T w2 = T(1 - h.beta2), step_size = T(h.lr / bc1), inv_bc2s = T(1 / std::sqrt(bc2)), eps = T(h.eps);
  const T decay = T(1 - h.lr * h.weight_decay);
  const bool l2 = h.weight_decay != 0 && !h.decoupled, dec = h.weight_decay != 0 && h.decoupled;
  const bool ams = h.amsgrad && vmax;
  over(t.n, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      T gi = sg * g[i];
      T pi = p[i];
      if (dec) pi *= decay;
      if (l2) gi += wd * pi;
      T mi = m[i] + w1 * (gi - m[i]);
      T vi = v[i] * b2 + w2 * gi * gi;
      m[i] = mi;
      v[i] = vi;
      if (ams) { vi = vmax[i] > vi ? vmax[i] : vi; vmax[i] = vi; }
      p[i] = pi - step_size * (mi / (std::sqrt(vi) * inv_bc2s + eps));
    }
  });
}

// Adagrad: clr = lr / (1 + (step-1) lr_decay); sum += g^2; p -= clr g / (sqrt(sum) + eps).
template <class T> void adagrad(const OptimHyper& h, const OptimTensor& t) {
  T* __restrict p = static_cast<T*>(t.p);
  const T* __restrict g = static_cast<const T*>(t.g);
  T* __restrict s = static_cast<T*>(t.s0);
  const T sg = h.maximize ? T(-1) : T(1), wd = T(h.weight_decay), eps = T(h.eps);
  const T clr = T(h.lr / (1 + (t.step - 1) * h.lr_decay));
  const bool use_wd = h.weight_decay != 0;
  over(t.n, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      T gi = sg * g[i];
      if (use_wd) gi += wd * p[i];
      T si = s[i] + gi * gi;
      s[i] = si;
      p[i] -= clr * (gi / (std::sqrt(si) + eps));
    }
  });
}

// RMSprop: sq = alpha sq + (1-alpha) g^2; centered: ga = lerp(ga, g, 1-alpha),
// avg = sqrt(sq - ga^2) + eps, else sqrt(sq) + eps; buf = mom buf + g/avg; p -= lr (buf or g/avg).
template <class T> void rmsprop(const OptimHyper& h, const OptimTensor& t) {
  T* __restrict p = static_cast<T*>(t.p);
  const T* __restrict g = static_cast<const T*>(t.g);
  T* __restrict sq = static_cast<T*>(t.s0);
  T* __restrict buf = static_cast<T*>(t.s1);
  T* __restrict ga = static_cast<T*>(t.s2);
  const T sg = h.maximize ? T(-1) : T(1), wd = T(h.weight_decay), eps = T(h.eps), lr = T(h.lr);
  const T a = T(h.alpha), wa = T(1 - h.alpha), mom = T(h.momentum);
  const bool use_wd = h.weight_decay != 0, centered = h.centered && ga, use_mom = h.momentum > 0 && buf;
  over(t.n, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      T gi = sg * g[i];
      if (use_wd) gi += wd * p[i];
      T si = a * sq[i] + wa * gi * gi;
      sq[i] = si;
      T avg;
      if (centered) {
        T gai = ga[i] + wa * (gi - ga[i]);
        ga[i] = gai;
        avg = std::sqrt(si - gai * gai) + eps;
      } else {
        avg = std::sqrt(si) + eps;
      }
      if (use_mom) {
        T bi = mom * buf[i] + gi / avg;
        buf[i] = bi;
        p[i] -= lr * bi;
      } else {
        p[i] -= lr * (gi / avg);
      }
    }
  });
}

// LAMB (You et al. 2019, Algorithm 2): Adam moments with bias correction,
// u = m_hat / (sqrt(v_hat) + eps) + wd p, trust = ||p|| / ||u|| (1 when either is 0),
// p -= lr trust u. Pass 1 updates m, v and sums ||p||^2, ||u||^2 per fixed block (a
// deterministic order whatever the thread count); pass 2 recomputes u and applies it.
template <class T> void lamb(const OptimHyper& h, const OptimTensor& t) {
  T* __restrict p = static_cast<T*>(t.p);
  const T* __restrict g = static_cast<const T*>(t.g);
  T* __restrict m = static_cast<T*>(t.s0);
  T* __restrict v = static_cast<T*>(t.s1);
  const double bc1 = h.bias_correction ? 1 - std::pow(h.beta1, t.step) : 1.0;
  const double bc2 = h.bias_correction ? 1 - std::pow(h.beta2, t.step) : 1.0;
  const T sg = h.maximize ? T(-1) : T(1), wd = T(h.weight_decay), b1 = T(h.beta1), b2 = T(h.beta2);
  const T w1 = T(1 - h.beta1), w2 = T(1 - h.beta2), ib1 = T(1 / bc1), ib2 = T(1 / bc2), eps = T(h.eps);
  constexpr int64_t kBlock = 8192;
  const int64_t nb = (t.n + kBlock - 1) / kBlock;
  std::vector<double> part(size_t(2 * nb), 0.0);
  parallel_for(0, nb, 2, [&](int64_t bb, int64_t be) {
    for (int64_t blk = bb; blk < be; ++blk) {
      int64_t b = blk * kBlock, e = b + kBlock < t.n ? b + kBlock : t.n;
      double pp = 0, uu = 0;
      for (int64_t i = b; i < e; ++i) {
        T gi = sg * g[i];
        T mi = b1 * m[i] + w1 * gi, vi = b2 * v[i] + w2 * gi * gi;
        m[i] = mi;
        v[i] = vi;
        T u = (mi * ib1) / (std::sqrt(vi * ib2) + eps) + wd * p[i];
        pp += double(p[i]) * double(p[i]);
        uu += double(u) * double(u);
      }
      part[size_t(2 * blk)] = pp;
      part[size_t(2 * blk + 1)] = uu;
    }
  });
  double pn = 0, un = 0;
  for (int64_t blk = 0; blk < nb; ++blk) { pn += part[size_t(2 * blk)]; un += part[size_t(2 * blk + 1)]; }
  pn = std::sqrt(pn);
  un = std::sqrt(un);
  const T scale = T(h.lr * (pn > 0 && un > 0 ? pn / un : 1.0));
  over(t.n, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) p[i] -= scale * ((m[i] * ib1) / (std::sqrt(v[i] * ib2) + eps) + wd * p[i]);
  });
}


// NAdam (Dozat 2016): g' = g (+ wd p, or p *= 1 - lr wd when decoupled); m = lerp(m, g', 1-b1);
// v = b2 v + (1-b2) g'^2; d = sqrt(v / bc2) + eps; p += k1 g'/d; p += k2 m/d (optim_scalars).
template <class T> void nadam(const OptimHyper& h, const OptimTensor& t) {
  T* __restrict p = static_cast<T*>(t.p);
  const T* __restrict g = static_cast<const T*>(t.g);
  const T sg = h.maximize ? T(-1) : T(1), wd = T(h.weight_decay);
  const bool use_wd = h.weight_decay != 0;
  T* __restrict m = static_cast<T*>(t.s0);
  T* __restrict v = static_cast<T*>(t.s1);
  const OptimScalars k = optim_scalars(OptimKind::nadam, h, t);
  const T w1 = T(1 - h.beta1), b2 = T(h.beta2), w2 = T(1 - h.beta2), bc2 = T(k.k0), eps = T(h.eps);
  const T cg = T(k.k1), cm = T(k.k2), decay = T(1 - h.lr * h.weight_decay);
  const bool l2 = use_wd && !h.decoupled, dec = use_wd && h.decoupled;
  over(t.n, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      T gi = sg * g[i];
      T pi = p[i];
      if (dec) pi *= decay;
      if (l2) gi += wd * pi;
      T mi = m[i] + w1 * (gi - m[i]);
      T vi = v[i] * b2 + w2 * gi * gi;
      m[i] = mi;
      v[i] = vi;
      T d = std::sqrt(vi / bc2) + eps;
      pi += cg * (gi / d);
      p[i] = pi + cm * (mi / d);
    }
  });
}

// RAdam (Liu et al. 2019): Adam's moments; with r_t = k2 > 0 (rho_t > 5)
// p -= ((m / bc1) lr) (sqrt(bc2) / (sqrt(v) + eps)) r_t, else p -= (m / bc1) lr.
template <class T> void radam(const OptimHyper& h, const OptimTensor& t) {
  T* __restrict p = static_cast<T*>(t.p);
  const T* __restrict g = static_cast<const T*>(t.g);
  const T sg = h.maximize ? T(-1) : T(1), wd = T(h.weight_decay);
  const bool use_wd = h.weight_decay != 0;
  T* __restrict m = static_cast<T*>(t.s0);
  T* __restrict v = static_cast<T*>(t.s1);
  const OptimScalars k = optim_scalars(OptimKind::radam, h, t);
  const T w1 = T(1 - h.beta1), b2 = T(h.beta2), w2 = T(1 - h.beta2), bc1 = T(k.k0), sbc2 = T(k.k1);
  const T rect = T(k.k2), lr = T(h.lr), eps = T(h.eps), decay = T(1 - h.lr * h.weight_decay);
  const bool l2 = use_wd && !h.decoupled, dec = use_wd && h.decoupled, rectify = k.k2 > 0;
  over(t.n, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      T gi = sg * g[i];
      T pi = p[i];
      if (dec) pi *= decay;
      if (l2) gi += wd * pi;
      T mi = m[i] + w1 * (gi - m[i]);
      T vi = v[i] * b2 + w2 * gi * gi;
      m[i] = mi;
      v[i] = vi;
      T u = (mi / bc1) * lr;
      if (rectify) u = u * (sbc2 / (std::sqrt(vi) + eps)) * rect;
      p[i] = pi - u;
    }
  });
}

// Adamax (Kingma & Ba 2015, section 7.1): m = lerp(m, g, 1-b1); u = max(b2 u, |g| + eps);
// p -= lr / (1 - b1^step) * m / u.
template <class T> void adamax(const OptimHyper& h, const OptimTensor& t) {
  T* __restrict p = static_cast<T*>(t.p);
  const T* __restrict g = static_cast<const T*>(t.g);
  const T sg = h.maximize ? T(-1) : T(1), wd = T(h.weight_decay);
  const bool use_wd = h.weight_decay != 0;
  T* __restrict m = static_cast<T*>(t.s0);
  T* __restrict u = static_cast<T*>(t.s1);
  const T w1 = T(1 - h.beta1), b2 = T(h.beta2), eps = T(h.eps);
  const T clr = T(optim_scalars(OptimKind::adamax, h, t).k0);
  over(t.n, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      T gi = sg * g[i];
      if (use_wd) gi += wd * p[i];
      T mi = m[i] + w1 * (gi - m[i]);
      T ui = u[i] * b2, a = std::abs(gi) + eps;
      ui = ui > a ? ui : a;
      m[i] = mi;
      u[i] = ui;
      p[i] -= clr * (mi / ui);
    }
  });
}

// Adadelta (Zeiler 2012): sq = rho sq + (1-rho) g^2; d = sqrt(acc + eps) / sqrt(sq + eps) g;
// acc = rho acc + (1-rho) d^2; p -= lr d.
template <class T> void adadelta(const OptimHyper& h, const OptimTensor& t) {
  T* __restrict p = static_cast<T*>(t.p);
  const T* __restrict g = static_cast<const T*>(t.g);
  const T sg = h.maximize ? T(-1) : T(1), wd = T(h.weight_decay);
  const bool use_wd = h.weight_decay != 0;
  T* __restrict sq = static_cast<T*>(t.s0);
  T* __restrict acc = static_cast<T*>(t.s1);
  const T rho = T(h.rho), w = T(1 - h.rho), eps = T(h.eps), lr = T(h.lr);
  over(t.n, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      T gi = sg * g[i];
      if (use_wd) gi += wd * p[i];
      T si = sq[i] * rho + w * gi * gi;
      sq[i] = si;
      T d = std::sqrt(acc[i] + eps) / std::sqrt(si + eps) * gi;
      acc[i] = acc[i] * rho + w * d * d;
      p[i] -= lr * d;
    }
  });
}

// Rprop (Riedmiller & Braun 1993, without backtracking): s = g prev; step_size *= eta_plus
// (s > 0), eta_minus (s < 0) or 1, clamped to [step_min, step_max]; where s < 0 the gradient
// counts as 0; p -= sign(g) step_size; prev = g.
template <class T> void rprop(const OptimHyper& h, const OptimTensor& t) {
  T* __restrict p = static_cast<T*>(t.p);
  const T* __restrict g = static_cast<const T*>(t.g);
  const T sg = h.maximize ? T(-1) : T(1);
  T* __restrict prev = static_cast<T*>(t.s0);
  T* __restrict ss = static_cast<T*>(t.s1);
  const T up = T(h.eta_plus), down = T(h.eta_minus), lo = T(h.step_min), hi = T(h.step_max);
  over(t.n, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      T gi = sg * g[i];
      T s = gi * prev[i];
      T f = s > 0 ? up : (s < 0 ? down : T(1));
      T si = ss[i] * f;
      si = si < lo ? lo : si;
      si = si > hi ? hi : si;
      ss[i] = si;
      if (s < 0) gi = T(0);
      T sgn = gi > 0 ? T(1) : (gi < 0 ? T(-1) : T(0));
      p[i] -= sgn * si;
      prev[i] = gi;
    }
  });
}

// ASGD (Polyak & Juditsky 1992): p *= 1 - lambd eta; p -= eta g; ax += (p - ax) mu, or
// ax = p while mu is 1 (eta = c0, mu = c1 from the caller).
template <class T> void asgd(const OptimHyper& h, const OptimTensor& t) {
  T* __restrict p = static_cast<T*>(t.p);
  const T* __restrict g = static_cast<const T*>(t.g);
  const T sg = h.maximize ? T(-1) : T(1), wd = T(h.weight_decay);
  const bool use_wd = h.weight_decay != 0;
  T* __restrict ax = static_cast<T*>(t.s0);
  const T decay = T(1 - h.lambd * t.c0), eta = T(t.c0), mu = T(t.c1);
  const bool avg = t.c1 != 1;
  over(t.n, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      T gi = sg * g[i];
      if (use_wd) gi += wd * p[i];
      T pi = p[i] * decay;
      pi = pi - eta * gi;
      p[i] = pi;
      ax[i] = avg ? ax[i] + (pi - ax[i]) * mu : pi;
    }
  });
}

template <class T> void step_t(OptimKind kind, const OptimHyper& h, const OptimTensor* ts, int64_t count) {
  for (int64_t k = 0; k < count; ++k) {
    switch (kind) {
      case OptimKind::sgd: sgd<T>(h, ts[k]); break;
      case OptimKind::adam: adam<T>(h, ts[k]); break;
      case OptimKind::adagrad: adagrad<T>(h, ts[k]); break;
      case OptimKind::rmsprop: rmsprop<T>(h, ts[k]); break;
      case OptimKind::lamb: lamb<T>(h, ts[k]); break;
      case OptimKind::nadam: nadam<T>(h, ts[k]); break;
      case OptimKind::radam: radam<T>(h, ts[k]); break;
      case OptimKind::adamax: adamax<T>(h, ts[k]); break;
      case OptimKind::adadelta: adadelta<T>(h, ts[k]); break;
      case OptimKind::rprop: rprop<T>(h, ts[k]); break;
      case OptimKind::asgd: asgd<T>(h, ts[k]); break;
    }
  }
}

void step_k(OptimKind kind, DType dt, const OptimHyper& h, const OptimTensor* ts, int64_t count) {
  if (dt == DType::f32) step_t<float>(kind, h, ts, count);
  else step_t<double>(kind, h, ts, count);
}

}  // namespace

const OptimKernels& optim_table() {
  static const OptimKernels k{step_k};
  return k;
}

}  // namespace fastdl::cpu::FASTDL_ISA_NS
