// The public C++ op surface: every op checks its inputs (naming itself, the argument and
// the shapes), computes the output shape, allocates, dispatches to the device's kernel and
// records its backward node. One file per family: create, copy, binary, unary, reduce,
// shape, index, matmul, nn.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "kernels/kinds.h"

namespace fastdl {

using IntList = std::vector<int64_t>;

// ---- create.cpp
Tensor full(const Dims& shape, double value, DType dt, Device dev = Device());
Tensor zeros(const Dims& shape, DType dt, Device dev = Device());
Tensor ones(const Dims& shape, DType dt, Device dev = Device());
Tensor zeros_like(const Tensor& t);
Tensor ones_like(const Tensor& t);
Tensor scalar_tensor(double v, DType dt, Device dev = Device());
Tensor arange(double start, double end, double step, DType dt, Device dev = Device());
Tensor linspace(double start, double end, int64_t steps, DType dt, Device dev = Device());
Tensor eye(int64_t n, int64_t m, DType dt, Device dev = Device());
Tensor rand(const Dims& shape, DType dt, Device dev = Device());
Tensor randn(const Dims& shape, DType dt, Device dev = Device());
Tensor randint(int64_t low, int64_t high, const Dims& shape, DType dt, Device dev = Device());
Tensor randperm(int64_t n, DType dt, Device dev = Device());
Tensor bernoulli(const Tensor& p);                 // 0/1 with probabilities p
void uniform_(Tensor& t, double lo, double hi);
void normal_(Tensor& t, double mean, double std);
void manual_seed(uint64_t seed);
uint64_t random_u64();                             // the global generator, for Python helpers
void rng_state(uint64_t out[4]);                   // its four xoshiro256** words (fastdl.Generator
void set_rng_state(const uint64_t in[4]);          // swaps its own state in around a draw)

// ---- copy.cpp
void copy_(const Tensor& dst, const Tensor& src);  // broadcast, cast, cross-device; no autograd
void fill_(const Tensor& t, double v);
Tensor contiguous(const Tensor& t);
Tensor clone(const Tensor& t);
Tensor to_dtype(const Tensor& t, DType dt);
Tensor to_device(const Tensor& t, Device d);
Tensor detach(const Tensor& t);
double item(const Tensor& t);
int64_t item_int(const Tensor& t);  // item of an integer tensor, exact
Tensor assign_(const Tensor& dst, const Tensor& src);  // dst.copy_(src) with autograd

// ---- binary.cpp
Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b);
Tensor binary_scalar(BinaryOp op, const Tensor& a, double s, bool scalar_first = false, int kind = -1);
Tensor binary_(BinaryOp op, const Tensor& a, const Tensor& b);   // in place into a
Tensor binary_scalar_(BinaryOp op, const Tensor& a, double s);
inline Tensor add(const Tensor& a, const Tensor& b) { return binary(BinaryOp::add, a, b); }
inline Tensor sub(const Tensor& a, const Tensor& b) { return binary(BinaryOp::sub, a, b); }
inline Tensor mul(const Tensor& a, const Tensor& b) { return binary(BinaryOp::mul, a, b); }
inline Tensor div(const Tensor& a, const Tensor& b) { return binary(BinaryOp::div, a, b); }
inline Tensor add_(const Tensor& a, const Tensor& b) { return binary_(BinaryOp::add, a, b); }
inline Tensor mul_s(const Tensor& a, double s) { return binary_scalar(BinaryOp::mul, a, s); }
inline Tensor add_s(const Tensor& a, double s) { return binary_scalar(BinaryOp::add, a, s); }
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);
Tensor clamp(const Tensor& a, std::optional<double> lo, std::optional<double> hi);
Tensor clamp_t(const Tensor& a, const Tensor& lo, const Tensor& hi);  // undefined = no bound
DType result_type(const Tensor& a, const Tensor& b);
DType result_type_scalar(const Tensor& a, double s, bool s_is_int);
Tensor lerp(const Tensor& a, const Tensor& b, double w);

// ---- unary.cpp
Tensor unary(UnaryOp op, const Tensor& a);
Tensor unary_(UnaryOp op, const Tensor& a);
Tensor leaky_relu(const Tensor& a, double slope);
// elu: x > 0 ? scale x : alpha scale (e^(input_scale x) - 1) (selu and celu set scale and input_scale)
Tensor elu(const Tensor& a, double alpha, double scale = 1.0, double input_scale = 1.0);
Tensor hardswish(const Tensor& a);    // x min(max(x + 3, 0), 6) / 6
Tensor hardsigmoid(const Tensor& a);  // min(max(x + 3, 0), 6) / 6
Tensor hardtanh(const Tensor& a, double lo, double hi);
Tensor threshold(const Tensor& a, double threshold, double value);
// The value of a special function ("lgamma", "digamma", "erfc", "erfinv", "zeta" of order s) on a
// float64 cpu tensor, no autograd (fastdl/_special.py composes the derivatives).
Tensor special_value(const std::string& fn, const Tensor& x, double s = 0);
Tensor hardshrink(const Tensor& a, double lambd);  // cpu floating point (other devices compose)
Tensor softshrink(const Tensor& a, double lambd);
Tensor nan_to_num(const Tensor& a, double nan, double posinf, double neginf);

// ---- reduce.cpp
Tensor sum(const Tensor& a, const IntList& dims, bool keepdim, std::optional<DType> dt = std::nullopt);
Tensor mean(const Tensor& a, const IntList& dims, bool keepdim);
Tensor prod(const Tensor& a, const IntList& dims, bool keepdim);
Tensor amax(const Tensor& a, const IntList& dims, bool keepdim);
Tensor amin(const Tensor& a, const IntList& dims, bool keepdim);
Tensor max_all(const Tensor& a);  // max() / min(): as amax / amin over every dim; a NaN result's gradient goes to the NaNs
Tensor min_all(const Tensor& a);
std::pair<Tensor, Tensor> max_dim(const Tensor& a, int64_t dim, bool keepdim);  // values, indices
std::pair<Tensor, Tensor> min_dim(const Tensor& a, int64_t dim, bool keepdim);
Tensor argmax(const Tensor& a, std::optional<int64_t> dim, bool keepdim);
Tensor argmin(const Tensor& a, std::optional<int64_t> dim, bool keepdim);
Tensor var(const Tensor& a, const IntList& dims, double correction, bool keepdim);
Tensor std_(const Tensor& a, const IntList& dims, double correction, bool keepdim);
Tensor logsumexp(const Tensor& a, const IntList& dims, bool keepdim);
Tensor all(const Tensor& a, const IntList& dims, bool keepdim);
Tensor any(const Tensor& a, const IntList& dims, bool keepdim);
Tensor norm(const Tensor& a, double p, const IntList& dims, bool keepdim);
Tensor cumsum(const Tensor& a, int64_t dim);
Tensor sum_to(const Tensor& g, const Dims& shape);  // reduce a broadcast gradient back

// ---- shape.cpp
Tensor reshape(const Tensor& a, const IntList& shape);  // view when strides allow, else copy
Tensor view(const Tensor& a, const IntList& shape);     // raises when not viewable
Tensor permute(const Tensor& a, const IntList& dims);
Tensor transpose(const Tensor& a, int64_t d0, int64_t d1);
Tensor expand(const Tensor& a, const IntList& shape);
Tensor broadcast_to(const Tensor& a, const Dims& shape);
Tensor squeeze(const Tensor& a, std::optional<IntList> dims);
Tensor unsqueeze(const Tensor& a, int64_t dim);
Tensor flatten(const Tensor& a, int64_t start, int64_t end);
Tensor slice(const Tensor& a, int64_t dim, int64_t start, int64_t stop, int64_t step);  // clamps like Python
Tensor narrow(const Tensor& a, int64_t dim, int64_t start, int64_t length);            // strict bounds
Tensor select(const Tensor& a, int64_t dim, int64_t index);
// After an in-place op with autograd gave the view `view` its new history: the view's base takes
// history base_new = base_old with the view's elements replaced (PyTorch's CopySlices), and the view
// becomes a view of that. No-op for non-views and outside autograd. (as_strided.cpp)
void rebase_view_history(const Tensor& view);
// Before such a write: raises when `view` is a view of a leaf that requires grad (nothing written yet).
void check_inplace_view(const Tensor& view);
// Before an in-place write into `out`, as PyTorch checks (as_strided.cpp): RuntimeError when two of
// out's elements share memory (a dimension of stride 0 and size > 1), or when `in` shares some of
// out's memory but not all of it in out's own layout (x[1:].add_(x[:-1]), y.add_(y.T): elements
// would read values already overwritten). Views whose overlap is too hard to decide (not dense:
// y[::2] against y[1::2]) pass, as in PyTorch.
// suffix: after op in the message ("_" for the in-place forms named by their op).
void check_no_internal_overlap(const char* op, const Tensor& out, const char* suffix = "");
void check_no_partial_overlap(const char* op, const Tensor& out, const Tensor& in, const char* suffix = "");
// The same, the same memory in the same layout included (index_put_ scatters from `in`).
void check_no_overlap(const char* op, const Tensor& out, const Tensor& in);
// as_strided.cpp: a view of any geometry over a's storage (offset: a's own when absent)
Tensor as_strided(const Tensor& a, const IntList& size, const IntList& stride, std::optional<int64_t> storage_offset);
Tensor cat(const std::vector<Tensor>& ts, int64_t dim);
Tensor stack(const std::vector<Tensor>& ts, int64_t dim);
std::vector<Tensor> split(const Tensor& a, const IntList& sizes, int64_t dim);
std::vector<Tensor> split_size(const Tensor& a, int64_t size, int64_t dim);
std::vector<Tensor> chunk(const Tensor& a, int64_t chunks, int64_t dim);
std::vector<Tensor> unbind(const Tensor& a, int64_t dim);
Tensor movedim(const Tensor& a, int64_t src, int64_t dst);
Tensor flip(const Tensor& a, const IntList& dims);
Tensor repeat(const Tensor& a, const IntList& reps);
Tensor tril(const Tensor& a, int64_t k);
Tensor triu(const Tensor& a, int64_t k);
Dims broadcast_shapes(const Dims& a, const Dims& b, const char* op);

// ---- index.cpp
// One item of a Python subscript: int, slice, None, Ellipsis, or an index tensor.
struct IndexItem {
  enum Kind { Int, Slice, NewAxis, Ellipsis, TensorIdx } kind;
  int64_t start = 0, stop = 0, step = 1;  // Int uses start; Slice uses all three (sentinels below)
  bool has_start = false, has_stop = false;
  Tensor tensor;
};
Tensor index(const Tensor& a, const std::vector<IndexItem>& items);
void index_set(const Tensor& a, const std::vector<IndexItem>& items, const Tensor& value);
Tensor index_put(const Tensor& a, const std::vector<Tensor>& indices, const Tensor& values, bool accumulate);
Tensor gather(const Tensor& a, int64_t dim, const Tensor& idx);
Tensor scatter_add(const Tensor& a, int64_t dim, const Tensor& idx, const Tensor& src);
Tensor scatter_src(const Tensor& a, int64_t dim, const Tensor& idx, const Tensor& src);
Tensor index_select(const Tensor& a, int64_t dim, const Tensor& idx);
Tensor masked_fill(const Tensor& a, const Tensor& mask, double v);
Tensor nonzero(const Tensor& a);  // (n, ndim) int64
Tensor embedding(const Tensor& weight, const Tensor& idx);
Tensor one_hot(const Tensor& idx, int64_t num_classes);

// ---- matmul.cpp
Tensor matmul(const Tensor& a, const Tensor& b);
Tensor linear(const Tensor& x, const Tensor& w, const Tensor& bias);  // bias may be undefined
Tensor addmm(const Tensor& c, const Tensor& a, const Tensor& b, double beta, double alpha);

// ---- nn.cpp (fused kernels)
Tensor softmax(const Tensor& a, int64_t dim);
Tensor log_softmax(const Tensor& a, int64_t dim);
Tensor layer_norm(const Tensor& x, const IntList& normalized_shape, const Tensor& w, const Tensor& b, double eps);
Tensor rms_norm(const Tensor& x, const IntList& normalized_shape, const Tensor& w, double eps);
Tensor dropout(const Tensor& a, double p, bool train);
// Per-row cross entropy of logits (N, C) against class indices (N,), int64; ignore_index rows
// give 0. Returns per-sample losses (N,) before weighting/reduction, with label smoothing.
Tensor cross_entropy_rows(const Tensor& logits, const Tensor& target, const Tensor& weight,
                          int64_t ignore_index, double label_smoothing);
// The same, reduced: reduction 0 none (N,), 1 mean (over the counted rows' weights), 2 sum.
Tensor cross_entropy(const Tensor& logits, const Tensor& target, const Tensor& weight, int64_t ignore_index,
                     double label_smoothing, int64_t reduction);

// ---- conv.cpp (NCHW or unbatched CHW; bias may be undefined). padding: (ph, pw) or
// (top, bottom, left, right); stride, dilation, output_padding: one value or a pair.
Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& b, const IntList& stride, const IntList& padding,
              const IntList& dilation, int64_t groups);
Tensor conv_transpose2d(const Tensor& x, const Tensor& w, const Tensor& b, const IntList& stride, const IntList& padding,
                        const IntList& output_padding, int64_t groups, const IntList& dilation);

// ---- selective_scan.cpp (Mamba; D, z, delta_bias may be undefined). Returns {out} or
// {out, last_state} (last_state carries no gradient, as in mamba_ssm).
std::vector<Tensor> selective_scan(const Tensor& u, const Tensor& delta, const Tensor& A, const Tensor& B,
                                   const Tensor& C, const Tensor& D, const Tensor& z, const Tensor& delta_bias,
                                   bool delta_softplus, bool return_last_state);

// ---- attention.cpp: F.scaled_dot_product_attention (PyTorch's semantics; attn_mask bool or
// additive, may be undefined; scale defaults to 1 / sqrt(E))
Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& attn_mask,
                                    double dropout_p, bool is_causal, std::optional<double> scale, bool enable_gqa);

}  // namespace fastdl
