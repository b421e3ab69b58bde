// Mamba's selective scan (Gu & Dao 2023, section 3.3; the semantics of mamba_ssm's
// selective_scan_fn), forward and backward, on contiguous float32/float64 operands:
//   delta' = softplus?(delta + delta_bias)            (batch, dim, L)
//   x_t    = exp(delta'_t A) * x_{t-1} + delta'_t B_t u_t   per channel, state of size N
//   y_t    = <x_t, C_t>;  out = (y + D u) * silu(z)
// The state never exists as a (batch, dim, L, N) tensor: forward keeps it in registers and
// saves it every `chunk` steps; backward walks chunks in reverse, recomputing a chunk's
// states from its checkpoint. The op (ops/selective_scan.cpp) checks shapes and fills this.
// Shared by the CPU (cpu/selective_scan.h) and CUDA (cuda/selective_scan.cu) kernels.
#pragma once
#include <cstdint>

#include "core/dtype.h"

namespace fastdl {

struct SelectiveScanParams {
  int64_t batch = 0, dim = 0, L = 0, N = 0, groups = 1;  // channel d reads group d / (dim / groups)
  DType dt = DType::f32;
  const void* u = nullptr;           // (batch, dim, L)
  const void* delta = nullptr;       // (batch, dim, L)
  const void* A = nullptr;           // (dim, N)
  const void* B = nullptr;           // (batch, groups, N, L)
  const void* C = nullptr;           // (batch, groups, N, L)
  const void* D = nullptr;           // (dim,) or null
  const void* z = nullptr;           // (batch, dim, L) or null
  const void* delta_bias = nullptr;  // (dim,) or null
  bool softplus = false;
  int64_t chunk = 64;                // steps between saved states
  // forward outputs
  void* out = nullptr;               // (batch, dim, L)
  void* last_state = nullptr;        // (batch, dim, N) or null
  void* checkpoints = nullptr;       // (batch, dim, ceil(L / chunk), N): state before each chunk, or null
  // backward (reads checkpoints); every gradient is written, none accumulated into
  const void* gout = nullptr;        // (batch, dim, L)
  void *du = nullptr, *ddelta = nullptr, *dA = nullptr, *dB = nullptr, *dC = nullptr;
  void *dD = nullptr, *dz = nullptr, *ddelta_bias = nullptr;  // null where not wanted (dD, dz, ddelta_bias)
};

inline int64_t scan_chunks(const SelectiveScanParams& p) { return (p.L + p.chunk - 1) / p.chunk; }

}  // namespace fastdl
