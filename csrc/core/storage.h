// A reference-counted block of memory on one device. Memory owned elsewhere (numpy,
// DLPack producers) is held through a deleter and released when the last view goes.
#pragma once
#include <cstddef>

#include "core/dtype.h"
#include "core/ref.h"

namespace fastdl {

struct Storage : RefCounted {
  void* data = nullptr;
  size_t nbytes = 0;
  Device device;
  void (*deleter)(void* ctx) = nullptr;  // external memory: called instead of freeing
  void* ctx = nullptr;
  // In-place writes through the user-facing ops (x.add_(), x[i] = v, copy_, optimizer steps)
  // count here, shared by every view and detached alias of the memory (Tensor._version); a
  // backward node checks that the tensors it saved are still at the version it saw.
  uint32_t version = 0;

  static Ref<Storage> allocate(size_t nbytes, Device d);
  static Ref<Storage> wrap(void* data, size_t nbytes, Device d, void (*del)(void*), void* ctx);
  ~Storage() override;
};

}  // namespace fastdl
