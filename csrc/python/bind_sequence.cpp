// Sequence-model kernels: the selective scan (Mamba).
#include "python/common.h"

namespace fastdl::py {

void init_sequence(nb::module_& m) {
  m.def("selective_scan", [](const Tensor& u, const Tensor& delta, const Tensor& A, const Tensor& B, const Tensor& C,
                             std::optional<Tensor> D, std::optional<Tensor> z, std::optional<Tensor> delta_bias,
                             bool delta_softplus, bool return_last_state) -> nb::object {
    std::vector<Tensor> r = maybe_release(u.numel() * A.shape().numel(), [&] {
      return selective_scan(u, delta, A, B, C, D.value_or(Tensor()), z.value_or(Tensor()), delta_bias.value_or(Tensor()),
                            delta_softplus, return_last_state);
    });
    if (r.size() == 1) return nb::cast(r[0]);
    return nb::make_tuple(r[0], r[1]);
  }, "u"_a, "delta"_a, "A"_a, "B"_a, "C"_a, "D"_a = nb::none(), "z"_a = nb::none(), "delta_bias"_a = nb::none(),
     "delta_softplus"_a = false, "return_last_state"_a = false,
     "Mamba's selective scan (mamba_ssm.selective_scan_fn semantics); see fastdl.nn.functional.selective_scan.");
}

}  // namespace fastdl::py
