// NCCL collectives for fastdl.distributed's 'nccl' backend. Compiled against nccl.h when CMake
// finds it (FASTDL_WITH_NCCL); libnccl.so.2 itself is opened at run time, so the module
// still imports on machines without NCCL (or without a driver) and nccl_available() says so.
// Every call is enqueued on the device's stream; callers synchronise to wait.
#include <string>

#include "cuda/common.cuh"

#ifdef FASTDL_WITH_NCCL
#include <dlfcn.h>
#include <nccl.h>
#endif

namespace fastdl::cuda {

#ifdef FASTDL_WITH_NCCL

namespace {

struct Nccl {
  void* lib = nullptr;
  std::string why;  // why it is unavailable
  decltype(&ncclGetErrorString) error_string = nullptr;
  decltype(&ncclGetUniqueId) get_unique_id = nullptr;
  decltype(&ncclCommInitRank) comm_init_rank = nullptr;
  decltype(&ncclCommDestroy) comm_destroy = nullptr;
  decltype(&ncclAllReduce) all_reduce = nullptr;
  decltype(&ncclBroadcast) broadcast = nullptr;
  decltype(&ncclAllGather) all_gather = nullptr;
  decltype(&ncclReduceScatter) reduce_scatter = nullptr;
  decltype(&ncclSend) send = nullptr;
  decltype(&ncclRecv) recv = nullptr;
};

template <class F> void sym(Nccl& n, F& f, const char* name) {
  f = reinterpret_cast<F>(dlsym(n.lib, name));
  if (!f && n.why.empty()) n.why = std::string("libnccl.so.2 lacks ") + name;
}

const Nccl& nccl() {
  static Nccl n = [] {
    Nccl n;
    n.lib = dlopen("libnccl.so.2", RTLD_NOW | RTLD_LOCAL);
    if (!n.lib) {
      const char* e = dlerror();
      n.why = std::string("cannot load libnccl.so.2 (") + (e ? e : "?") + "); pip install nvidia-nccl-cu13 and put "
              "its lib folder on LD_LIBRARY_PATH";
      return n;
    }
    sym(n, n.error_string, "ncclGetErrorString");
    sym(n, n.get_unique_id, "ncclGetUniqueId");
    sym(n, n.comm_init_rank, "ncclCommInitRank");
    sym(n, n.comm_destroy, "ncclCommDestroy");
    sym(n, n.all_reduce, "ncclAllReduce");
    sym(n, n.broadcast, "ncclBroadcast");
    sym(n, n.all_gather, "ncclAllGather");
    sym(n, n.reduce_scatter, "ncclReduceScatter");
    sym(n, n.send, "ncclSend");
    sym(n, n.recv, "ncclRecv");
    return n;
  }();
  return n;
}

const Nccl& need(const char* call) {
  const Nccl& n = nccl();
  if (!n.why.empty()) throw DeviceError(std::string("nccl: ") + call + ": " + n.why);
  return n;
}

void ok(ncclResult_t r, const char* what) {
  if (r != ncclSuccess) throw DeviceError(std::string("nccl: ") + what + " failed: " + nccl().error_string(r));
}

ncclDataType_t nccl_dtype(DType t) {
  switch (t) {
    case DType::f32: return ncclFloat32;
    case DType::f64: return ncclFloat64;
    case DType::f16: return ncclFloat16;
    case DType::bf16: return ncclBfloat16;
    case DType::i32: return ncclInt32;
    case DType::i64: return ncclInt64;
    case DType::b8: case DType::u8: return ncclUint8;
    case DType::i8: return ncclInt8;
    case DType::i16: throw TypeError("nccl: int16 has no NCCL data type; cast to int32 first");
  }
  return ncclFloat32;
}

}  // namespace

bool nccl_available() { return nccl().why.empty(); }

std::string nccl_unique_id() {
  ncclUniqueId id;
  ok(need("get_unique_id").get_unique_id(&id), "ncclGetUniqueId");
  return std::string(id.internal, NCCL_UNIQUE_ID_BYTES);
}

void* nccl_comm_init(int world, int rank, const std::string& id, int device) {
  const Nccl& n = need("comm_init");
  if (id.size() != NCCL_UNIQUE_ID_BYTES)
    throw ValueError(str_cat("nccl: comm_init: the unique id has ", id.size(), " bytes; expected ", NCCL_UNIQUE_ID_BYTES));
  use_device(device);
  ncclUniqueId uid;
  std::copy(id.begin(), id.end(), uid.internal);
  ncclComm_t comm = nullptr;
  ok(n.comm_init_rank(&comm, world, uid, rank), "ncclCommInitRank");
  return comm;
}

void nccl_comm_destroy(void* comm) {
  if (comm) ok(need("comm_destroy").comm_destroy(static_cast<ncclComm_t>(comm)), "ncclCommDestroy");
}

void nccl_collective(NcclColl kind, void* comm, const void* send, void* recv, int64_t count, DType dt, int arg,
                     int device) {
  const Nccl& n = need("collective");
  use_device(device);
  auto c = static_cast<ncclComm_t>(comm);
  ncclDataType_t t = nccl_dtype(dt);
  size_t cnt = size_t(count);
  auto op = ncclRedOp_t(arg);  // 0 sum, 1 prod, 2 max, 3 min, 4 avg: NCCL's own numbering
  switch (kind) {
    case NcclColl::all_reduce: ok(n.all_reduce(send, recv, cnt, t, op, c, stream()), "ncclAllReduce"); break;
    case NcclColl::broadcast: ok(n.broadcast(send, recv, cnt, t, arg, c, stream()), "ncclBroadcast"); break;
    case NcclColl::all_gather: ok(n.all_gather(send, recv, cnt, t, c, stream()), "ncclAllGather"); break;
    case NcclColl::reduce_scatter:
      ok(n.reduce_scatter(send, recv, cnt, t, op, c, stream()), "ncclReduceScatter");
      break;
    case NcclColl::send: ok(n.send(send, cnt, t, arg, c, stream()), "ncclSend"); break;
    case NcclColl::recv: ok(n.recv(recv, cnt, t, arg, c, stream()), "ncclRecv"); break;
  }
}

#else  // built without nccl.h

namespace {
[[noreturn]] void no_nccl(const char* call) {
  throw DeviceError(std::string("nccl: ") + call + ": fastdl was built without NCCL headers (set NCCL_ROOT, or pip "
                    "install nvidia-nccl-cu13, and rebuild)");
}
}  // namespace

bool nccl_available() { return false; }
std::string nccl_unique_id() { no_nccl("get_unique_id"); }
void* nccl_comm_init(int, int, const std::string&, int) { no_nccl("comm_init"); }
void nccl_comm_destroy(void*) { no_nccl("comm_destroy"); }
void nccl_collective(NcclColl, void*, const void*, void*, int64_t, DType, int, int) { no_nccl("collective"); }

#endif

}  // namespace fastdl::cuda
