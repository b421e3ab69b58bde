// The library's one thread pool is OpenMP's. parallel_for splits [begin, end) into at most
// num_threads contiguous chunks; below `grain` elements per thread it runs inline, so small
// ops never wake the pool.
#pragma once
#include <cstdint>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace fastdl {

int get_num_threads();
void set_num_threads(int n);
bool in_parallel_region();

template <class F>
void parallel_for(int64_t begin, int64_t end, int64_t grain, const F& f) {
  int64_t n = end - begin;
  if (n <= 0) return;
  int nt = get_num_threads();
  if (grain < 1) grain = 1;
  int64_t want = n / grain;
  if (want < nt) nt = int(want < 1 ? 1 : want);
  if (nt <= 1 || in_parallel_region()) { f(begin, end); return; }
#ifdef _OPENMP
#pragma omp parallel num_threads(nt)
  {
    int t = omp_get_thread_num(), T = omp_get_num_threads();
    int64_t chunk = (n + T - 1) / T;
    int64_t b = begin + t * chunk, e = b + chunk < end ? b + chunk : end;
    if (b < e) f(b, e);
  }
#else
  f(begin, end);
#endif
}

}  // namespace fastdl
