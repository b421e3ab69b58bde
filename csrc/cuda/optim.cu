// Fused optimizer steps on the GPU: parameters go in chunks of up to kChunk per launch, the
// chunk's pointer table passed by value as a kernel argument (no host-to-device copy);
// blockIdx.y picks the parameter, a grid-stride loop over x covers its elements. The update
// rules are those of cpu/optim_vec.cpp. LAMB runs two launches per chunk: a norm pass that
// updates the moments and accumulates ||p||^2, ||u||^2 into a scratch buffer, and an apply pass.
#include <cmath>

#include "cuda/common.cuh"

namespace fastdl::cuda {
namespace {

constexpr int kChunk = 36;  // 36 * (72 + 24) B + the hyperparameters stay under the 4 KiB argument limit

// Per-parameter scalars, computed on the host: adam, lamb: k0, k1 the bias corrections 1 and 2;
// adagrad: k0 the decayed lr; nadam, radam, adamax: optim_scalars (kernels/optim.h).
struct Chunk {
  OptimTensor t[kChunk];
  double k0[kChunk], k1[kChunk], k2[kChunk];
  int count;
};

struct Hyp {  // hyperparameters in the compute type's precision
  double lr, b1, b2, eps, wd, mom, keep, alpha, sg, rho, lambd, eta_minus, eta_plus, step_min, step_max;
  bool use_wd, decoupled, nesterov, amsgrad, centered;
};

static_assert(sizeof(Chunk) + sizeof(Hyp) + sizeof(double*) <= 4096, "optim_step: kernel arguments over 4 KiB");

template <class T, OptimKind K>
__global__ void step_kernel(Chunk c, Hyp h, double* norms) {
  const int k = blockIdx.y;
  const OptimTensor& t = c.t[k];
  T* p = static_cast<T*>(t.p);
  const T* g = static_cast<const T*>(t.g);
  T* s0 = static_cast<T*>(t.s0);
  T* s1 = static_cast<T*>(t.s1);
  T* s2 = static_cast<T*>(t.s2);
  const T sg = T(h.sg), wd = T(h.wd), eps = T(h.eps);
  double pp = 0, uu = 0;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < t.n; i += int64_t(gridDim.x) * blockDim.x) {
    T gi = sg * g[i];
    if constexpr (K == OptimKind::sgd) {
      if (h.use_wd) gi += wd * p[i];
      if (s0) {
        T m = t.step <= 1 ? gi : T(h.mom) * s0[i] + T(h.keep) * gi;
        s0[i] = m;
        gi = h.nesterov ? gi + T(h.mom) * m : m;
      }
      p[i] -= T(h.lr) * gi;
    } else if constexpr (K == OptimKind::adam) {
      T pi = p[i];
      if (h.use_wd && h.decoupled) pi *= T(1 - h.lr * h.wd);
      if (h.use_wd && !h.decoupled) gi += wd * pi;
      T mi = s0[i] + T(1 - h.b1) * (gi - s0[i]);
      T vi = s1[i] * T(h.b2) + T(1 - h.b2) * gi * gi;
      s0[i] = mi;
      s1[i] = vi;
      if (h.amsgrad && s2) { vi = s2[i] > vi ? s2[i] : vi; s2[i] = vi; }
      p[i] = pi - T(h.lr / c.k0[k]) * (mi / (sqrt(vi) * T(1 / sqrt(c.k1[k])) + eps));
    } else if constexpr (K == OptimKind::adagrad) {
      if (h.use_wd) gi += wd * p[i];
      T si = s0[i] + gi * gi;
      s0[i] = si;
      p[i] -= T(c.k0[k]) * (gi / (sqrt(si) + eps));
    } else if constexpr (K == OptimKind::rmsprop) {
      if (h.use_wd) gi += wd * p[i];
      T si = T(h.alpha) * s0[i] + T(1 - h.alpha) * gi * gi;
      s0[i] = si;
      T avg;
      if (h.centered && s2) {
        T gai = s2[i] + T(1 - h.alpha) * (gi - s2[i]);
        s2[i] = gai;
        avg = sqrt(si - gai * gai) + eps;
      } else {
        avg = sqrt(si) + eps;
      }
      if (h.mom > 0 && s1) { T bi = T(h.mom) * s1[i] + gi / avg; s1[i] = bi; p[i] -= T(h.lr) * bi; }
      else p[i] -= T(h.lr) * (gi / avg);
    } else if constexpr (K == OptimKind::nadam || K == OptimKind::radam) {
      T pi = p[i];
      if (h.use_wd && h.decoupled) pi *= T(1 - h.lr * h.wd);
      if (h.use_wd && !h.decoupled) gi += wd * pi;
      T mi = s0[i] + T(1 - h.b1) * (gi - s0[i]);
      T vi = s1[i] * T(h.b2) + T(1 - h.b2) * gi * gi;
      s0[i] = mi;
      s1[i] = vi;
      if constexpr (K == OptimKind::nadam) {
        T d = sqrt(vi / T(c.k0[k])) + eps;
        pi += T(c.k1[k]) * (gi / d);
        p[i] = pi + T(c.k2[k]) * (mi / d);
      } else {
        T u = (mi / T(c.k0[k])) * T(h.lr);
        if (c.k2[k] > 0) u = u * (T(c.k1[k]) / (sqrt(vi) + eps)) * T(c.k2[k]);
        p[i] = pi - u;
      }
    } else if constexpr (K == OptimKind::adamax) {
      if (h.use_wd) gi += wd * p[i];
      T mi = s0[i] + T(1 - h.b1) * (gi - s0[i]);
      T ui = s1[i] * T(h.b2), a = fabs(gi) + eps;
      ui = ui > a ? ui : a;
      s0[i] = mi;
      s1[i] = ui;
      p[i] -= T(c.k0[k]) * (mi / ui);
    } else if constexpr (K == OptimKind::adadelta) {
      if (h.use_wd) gi += wd * p[i];
      T si = s0[i] * T(h.rho) + T(1 - h.rho) * gi * gi;
      s0[i] = si;
      T d = sqrt(s1[i] + eps) / sqrt(si + eps) * gi;
      s1[i] = s1[i] * T(h.rho) + T(1 - h.rho) * d * d;
      p[i] -= T(h.lr) * d;
    } else if constexpr (K == OptimKind::rprop) {
      T s = gi * s0[i];
      T f = s > 0 ? T(h.eta_plus) : (s < 0 ? T(h.eta_minus) : T(1));
      T si = s1[i] * f;
      si = si < T(h.step_min) ? T(h.step_min) : si;
      si = si > T(h.step_max) ? T(h.step_max) : si;
      s1[i] = si;
      if (s < 0) gi = T(0);
      p[i] -= (gi > 0 ? T(1) : (gi < 0 ? T(-1) : T(0))) * si;
      s0[i] = gi;
    } else if constexpr (K == OptimKind::asgd) {
      if (h.use_wd) gi += wd * p[i];
      T pi = p[i] * T(1 - h.lambd * t.c0);
      pi = pi - T(t.c0) * gi;
      p[i] = pi;
      s0[i] = t.c1 != 1 ? s0[i] + (pi - s0[i]) * T(t.c1) : pi;
    } else {  // lamb, pass 1: moments and norms
      T mi = T(h.b1) * s0[i] + T(1 - h.b1) * gi, vi = T(h.b2) * s1[i] + T(1 - h.b2) * gi * gi;
      s0[i] = mi;
      s1[i] = vi;
      T u = (mi / T(c.k0[k])) / (sqrt(vi / T(c.k1[k])) + eps) + wd * p[i];
      pp += double(p[i]) * double(p[i]);
      uu += double(u) * double(u);
    }
  }
  if constexpr (K == OptimKind::lamb) {
    for (int off = 16; off > 0; off >>= 1) {
      pp += __shfl_down_sync(0xffffffffu, pp, off);
      uu += __shfl_down_sync(0xffffffffu, uu, off);
    }
    if ((threadIdx.x & 31) == 0) { atomicAdd(&norms[2 * k], pp); atomicAdd(&norms[2 * k + 1], uu); }
  }
}

// LAMB pass 2: p -= lr * trust * u with trust = ||p|| / ||u|| (1 when either is 0).
template <class T> __global__ void lamb_apply(Chunk c, Hyp h, const double* norms) {
  const int k = blockIdx.y;
  const OptimTensor& t = c.t[k];
  T* p = static_cast<T*>(t.p);
  const T* m = static_cast<const T*>(t.s0);
  const T* v = static_cast<const T*>(t.s1);
  double pn = sqrt(norms[2 * k]), un = sqrt(norms[2 * k + 1]);
  const T scale = T(h.lr * (pn > 0 && un > 0 ? pn / un : 1.0)), wd = T(h.wd), eps = T(h.eps);
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < t.n; i += int64_t(gridDim.x) * blockDim.x)
    p[i] -= scale * ((m[i] / T(c.k0[k])) / (sqrt(v[i] / T(c.k1[k])) + eps) + wd * p[i]);
}

template <class T> void launch(OptimKind kind, const Chunk& c, const Hyp& h, int64_t maxn, double* norms, int device) {
  dim3 grid(grid_for(maxn, device) / unsigned(c.count) + 1, unsigned(c.count));
  switch (kind) {
    case OptimKind::sgd: step_kernel<T, OptimKind::sgd><<<grid, kThreads, 0, stream()>>>(c, h, norms); break;
    case OptimKind::adam: step_kernel<T, OptimKind::adam><<<grid, kThreads, 0, stream()>>>(c, h, norms); break;
    case OptimKind::adagrad: step_kernel<T, OptimKind::adagrad><<<grid, kThreads, 0, stream()>>>(c, h, norms); break;
    case OptimKind::rmsprop: step_kernel<T, OptimKind::rmsprop><<<grid, kThreads, 0, stream()>>>(c, h, norms); break;
    case OptimKind::nadam: step_kernel<T, OptimKind::nadam><<<grid, kThreads, 0, stream()>>>(c, h, norms); break;
    case OptimKind::radam: step_kernel<T, OptimKind::radam><<<grid, kThreads, 0, stream()>>>(c, h, norms); break;
    case OptimKind::adamax: step_kernel<T, OptimKind::adamax><<<grid, kThreads, 0, stream()>>>(c, h, norms); break;
    case OptimKind::adadelta: step_kernel<T, OptimKind::adadelta><<<grid, kThreads, 0, stream()>>>(c, h, norms); break;
    case OptimKind::rprop: step_kernel<T, OptimKind::rprop><<<grid, kThreads, 0, stream()>>>(c, h, norms); break;
    case OptimKind::asgd: step_kernel<T, OptimKind::asgd><<<grid, kThreads, 0, stream()>>>(c, h, norms); break;
    case OptimKind::lamb:
      step_kernel<T, OptimKind::lamb><<<grid, kThreads, 0, stream()>>>(c, h, norms);
      check_launch("optim_step (lamb norms)");
      lamb_apply<T><<<grid, kThreads, 0, stream()>>>(c, h, norms);
      break;
  }
  check_launch("optim_step");
}

}  // namespace

void optim_step(OptimKind kind, DType dt, const OptimHyper& hp, const OptimTensor* ts, int64_t count, int device) {
  use_device(device);
  Hyp h{hp.lr, hp.beta1, hp.beta2, hp.eps, hp.weight_decay, hp.momentum, 1 - hp.dampening, hp.alpha,
        hp.maximize ? -1.0 : 1.0, hp.rho, hp.lambd, hp.eta_minus, hp.eta_plus, hp.step_min, hp.step_max,
        hp.weight_decay != 0, hp.decoupled, hp.nesterov, hp.amsgrad, hp.centered};
  double* norms = nullptr;
  const size_t norm_bytes = sizeof(double) * 2 * kChunk;
  if (kind == OptimKind::lamb) norms = static_cast<double*>(alloc(norm_bytes, device));
  for (int64_t base = 0; base < count; base += kChunk) {
    Chunk c{};
    c.count = int(count - base < kChunk ? count - base : kChunk);
    int64_t maxn = 1;
    for (int j = 0; j < c.count; ++j) {
      const OptimTensor& t = ts[base + j];
      c.t[j] = t;
      maxn = t.n > maxn ? t.n : maxn;
      if (kind == OptimKind::nadam || kind == OptimKind::radam || kind == OptimKind::adamax) {
        const OptimScalars sc = optim_scalars(kind, hp, t);
        c.k0[j] = sc.k0; c.k1[j] = sc.k1; c.k2[j] = sc.k2;
        continue;
      }
      bool bc = kind != OptimKind::lamb || hp.bias_correction;
      c.k0[j] = bc ? 1 - std::pow(hp.beta1, t.step) : 1.0;
      c.k1[j] = bc ? 1 - std::pow(hp.beta2, t.step) : 1.0;
      if (kind == OptimKind::adagrad) c.k0[j] = hp.lr / (1 + (t.step - 1) * hp.lr_decay);
    }
    if (norms) check(cudaMemsetAsync(norms, 0, norm_bytes, stream()), "optim_step memset");
    if (dt == DType::f32) launch<float>(kind, c, h, maxn, norms, device);
    else launch<double>(kind, c, h, maxn, norms, device);
  }
  if (norms) free(norms, norm_bytes, device);
}

}  // namespace fastdl::cuda
