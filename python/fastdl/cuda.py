"""fastdl.cuda: device queries. Without a GPU (or a CUDA build) is_available() is False."""
from fastdl import _C


def is_available():
    return bool(_C.cuda_is_available())


def device_count():
    return int(_C.cuda_device_count())


def synchronize(device=0):
    if is_available():
        _C.cuda_synchronize(device if isinstance(device, int) else (device.index or 0))


def empty_cache():
    if is_available():
        _C.cuda_empty_cache()


# Seeding. fastdl's CUDA draws take their keys from the one global generator (fastdl.random), so
# these seed and read that one; without a GPU the seeding calls do nothing, as PyTorch's.
def manual_seed(seed):
    if is_available():
        from fastdl.random import manual_seed as seed_global
        seed_global(seed)


manual_seed_all = manual_seed


def seed():
    if is_available():
        from fastdl.random import seed as seed_global
        seed_global()


seed_all = seed


def initial_seed():
    from fastdl.random import initial_seed as initial
    return initial()


def get_rng_state(device="cuda"):
    from fastdl.random import get_rng_state as state
    return state()


def set_rng_state(new_state, device="cuda"):
    from fastdl.random import set_rng_state as set_state
    set_state(new_state)


from fastdl.amp import _device_amp  # noqa: E402

amp = _device_amp("cuda")  # torch.cuda.amp: the "cuda" forms of fastdl.amp
