// nn ops with their own fused kernels that bind_ops.cpp does not cover: reduced cross entropy.
#include "python/common.h"

namespace fastdl::py {

void init_nn(nb::module_& m) {
  m.def("cross_entropy", [](const Tensor& x, const Tensor& t, std::optional<Tensor> w, int64_t ignore_index,
                            double label_smoothing, int64_t reduction) {
    return cross_entropy(x, t, w ? *w : Tensor(), ignore_index, label_smoothing, reduction);
  }, "input"_a, "target"_a, "weight"_a = nb::none(), "ignore_index"_a = -100, "label_smoothing"_a = 0.0,
     "reduction"_a = 1,
     "Cross entropy of logits (N, C) against class indices (N,), fused forward and backward; "
     "reduction 0 none, 1 mean, 2 sum.");
}

}  // namespace fastdl::py
