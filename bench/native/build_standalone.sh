#!/bin/sh
# Builds the gemm, peak, attention and selective_scan benchmarks without CMake or the rest of the library
# (kernel + core runtime only): bench/native/build_standalone.sh [outdir]
set -e
cd "$(dirname "$0")/../.."
out=${1:-build-bench}
mkdir -p "$out"
CXX=${CXX:-g++}
flags="-std=c++17 -O3 -fopenmp -Icsrc -fno-math-errno -Wall -Wno-unused-parameter -Wno-uninitialized -Wno-maybe-uninitialized"
objs=""
for f in csrc/core/cpu_info.cpp csrc/core/parallel.cpp csrc/core/allocator.cpp csrc/cpu/gemm.cpp csrc/cpu/gemm_amx.cpp csrc/cpu/attention.cpp csrc/cpu/selective_scan.cpp; do
  o="$out/$(basename "$f" .cpp).o"; $CXX $flags -include atomic -c "$f" -o "$o" & objs="$objs $o"
done
for f in csrc/cpu/gemm_vec.cpp csrc/cpu/gemm_bf16_vec.cpp csrc/cpu/attention_vec.cpp csrc/cpu/selective_scan_vec.cpp; do
  for isa in ref avx2 avx512; do
    case $isa in
      ref) isaf="";; avx2) isaf="-mavx2 -mfma -mf16c";;
      avx512) isaf="-mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx2 -mfma -mf16c -mprefer-vector-width=512";;
    esac
    o="$out/$(basename "$f" .cpp)_$isa.o"
    $CXX $flags $isaf -DFASTDL_ISA_NS=$isa -DFASTDL_ISA_$isa=1 -c "$f" -o "$o" & objs="$objs $o"
  done
  wait
done
wait
$CXX $flags bench/native/gemm.cpp $objs -o "$out/gemm"
$CXX $flags bench/native/peak.cpp $objs -o "$out/peak"
$CXX $flags bench/native/attention.cpp $objs -o "$out/attention"
$CXX $flags bench/native/selective_scan.cpp $objs -o "$out/selective_scan"
echo "built $out/gemm $out/peak $out/attention $out/selective_scan"
