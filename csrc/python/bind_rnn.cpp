// Recurrent layers: one layer-direction per call (nn.RNN / LSTM / GRU stack them in Python).
#include "ops/rnn.h"
#include "python/common.h"

namespace fastdl::py {

void init_rnn(nb::module_& m) {
  m.def("rnn_layer", [](const Tensor& x, std::optional<Tensor> batch_sizes, std::optional<Tensor> hx, std::optional<Tensor> cx,
                        const Tensor& w_ih, const Tensor& w_hh, std::optional<Tensor> b_ih, std::optional<Tensor> b_hh,
                        std::optional<Tensor> w_hr, int64_t mode, bool reverse) {
    const int64_t work = x.numel() * (w_ih.ndim() == 2 ? w_ih.shape()[0] : 1);
    return maybe_release(work, [&] {
      return rnn_layer(x, batch_sizes.value_or(Tensor()), hx.value_or(Tensor()), cx.value_or(Tensor()), w_ih, w_hh,
                       b_ih.value_or(Tensor()), b_hh.value_or(Tensor()), w_hr.value_or(Tensor()), mode, reverse);
    });
  }, "input"_a, "batch_sizes"_a = nb::none(), "hx"_a = nb::none(), "cx"_a = nb::none(), "weight_ih"_a, "weight_hh"_a,
     "bias_ih"_a = nb::none(), "bias_hh"_a = nb::none(), "weight_hr"_a = nb::none(), "mode"_a = 2, "reverse"_a = false,
     "One recurrent layer in one direction over a padded (T, B, I) or packed (N, I) + batch_sizes input. mode: 0 "
     "RNN_TANH, 1 RNN_RELU, 2 LSTM, 3 GRU (PyTorch's weight layout and gate order). Returns [output, h_n] "
     "(+ c_n for LSTM); backward runs backpropagation through time natively.");
}

}  // namespace fastdl::py
