// Sequence-model kernels: the selective scan (Mamba) and fused attention.
#include "python/autocast.h"
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
  m.def("scaled_dot_product_attention", [](const Tensor& q, const Tensor& k, const Tensor& v, std::optional<Tensor> mask,
                                           double dropout_p, bool is_causal, std::optional<double> scale, bool enable_gqa) {
    const int64_t work = q.numel() * (k.ndim() >= 2 ? k.shape()[k.ndim() - 2] : 1);
    return maybe_release(work, [&] {
      return scaled_dot_product_attention(autocast_lower(q), autocast_lower(k), autocast_lower(v),
                                          autocast_lower(mask.value_or(Tensor())), dropout_p, is_causal, scale, enable_gqa);
    });
  }, "query"_a, "key"_a, "value"_a, "attn_mask"_a = nb::none(), "dropout_p"_a = 0.0, "is_causal"_a = false,
     "scale"_a = nb::none(), "enable_gqa"_a = false,
     "Fused flash attention (tiled online softmax; backward recomputes scores from the saved log-sum-exp); "
     "see fastdl.nn.functional.scaled_dot_product_attention.");
}

}  // namespace fastdl::py
