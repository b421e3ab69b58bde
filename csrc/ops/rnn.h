// One recurrent layer in one direction (nn.RNN / LSTM / GRU build stacks and directions from
// it): checks naming the op, argument and shapes, dispatch to the drivers of cpu/rnn.h or the
// CUDA backend, and one backward node that runs backpropagation through time natively.
#pragma once
#include <vector>

#include "core/tensor.h"

namespace fastdl {

// x: (T, B, I) padded, or (N, I) packed with batch_sizes an int64 CPU (T,) tensor, non-increasing.
// mode: 0 RNN_TANH, 1 RNN_RELU, 2 LSTM, 3 GRU (PyTorch's gate order); w_ih (G H, I), w_hh (G H, P),
// b_ih / b_hh (G H) or undefined, w_hr (P, H) (LSTM proj_size) or undefined; h0 (B, P), c0 (B, H)
// or undefined (zeros). Returns {out (T, B, P) or (N, P), h_n (B, P)} and c_n (B, H) for LSTM.
std::vector<Tensor> rnn_layer(const Tensor& x, const Tensor& batch_sizes, const Tensor& h0, const Tensor& c0,
                              const Tensor& w_ih, const Tensor& w_hh, const Tensor& b_ih, const Tensor& b_hh,
                              const Tensor& w_hr, int64_t mode, bool reverse);

}  // namespace fastdl
