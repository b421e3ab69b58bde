"""Forward-mode tangents (the double-vjp behind autograd.forward_ad, func.jvp, autograd.functional.jvp) over
PyTorch's OpInfo database, float64: for random tangents t and cotangents u, <u, J t> from jvp must equal
<J^T u, t> from one ordinary backward (whose gradients test_opinfo checks against PyTorch). A backward that is
not recorded as a function of its incoming gradient under create_graph would break the identity."""
import zlib

import numpy as np
import pytest

import fastdl as fd

torch = pytest.importorskip("torch")
import test_opinfo as T  # noqa: E402
from fastdl.autograd.forward_ad import jvp_of  # noqa: E402

SAMPLES_PER_OP = 2


def _check(op, fd_op, s, seed):
    memo = {}
    leaves = T._leaves([s.input, list(s.args), s.kwargs], [])
    if not leaves:
        return "skip"
    fin, fa, fk = T._to_fd(s.input, memo), T._to_fd(s.args, memo), T._to_fd(s.kwargs, memo)
    try:
        got = fd_op(fin, *fa, **fk)
    except Exception:  # noqa: BLE001 - forward failures are test_opinfo's business
        return "skip"
    outs = [o for o in T._flat(got, []) if isinstance(o, fd.Tensor) and o.dtype.is_floating_point and o.requires_grad]
    if not outs:
        return "skip"
    xs = [memo[id(l)] for l in leaves]
    rng = np.random.default_rng(seed)
    ts = [fd.tensor(rng.normal(size=tuple(x.shape))) for x in xs]
    us = [fd.tensor(rng.normal(size=tuple(o.shape))) for o in outs]
    jv = jvp_of(outs, xs, ts)
    gs = fd.autograd.grad(outs, xs, us, retain_graph=True, allow_unused=True)
    lhs = sum(float((u * j).sum()) for u, j in zip(us, jv) if j is not None)
    rhs = sum(float((g * t).sum()) for g, t in zip(gs, ts) if g is not None)
    scale = sum(float((u.abs()).sum()) * float(j.abs().max()) for u, j in zip(us, jv) if j is not None and j.numel())
    if not np.isfinite(lhs) and not np.isfinite(rhs):
        return None
    # outputs rounded to half precision (the .half() / .bfloat16() casts) carry their tangents at that precision
    rtol = 1e-2 if any(o.dtype in (fd.float16, fd.bfloat16) for o in outs) else 1e-8
    if abs(lhs - rhs) > rtol * max(1.0, abs(rhs), scale):
        return f"<u, J t> = {lhs!r} but <J^T u, t> = {rhs!r}"
    return None


def _run():
    from torch.testing._internal.common_methods_invocations import op_db
    results = []
    with T._lean_sampling():
        for op in op_db:
            fd_op = T._fd_callable(op)
            if fd_op is None or op.name in T.RANDOM_OPS or op.has_nondeterministic_output:
                continue
            if not op.supports_autograd or not op.supports_dtype(torch.float64, "cpu"):
                continue
            key = T._key(op)
            seed = zlib.crc32(key.encode())
            torch.manual_seed(seed)
            for i, s in enumerate(T._samples(op, torch.float64, True, SAMPLES_PER_OP)):
                if s.kwargs.get("dropout_p", 0) > 0 or (key == "nn.functional.multi_head_attention_forward"
                                                         and s.kwargs.get("training") and s.args[9] > 0):
                    continue  # random: each call draws new masks
                torch.manual_seed(seed + i)
                r = _check(op, fd_op, s, seed + i)
                if r != "skip":
                    results.append((key, i, r))
    return results


def test_forward_ad_tangents_over_opinfo():
    results = _run()
    ops = {k for k, _, _ in results}
    failing = [(k, i, r) for k, i, r in results if r]
    assert len(ops) > 300, f"only {len(ops)} differentiable OpInfos were checked"
    assert not failing, f"{len(failing)} of {len(results)} samples break <u, J t> = <J^T u, t>:\n" + "\n".join(
        f"  {k} sample {i}: {r}" for k, i, r in failing[:20])
