"""optim.swa_utils against PyTorch: AveragedModel (SWA's running mean, EMA through
get_ema_multi_avg_fn / get_ema_avg_fn, custom avg_fn, buffers followed or averaged), SWALR's
learning rates step by step, and update_bn's recomputed BatchNorm statistics."""
import numpy as np
import pytest

import fastdl as fd
import fastdl.nn as nn
from fastdl.optim import swa_utils

torch = pytest.importorskip("torch")
tswa = torch.optim.swa_utils


def _pair():
    tm = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.BatchNorm1d(6), torch.nn.ReLU(), torch.nn.Linear(6, 2))
    fm = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 2))
    tm, fm = tm.double(), fm.double()
    return tm, fm


def _copy(fm, tm):
    fm.load_state_dict({k: fd.tensor(v.detach().numpy()) for k, v in tm.state_dict().items()})


def _assert_same(fm, tm):
    fsd = fm.state_dict()
    assert list(fsd) == list(tm.state_dict())
    for k, v in tm.state_dict().items():
        np.testing.assert_allclose(fsd[k].detach().numpy(), v.detach().numpy(), rtol=1e-12, atol=1e-14, err_msg=k)


@pytest.mark.parametrize("kind", ["swa", "ema_multi", "ema", "custom", "ema_buffers"])
def test_averaged_model_matches_torch(kind):
    rng = np.random.default_rng(0)
    tm, fm = _pair()
    _copy(fm, tm)
    kw_t, kw_f = {}, {}
    if kind.startswith("ema_multi") or kind == "ema_buffers":
        kw_t["multi_avg_fn"], kw_f["multi_avg_fn"] = tswa.get_ema_multi_avg_fn(0.9), swa_utils.get_ema_multi_avg_fn(0.9)
    elif kind == "ema":
        kw_t["avg_fn"], kw_f["avg_fn"] = tswa.get_ema_avg_fn(0.8), swa_utils.get_ema_avg_fn(0.8)
    elif kind == "custom":
        kw_t["avg_fn"] = lambda a, p, n: 0.5 * a + 0.5 * p + n
        kw_f["avg_fn"] = lambda a, p, n: 0.5 * a + 0.5 * p + float(n)
    use_buffers = kind == "ema_buffers"
    ta = tswa.AveragedModel(tm, use_buffers=use_buffers, **kw_t)
    fa = swa_utils.AveragedModel(fm, use_buffers=use_buffers, **kw_f)
    for step in range(5):  # new weights and batch statistics each step, then fold them in
        x = rng.standard_normal((8, 4))
        tm(torch.tensor(x))
        fm(fd.tensor(x))
        with torch.no_grad():
            for p in tm.parameters():
                p.add_(torch.tensor(rng.standard_normal(tuple(p.shape))))
        _copy(fm, tm)
        ta.update_parameters(tm)
        fa.update_parameters(fm)
        _assert_same(fa, ta)  # n_averaged, module.* (buffers followed or averaged)
    x = rng.standard_normal((3, 4))
    ta.eval()
    fa.eval()
    np.testing.assert_allclose(fa(fd.tensor(x)).detach().numpy(), ta(torch.tensor(x)).detach().numpy(), rtol=1e-12)


def test_averaged_model_is_a_copy_and_checks_arguments():
    m = nn.Linear(3, 2)
    a = swa_utils.AveragedModel(m)
    assert a.module is not m and a.module.weight is not m.weight
    assert int(a.n_averaged.item()) == 0
    with pytest.raises(ValueError, match="only one of avg_fn and multi_avg_fn"):
        swa_utils.AveragedModel(m, avg_fn=swa_utils.get_swa_avg_fn(), multi_avg_fn=swa_utils.get_swa_multi_avg_fn())
    with pytest.raises(ValueError, match="Invalid decay value 1.5"):
        swa_utils.get_ema_multi_avg_fn(1.5)


@pytest.mark.parametrize("strategy,epochs,swa_lr", [("cos", 3, 0.05), ("linear", 4, [0.05, 0.2]), ("cos", 0, 0.01)])
def test_swalr_matches_torch(strategy, epochs, swa_lr):
    tw = [torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(2))]
    fw = [nn.Parameter(fd.zeros(2)), nn.Parameter(fd.zeros(2))]
    topt = torch.optim.SGD([{"params": [tw[0]]}, {"params": [tw[1]], "lr": 0.3}], lr=0.5)
    fopt = fd.optim.SGD([{"params": [fw[0]]}, {"params": [fw[1]], "lr": 0.3}], lr=0.5)
    ts = tswa.SWALR(topt, swa_lr, anneal_epochs=epochs, anneal_strategy=strategy)
    fs = swa_utils.SWALR(fopt, swa_lr, anneal_epochs=epochs, anneal_strategy=strategy)
    for _ in range(8):
        np.testing.assert_allclose(fs.get_last_lr(), ts.get_last_lr(), rtol=1e-12)
        np.testing.assert_allclose([g["lr"] for g in fopt.param_groups], [g["lr"] for g in topt.param_groups], rtol=1e-12)
        topt.step()
        fopt.step()
        ts.step()
        fs.step()
    with pytest.raises(ValueError, match="anneal_strategy must by one of 'cos' or 'linear'"):
        swa_utils.SWALR(fopt, 0.1, anneal_strategy="exp")
    with pytest.raises(ValueError, match="swa_lr must have the same length as optimizer.param_groups"):
        swa_utils.SWALR(fopt, [0.1])


def test_update_bn_matches_torch():
    rng = np.random.default_rng(1)
    tm, fm = _pair()
    _copy(fm, tm)
    batches = [rng.standard_normal((n, 4)) for n in (5, 9, 7)]
    tswa.update_bn([(torch.tensor(b), 0) for b in batches], tm)
    swa_utils.update_bn([(fd.tensor(b), 0) for b in batches], fm)
    _assert_same(fm, tm)  # running mean / var as cumulative averages, num_batches_tracked
    assert fm[1].momentum == 0.1 and fm.training


def test_swa_ema_training_loop():
    # SWA over the tail of an SGD run on a least-squares problem lands nearer the optimum than
    # the last iterate.
    fd.manual_seed(0)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((256, 5)).astype(np.float32)
    w_true = rng.standard_normal((5, 1)).astype(np.float32)
    y = x @ w_true + 0.3 * rng.standard_normal((256, 1)).astype(np.float32)
    model = nn.Linear(5, 1, bias=False)
    opt = fd.optim.SGD(model.parameters(), lr=0.05)
    swa = swa_utils.AveragedModel(model)
    sched = swa_utils.SWALR(opt, swa_lr=0.05, anneal_epochs=1)
    w_opt = np.linalg.lstsq(x, y, rcond=None)[0]
    for step in range(300):
        i = rng.integers(0, 256, 8)
        loss = ((model(fd.tensor(x[i])) - fd.tensor(y[i])) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step >= 100:
            swa.update_parameters(model)
            sched.step()
    last = np.linalg.norm(model.weight.detach().numpy().T - w_opt)
    avg = np.linalg.norm(swa.module.weight.detach().numpy().T - w_opt)
    assert avg < last and avg < 0.05
