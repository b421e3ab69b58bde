"""`fastdl bench KERNEL`: time fastdl against numpy and PyTorch (when installed) in one
process, interleaved, median of repeats, and print the ratios.

    fastdl bench overhead      per-op cost of tiny ops (a + b on 1-element tensors); --busy: small
                               threaded ops while every core is busy, vs PyTorch; --idle: small
                               threaded ops right after the workers slept, vs one thread and PyTorch
    fastdl bench elementwise   large a + b (16M float32) in GB/s
    fastdl bench gemm          matmul GFLOP/s at the issue's sizes
    fastdl bench ops           forward and forward + backward of common ops at the char-GPT's shapes vs PyTorch
    fastdl bench mp            message passing fwd+bwd vs PyTorch index_add / scatter_reduce / CSR sparse.mm
    fastdl bench models        training steps (MLP, char-GPT, GPT, ViT, GCN, GAT, Mamba LM) vs PyTorch: fwd, bwd, optimizer;
                               --train-gpt: whole 2000-iteration char-GPT runs, wall time and val loss
    fastdl bench scan          Mamba's selective scan fwd / fwd+bwd vs PyTorch's sequential reference
    fastdl bench conv          conv2d fwd / fwd+bwd (ResNet 3x3 layers, LeNet c1) vs PyTorch (oneDNN)
    fastdl bench attention     fused attention fwd / fwd+bwd, full and causal, vs PyTorch's flash SDPA
    fastdl bench generate      tokens/s of a Mamba LM vs an equal-size GPT at long context
    fastdl bench ddp           data-parallel over MPI: weak scaling 1 -> 2 ranks (MLP, char-GPT), all_reduce GB/s,
                               vs PyTorch DDP (gloo); needs mpi4py + mpirun (pip install "fastdl[mpi]")
    fastdl bench all           everything above

`fastdl bench KERNEL --help` prints that kernel's description and options.
"""
import re
import sys


def _options(doc):
    """The options a kernel's usage lines (`fastdl bench NAME [--flag VALUE] ...`) name: option ->
    whether it takes a value. The usage line is the one place they are written down."""
    opts = {}
    for line in doc.splitlines():
        if "fastdl bench " in line:
            for m in re.finditer(r"(--[a-z][a-z0-9-]*)( [A-Z0-9][^\s|\]]*)?", line):
                opts[m[1]] = opts.get(m[1], False) or m[2] is not None
    return opts


def _bad_argument(name, opts, args):
    """Why args does not fit opts (None when it does)."""
    i = 0
    while i < len(args):
        a = args[i]
        if a.split("=", 1)[0] in opts and "=" in a:
            return f"fastdl bench {name}: write {a.replace('=', ' ', 1)} (an option and its value as two words)"
        if a not in opts:
            known = ", ".join(opts) or "none"
            return f"fastdl bench {name}: unknown argument '{a}' (options: {known}; see fastdl bench {name} --help)"
        if opts[a] and (i + 1 == len(args) or args[i + 1].startswith("--")):
            return f"fastdl bench {name}: option {a} needs a value (see fastdl bench {name} --help)"
        i += 2 if opts[a] else 1
    return None


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0
    from fastdl.bench import elementwise, gemm, generate, models, ops, overhead, scan
    from fastdl.bench import attention, conv, ddp, mp
    table = {"overhead": overhead.main, "elementwise": elementwise.main, "gemm": gemm.main, "ops": ops.main,
             "models": models.main, "scan": scan.main, "generate": generate.main, "mp": mp.main,
             "conv": conv.main, "attention": attention.main, "ddp": ddp.main}
    name, args = argv[0], argv[1:]
    if name != "all" and name not in table:
        print(f"fastdl bench: unknown kernel '{name}'; choose from {', '.join(table)} or all", file=sys.stderr)
        return 2
    which = list(table) if name == "all" else [name]
    docs = {w: sys.modules[table[w].__module__].__doc__ or "" for w in which}
    if "-h" in args or "--help" in args:
        print("\n\n".join(docs[w].strip() for w in which))
        return 0
    opts = {}
    for w in which:  # `all` takes any kernel's options; each kernel reads the ones it knows
        opts.update(_options(docs[w]))
    error = _bad_argument(name, opts, args)
    if error:
        print(error, file=sys.stderr)
        return 2
    for w in which:
        table[w](args)
    return 0
