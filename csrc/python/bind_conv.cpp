// Convolution: conv2d and conv_transpose2d (fastdl.nn.functional shapes the arguments).
#include "python/autocast.h"
#include "python/common.h"

namespace fastdl::py {

void init_conv(nb::module_& m) {
  m.def("conv2d", [](const Tensor& x, const Tensor& w, std::optional<Tensor> b, const IntList& stride,
                     const IntList& padding, const IntList& dilation, int64_t groups) {
    return maybe_release(x.numel() * (w.ndim() == 4 ? w.shape()[0] : 1), [&] {
      return conv2d(autocast_lower(x), autocast_lower(w), autocast_lower(b.value_or(Tensor())), stride, padding, dilation, groups);
    });
  }, "input"_a, "weight"_a, "bias"_a = nb::none(), "stride"_a = IntList{1}, "padding"_a = IntList{0},
     "dilation"_a = IntList{1}, "groups"_a = 1,
     "2-D convolution over (N, C, H, W); padding (ph, pw) or (top, bottom, left, right). "
     "See fastdl.nn.functional.conv2d.");
  m.def("conv_transpose2d", [](const Tensor& x, const Tensor& w, std::optional<Tensor> b, const IntList& stride,
                               const IntList& padding, const IntList& output_padding, int64_t groups,
                               const IntList& dilation) {
    return maybe_release(x.numel() * (w.ndim() == 4 ? w.shape()[1] : 1), [&] {
      return conv_transpose2d(autocast_lower(x), autocast_lower(w), autocast_lower(b.value_or(Tensor())), stride, padding, output_padding, groups, dilation);
    });
  }, "input"_a, "weight"_a, "bias"_a = nb::none(), "stride"_a = IntList{1}, "padding"_a = IntList{0},
     "output_padding"_a = IntList{0}, "groups"_a = 1, "dilation"_a = IntList{1},
     "2-D transposed convolution (the input gradient of conv2d); see fastdl.nn.functional.conv_transpose2d.");
}

}  // namespace fastdl::py
