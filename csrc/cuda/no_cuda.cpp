// Linked when fastdl is built without nvcc: CUDA reports itself unavailable and every other
// call raises DeviceError (RuntimeError in Python) naming the call.
#include <string>

#include "core/error.h"
#include "cuda/cuda_api.h"

namespace fastdl::cuda {
namespace {
[[noreturn]] void unavailable(const char* call) {
  throw DeviceError(std::string("cuda: fastdl was built without CUDA support (") + call + ")");
}
}  // namespace

bool is_available() { return false; }
int device_count() { return 0; }
void set_device(int) { unavailable("set_device"); }
void* alloc(size_t, int) { unavailable("alloc"); }
void free(void*, size_t, int) { unavailable("free"); }
void empty_cache() {}  // nothing is cached, so there is nothing to release
void synchronize(int) { unavailable("synchronize"); }
void copy_h2d(void*, const void*, size_t, int) { unavailable("copy_h2d"); }
void copy_d2h(void*, const void*, size_t, int) { unavailable("copy_d2h"); }
void copy_d2d(void*, const void*, size_t, int) { unavailable("copy_d2d"); }
void copy_strided(void*, DType, const void*, DType, const Strided&, int) { unavailable("copy_strided"); }
void fill(void*, DType, double, const Strided&, int) { unavailable("fill"); }
void where(size_t, void*, const void*, const void*, const void*, int64_t, int) { unavailable("where"); }
void binary(BinaryOp, DType, void*, const void*, const void*, const Strided&, int) { unavailable("binary"); }
void binary_scalar(BinaryOp, DType, void*, const void*, double, bool, const Strided&, int) {
  unavailable("binary_scalar");
}
void unary(UnaryOp, DType, void*, const void*, const Strided&, int) { unavailable("unary"); }
void reduce(ReduceOp, DType, void*, const void*, int64_t, int64_t, int64_t, int) { unavailable("reduce"); }
void gemm(const GemmParams&, int) { unavailable("gemm"); }
void optim_step(OptimKind, DType, const OptimHyper&, const OptimTensor*, int64_t, int) { unavailable("optim_step"); }
void mp_gather_fwd(DType, const MpParams&, int) { unavailable("message_passing"); }
void mp_gather_bwd(DType, const MpParams&, int) { unavailable("message_passing backward"); }
void seg_softmax_fwd(DType, const SegSoftmaxParams&, int) { unavailable("segment_softmax"); }
void seg_softmax_bwd(DType, const SegSoftmaxParams&, int) { unavailable("segment_softmax backward"); }
void selective_scan_fwd(const SelectiveScanParams&, int) { unavailable("selective_scan"); }
void selective_scan_bwd(const SelectiveScanParams&, int) { unavailable("selective_scan backward"); }
void rnn_fwd(const RnnParams&, int) { unavailable("rnn"); }
void rnn_bwd(const RnnParams&, int) { unavailable("rnn backward"); }
void attention_fwd(const AttentionParams&, int) { unavailable("scaled_dot_product_attention"); }
void attention_bwd(const AttentionParams&, int) { unavailable("scaled_dot_product_attention backward"); }
void conv2d_fwd(const Conv2dParams&, int) { unavailable("conv2d"); }
void conv2d_bwd_input(const Conv2dParams&, int) { unavailable("conv2d backward"); }
void conv2d_bwd_weight(const Conv2dParams&, int) { unavailable("conv2d backward"); }
void conv_bias_add(DType, void*, const void*, int64_t, int64_t, int64_t, int) { unavailable("conv2d"); }
void conv_bias_grad(DType, const void*, void*, int64_t, int64_t, int64_t, int) { unavailable("conv2d backward"); }
void pool2d_fwd(const Pool2dParams&, int) { unavailable("pool2d"); }
void pool2d_bwd(const Pool2dParams&, int) { unavailable("pool2d backward"); }
void batch_norm_fwd(const BatchNormParams&, int) { unavailable("batch_norm"); }
void batch_norm_bwd(const BatchNormParams&, int) { unavailable("batch_norm backward"); }
void group_norm_fwd(const GroupNormParams&, int) { unavailable("group_norm"); }
void group_norm_bwd(const GroupNormParams&, int) { unavailable("group_norm backward"); }
void layer_norm_bwd(const LayerNormParams&, int) { unavailable("layer_norm backward"); }
bool nccl_available() { return false; }
std::string nccl_unique_id() { unavailable("nccl_unique_id"); }
void* nccl_comm_init(int, int, const std::string&, int) { unavailable("nccl_comm_init"); }
void nccl_comm_destroy(void*) { unavailable("nccl_comm_destroy"); }
void nccl_collective(NcclColl, void*, const void*, void*, int64_t, DType, int, int) { unavailable("nccl_collective"); }

}  // namespace fastdl::cuda
