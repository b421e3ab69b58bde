// Fused optimizer steps: one call updates every parameter of a param group in place.
// The op layer (ops/optim.cpp) checks the tensors and fills one OptimTensor per parameter;
// kernels (cpu/optim_vec.cpp per ISA, cuda/optim.cu) see only these plain structs.
#pragma once
#include <cstdint>

namespace fastdl {

enum class OptimKind : uint8_t { sgd, adam, adagrad, rmsprop, lamb };

// The group's hyperparameters (PyTorch's names); each kind reads the ones it has.
struct OptimHyper {
  double lr = 0, beta1 = 0, beta2 = 0, eps = 0, weight_decay = 0;
  double momentum = 0, dampening = 0, alpha = 0, lr_decay = 0;
  bool nesterov = false, maximize = false, amsgrad = false, centered = false;
  bool decoupled = false;       // AdamW: p *= 1 - lr * wd instead of g += wd * p
  bool bias_correction = true;  // LAMB
};

// One parameter: p, g and the state buffers are contiguous (n,) arrays of one float dtype.
// State slots per kind:  sgd: s0 momentum buffer (null without momentum)
//   adam: s0 exp_avg, s1 exp_avg_sq, s2 max_exp_avg_sq (amsgrad)   adagrad: s0 sum
//   rmsprop: s0 square_avg, s1 momentum buffer, s2 grad_avg (centered)   lamb: s0, s1 as adam
// step: the step count after this update (1 on the first); for sgd, 1 means the momentum
// buffer is new and takes the gradient as is.
struct OptimTensor {
  void* p = nullptr;
  const void* g = nullptr;
  void* s0 = nullptr;
  void* s1 = nullptr;
  void* s2 = nullptr;
  int64_t n = 0;
  double step = 0;
};

}  // namespace fastdl
