"""How a loss reduces: the reduction= argument and PyTorch's deprecated size_average / reduce flags."""


def _legacy(size_average, reduce, reduction):
    """PyTorch's deprecated size_average / reduce flags, when given, decide the reduction."""
    if size_average is None and reduce is None:
        return reduction
    import warnings
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    r = ("mean" if size_average else "sum") if reduce else "none"
    warnings.warn(f"size_average and reduce args will be deprecated, please use reduction='{r}' instead.",
                  stacklevel=3)
    return r


def _reduce(loss, reduction, op):
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"{op}: reduction must be 'mean', 'sum' or 'none'; got '{reduction}'")
