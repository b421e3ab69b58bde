// Fused scaled-dot-product attention (FlashAttention-2, Dao 2023), forward and backward:
//   out[b,h,i,:] = sum_j P[i,j] v[b,g,j,:],  P = softmax_j(scale * <q[b,h,i], k[b,g,j]> + mask[i,j])
// with g = h / (Hq / Hkv) (grouped-query attention when Hkv < Hq). The L x S score matrix never
// exists: forward runs an online softmax over key blocks and saves only the row log-sum-exp;
// backward recomputes each score tile from it. The op (ops/attention.cpp) checks shapes,
// broadcasts batch dims and the mask, and fills this struct; kernels see only it.
//
// Masking: causal keeps j <= i (top-left aligned, PyTorch's is_causal), and tiles above the
// diagonal are skipped, not masked. A query row with no key left gives out = 0, lse = +inf,
// and zero gradients (PyTorch's CPU flash kernel does the same).
//
// Dropout (p > 0): element (b, h, i, j) is kept iff dropout_uniform(seed, ((b*Hq + h)*L + i)*S + j)
// >= p, and kept probabilities are scaled by 1 / (1 - p). The mask is a pure function of the
// seed and the element's index, so backward regenerates it and the CPU and CUDA kernels agree.
// Shared by the CPU (cpu/attention.h) and CUDA (cuda/attention.cu) kernels.
#pragma once
#include <cstdint>

#include "core/dtype.h"
#include "kernels/common.h"
#include "kernels/random.h"  // dropout_uniform

namespace fastdl {

enum class MaskKind : int { none = 0, boolean = 1, additive = 2 };

struct AttentionParams {
  int64_t batch = 0, heads = 0, kv_heads = 0;  // heads % kv_heads == 0
  int64_t L = 0, S = 0, E = 0, Ev = 0;         // query length, key length, q/k width, v width
  DType dt = DType::f32;                       // q, k, v, out, mask (additive), grads: f32 or f64
  double scale = 1.0;
  bool causal = false;
  // Inputs: element (b, h, i, e) at ptr + b*s_b + h*s_h + i*s_l + e (last dim contiguous).
  // Strides may be 0 (broadcast batch dims).
  const void* q = nullptr;  int64_t q_sb = 0, q_sh = 0, q_sl = 0;   // (batch, heads, L, E)
  const void* k = nullptr;  int64_t k_sb = 0, k_sh = 0, k_sl = 0;   // (batch, kv_heads, S, E)
  const void* v = nullptr;  int64_t v_sb = 0, v_sh = 0, v_sl = 0;   // (batch, kv_heads, S, Ev)
  // Mask broadcast to (batch, heads, L, S): element at mask + b*m_sb + h*m_sh + i*m_sl + j*m_ss
  // (any stride may be 0). boolean: uint8 (nonzero = attend); additive: dt, added to the score.
  MaskKind mask_kind = MaskKind::none;
  const void* mask = nullptr; int64_t m_sb = 0, m_sh = 0, m_sl = 0, m_ss = 0;
  double dropout_p = 0.0;
  uint64_t seed = 0;
  // Forward outputs, contiguous: out (batch, heads, L, Ev) in dt; lse (batch, heads, L) in dt.
  void* out = nullptr;
  void* lse = nullptr;
  // Backward: reads q, k, v, out, lse, gout (contiguous like out); writes dq (like q, contiguous
  // (batch, heads, L, E)), dk and dv (contiguous (batch, kv_heads, S, E|Ev)). Every gradient is
  // written, none accumulated into.
  const void* gout = nullptr;
  void *dq = nullptr, *dk = nullptr, *dv = nullptr;
};

}  // namespace fastdl
