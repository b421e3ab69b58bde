// Fused optimizer steps: one call updates every parameter of a param group in place.
// The op layer (ops/optim.cpp) checks the tensors and fills one OptimTensor per parameter;
// kernels (cpu/optim_vec.cpp per ISA, cuda/optim.cu) see only these plain structs.
#pragma once
#include <cmath>
#include <cstdint>

namespace fastdl {

enum class OptimKind : uint8_t { sgd, adam, adagrad, rmsprop, lamb, nadam, radam, adamax, adadelta, rprop, asgd };

// The group's hyperparameters (PyTorch's names); each kind reads the ones it has.
struct OptimHyper {
  double lr = 0, beta1 = 0, beta2 = 0, eps = 0, weight_decay = 0;
  double momentum = 0, dampening = 0, alpha = 0, lr_decay = 0;
  double momentum_decay = 0;                // NAdam
  double rho = 0;                           // Adadelta
  double lambd = 0;                         // ASGD
  double eta_minus = 0, eta_plus = 0;       // Rprop: etas
  double step_min = 0, step_max = 0;        // Rprop: step_sizes
  bool nesterov = false, maximize = false, amsgrad = false, centered = false;
  bool decoupled = false;       // AdamW, NAdam, RAdam: p *= 1 - lr * wd instead of g += wd * p
  bool bias_correction = true;  // LAMB
};

// One parameter: p, g and the state buffers are contiguous (n,) arrays of one float dtype.
// State slots per kind:  sgd: s0 momentum buffer (null without momentum)
//   adam: s0 exp_avg, s1 exp_avg_sq, s2 max_exp_avg_sq (amsgrad)   adagrad: s0 sum
//   rmsprop: s0 square_avg, s1 momentum buffer, s2 grad_avg (centered)   lamb: s0, s1 as adam
//   nadam, radam: s0 exp_avg, s1 exp_avg_sq   adamax: s0 exp_avg, s1 exp_inf
//   adadelta: s0 square_avg, s1 acc_delta   rprop: s0 prev, s1 step_size   asgd: s0 ax
// step: the step count after this update (1 on the first); for sgd, 1 means the momentum
// buffer is new and takes the gradient as is.
// c0, c1: per-parameter scalars the caller carries from step to step (PyTorch keeps them as
// state next to 'step'):  nadam: c0 mu_product including this step's mu, c1 the product with
// the next step's mu   asgd: c0 eta, c1 mu (the values this update uses).
struct OptimTensor {
  void* p = nullptr;
  const void* g = nullptr;
  void* s0 = nullptr;
  void* s1 = nullptr;
  void* s2 = nullptr;
  int64_t n = 0;
  double step = 0;
  double c0 = 0, c1 = 0;
};

// Per-parameter step scalars that the CPU and CUDA kernels share (computed on the host):
//   nadam: k0 bias correction 2, k1 = -lr (1 - mu) / (1 - c0), k2 = -lr mu_next / (1 - c1)
//     with mu_t = beta1 (1 - 0.5 * 0.96^(t momentum_decay))
//   radam: k0 bias correction 1, k1 sqrt(bias correction 2), k2 the rectification term r_t
//     when rho_t > 5, else 0 (the step falls back to momentum SGD)
//   adamax: k0 = lr / (1 - beta1^step)
struct OptimScalars { double k0 = 0, k1 = 0, k2 = 0; };

inline OptimScalars optim_scalars(OptimKind kind, const OptimHyper& h, const OptimTensor& t) {
  OptimScalars s;
  if (kind == OptimKind::nadam) {
    const double mu = h.beta1 * (1 - 0.5 * std::pow(0.96, t.step * h.momentum_decay));
    const double mu_next = h.beta1 * (1 - 0.5 * std::pow(0.96, (t.step + 1) * h.momentum_decay));
    s.k0 = 1 - std::pow(h.beta2, t.step);
    s.k1 = -h.lr * (1.0 - mu) / (1.0 - t.c0);
    s.k2 = (-h.lr * mu_next) / (1.0 - t.c1);
  } else if (kind == OptimKind::radam) {
    const double bc1 = 1 - std::pow(h.beta1, t.step), bc2 = 1 - std::pow(h.beta2, t.step);
    const double rho_inf = 2 / (1 - h.beta2) - 1;
    const double rho_t = rho_inf - 2 * t.step * std::pow(h.beta2, t.step) / bc2;
    s.k0 = bc1;
    s.k1 = std::sqrt(bc2);
    s.k2 = rho_t > 5.0
               ? std::sqrt(((rho_t - 4) * (rho_t - 2) * rho_inf) / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
               : 0.0;
  } else if (kind == OptimKind::adamax) {
    s.k0 = h.lr / (1 - std::pow(h.beta1, t.step));
  }
  return s;
}

}  // namespace fastdl
