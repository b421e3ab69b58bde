"""nn.RNN / LSTM / GRU, their cells and nn.utils.rnn against PyTorch in float64 with the same
weights (a torch state_dict loaded unchanged): outputs, final states and every gradient, for
2 bidirectional batch_first layers with padded and packed (unsorted) input, on every ISA."""
import numpy as np
import pytest

import fastdl as fd
from fastdl import _C, nn
from fastdl.nn.utils import rnn as rnn_utils

from checks import assert_close

CASES = [("RNN", dict(nonlinearity="tanh")), ("RNN", dict(nonlinearity="relu")), ("LSTM", {}),
         ("LSTM", dict(proj_size=3)), ("GRU", {})]
IDS = ["rnn_tanh", "rnn_relu", "lstm", "lstm_proj", "gru"]


def _pair(torch, cls, kw, dtype=fd.float64):
    tm = getattr(torch.nn, cls)(**kw).double()
    fm = getattr(nn, cls)(**kw, dtype=dtype)
    fm.load_state_dict({k: fd.tensor(v.detach().numpy(), dtype=dtype) for k, v in tm.state_dict().items()})
    assert list(fm.state_dict().keys()) == list(tm.state_dict().keys())
    return tm, fm


def _run(lib, m, x, h0, c0, U, Uh, Uc, lengths):
    """loss = <out, U> + <h_n, Uh> (+ <c_n, Uc>); packed runs pack and pad around the module."""
    utils = lib.nn.utils.rnn
    inp = x if lengths is None else utils.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    out, hid = m(inp, (h0, c0) if c0 is not None else h0)
    if lengths is not None:
        out, lens = utils.pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
        assert list(lens.tolist()) == list(lengths)
    h_n, c_n = hid if c0 is not None else (hid, None)
    loss = (out * U).sum() + (h_n * Uh).sum()
    if c_n is not None:
        loss = loss + (c_n * Uc).sum()
    loss.backward()
    return out, h_n, c_n


# The CPU time loops split a step over threads by columns or by batch rows (cpu/rnn.cpp); the
# tests' batches of 5-6 rows take the column split unless FASTDL_RNN_SPLIT forces the rows.
@pytest.mark.parametrize("split", ["cols", "rows"])
@pytest.mark.parametrize("packed", [False, True], ids=["padded", "packed"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_matches_torch_2layer_bidirectional(torch, rng, isa, monkeypatch, case, packed, split):
    monkeypatch.setenv("FASTDL_RNN_SPLIT", split)
    cls, extra = case
    B, T, I, H = 5, 7, 4, 6
    kw = dict(input_size=I, hidden_size=H, num_layers=2, bidirectional=True, batch_first=True, **extra)
    tm, fm = _pair(torch, cls, kw)
    P = extra.get("proj_size", 0) or H
    lstm = cls == "LSTM"
    x = rng.standard_normal((B, T, I))
    h0 = rng.standard_normal((4, B, P)) * 0.5
    c0 = rng.standard_normal((4, B, H)) * 0.5 if lstm else None
    U = rng.standard_normal((B, T, 2 * P))
    Uh, Uc = rng.standard_normal((4, B, P)), rng.standard_normal((4, B, H))
    lengths = [5, 7, 2, 7, 1] if packed else None

    tx = torch.tensor(x, requires_grad=True)
    th0 = torch.tensor(h0, requires_grad=True)
    tc0 = torch.tensor(c0, requires_grad=True) if lstm else None
    tout, th, tc = _run(torch, tm, tx, th0, tc0, torch.tensor(U), torch.tensor(Uh), torch.tensor(Uc), lengths)

    # a non-contiguous input: every other element of a wider buffer
    xb = np.zeros((B, T, 2 * I))
    xb[:, :, ::2] = x
    fx = fd.tensor(xb, requires_grad=True)
    fh0 = fd.tensor(h0, requires_grad=True)
    fc0 = fd.tensor(c0, requires_grad=True) if lstm else None
    fout, fh, fc = _run(fd, fm, fx[:, :, ::2], fh0, fc0, fd.tensor(U), fd.tensor(Uh), fd.tensor(Uc), lengths)

    tol = dict(rtol=1e-10, atol=1e-11)
    assert_close(fout, tout.detach().numpy(), **tol)
    assert_close(fh, th.detach().numpy(), **tol)
    if lstm:
        assert_close(fc, tc.detach().numpy(), **tol)
        assert_close(fc0.grad, tc0.grad.numpy(), **tol, msg="c0 grad")
    assert_close(fx.grad.numpy()[:, :, ::2], tx.grad.numpy(), **tol, msg="input grad")
    assert_close(fh0.grad, th0.grad.numpy(), **tol, msg="h0 grad")
    tparams = dict(tm.named_parameters())
    for name, p in fm.named_parameters():
        assert p.grad is not None, name
        assert_close(p.grad, tparams[name].grad.numpy(), **tol, msg=name)


@pytest.mark.parametrize("split", ["cols", "rows"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_float32_vector_path(torch, rng, isa, monkeypatch, case, split):
    """float32 runs the vectorised gate kernels (H = 19: whole vectors and a scalar tail)."""
    monkeypatch.setenv("FASTDL_RNN_SPLIT", split)
    cls, extra = case
    B, T, I, H = 6, 9, 5, 19
    kw = dict(input_size=I, hidden_size=H, **extra)
    tm, fm = _pair(torch, cls, kw, dtype=fd.float32)
    x = rng.standard_normal((T, B, I))
    U = rng.standard_normal((T, B, extra.get("proj_size", 0) or H))
    tx = torch.tensor(x, requires_grad=True)
    tout, _ = tm(tx)
    (tout * torch.tensor(U)).sum().backward()
    fx = fd.tensor(x, dtype=fd.float32, requires_grad=True)
    fout, _ = fm(fx)
    (fout * fd.tensor(U, dtype=fd.float32)).sum().backward()
    assert fout.dtype == fd.float32
    assert_close(fout, tout.detach().numpy(), rtol=1e-4, atol=1e-5)
    assert_close(fx.grad, tx.grad.numpy(), rtol=1e-3, atol=1e-4)
    tparams = dict(tm.named_parameters())
    for name, p in fm.named_parameters():
        assert_close(p.grad, tparams[name].grad.numpy(), rtol=1e-3, atol=2e-4, msg=name)


@pytest.mark.parametrize("cls", ["RNNCell", "LSTMCell", "GRUCell"])
def test_cells_match_torch(torch, rng, isa, cls):
    I, H, B = 5, 7, 3
    tm = getattr(torch.nn, cls)(I, H).double()
    fm = getattr(nn, cls)(I, H, dtype=fd.float64)
    fm.load_state_dict({k: fd.tensor(v.detach().numpy()) for k, v in tm.state_dict().items()})
    lstm = cls == "LSTMCell"
    for batched in (True, False):
        shp = (B,) if batched else ()
        x, h = rng.standard_normal(shp + (I,)), rng.standard_normal(shp + (H,))
        c = rng.standard_normal(shp + (H,))
        U = rng.standard_normal(shp + (H,))
        tx, th, tc = (torch.tensor(a, requires_grad=True) for a in (x, h, c))
        fx, fh, fc = (fd.tensor(a, requires_grad=True) for a in (x, h, c))
        tr = tm(tx, (th, tc) if lstm else th)
        fr = fm(fx, (fh, fc) if lstm else fh)
        tl = (tr[0] * torch.tensor(U)).sum() + tr[1].sum() if lstm else (tr * torch.tensor(U)).sum()
        fl = (fr[0] * fd.tensor(U)).sum() + fr[1].sum() if lstm else (fr * fd.tensor(U)).sum()
        tl.backward()
        fl.backward()
        assert_close(fr[0] if lstm else fr, (tr[0] if lstm else tr).detach().numpy())
        assert_close(fx.grad, tx.grad.numpy())
        assert_close(fh.grad, th.grad.numpy())
        if lstm:
            assert_close(fc.grad, tc.grad.numpy())
    for name, p in fm.named_parameters():
        assert_close(p.grad, dict(tm.named_parameters())[name].grad.numpy(), msg=name)
    out = fm(fd.tensor(rng.standard_normal((B, I))))  # hx omitted: zeros
    want = tm(torch.tensor(rng.standard_normal((B, I))))
    assert tuple((out[0] if lstm else out).shape) == tuple((want[0] if lstm else want).shape)


def test_unbatched_and_default_state(torch, rng):
    tm, fm = _pair(torch, "LSTM", dict(input_size=3, hidden_size=4, num_layers=2))
    x = rng.standard_normal((6, 3))
    tout, (th, tc) = tm(torch.tensor(x))
    fout, (fh, fc) = fm(fd.tensor(x))
    assert tuple(fout.shape) == (6, 4) and tuple(fh.shape) == (2, 4)
    assert_close(fout, tout.detach().numpy())
    assert_close(fc, tc.detach().numpy())
    h0 = rng.standard_normal((2, 4))
    tout, _ = tm(torch.tensor(x), (torch.tensor(h0), torch.tensor(h0)))
    fout, _ = fm(fd.tensor(x), (fd.tensor(h0), fd.tensor(h0)))
    assert_close(fout, tout.detach().numpy())


def test_packed_sorted_matches_padded_prefix(rng):
    """A sequence inside a packed batch gives the same outputs as run alone."""
    m = nn.GRU(3, 5, dtype=fd.float64)
    seqs = [fd.tensor(rng.standard_normal((n, 3))) for n in (6, 4, 1)]
    packed = rnn_utils.pack_sequence(seqs)
    assert packed.batch_sizes.tolist() == [3, 2, 2, 2, 1, 1]
    out, h = m(packed)
    outs = rnn_utils.unpack_sequence(out)
    for s, o, i in zip(seqs, outs, range(3)):
        alone, ha = m(s.unsqueeze(1))
        assert_close(o, alone.squeeze(1).detach().numpy())
        assert_close(h[0, i], ha[0, 0].detach().numpy())


def test_pack_pad_roundtrip_and_pad_sequence(torch, rng):
    seqs = [rng.standard_normal((n, 2)) for n in (3, 5, 2)]
    tp = torch.nn.utils.rnn.pad_sequence([torch.tensor(s) for s in seqs], batch_first=True, padding_value=-1.0)
    fp = rnn_utils.pad_sequence([fd.tensor(s) for s in seqs], batch_first=True, padding_value=-1.0)
    assert_close(fp, tp.numpy())
    tl = torch.nn.utils.rnn.pad_sequence([torch.tensor(s) for s in seqs], padding_side="left")
    assert_close(rnn_utils.pad_sequence([fd.tensor(s) for s in seqs], padding_side="left"), tl.numpy())
    tpk = torch.nn.utils.rnn.pack_padded_sequence(tp, [3, 5, 2], batch_first=True, enforce_sorted=False)
    fpk = rnn_utils.pack_padded_sequence(fp, [3, 5, 2], batch_first=True, enforce_sorted=False)
    assert_close(fpk.data, tpk.data.numpy())
    assert fpk.batch_sizes.tolist() == tpk.batch_sizes.tolist()
    assert fpk.sorted_indices.tolist() == tpk.sorted_indices.tolist()
    assert fpk.unsorted_indices.tolist() == tpk.unsorted_indices.tolist()
    back, lens = rnn_utils.pad_packed_sequence(fpk, batch_first=True, padding_value=-1.0)
    assert_close(back, tp.numpy())
    assert lens.tolist() == [3, 5, 2]


def test_dropout_between_layers(rng):
    m = nn.LSTM(3, 4, num_layers=2, dropout=0.5, dtype=fd.float64)
    x = fd.tensor(rng.standard_normal((5, 2, 3)))
    m.eval()
    a, _ = m(x)
    b, _ = m(x)
    assert_close(a, b.detach().numpy())
    m.train()
    fd.manual_seed(1)
    c, _ = m(x)
    assert not np.allclose(c.detach().numpy(), a.detach().numpy())
    assert tuple(c.shape) == (5, 2, 4)


def test_gradcheck_raw_op_packed(rng):
    """Finite differences through the native op directly (packed, reverse direction, GRU and LSTM)."""
    bs = fd.tensor([3, 2, 2, 1], dtype=fd.int64)
    for mode, G in ((3, 3), (2, 4)):
        H, I = 3, 2
        x = fd.tensor(rng.standard_normal((8, I)), requires_grad=True)
        h0 = fd.tensor(rng.standard_normal((3, H)), requires_grad=True)
        w = [fd.tensor(rng.standard_normal(s) * 0.5, requires_grad=True) for s in ((G * H, I), (G * H, H), (G * H,), (G * H,))]

        def f(x, h0, wi, wh, bi, bh):
            r = _C.rnn_layer(x, bs, h0, None, wi, wh, bi, bh, None, mode, True)
            return r[0].sum() + (r[1] * r[1]).sum()
        assert fd.autograd.gradcheck(f, (x, h0, *w))


def test_errors():
    m = nn.LSTM(4, 5)
    with pytest.raises(ValueError, match="input_size"):
        m(fd.randn(3, 2, 6))
    with pytest.raises(ValueError, match="hidden"):
        m(fd.randn(3, 2, 4), (fd.randn(1, 3, 5), fd.randn(1, 2, 5)))
    with pytest.raises(ValueError, match="2D or 3D"):
        m(fd.randn(3, 2, 4, 1))
    with pytest.raises(TypeError, match="dtype"):
        m(fd.randn(3, 2, 4, dtype=fd.float64))
    with pytest.raises(ValueError, match="inconsistent input_size"):
        nn.GRUCell(4, 5)(fd.randn(2, 3))
    with pytest.raises(RuntimeError, match="sorted in decreasing order"):
        rnn_utils.pack_padded_sequence(fd.randn(4, 2, 3), [2, 4])
    with pytest.raises(ValueError, match="non-increasing"):
        _C.rnn_layer(fd.randn(5, 4), fd.tensor([2, 3], dtype=fd.int64), None, None, fd.randn(20, 4), fd.randn(20, 5),
                     mode=2)
    with pytest.raises(ValueError, match=r"weight_hh must have shape \(20, 5\)"):
        _C.rnn_layer(fd.randn(2, 3, 4), None, None, None, fd.randn(20, 4), fd.randn(20, 4), mode=2)
    with pytest.raises(ValueError, match="proj_size"):
        nn.GRU(3, 4, proj_size=2)
    with pytest.raises(ValueError, match="nonlinearity"):
        nn.RNN(3, 4, nonlinearity="sigmoid")


@pytest.mark.skipif(not fd.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_cuda_matches_cpu(rng, case):
    cls, extra = case
    kw = dict(input_size=4, hidden_size=6, num_layers=2, bidirectional=True, **extra)
    cpu_m = getattr(nn, cls)(**kw, dtype=fd.float64)
    gpu_m = getattr(nn, cls)(**kw, dtype=fd.float64)
    gpu_m.load_state_dict(cpu_m.state_dict())
    gpu_m.to("cuda")
    x = rng.standard_normal((7, 5, 4))
    lengths = [7, 5, 5, 2, 1]
    res = []
    for m, dev in ((cpu_m, "cpu"), (gpu_m, "cuda")):
        xt = fd.tensor(x, device=dev, requires_grad=True)
        packed = rnn_utils.pack_padded_sequence(xt, lengths)
        out, _ = m(packed)
        (out.data * out.data).sum().backward()
        res.append((out.data.detach().cpu().numpy(), xt.grad.cpu().numpy(),
                    {n: p.grad.cpu().numpy() for n, p in m.named_parameters()}))
    assert_close(res[1][0], res[0][0])
    assert_close(res[1][1], res[0][1])
    for n in res[0][2]:
        assert_close(res[1][2][n], res[0][2][n], msg=n)


TEXT = __import__("os").path.join(__import__("os").path.dirname(__file__), "..", "..", "shared", "data",
                                  "tinyshakespeare.txt")


def test_train_lstm_lm_on_tinyshakespeare(tmp_path, capsys):
    """`fastdl train --model lstm` learns: validation loss clearly below the character unigram
    entropy of the text (3.31 nats for tiny-shakespeare; an LSTM that learned nothing beyond
    character frequencies sits at it), with a checkpoint, a loss plot, and generation from it."""
    import os
    if not os.path.exists(TEXT):
        pytest.skip("../shared/data/tinyshakespeare.txt is absent")
    from fastdl.cli import main
    with open(TEXT, encoding="utf-8") as f:
        text = f.read()
    _, counts = np.unique(np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32), return_counts=True)
    p = counts / counts.sum()
    unigram = float(-(p * np.log(p)).sum())
    assert main(["train", "--model", "lstm", "--data", TEXT, "--steps", "150", "--context", "32", "--batch-size", "32",
                 "--d-model", "128", "--n-layer", "1", "--lr", "1e-2", "--eval-iters", "4", "--sample-tokens", "20",
                 "--out", str(tmp_path), "--no-progress"]) == 0
    out = capsys.readouterr().out
    val = float(out.split("final val loss:")[1].split()[0])
    assert val < unigram - 0.6, (val, unigram)
    assert (tmp_path / "loss.png").exists() and (tmp_path / "model.safetensors").exists()
    assert main(["generate", "--checkpoint", str(tmp_path / "model.safetensors"), "--tokens", "10", "--prompt", "ROMEO",
                 "--temperature", "0"]) == 0
    assert capsys.readouterr().out.startswith("ROMEO")


@pytest.mark.parametrize("name", ["lstm-lm", "gru-lm"])
def test_bench_rnn_lm_trains_like_torch(torch, name):
    """The LSTM / GRU LMs of `fastdl bench models` and their torch.nn twins follow the same loss
    trajectory from the same weights (float32)."""
    from fastdl.bench import models
    fs, ts = models.loss_trajectories(name, torch, 3)
    np.testing.assert_allclose(fs, ts, rtol=2e-4, atol=2e-5)
    assert fs[-1] < fs[0]
