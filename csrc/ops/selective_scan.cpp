// F.selective_scan: checks, dtype and layout, dispatch to the scan kernels (cpu/selective_scan.h),
// and the backward node, which recomputes states from the forward's chunk checkpoints.
#include "cpu/selective_scan.h"

#include "autograd/node.h"
#include "core/profiler.h"
#include "cuda/cuda_api.h"
#include "ops/dispatch.h"
#include "ops/ops.h"

namespace fastdl {

namespace {

using V = std::vector<Tensor>;
constexpr int64_t kScanChunk = 64;

void expect(const Tensor& t, const char* name, const Dims& shape) {
  FASTDL_CHECK(t.shape() == shape, ValueError, "selective_scan: ", name, " must have shape ", shape_str(shape), "; got ",
               shape_str(t.shape()));
}

Tensor prep(const Tensor& t, DType kt) { return t.defined() ? contiguous(to_dtype(detach(t), kt)) : Tensor(); }
const void* ptr(const Tensor& t) { return t.defined() ? t.data_ptr() : nullptr; }

void run_fwd(const cpu::SelectiveScanParams& p, Device dev) {
  if (dev.is_cpu()) cpu::scan_kernels().fwd(p);
  else cuda::selective_scan_fwd(p, dev.index);
}
void run_bwd(const cpu::SelectiveScanParams& p, Device dev) {
  if (dev.is_cpu()) cpu::scan_kernels().bwd(p);
  else cuda::selective_scan_bwd(p, dev.index);
}

}  // namespace

std::vector<Tensor> selective_scan(const Tensor& u, const Tensor& delta, const Tensor& A, const Tensor& B,
                                   const Tensor& C, const Tensor& D, const Tensor& z, const Tensor& delta_bias,
                                   bool delta_softplus, bool return_last_state) {
  FASTDL_PROFILE("selective_scan", u, delta, A, B, C);
  FASTDL_CHECK(u.defined() && delta.defined() && A.defined() && B.defined() && C.defined(), ValueError,
               "selective_scan: u, delta, A, B and C are required");
  FASTDL_CHECK(u.ndim() == 3, ValueError, "selective_scan: u must be (batch, dim, L); got shape ", shape_str(u.shape()));
  const int64_t batch = u.shape()[0], dim = u.shape()[1], L = u.shape()[2];
  FASTDL_CHECK(A.ndim() == 2 && A.shape()[0] == dim, ValueError, "selective_scan: A must be (dim, N) = (", dim,
               ", N); got shape ", shape_str(A.shape()), " with u ", shape_str(u.shape()));
  const int64_t N = A.shape()[1];
  expect(delta, "delta", u.shape());
  FASTDL_CHECK(B.ndim() == 3 || B.ndim() == 4, ValueError, "selective_scan: B must be (batch, N, L) or (batch, groups, N, L); got shape ",
               shape_str(B.shape()));
  const int64_t G = B.ndim() == 4 ? B.shape()[1] : 1;
  const Dims bshape = B.ndim() == 4 ? Dims{batch, G, N, L} : Dims{batch, N, L};
  expect(B, "B", bshape);
  expect(C, "C", bshape);
  FASTDL_CHECK(G >= 1 && dim % G == 0, ValueError, "selective_scan: dim (", dim, ") must be a multiple of the number of groups (",
               G, "); got B of shape ", shape_str(B.shape()));
  if (D.defined()) expect(D, "D", Dims{dim});
  if (delta_bias.defined()) expect(delta_bias, "delta_bias", Dims{dim});
  if (z.defined()) expect(z, "z", u.shape());
  DType rt = u.dtype();
  for (const Tensor* t : {&delta, &A, &B, &C, &D, &z, &delta_bias})
    if (t->defined()) {
      FASTDL_CHECK(is_floating(t->dtype()), TypeError, "selective_scan: expected floating point inputs; got dtype ",
                   dtype_name(t->dtype()));
      rt = promote(rt, t->dtype());
    }
  FASTDL_CHECK(is_floating(rt), TypeError, "selective_scan: expected floating point inputs; got u of dtype ", dtype_name(u.dtype()));
  for (const Tensor* t : {&delta, &A, &B, &C, &D, &z, &delta_bias})
    if (t->defined()) check_same_device(u, *t, "selective_scan");
  const Device dev = u.device();
  FASTDL_CHECK(dev.is_cpu() || (N >= 1 && N <= 256), ValueError,
               "selective_scan: the CUDA kernel takes 1 <= N <= 256 states; got A of shape ", shape_str(A.shape()));
  const DType kt = rt == DType::f64 ? DType::f64 : DType::f32;
  Tensor uc = prep(u, kt), dc = prep(delta, kt), Ac = prep(A, kt), Bc = prep(B, kt), Cc = prep(C, kt);
  Tensor Dc = prep(D, kt), zc = prep(z, kt), bc = prep(delta_bias, kt);
  const bool grad = autograd::any_requires_grad({u, delta, A, B, C, D, z, delta_bias});

  cpu::SelectiveScanParams p;
  p.batch = batch; p.dim = dim; p.L = L; p.N = N; p.groups = G; p.dt = kt;
  p.u = ptr(uc); p.delta = ptr(dc); p.A = ptr(Ac); p.B = ptr(Bc); p.C = ptr(Cc);
  p.D = ptr(Dc); p.z = ptr(zc); p.delta_bias = ptr(bc);
  p.softplus = delta_softplus;
  p.chunk = kScanChunk;
  Tensor out = empty(u.shape(), kt, dev);
  Tensor last = return_last_state ? empty(Dims{batch, dim, N}, kt, dev) : Tensor();
  Tensor ckpt = grad ? empty(Dims{batch, dim, cpu::scan_chunks(p), N}, kt, dev) : Tensor();
  p.out = out.data_ptr(); p.last_state = last.defined() ? last.data_ptr() : nullptr;
  p.checkpoints = ckpt.defined() ? ckpt.data_ptr() : nullptr;
  if (out.numel() > 0 || (last.defined() && last.numel() > 0)) {
    if (L == 0) { if (last.defined()) fill_(last, 0.0); }
    else run_fwd(p, dev);
  }
  Tensor res = kt == rt ? out : to_dtype(out, rt);
  if (grad && out.numel() > 0) {
    const Dims ushape = u.shape();
    const DType dts[8] = {u.dtype(), delta.dtype(), A.dtype(), B.dtype(), C.dtype(), D.defined() ? D.dtype() : kt,
                          z.defined() ? z.dtype() : kt, delta_bias.defined() ? delta_bias.dtype() : kt};
    autograd::record("SelectiveScanBackward0", {u, delta, A, B, C, D, z, delta_bias}, res,
                     [p, uc, dc, Ac, Bc, Cc, Dc, zc, bc, ckpt, kt, dts, dev](V& g) mutable {
      Tensor go = contiguous(to_dtype(g[0], kt));
      Tensor du = empty_like(uc), dd = empty_like(uc), dA = empty_like(Ac), dB = empty_like(Bc), dC = empty_like(Cc);
      Tensor dD = Dc.defined() ? empty_like(Dc) : Tensor(), dz = zc.defined() ? empty_like(zc) : Tensor();
      Tensor db = bc.defined() ? empty_like(bc) : Tensor();
      p.gout = go.data_ptr();
      p.du = du.data_ptr(); p.ddelta = dd.data_ptr(); p.dA = dA.data_ptr(); p.dB = dB.data_ptr(); p.dC = dC.data_ptr();
      p.dD = dD.defined() ? dD.data_ptr() : nullptr;
      p.dz = dz.defined() ? dz.data_ptr() : nullptr;
      p.ddelta_bias = db.defined() ? db.data_ptr() : nullptr;
      p.out = nullptr; p.last_state = nullptr;
      run_bwd(p, dev);
      V r{du, dd, dA, dB, dC, dD, dz, db};
      for (size_t i = 0; i < r.size(); ++i)
        if (r[i].defined() && r[i].dtype() != dts[i]) r[i] = to_dtype(r[i], dts[i]);
      return r;
    }, {u, delta, A, B, C, D, z, delta_bias});
    autograd::mark_no_double_backward(res);
  }
  if (!return_last_state) return {res};
  return {res, kt == rt ? last : to_dtype(last, rt)};
}

}  // namespace fastdl
