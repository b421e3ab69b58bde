// What the core asks of the CUDA backend. csrc/cuda/*.cu implement it when nvcc is found;
// csrc/cuda/no_cuda.cpp implements it otherwise (is_available() false, everything else
// raises DeviceError naming the call). Kernels see only plain pointers, sizes and strides.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/dtype.h"
#include "kernels/gemm.h"
#include "kernels/kinds.h"
#include "kernels/optim.h"

// The other kernels' parameter structs (csrc/kernels/), declared here so that including this
// header stays cheap; the .cu files include their op's kernels/<op>.h.
namespace fastdl { struct MpParams; struct SegSoftmaxParams; struct SelectiveScanParams;
                   struct AttentionParams; struct Conv2dParams; struct Pool2dParams;
                   struct BatchNormParams; struct GroupNormParams; struct LayerNormParams; struct RnnParams; }

namespace fastdl::cuda {

constexpr int kMaxDims = 8;

// An N-d strided loop over `shape`; strides in elements for up to 3 operands
// (operand 0 is the output). Dims are already coalesced by the caller.
struct Strided {
  int ndim = 0;
  int64_t numel = 0;
  int64_t shape[kMaxDims] = {};
  int64_t strides[3][kMaxDims] = {};
};

bool is_available();
int device_count();
void set_device(int device);

// Caching allocator: blocks are reused per device and size class; free() never syncs.
void* alloc(size_t nbytes, int device);   // throws OutOfMemory
void free(void* p, size_t nbytes, int device);
void empty_cache();
void synchronize(int device);

void copy_h2d(void* dst, const void* src, size_t nbytes, int device);
void copy_d2h(void* dst, const void* src, size_t nbytes, int device);
void copy_d2d(void* dst, const void* src, size_t nbytes, int device);

// out = cast(in) over a strided loop (dtypes may differ).
void copy_strided(void* out, DType out_dt, const void* in, DType in_dt, const Strided& it, int device);
void fill(void* out, DType dt, double value, const Strided& it, int device);
// out = op(a, b); a and b have dtype `dt`; out has dt, or bool for comparisons.
void binary(BinaryOp op, DType dt, void* out, const void* a, const void* b, const Strided& it, int device);
// out = op(a, scalar) / op(scalar, a) (scalar_first).
void binary_scalar(BinaryOp op, DType dt, void* out, const void* a, double scalar, bool scalar_first,
                   const Strided& it, int device);
void unary(UnaryOp op, DType dt, void* out, const void* in, const Strided& it, int device);
// Contiguous rows: in is (outer, n, inner) contiguous; out is (outer, inner). argmax/argmin
// write int64.
void reduce(ReduceOp op, DType dt, void* out, const void* in, int64_t outer, int64_t n, int64_t inner,
            int device);
void gemm(const GemmParams& p, int device);
// out[i] = cond[i] ? a[i] : b[i] over n contiguous elements of `elsize` bytes (cond is bool).
void where(size_t elsize, void* out, const void* cond, const void* a, const void* b, int64_t n, int device);
// Fused optimizer step over `count` parameters (device pointers), see kernels/optim.h.
void optim_step(OptimKind kind, DType dt, const OptimHyper& h, const OptimTensor* ts, int64_t count, int device);
// Message passing over a CSR of device pointers (kernels/message_passing.h); deterministic.
void mp_gather_fwd(DType dt, const MpParams& p, int device);
void mp_gather_bwd(DType dt, const MpParams& p, int device);
void seg_softmax_fwd(DType dt, const SegSoftmaxParams& p, int device);
void seg_softmax_bwd(DType dt, const SegSoftmaxParams& p, int device);
// Selective scan over contiguous device operands (kernels/selective_scan.h), float32 or float64,
// 1 <= N <= 256; forward writes the CPU kernel's checkpoints, backward reads them; deterministic.
void selective_scan_fwd(const SelectiveScanParams& p, int device);
void selective_scan_bwd(const SelectiveScanParams& p, int device);
// Fused attention (kernels/attention.h), float32 or float64, E and Ev <= 256, strided q/k/v as the
// struct allows. fwd writes every element of out and lse; bwd writes every element of dq, dk, dv
// (nothing needs zeroing first; dq is summed with atomics, so its last bits may vary run to run).
// fwd also takes bfloat16 / float16 (tensor cores, fp32 accumulation; E, Ev multiples of 16 up
// to 128; lse is then float32); bwd takes float32 / float64 only.
void attention_fwd(const AttentionParams& p, int device);
void attention_bwd(const AttentionParams& p, int device);
// conv2d as implicit GEMM (kernels/conv.h), float32 or float64, or bfloat16 / float16 (tensor cores,
// fp32 accumulation, every output in the operand dtype): fwd writes y (+ b when set);
// bwd_input overwrites gx; bwd_weight overwrites gw (and gb when set), reproducibly.
void conv2d_fwd(const Conv2dParams& p, int device);
void conv2d_bwd_input(const Conv2dParams& p, int device);
void conv2d_bwd_weight(const Conv2dParams& p, int device);
// y[n, k, :] += b[k] over (N, K, HW); gb[k] = sum over n, HW of gy (cpu::conv_bias_add / _grad);
// the same four dtypes, halves summed in fp32.
void conv_bias_add(DType dt, void* y, const void* b, int64_t N, int64_t K, int64_t HW, int device);
void conv_bias_grad(DType dt, const void* gy, void* gb, int64_t N, int64_t K, int64_t HW, int device);
// Pooling (kernels/pool.h), every kind, float32 or float64; bwd overwrites gx (a gather: reproducible).
void pool2d_fwd(const Pool2dParams& p, int device);
void pool2d_bwd(const Pool2dParams& p, int device);
// Batch / group normalisation (kernels/norm.h), float32 or float64, statistics in double.
void batch_norm_fwd(const BatchNormParams& p, int device);
void batch_norm_bwd(const BatchNormParams& p, int device);
void group_norm_fwd(const GroupNormParams& p, int device);
void group_norm_bwd(const GroupNormParams& p, int device);
// layer_norm's backward (kernels/norm.h; its forward is group_norm_fwd with one group per row).
void layer_norm_bwd(const LayerNormParams& p, int device);
// One recurrent layer-direction (kernels/rnn.h), float32 or float64: the step loop on the host around
// cuda::gemm and fused gate kernels; the same buffers and results as the CPU drivers.
void rnn_fwd(const RnnParams& p, int device);
void rnn_bwd(const RnnParams& p, int device);

// NCCL for fastdl.distributed's 'nccl' backend (csrc/cuda/nccl.cu): compiled in when CMake
// finds nccl.h, libnccl.so.2 opened at run time. Calls are enqueued on the device's stream.
bool nccl_available();
std::string nccl_unique_id();  // NCCL_UNIQUE_ID_BYTES bytes, for rank 0 to hand to the others
void* nccl_comm_init(int world, int rank, const std::string& unique_id, int device);
void nccl_comm_destroy(void* comm);
enum class NcclColl { all_reduce, broadcast, all_gather, reduce_scatter, send, recv };
// count: elements per rank (all_gather / reduce_scatter: of the per-rank block); arg: the
// reduction (0 sum, 1 product, 2 max, 3 min, 4 avg), the root of a broadcast or the peer of send/recv.
void nccl_collective(NcclColl kind, void* comm, const void* send, void* recv, int64_t count, DType dt, int arg,
                     int device);

}  // namespace fastdl::cuda
