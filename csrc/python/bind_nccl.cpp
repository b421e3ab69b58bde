// NCCL entry points for fastdl.distributed's 'nccl' backend (csrc/cuda/nccl.cu): the unique id,
// communicators (as integer handles) and collectives on contiguous CUDA tensors, enqueued on
// the device's stream (fastdl.distributed synchronises to wait).
#include <cstdint>
#include <optional>

#include "cuda/cuda_api.h"
#include "python/common.h"

namespace fastdl::py {

namespace {

const Tensor* check_cuda(const std::optional<Tensor>& t, const char* arg, int& device) {
  if (!t) return nullptr;
  FASTDL_CHECK(t->device().is_cuda(), ValueError, "nccl: ", arg, " must be a CUDA tensor; got one on the CPU");
  FASTDL_CHECK(t->is_contiguous(), ValueError, "nccl: ", arg, " must be contiguous; got shape ", shape_str(t->shape()));
  device = t->device().index;
  return &*t;
}

}  // namespace

void init_nccl(nb::module_& m) {
  m.def("_nccl_available", &cuda::nccl_available, "True when built with nccl.h and libnccl.so.2 loads");
  m.def("_nccl_unique_id", [] {
    std::string s = cuda::nccl_unique_id();
    return nb::bytes(s.data(), s.size());
  });
  m.def("_nccl_comm_init", [](int world, int rank, nb::bytes id, int device) {
    std::string s(id.c_str(), id.size());
    nb::gil_scoped_release r;
    return reinterpret_cast<uintptr_t>(cuda::nccl_comm_init(world, rank, s, device));
  }, "world"_a, "rank"_a, "unique_id"_a, "device"_a);
  m.def("_nccl_comm_destroy", [](uintptr_t comm) { cuda::nccl_comm_destroy(reinterpret_cast<void*>(comm)); });
  // kind: 0 all_reduce, 1 broadcast, 2 all_gather, 3 reduce_scatter, 4 send, 5 recv
  m.def("_nccl_collective", [](int kind, uintptr_t comm, std::optional<Tensor> send, std::optional<Tensor> recv,
                               int64_t count, int arg) {
    FASTDL_CHECK(kind >= 0 && kind <= 5, ValueError, "nccl: unknown collective ", kind);
    int dev_s = -1, dev_r = -1;
    const Tensor* s = check_cuda(send, "send tensor", dev_s);
    const Tensor* r = check_cuda(recv, "recv tensor", dev_r);
    FASTDL_CHECK(s || r, ValueError, "nccl: a collective needs a tensor");
    FASTDL_CHECK(!s || !r || (dev_s == dev_r && s->dtype() == r->dtype()), ValueError,
                 "nccl: send and recv tensors must share a device and a dtype");
    DType dt = s ? s->dtype() : r->dtype();
    int device = s ? dev_s : dev_r;
    void* sp = s ? s->data_ptr() : nullptr;
    void* rp = r ? r->data_ptr() : nullptr;
    nb::gil_scoped_release g;
    cuda::nccl_collective(cuda::NcclColl(kind), reinterpret_cast<void*>(comm), sp, rp, count, dt, arg, device);
  }, "kind"_a, "comm"_a, "send"_a.none(), "recv"_a.none(), "count"_a, "arg"_a);
}

}  // namespace fastdl::py
