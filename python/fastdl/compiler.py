"""fastdl.compiler: torch.compiler's queries (fastdl runs eagerly; fastdl.compile is the identity)."""


def is_compiling():
    return False


def is_dynamo_compiling():
    return False


def disable(fn=None, recursive=True):
    return (lambda f: f) if fn is None else fn


def reset():
    pass


__all__ = ["is_compiling", "is_dynamo_compiling", "disable", "reset"]
