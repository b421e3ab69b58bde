// CPU features and cache sizes read at run time (cpuid on x86-64), and the ISA chosen
// for the fast kernels. FASTDL_CPU_ISA=ref|avx2|avx512 forces a path (never above what
// the CPU supports).
#pragma once
#include <cstddef>

namespace fastdl {

enum class Isa { ref = 0, avx2 = 1, avx512 = 2 };

struct CpuInfo {
  bool avx2 = false, fma = false, f16c = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512dq = false, avx512bf16 = false;
  bool amx_tile = false, amx_bf16 = false;  // AMX tiles with the OS's tile state (XCR0 17-18)
  size_t l1d = 32 << 10, l2 = 1 << 20, l3 = 8 << 20;  // per-core L1/L2, shared L3 (bytes)
  int cores = 1;
  char vendor[13] = {};  // "GenuineIntel", "AuthenticAMD", ... (CPUID leaf 0)
  int family = 0, model = 0;  // display family and model (CPUID leaf 1)
};

const CpuInfo& cpu_info();
Isa cpu_isa();                  // the ISA in force (env override applied)
void set_cpu_isa(Isa isa);      // tests switch paths in one process; clamps to support
const char* isa_name(Isa isa);

}  // namespace fastdl
