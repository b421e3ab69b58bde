// Shared helpers for the binding files: argument parsing of dims, dtypes, scalars and
// subscripts. Bindings only translate; ops do the work.
#pragma once
#include <nanobind/nanobind.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include "autograd/node.h"
#include "ops/ops.h"

namespace nb = nanobind;
using namespace nb::literals;

namespace fastdl::py {

// Run `f` with the GIL released when the op is large enough for another Python thread (a
// data loader) to make progress meanwhile; tiny ops keep it (releasing costs more than they do).
template <class F> auto maybe_release(int64_t work, F&& f) {
  if (work >= (int64_t(1) << 16)) {
    nb::gil_scoped_release r;
    return f();
  }
  return f();
}

// Python view of an autograd node (t.grad_fn).
struct GradFn { Ref<autograd::Node> node; };

// dim=None -> {}, int -> {d}, sequence -> list
IntList dims_arg(nb::handle h);
// shape from (*sizes) or a single sequence
Dims shape_args(nb::args args, const char* op = "shape");
Dims shape_arg(nb::handle h);
Device device_arg(nb::handle h);  // None -> cpu, str, Device
std::vector<IndexItem> index_items(nb::handle key);
// A Python int beyond 2^53 beside an integer tensor, as an exact 0-dim tensor; null otherwise.
Tensor exact_int(nb::handle s, const Tensor& other);

void init_tensor(nb::module_& m, nb::class_<Tensor>& cls);
void init_ops(nb::module_& m, nb::class_<Tensor>& cls);
void init_autograd(nb::module_& m);
void init_optim(nb::module_& m);
void init_nn(nb::module_& m);
void init_interop(nb::module_& m, nb::class_<Tensor>& cls);
void init_profiler(nb::module_& m);
void init_graph(nb::module_& m);
void init_sequence(nb::module_& m);
void init_conv(nb::module_& m);
void init_pool_norm(nb::module_& m);
void init_rnn(nb::module_& m);
void init_nccl(nb::module_& m);

}  // namespace fastdl::py
