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

  static Ref<Storage> allocate(size_t nbytes, Device d);
  static Ref<Storage> wrap(void* data, size_t nbytes, Device d, void (*del)(void*), void* ctx);
  ~Storage() override;
};

}  // namespace fastdl
