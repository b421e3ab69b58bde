// CPU fused scaled-dot-product attention (FlashAttention-2): the per-ISA kernel tables and the
// scalar reference. Semantics, masking, dropout and AttentionParams: kernels/attention.h.
#pragma once
#include <cstdint>

#include "core/cpu_info.h"
#include "core/dtype.h"
#include "kernels/attention.h"

namespace fastdl::cpu {

// kernels/attention.h; keep the spellings cpu::AttentionParams etc. valid.
using fastdl::AttentionParams;
using fastdl::dropout_uniform;
using fastdl::MaskKind;

struct AttentionKernels {
  void (*fwd)(const AttentionParams& p);
  void (*bwd)(const AttentionParams& p);
};

// Row-at-a-time loops in double accumulation, O(S) scratch per row: the oracle and the `ref`
// ISA's path.
void attention_fwd_ref(const AttentionParams& p);
void attention_bwd_ref(const AttentionParams& p);

namespace avx2 { const AttentionKernels& attention_table(); }
namespace avx512 { const AttentionKernels& attention_table(); }
const AttentionKernels& attention_kernels();

}  // namespace fastdl::cpu
