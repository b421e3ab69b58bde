"""fastdl.jit: torch.jit's decorators for code that scripts or traces its models. fastdl runs
eagerly (as fastdl.compile does), so script and trace return the function or module itself,
which computes what the scripted one would; is_scripting() and is_tracing() are False. Saving a
TorchScript archive has no fastdl form: fastdl.save / state_dict serialise models."""


def script(obj=None, optimize=None, _frames_up=0, _rcb=None, example_inputs=None):
    return obj


def trace(func, example_inputs=None, *args, **kwargs):
    return func


def trace_module(mod, inputs, *args, **kwargs):
    return mod


def ignore(drop=False, **kwargs):
    if callable(drop):
        return drop
    return lambda fn: fn


def unused(fn):
    return fn


def export(fn):
    return fn


def is_scripting():
    return False


def is_tracing():
    return False


def save(m, f, _extra_files=None):
    raise NotImplementedError("fastdl.jit.save: fastdl has no TorchScript archives; use fastdl.save(model.state_dict(), f)")


def load(f, map_location=None, _extra_files=None):
    raise NotImplementedError("fastdl.jit.load: fastdl has no TorchScript archives; use fastdl.load(f) and "
                              "model.load_state_dict")


class Final:  # torch.jit.Final[T]: a type annotation for constants
    def __class_getitem__(cls, item):
        return item


__all__ = ["script", "trace", "trace_module", "ignore", "unused", "export", "is_scripting", "is_tracing", "save",
           "load", "Final"]
