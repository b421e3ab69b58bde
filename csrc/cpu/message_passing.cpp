// Message passing on the CPU, the parts that are not per-ISA: picking the kernel table and the
// balanced row split. The CSR the kernels walk is built and cached by ops/csr.cpp.
#include "cpu/message_passing.h"

#include "cpu/elementwise.h"

namespace fastdl::cpu {

#ifdef FASTDL_NO_X86_ISA
namespace avx2 { const MpKernels& mp_table() { return ref::mp_table(); } }
namespace avx512 { const MpKernels& mp_table() { return ref::mp_table(); } }
#endif

const MpKernels& mp_kernels() { return pick_isa(cpu_isa(), ref::mp_table(), avx2::mp_table(), avx512::mp_table()); }

void balanced_bounds(const int64_t* rowptr, int64_t rows, int parts, int64_t* bounds) {
  const int64_t total = rowptr[rows] + rows;
  bounds[0] = 0;
  for (int p = 1; p < parts; ++p) {
    const int64_t want = total * p / parts;
    int64_t lo = bounds[p - 1], hi = rows;  // first row r with rowptr[r] + r >= want
    while (lo < hi) {
      int64_t mid = (lo + hi) / 2;
      if (rowptr[mid] + mid < want) lo = mid + 1; else hi = mid;
    }
    bounds[p] = lo;
  }
  bounds[parts] = rows;
}

}  // namespace fastdl::cpu
