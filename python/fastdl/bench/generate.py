"""Generation speed at long context: a Mamba LM (recurrent state, O(1) work per new token)
against a GPT of about the same parameter count (attention with a key/value cache, O(context)
per token), both from fastdl.models. The prompt is processed once in parallel (timed apart);
the figure is new tokens per second of the one-token steps, batch 1, greedy.

    fastdl bench generate [--context 2048] [--new 64] [--d-model 256] [--quick]
"""
import time

import numpy as np

import fastdl as fd


def _models(d_model, vocab=65):
    from fastdl.models.mamba import HybridLM, MambaLM
    fd.manual_seed(0)
    mamba = MambaLM(vocab, d_model, n_layer=8)
    gpt = HybridLM(vocab, d_model, pattern="af" * 4)  # 4 x (causal attention + MLP)
    return {"mamba": mamba, "gpt": gpt}


def _n_params(m):
    return sum(p.numel() for p in m.parameters())


def tokens_per_second(model, context, new, vocab=65, seed=0):
    idx = fd.tensor(np.random.default_rng(seed).integers(0, vocab, (1, context)))
    model.eval()
    with fd.no_grad():
        t0 = time.perf_counter()
        logits, state = model.forward(idx, return_state=True)
        prefill = time.perf_counter() - t0
        tok = logits[:, -1].argmax(-1)
        t0 = time.perf_counter()
        for _ in range(new):
            logits, state = model.step(tok, state)
            tok = logits.argmax(-1)
        decode = time.perf_counter() - t0
    return new / decode, prefill


def main(argv=()):
    argv = list(argv)

    def opt(name, default):
        return int(argv[argv.index(name) + 1]) if name in argv else default
    quick = "--quick" in argv
    context, new = opt("--context", 128 if quick else 2048), opt("--new", 8 if quick else 64)
    d_model = opt("--d-model", 64 if quick else 256)
    models = _models(d_model)
    print(f"generation, batch 1, context {context}, {new} new tokens, d_model {d_model}, "
          f"{fd.get_num_threads()} threads")
    rates = {}
    for name, m in models.items():
        rate, prefill = tokens_per_second(m, context, new)
        rates[name] = rate
        print(f"  {name:6s} {_n_params(m) / 1e6:5.2f}M params  {rate:8.1f} tokens/s  (prefill {prefill * 1e3:.1f} ms)")
    print(f"  mamba / gpt tokens per second: {rates['mamba'] / rates['gpt']:.2f}x")
