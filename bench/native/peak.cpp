// Machine ceilings: FMA peak per ISA and dtype on 1 and N threads, and memory bandwidth
// (copy with streaming stores, read-only sum) on 1 and N threads.
//   peak [--threads N] [--no-bw]
#include <cstdio>

#include "common.h"

using namespace fastdl;
using namespace fastdl::bench;

int main(int argc, char** argv) {
  Args a{argc, argv};
  if (!apply_impl_threads(a)) return 2;
  const CpuInfo& ci = cpu_info();
  const int nt = get_num_threads();
  std::printf("cpu: %d cores, l1d %zu KiB, l2 %zu KiB, l3 %zu MiB, avx2 %d fma %d avx512f %d avx512bf16 %d\n", ci.cores,
              ci.l1d >> 10, ci.l2 >> 10, ci.l3 >> 20, ci.avx2, ci.fma, ci.avx512f, ci.avx512bf16);
  std::printf("%-8s %-8s %14s %14s\n", "isa", "dtype", "1 thread", "N threads");
  for (int isa = 0; isa <= int(cpu_isa()); ++isa) {
    struct { PeakKind k; const char* name; } kinds[] = {{PeakKind::f32, "f32"}, {PeakKind::f64, "f64"}, {PeakKind::bf16dot, "bf16dot"}};
    for (auto& k : kinds) {
      if (k.k == PeakKind::bf16dot && !(isa == int(Isa::avx512) && ci.avx512bf16)) continue;
      const double p1 = fma_peak_gflops(Isa(isa), k.k, 1), pn = fma_peak_gflops(Isa(isa), k.k, nt);
      std::printf("%-8s %-8s %9.1f GF/s %9.1f GF/s (%d threads)\n", isa_name(Isa(isa)), k.name, p1, pn, nt);
    }
  }
  if (!a.has("--no-bw")) {
    for (int t : {1, nt}) {
      Bandwidth bw = memory_bandwidth(t);
      std::printf("memory bandwidth, %d thread(s): copy (stream stores) %.1f GB/s, read %.1f GB/s\n", t, bw.copy_gbs, bw.read_gbs);
      if (nt == 1) break;
    }
  }
  return 0;
}
