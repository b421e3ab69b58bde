"""torch.signal.windows: the window functions of scipy.signal.windows / torch.signal.windows.

Every window takes its length M (M = 0: empty, M = 1: [1.]); sym=True gives the symmetric window
(its points spaced over M - 1), sym=False the periodic one (the first M points of the symmetric
window of length M + 1), as used before an FFT. Values are computed in float64 and cast to dtype
(the default dtype when None)."""
import builtins
import math

from fastdl import _C


def _check(name, M, dtype, layout):
    if not isinstance(M, builtins.int) or isinstance(M, builtins.bool):
        raise TypeError(f"signal.windows.{name}: M must be an int; got {type(M).__name__}")
    if M < 0:
        raise ValueError(f"signal.windows.{name}: M must be non-negative; got {M}")
    if dtype is not None and dtype not in (_C.dtype.float32, _C.dtype.float64):
        raise ValueError(f"signal.windows.{name}: expects float32 or float64 dtypes; got {dtype}")
    if layout is not None and "strided" not in str(layout):
        raise ValueError(f"signal.windows.{name}: is implemented for strided tensors only; got layout {layout}")


def _finish(w, dtype, device, requires_grad):
    from fastdl._tensor import get_default_dtype
    w = w.to(dtype or get_default_dtype())
    if device is not None and str(device) != "cpu":
        w = w.to(device)
    if requires_grad:
        w.requires_grad_(True)
    return w


def _points(M, sym):
    """(n, N): n = 0 .. M-1 as float64, N the symmetric length (M, or M + 1 when periodic)."""
    from fastdl._tensor import arange
    n = arange(M, dtype=_C.dtype.float64)
    return n, (M if sym else M + 1)


def _window(name, M, sym, dtype, layout, device, requires_grad, body):
    _check(name, M, dtype, layout)
    if M == 0 or M == 1:
        from fastdl._tensor import ones
        w = ones(M, dtype=_C.dtype.float64)
        return _finish(w, dtype, device, requires_grad)
    n, N = _points(M, sym)
    return _finish(body(n, N), dtype, device, requires_grad)


def general_cosine(M, *, a, sym=True, dtype=None, layout=None, device=None, requires_grad=False):
    """sum_k (-1)^k a_k cos(2 pi k n / (N - 1))."""
    coeffs = [builtins.float(c) for c in a]
    if not coeffs:
        raise ValueError("signal.windows.general_cosine: a must hold at least one coefficient")

    def body(n, N):
        w = n * 0.0
        for k, c in enumerate(coeffs):
            w = w + ((-1.0) ** k * c) * _C.cos(n * (2.0 * math.pi * k / (N - 1)))
        return w
    return _window("general_cosine", M, sym, dtype, layout, device, requires_grad, body)


def general_hamming(M, *, alpha=0.54, sym=True, dtype=None, layout=None, device=None, requires_grad=False):
    """alpha - (1 - alpha) cos(2 pi n / (N - 1))."""
    return general_cosine(M, a=[alpha, 1.0 - alpha], sym=sym, dtype=dtype, layout=layout, device=device, requires_grad=requires_grad)


def hann(M, *, sym=True, dtype=None, layout=None, device=None, requires_grad=False):
    return general_cosine(M, a=[0.5, 0.5], sym=sym, dtype=dtype, layout=layout, device=device, requires_grad=requires_grad)


def hamming(M, *, sym=True, dtype=None, layout=None, device=None, requires_grad=False):
    return general_hamming(M, alpha=0.54, sym=sym, dtype=dtype, layout=layout, device=device, requires_grad=requires_grad)


def blackman(M, *, sym=True, dtype=None, layout=None, device=None, requires_grad=False):
    return general_cosine(M, a=[0.42, 0.5, 0.08], sym=sym, dtype=dtype, layout=layout, device=device, requires_grad=requires_grad)


def nuttall(M, *, sym=True, dtype=None, layout=None, device=None, requires_grad=False):
    """The minimum 4-term Blackman-Harris window (Nuttall's coefficients)."""
    return general_cosine(M, a=[0.3635819, 0.4891775, 0.1365995, 0.0106411], sym=sym, dtype=dtype, layout=layout, device=device,
                          requires_grad=requires_grad)


def bartlett(M, *, sym=True, dtype=None, layout=None, device=None, requires_grad=False):
    """The triangular window 1 - |2 n / (N - 1) - 1|."""
    return _window("bartlett", M, sym, dtype, layout, device, requires_grad,
                   lambda n, N: 1.0 - _C.abs(n * (2.0 / (N - 1)) - 1.0))


def cosine(M, *, sym=True, dtype=None, layout=None, device=None, requires_grad=False):
    """sin(pi (n + 1/2) / N)."""
    return _window("cosine", M, sym, dtype, layout, device, requires_grad,
                   lambda n, N: _C.sin((n + 0.5) * (math.pi / N)))


def exponential(M, *, center=None, tau=1.0, sym=True, dtype=None, layout=None, device=None, requires_grad=False):
    """exp(-|n - center| / tau), center (N - 1) / 2 by default (it may only be given when sym=False)."""
    if tau <= 0:
        raise ValueError(f"signal.windows.exponential: tau must be positive; got {tau}")
    if sym and center is not None:
        raise ValueError("signal.windows.exponential: center must be None for symmetric windows")

    def body(n, N):
        c = (N - 1) / 2.0 if center is None else builtins.float(center)
        return _C.exp(-_C.abs(n - c) / builtins.float(tau))
    return _window("exponential", M, sym, dtype, layout, device, requires_grad, body)


def gaussian(M, *, std=1.0, sym=True, dtype=None, layout=None, device=None, requires_grad=False):
    """exp(-((n - (N - 1) / 2) / std)^2 / 2)."""
    if std <= 0:
        raise ValueError(f"signal.windows.gaussian: std must be positive; got {std}")

    def body(n, N):
        z = (n - (N - 1) / 2.0) / builtins.float(std)
        return _C.exp(-0.5 * z * z)
    return _window("gaussian", M, sym, dtype, layout, device, requires_grad, body)


def kaiser(M, *, beta=12.0, sym=True, dtype=None, layout=None, device=None, requires_grad=False):
    """I0(beta sqrt(1 - (2 n / (N - 1) - 1)^2)) / I0(beta)."""
    if beta < 0:
        raise ValueError(f"signal.windows.kaiser: beta must be non-negative; got {beta}")

    def body(n, N):
        from fastdl.special import _i0e64
        r = n * (2.0 / (N - 1)) - 1.0
        arg = builtins.float(beta) * _C.sqrt(_C.clamp(1.0 - r * r, 0.0, None))
        b = _C.full((), builtins.float(beta), _C.dtype.float64, "cpu")
        # I0(arg) / I0(beta) = i0e(arg) / i0e(beta) * e^(arg - beta): no overflow for large beta
        return _i0e64(arg) / _i0e64(b) * _C.exp(arg - builtins.float(beta))
    return _window("kaiser", M, sym, dtype, layout, device, requires_grad, body)


# torch's top-level windows: periodic=True drops the last point of a window one longer.
def _top(name, fn, window_length, periodic, dtype, device, requires_grad, **kw):
    if not isinstance(window_length, builtins.int) or window_length < 0:
        raise ValueError(f"{name}: window_length must be a non-negative int; got {window_length!r}")
    if dtype is not None and not dtype.is_floating_point:
        raise ValueError(f"{name}: dtype must be a floating point type; got {dtype}")
    w = fn(window_length, sym=not periodic, dtype=_C.dtype.float64, device=device, **kw)  # then any float dtype
    return _finish(w.detach(), dtype, device, requires_grad)


def hann_window(window_length, periodic=True, *, dtype=None, layout=None, device=None, requires_grad=False):
    return _top("hann_window", hann, window_length, periodic, dtype, device, requires_grad)


def hamming_window(window_length, periodic=True, alpha=0.54, beta=0.46, *, dtype=None, layout=None, device=None,
                   requires_grad=False):
    """alpha - beta cos(2 pi n / (N - 1))."""
    return _top("hamming_window", general_cosine, window_length, periodic, dtype, device, requires_grad,
                a=[alpha, beta])


def blackman_window(window_length, periodic=True, *, dtype=None, layout=None, device=None, requires_grad=False):
    return _top("blackman_window", blackman, window_length, periodic, dtype, device, requires_grad)


def bartlett_window(window_length, periodic=True, *, dtype=None, layout=None, device=None, requires_grad=False):
    return _top("bartlett_window", bartlett, window_length, periodic, dtype, device, requires_grad)


def kaiser_window(window_length, periodic=True, beta=12.0, *, dtype=None, layout=None, device=None,
                  requires_grad=False):
    return _top("kaiser_window", kaiser, window_length, periodic, dtype, device, requires_grad, beta=beta)
