// CPU selective scan (Mamba): the per-ISA kernel tables and the scalar reference. Semantics and
// SelectiveScanParams: kernels/selective_scan.h.
#pragma once
#include <cstdint>

#include "core/cpu_info.h"
#include "core/dtype.h"
#include "kernels/selective_scan.h"

namespace fastdl::cpu {

// kernels/selective_scan.h; keep the spellings cpu::X of these valid.
using fastdl::scan_chunks;
using fastdl::SelectiveScanParams;

struct ScanKernels {
  void (*fwd)(const SelectiveScanParams& p);
  void (*bwd)(const SelectiveScanParams& p);
};

// Plain per-channel loops in the operand precision: the oracle, and the `ref` ISA's path.
void selective_scan_fwd_ref(const SelectiveScanParams& p);
void selective_scan_bwd_ref(const SelectiveScanParams& p);

namespace avx2 { const ScanKernels& scan_table(); }
namespace avx512 { const ScanKernels& scan_table(); }
const ScanKernels& scan_kernels();

}  // namespace fastdl::cpu
