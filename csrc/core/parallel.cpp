#include "core/parallel.h"

#include "core/cpu_info.h"

namespace fastdl {

namespace { int g_threads = 0; }

int get_num_threads() {
  if (g_threads == 0) g_threads = cpu_info().cores;
  return g_threads;
}
void set_num_threads(int n) {
  g_threads = n < 1 ? 1 : n;
#ifdef _OPENMP
  omp_set_num_threads(g_threads);
#endif
}
bool in_parallel_region() {
#ifdef _OPENMP
  return omp_in_parallel();
#else
  return false;
#endif
}

}  // namespace fastdl
