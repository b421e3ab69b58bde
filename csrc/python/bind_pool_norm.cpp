// Pooling and normalisation ops (ops/pool.h, ops/norm.h); Python (nn/functional.py) turns ints
// into pairs and None into the defaults before calling these.
#include "ops/norm.h"
#include "ops/pool.h"
#include "python/common.h"

namespace fastdl::py {

void init_pool_norm(nb::module_& m) {
  m.def("max_pool2d", [](const Tensor& x, const IntList& k, const IntList& s, const IntList& p, const IntList& d,
                         bool ceil_mode) {
    auto r = maybe_release(x.numel(), [&] { return max_pool2d(x, k, s, p, d, ceil_mode); });
    return std::make_pair(r[0], r[1]);
  }, "input"_a, "kernel_size"_a, "stride"_a, "padding"_a, "dilation"_a, "ceil_mode"_a,
     "(out, indices) of 2-D max pooling over (N, C, H, W) or (C, H, W); indices are flat h * W + w per plane.");
  m.def("avg_pool2d", [](const Tensor& x, const IntList& k, const IntList& s, const IntList& p, bool ceil_mode,
                         bool count_include_pad, std::optional<int64_t> divisor_override) {
    return maybe_release(x.numel(), [&] { return avg_pool2d(x, k, s, p, ceil_mode, count_include_pad, divisor_override); });
  }, "input"_a, "kernel_size"_a, "stride"_a, "padding"_a, "ceil_mode"_a, "count_include_pad"_a,
     "divisor_override"_a = nb::none(), "2-D average pooling over (N, C, H, W) or (C, H, W).");
  m.def("adaptive_avg_pool2d", [](const Tensor& x, const IntList& o) {
    return maybe_release(x.numel(), [&] { return adaptive_avg_pool2d(x, o); });
  }, "input"_a, "output_size"_a, "Adaptive 2-D average pooling to output_size (a negative size keeps the input's).");
  m.def("adaptive_max_pool2d", [](const Tensor& x, const IntList& o) {
    auto r = maybe_release(x.numel(), [&] { return adaptive_max_pool2d(x, o); });
    return std::make_pair(r[0], r[1]);
  }, "input"_a, "output_size"_a, "(out, indices) of adaptive 2-D max pooling to output_size.");
  m.def("batch_norm", [](const Tensor& x, std::optional<Tensor> rm, std::optional<Tensor> rv, std::optional<Tensor> w,
                         std::optional<Tensor> b, bool training, double momentum, double eps) {
    return maybe_release(x.numel(), [&] {
      return batch_norm(x, rm ? *rm : Tensor(), rv ? *rv : Tensor(), w ? *w : Tensor(), b ? *b : Tensor(), training,
                        momentum, eps);
    });
  }, "input"_a, "running_mean"_a.none(), "running_var"_a.none(), "weight"_a.none() = nb::none(),
     "bias"_a.none() = nb::none(), "training"_a = false, "momentum"_a = 0.1, "eps"_a = 1e-5,
     "Batch normalisation of (N, C, *) over all dims but 1, fused forward and backward; in training the running "
     "stats (when given) move by momentum (unbiased variance).");
  m.def("group_norm", [](const Tensor& x, int64_t G, std::optional<Tensor> w, std::optional<Tensor> b, double eps) {
    return maybe_release(x.numel(), [&] { return group_norm(x, G, w ? *w : Tensor(), b ? *b : Tensor(), eps); });
  }, "input"_a, "num_groups"_a, "weight"_a.none() = nb::none(), "bias"_a.none() = nb::none(), "eps"_a = 1e-5,
     "Group normalisation of (N, C, *): each of num_groups channel groups per sample, fused forward and backward.");
}

}  // namespace fastdl::py
