// matmul (batched, broadcast, 1-D cases as PyTorch), linear and addmm, all on the one GEMM
// kernel (cpu/gemm.h, cuda gemm). Transposed operands reach the kernel as strides.
#include <algorithm>

#include "autograd/node.h"
#include "cpu/gemm.h"
#include "ops/dispatch.h"
#include "core/profiler.h"
#include "ops/ops.h"

namespace fastdl {

using V = std::vector<Tensor>;

namespace {

DType gemm_dtype(DType a, DType b, const char* op) {
  DType dt = promote(a, b);
  return dt;
}

// One operand of a GEMM as (pointer, batch stride, row stride, column stride): views are
// described by strides alone, so no intermediate tensors are made on the hot path.
struct Operand {
  const void* p;
  int64_t sb, sr, sc;
};
Operand op2(const Tensor& t) { return {t.data_ptr(), 0, t.strides()[0], t.strides()[1]}; }
Operand op3(const Tensor& t) { return {t.data_ptr(), t.strides()[0], t.strides()[1], t.strides()[2]}; }

// The outer batch level of a GEMM (see cpu::GemmParams): count and per-operand strides.
struct Outer { int64_t n = 1, sa = 0, sb = 0, sc = 0; };

// C[b] (M, N) = alpha * A[b] @ B[b] + beta * C[b]; operands share the compute dtype and device.
// cpu_bias (CPU only, beta 0, one matrix): C = alpha A B + bias[j] on every row, added by the
// GEMM as it first writes each block of C (cpu::gemm_bias).
void gemm_run(int64_t batch, int64_t M, int64_t N, int64_t K, DType dt, Operand A, Operand B, Operand C, Device dev,
              double alpha, double beta, Outer outer = {}, const void* cpu_bias = nullptr) {
  if (batch == 0 || M == 0 || N == 0 || outer.n == 0) return;
  cpu::GemmParams p;
  p.batch = batch; p.M = M; p.N = N; p.K = K; p.dtype = dt;
  p.batch2 = outer.n; p.sa_b2 = outer.sa; p.sb_b2 = outer.sb; p.sc_b2 = outer.sc;
  p.A = A.p; p.sa_b = A.sb; p.sa_m = A.sr; p.sa_k = A.sc;
  p.B = B.p; p.sb_b = B.sb; p.sb_k = B.sr; p.sb_n = B.sc;
  p.C = const_cast<void*>(C.p); p.sc_b = C.sb; p.sc_m = C.sr; p.sc_n = C.sc;
  p.alpha = alpha; p.beta = beta;
  if (dev.is_cuda()) cuda::gemm(p, dev.index);
  else if (cpu_bias) cpu::gemm_bias(p, cpu_bias);
  else cpu::gemm(p);
}

void gemm3(const Tensor& A, const Tensor& B, const Tensor& C, double alpha, double beta) {
  int64_t K = A.shape()[2];
  if (K == 0) {  // nothing to multiply: C = beta * C
    if (beta == 0) fill_(C, 0.0); else if (beta != 1) copy_(C, mul_s(detach(C), beta));
    return;
  }
  gemm_run(C.shape()[0], C.shape()[1], C.shape()[2], K, C.dtype(), op3(A), op3(B), op3(C), C.device(), alpha, beta);
}

// Integer and float16 products run in a float type, then cast back.
DType kernel_dtype(DType dt) {
  if (dt == DType::f32 || dt == DType::f64 || dt == DType::bf16) return dt;
  if (dt == DType::f16) return DType::f32;
  return DType::f64;
}

Tensor as3(const Tensor& t, const Dims& batch, int64_t r, int64_t c) {
  IntList full = batch.vec();
  full.push_back(r); full.push_back(c);
  Tensor e = expand(detach(t), full);
  int64_t nb = batch.numel();
  return reshape(e, {nb, r, c});
}

// Strides of t's batch dims aligned to the broadcast batch shape (0 where t broadcasts).
Dims batch_strides(const Tensor& t, const Dims& batch) {
  Dims s(batch.size());
  const int tb = t.ndim() - 2, off = int(batch.size()) - tb;
  for (int i = 0; i < int(batch.size()); ++i)
    s[i] = i < off || t.shape()[i - off] == 1 ? 0 : t.strides()[i - off];
  return s;
}

// The batch dims of A, B and C as at most two levels (inner, outer) by merging adjacent dims
// whose strides chain in all three; false when more remain (then the operands are copied).
bool batch_levels(const Dims& batch, const Tensor& A, const Tensor& B, const Tensor& C, int64_t& n1, Operand& a,
                  Operand& b, Operand& c, Outer& outer) {
  const Dims sa = batch_strides(A, batch), sb = batch_strides(B, batch), sc = batch_strides(C, batch);
  struct Level { int64_t n, sa, sb, sc; };
  Level lv[2];
  int nl = 0;
  for (int d = int(batch.size()) - 1; d >= 0; --d) {
    const int64_t n = batch[d];
    if (n == 1) continue;
    if (nl > 0) {
      Level& l = lv[nl - 1];
      if (sa[d] == l.sa * l.n && sb[d] == l.sb * l.n && sc[d] == l.sc * l.n) { l.n *= n; continue; }
    }
    if (nl == 2) return false;
    lv[nl++] = {n, sa[d], sb[d], sc[d]};
  }
  n1 = nl > 0 ? lv[0].n : 1;
  a.sb = nl > 0 ? lv[0].sa : 0; b.sb = nl > 0 ? lv[0].sb : 0; c.sb = nl > 0 ? lv[0].sc : 0;
  if (nl == 2) outer = {lv[1].n, lv[1].sa, lv[1].sb, lv[1].sc};
  return true;
}

// out[...] = A[...] @ B[...] over the broadcast batch shape with every operand read in place;
// false (nothing done) when the batch dims don't reduce to two levels.
bool gemm_batched_views(const Tensor& A, const Tensor& B, const Tensor& out, const Dims& batch) {
  const int a2 = A.ndim() - 2, b2 = B.ndim() - 2;
  const int64_t M = A.shape()[a2], K = A.shape()[a2 + 1], N = B.shape()[b2 + 1];
  Operand oa{A.data_ptr(), 0, A.strides()[a2], A.strides()[a2 + 1]};
  Operand ob{B.data_ptr(), 0, B.strides()[b2], B.strides()[b2 + 1]};
  Operand oc{out.data_ptr(), 0, N, 1};
  int64_t n1 = 1;
  Outer outer;
  if (!batch_levels(batch, A, B, out, n1, oa, ob, oc, outer)) return false;
  gemm_run(n1, M, N, K, out.dtype(), oa, ob, oc, out.device(), 1.0, 0.0, outer);
  return true;
}

// A view whose last two dims are swapped in memory (w.t(), k.transpose(-2, -1)).
bool transposed_layout(const Tensor& t) {
  int n = t.ndim();
  return n >= 2 && t.shape()[n - 1] > 1 && t.shape()[n - 2] > 1 && t.strides()[n - 2] == 1 && t.strides()[n - 1] != 1;
}

// Operand gradients of out = a @ b from g, as GEMMs with the transposes absorbed in packing.
// A gradient is produced in its operand's layout when that is transposed, so it reaches a
// leaf through the transpose contiguous (no copy there); a 2-D b broadcast over a's batch
// folds the batch into K (one GEMM, no batched product summed afterwards).
Tensor grad_b(const Tensor& a, const Tensor& b, const Tensor& g) {
  const bool t = transposed_layout(b);
  if (b.ndim() == 2 && a.ndim() > 2) {
    int64_t K = a.shape()[a.ndim() - 1], N = g.shape()[g.ndim() - 1], rows = 1;
    for (int i = 0; i < a.ndim() - 1; ++i) rows *= a.shape()[i];  // explicit: -1 can't be inferred when K == 0
    Tensor a2 = reshape(a, {rows, K}), g2 = reshape(g, {rows, N});
    return t ? transpose(matmul(transpose(g2, 0, 1), a2), 0, 1) : matmul(transpose(a2, 0, 1), g2);
  }
  if (g.ndim() != b.ndim() || !std::equal(g.shape().data(), g.shape().data() + g.ndim() - 2, b.shape().data()))
    return sum_to(matmul(transpose(a, -1, -2), g), b.shape());
  return t ? transpose(matmul(transpose(g, -1, -2), a), -1, -2) : matmul(transpose(a, -1, -2), g);
}

Tensor grad_a(const Tensor& a, const Tensor& b, const Tensor& g) {
  if (g.ndim() != a.ndim() || !std::equal(g.shape().data(), g.shape().data() + g.ndim() - 2, a.shape().data()))
    return sum_to(matmul(g, transpose(b, -1, -2)), a.shape());
  return transposed_layout(a) ? transpose(matmul(b, transpose(g, -1, -2)), -1, -2) : matmul(g, transpose(b, -1, -2));
}

// Both operands >= 2-D.
Tensor matmul_nd(const Tensor& a, const Tensor& b) {
  int64_t M = a.shape()[a.ndim() - 2], K = a.shape()[a.ndim() - 1];
  int64_t K2 = b.shape()[b.ndim() - 2], N = b.shape()[b.ndim() - 1];
  FASTDL_CHECK(K == K2, ValueError, "matmul: shapes ", shape_str(a.shape()), " and ", shape_str(b.shape()),
               " cannot be multiplied (", M, "x", K, " and ", K2, "x", N, ")");
  DType dt = gemm_dtype(a.dtype(), b.dtype(), "matmul"), kt = kernel_dtype(dt);
  Tensor A = a.dtype() == kt ? detach(a) : to_dtype(detach(a), kt);
  Tensor B = b.dtype() == kt ? detach(b) : to_dtype(detach(b), kt);
  Dims ba(a.shape().data(), a.ndim() - 2), bb(b.shape().data(), b.ndim() - 2);
  Dims batch = broadcast_shapes(ba, bb, "matmul");
  Dims os = batch;
  os.push_back(M); os.push_back(N);
  Tensor out = empty(os, kt, a.device());
  int64_t rows = batch.numel() * M;
  if (out.numel() == 0) {
    // nothing to compute (explicit sizes below: -1 can't be inferred from empty tensors)
  } else if (a.ndim() == 2 && b.ndim() == 2 && K > 0) {
    gemm_run(1, M, N, K, kt, op2(A), op2(B), op2(out), a.device(), 1.0, 0.0);
  } else if (b.ndim() == 2 && a.ndim() > 2 && A.is_contiguous()) {
    // fold a's batch into M: one large GEMM
    Tensor A2 = reshape(A, {rows, K});
    gemm3(unsqueeze(A2, 0), unsqueeze(B, 0), reshape(out, {1, rows, N}), 1.0, 0.0);
  } else if (K > 0 && gemm_batched_views(A, B, out, batch)) {
    // strided batch views went straight to the kernel: no copies of transposed heads
  } else {
    gemm3(as3(A, batch, M, K), as3(B, batch, K, N), reshape(out, {batch.numel(), M, N}), 1.0, 0.0);
  }
  if (kt != dt) out = to_dtype(out, dt);
  if (autograd::any_requires_grad(a, b)) {
    autograd::record("MmBackward0", {a, b}, out, [a, b](V& g) {
      Tensor ga, gb;
      if (a.requires_grad()) ga = to_dtype(grad_a(a, b, g[0]), a.dtype());
      if (b.requires_grad()) gb = to_dtype(grad_b(a, b, g[0]), b.dtype());
      return V{ga, gb};
    }, {b.requires_grad() ? a : Tensor(), a.requires_grad() ? b : Tensor()});
  }
  return out;
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) {
  FASTDL_PROFILE("matmul", a, b);
  check_same_device(a, b, "matmul");
  FASTDL_CHECK(a.ndim() >= 1 && b.ndim() >= 1, ValueError, "matmul: both arguments need to be at least 1D; got shapes ",
               shape_str(a.shape()), " and ", shape_str(b.shape()));
  FASTDL_CHECK(a.dtype() != DType::b8 && b.dtype() != DType::b8, TypeError, "matmul: bool tensors are not supported");
  if (a.ndim() == 1 && b.ndim() == 1) {
    FASTDL_CHECK(a.shape()[0] == b.shape()[0], ValueError, "matmul: 1D tensors expected to have the same size; got ",
                 a.shape()[0], " and ", b.shape()[0]);
    return squeeze(matmul_nd(unsqueeze(a, 0), unsqueeze(b, 1)), std::nullopt);
  }
  if (a.ndim() == 1) return squeeze(matmul_nd(unsqueeze(a, 0), b), IntList{-2});
  if (b.ndim() == 1) return squeeze(matmul_nd(a, unsqueeze(b, 1)), IntList{-1});
  return matmul_nd(a, b);
}

Tensor linear(const Tensor& x, const Tensor& w, const Tensor& bias) {
  FASTDL_PROFILE("linear", x, w, bias);
  check_same_device(x, w, "linear");
  FASTDL_CHECK(w.ndim() == 2, ValueError, "linear: weight must be 2-D (out_features, in_features); got shape ", shape_str(w.shape()));
  FASTDL_CHECK(x.ndim() >= 1, ValueError, "linear: input must be at least 1-D; got shape ", shape_str(x.shape()));
  int64_t in = w.shape()[1], outf = w.shape()[0];
  FASTDL_CHECK(x.shape()[x.ndim() - 1] == in, ValueError, "linear: input has ", x.shape()[x.ndim() - 1],
               " features but weight expects ", in, "; got input ", shape_str(x.shape()), " and weight ", shape_str(w.shape()));
  if (bias.defined()) {
    check_same_device(x, bias, "linear");
    FASTDL_CHECK(bias.ndim() == 1 && bias.shape()[0] == outf, ValueError, "linear: bias must have shape (", outf, ",); got ",
                 shape_str(bias.shape()));
  }
  DType dt = promote(x.dtype(), w.dtype());
  if (bias.defined()) dt = promote(dt, bias.dtype());
  DType kt = kernel_dtype(dt);
  FASTDL_CHECK(is_floating(dt), TypeError, "linear: expected floating point tensors; got ", dtype_name(x.dtype()), " and ", dtype_name(w.dtype()));
  Tensor Xs = x.dtype() == kt ? x : to_dtype(detach(x), kt);
  Tensor W = w.dtype() == kt ? w : to_dtype(detach(w), kt);
  int64_t rows = 1;  // every dim but the last (in may be 0)
  for (int i = 0; i + 1 < x.ndim(); ++i) rows *= x.shape()[i];
  if (x.ndim() != 2 && !Xs.is_contiguous()) Xs = contiguous(detach(Xs));
  // X as (rows, in): its own strides when 2-D, else contiguous rows
  Operand X = Xs.ndim() == 2 ? op2(Xs) : Operand{Xs.data_ptr(), 0, in, 1};
  if (Xs.ndim() == 1) X = {Xs.data_ptr(), 0, 0, Xs.strides()[0]};
  Tensor out = empty(Dims{rows, outf}, kt, x.device());
  const Operand Wt{W.data_ptr(), 0, W.strides()[1], W.strides()[0]};
  if (bias.defined() && in > 0 && rows > 0 && !x.device().is_cuda()) {
    // CPU: the GEMM adds the bias as it first writes each block of out (no pass of its own)
    const Tensor b = contiguous(bias.dtype() == kt ? detach(bias) : to_dtype(detach(bias), kt));
    gemm_run(1, rows, outf, in, kt, X, Wt, op2(out), x.device(), 1.0, 0.0, {}, b.data_ptr());
  } else {
    double beta = 0.0;
    if (bias.defined()) { copy_(out, bias); beta = 1.0; }
    if (in == 0) { if (!bias.defined()) fill_(out, 0.0); }
    else gemm_run(1, rows, outf, in, kt, X, Wt, op2(out), x.device(), 1.0, beta);
  }
  if (kt != dt) out = to_dtype(out, dt);
  IntList os = x.shape().vec();
  os.back() = outf;
  Tensor res = reshape(out, os);
  if (autograd::any_requires_grad({x, w, bias})) {
    autograd::record("AddmmBackward0", {x, w, bias}, res, [x, w, bias, in, outf](V& g) {
      int64_t rows = 1;  // explicit: -1 can't be inferred when outf == 0
      for (int i = 0; i < g[0].ndim() - 1; ++i) rows *= g[0].shape()[i];
      Tensor g2 = reshape(g[0], {rows, outf});
      Tensor gx, gw, gb;
      if (x.requires_grad()) gx = to_dtype(reshape(matmul(g2, w), x.shape().vec()), x.dtype());
      if (w.requires_grad()) gw = to_dtype(matmul(transpose(g2, 0, 1), reshape(x, {rows, in})), w.dtype());
      if (bias.defined() && bias.requires_grad()) gb = to_dtype(sum(g2, {0}, false), bias.dtype());
      return V{gx, gw, gb};
    }, {w.requires_grad() ? x : Tensor(), x.requires_grad() ? w : Tensor()});
  }
  return res;
}

Tensor addmm(const Tensor& c, const Tensor& a, const Tensor& b, double beta, double alpha) {
  FASTDL_PROFILE("addmm", c, a, b);
  // The common case in one GEMM: out = broadcast(input) (one copy), then the kernel's
  // out = alpha a @ b + beta out, instead of a product, two scalings and a sum over out.
  const DType dt = promote(promote(a.dtype(), b.dtype()), c.dtype());
  if (beta != 0 && a.ndim() == 2 && b.ndim() == 2 && c.ndim() <= 2 && kernel_dtype(dt) == dt && is_floating(dt) &&
      a.device() == b.device() && a.device() == c.device() && a.shape()[1] == b.shape()[0] && a.shape()[1] > 0) {
    const int64_t M = a.shape()[0], K = a.shape()[1], N = b.shape()[1];
    const Dims shape = broadcast_shapes(c.shape(), Dims{M, N}, "addmm");
    if (shape == Dims{M, N}) {
      Tensor out = empty(shape, dt, a.device());
      copy_(out, c.dtype() == dt ? detach(c) : to_dtype(detach(c), dt));
      const Tensor A = a.dtype() == dt ? detach(a) : to_dtype(detach(a), dt);
      const Tensor B = b.dtype() == dt ? detach(b) : to_dtype(detach(b), dt);
      if (M > 0 && N > 0) gemm_run(1, M, N, K, dt, op2(A), op2(B), op2(out), a.device(), alpha, beta);
      if (autograd::any_requires_grad({c, a, b})) {
        autograd::record("AddmmBackward0", {c, a, b}, out, [c, a, b, beta, alpha](V& g) {
          Tensor gc, ga, gb;
          if (c.requires_grad()) gc = to_dtype(sum_to(mul_s(g[0], beta), c.shape()), c.dtype());
          if (a.requires_grad()) ga = to_dtype(mul_s(matmul(g[0], transpose(b, 0, 1)), alpha), a.dtype());
          if (b.requires_grad()) gb = to_dtype(mul_s(matmul(transpose(a, 0, 1), g[0]), alpha), b.dtype());
          return V{gc, ga, gb};
        }, {b.requires_grad() ? a : Tensor(), a.requires_grad() ? b : Tensor()});
      }
      return out;
    }
  }
  Tensor ab = mul_s(matmul(a, b), alpha);
  if (beta == 0) {  // input is ignored, NaN and inf in it included (PyTorch); it still sets the shape
    const Dims shape = broadcast_shapes(c.shape(), ab.shape(), "addmm");
    return shape == ab.shape() ? ab : contiguous(broadcast_to(ab, shape));
  }
  return add(mul_s(c, beta), ab);
}

}  // namespace fastdl
