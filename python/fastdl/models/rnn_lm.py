"""A character-level recurrent language model (Karpathy's char-rnn shape): embedding, a stack
of LSTM or GRU layers (dropout between them), a linear head to the vocabulary. Generation
runs the prompt through once, then one recurrent step per sampled token, carrying (h, c)."""
from fastdl import nn
from fastdl.models.mamba import generate_recurrent

_CELLS = {"lstm": nn.LSTM, "gru": nn.GRU}


class RNNLM(nn.Module):
    def __init__(self, vocab_size, d_model=256, n_layer=1, cell="lstm", dropout=0.0, device=None, dtype=None):
        super().__init__()
        if cell not in _CELLS:
            raise ValueError(f"RNNLM: cell must be one of {sorted(_CELLS)}; got {cell!r}")
        self.vocab_size, self.d_model, self.n_layer, self.cell = vocab_size, d_model, n_layer, cell
        self.embed = nn.Embedding(vocab_size, d_model, device=device, dtype=dtype)
        self.rnn = _CELLS[cell](d_model, d_model, num_layers=n_layer, batch_first=True,
                                dropout=dropout if n_layer > 1 else 0.0, device=device, dtype=dtype)
        self.head = nn.Linear(d_model, vocab_size, device=device, dtype=dtype)

    def forward(self, idx, state=None, return_state=False):
        """idx (batch, T) int64 -> logits (batch, T, vocab) [, the recurrent state after T]."""
        out, state = self.rnn(self.embed(idx), state)
        logits = self.head(out)
        return (logits, state) if return_state else logits

    def step(self, tok, state):
        """One token per row (batch,) -> (logits (batch, vocab), new state)."""
        logits, state = self.forward(tok.unsqueeze(1), state, return_state=True)
        return logits[:, -1], state

    def generate(self, idx, max_new_tokens, temperature=1.0, top_k=None):
        """Continue idx (batch, T) by max_new_tokens sampled tokens; temperature 0 is greedy."""
        return generate_recurrent(self, idx, max_new_tokens, temperature, top_k)
