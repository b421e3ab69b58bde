"""The `fastdl` console command (also `python -m fastdl`).

    fastdl train [options]     train the default model on scikit-learn's digits (the main job);
                               --model gpt: the character-level GPT on tiny-shakespeare
    fastdl generate [options]  sample text from a `fastdl train --model gpt` checkpoint
    fastdl nas [options]       architecture search on the digits under a parameter budget
    fastdl bench KERNEL ...    time fastdl against numpy / PyTorch, interleaved, and print ratios
    fastdl info                build, CPU features and ISA in force
"""
import sys


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0
    cmd, rest = argv[0], argv[1:]
    if cmd == "train":
        from fastdl.train.main import main as train_main
        return train_main(rest)
    if cmd == "generate":
        from fastdl.train.lm import main_generate
        return main_generate(rest)
    if cmd == "nas":
        from fastdl.nas.main import main as nas_main
        return nas_main(rest)
    if cmd == "bench":
        from fastdl.bench import main as bench_main
        return bench_main(rest)
    if cmd == "info":
        if rest:
            print(f"fastdl info: takes no arguments (got {' '.join(rest)})", file=sys.stderr)
            return 2
        import fastdl
        from fastdl import _C
        print(f"fastdl {fastdl.__version__}")
        print(f"cpu isa in force: {_C.cpu_isa()}  threads: {_C.get_num_threads()}")
        print(f"cpu features: {_C.cpu_info()}")
        print(f"cuda available: {fastdl.cuda.is_available()}")
        return 0
    print(f"fastdl: unknown command '{cmd}'\n\n{__doc__.strip()}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
