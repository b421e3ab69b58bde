#include "core/cpu_info.h"

#include <cstdlib>
#include <cstring>
#include <thread>

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>
#define FASTDL_X86 1
#endif

namespace fastdl {
namespace {

#ifdef FASTDL_X86
unsigned long long xgetbv0() {
  unsigned eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (unsigned long long)edx << 32 | eax;
}

// Deterministic cache parameters: leaf 4 (Intel) or 0x8000001D (AMD).
void read_caches(CpuInfo& c) {
  unsigned a, b, cc, d;
  unsigned max_ext = __get_cpuid_max(0x80000000, nullptr);
  unsigned leaf = 4;
  char vendor[13] = {};
  __cpuid(0, a, b, cc, d);
  std::memcpy(vendor, &b, 4); std::memcpy(vendor + 4, &d, 4); std::memcpy(vendor + 8, &cc, 4);
  if (std::strcmp(vendor, "AuthenticAMD") == 0 && max_ext >= 0x8000001D) leaf = 0x8000001D;
  for (unsigned i = 0; i < 16; ++i) {
    __cpuid_count(leaf, i, a, b, cc, d);
    unsigned type = a & 31;
    if (type == 0) break;
    unsigned level = (a >> 5) & 7;
    size_t ways = ((b >> 22) & 0x3ff) + 1, parts = ((b >> 12) & 0x3ff) + 1, line = (b & 0xfff) + 1;
    size_t sets = size_t(cc) + 1, size = ways * parts * line * sets;
    if (type == 2) continue;  // instruction cache
    if (level == 1) c.l1d = size;
    else if (level == 2) c.l2 = size;
    else if (level == 3) c.l3 = size;
  }
}
#endif

CpuInfo detect() {
  CpuInfo c;
  c.cores = int(std::thread::hardware_concurrency());
  if (c.cores < 1) c.cores = 1;
#ifdef FASTDL_X86
  unsigned a, b, cc, d;
  __cpuid(0, a, b, cc, d);
  std::memcpy(c.vendor, &b, 4); std::memcpy(c.vendor + 4, &d, 4); std::memcpy(c.vendor + 8, &cc, 4);
  __cpuid(1, a, b, cc, d);
  c.family = int((a >> 8) & 0xf);
  c.model = int((a >> 4) & 0xf);
  if (c.family == 0xf) c.family += int((a >> 20) & 0xff);
  if (c.family >= 6) c.model |= int((a >> 16) & 0xf) << 4;
  bool osxsave = cc & (1u << 27);
  c.fma = cc & (1u << 12);
  c.f16c = cc & (1u << 29);
  unsigned long long xcr0 = osxsave ? xgetbv0() : 0;
  bool ymm = (xcr0 & 6) == 6, zmm = (xcr0 & 0xe6) == 0xe6;
  __cpuid_count(7, 0, a, b, cc, d);
  c.avx2 = ymm && (b & (1u << 5)) && c.fma;
  c.avx512f = zmm && (b & (1u << 16));
  c.avx512dq = zmm && (b & (1u << 17));
  c.avx512bw = zmm && (b & (1u << 30));
  c.avx512vl = zmm && (b & (1u << 31));
  const bool tiles = (xcr0 & 0x60000) == 0x60000;  // XTILECFG and XTILEDATA enabled by the OS
  c.amx_tile = tiles && (d & (1u << 24));
  c.amx_bf16 = c.amx_tile && (d & (1u << 22));
  __cpuid_count(7, 1, a, b, cc, d);
  c.avx512bf16 = c.avx512f && (a & (1u << 5));
  read_caches(c);
#endif
  return c;
}

Isa best_isa(const CpuInfo& c) {
  if (c.avx512f && c.avx512bw && c.avx512vl && c.avx512dq && c.avx2) return Isa::avx512;
  if (c.avx2 && c.fma) return Isa::avx2;
  return Isa::ref;
}

Isa g_isa = [] {
  Isa best = best_isa(cpu_info());
  const char* e = std::getenv("FASTDL_CPU_ISA");
  if (e) {
    Isa want = best;
    if (!std::strcmp(e, "ref")) want = Isa::ref;
    else if (!std::strcmp(e, "avx2")) want = Isa::avx2;
    else if (!std::strcmp(e, "avx512")) want = Isa::avx512;
    if (int(want) < int(best)) best = want;
  }
  return best;
}();

}  // namespace

const CpuInfo& cpu_info() { static CpuInfo c = detect(); return c; }
Isa cpu_isa() { return g_isa; }
void set_cpu_isa(Isa isa) {
  Isa best = best_isa(cpu_info());
  g_isa = int(isa) < int(best) ? isa : best;
}
const char* isa_name(Isa isa) { return isa == Isa::avx512 ? "avx512" : isa == Isa::avx2 ? "avx2" : "ref"; }

}  // namespace fastdl
