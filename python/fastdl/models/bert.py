"""A BERT-style bidirectional encoder (Devlin et al. 2019): token + position + segment
embeddings summed and LayerNorm-ed, post-LN Transformer encoder layers (GELU), a pooler on the
[CLS] position and a masked-language-model head (dense, GELU, LayerNorm, then a decoder tied to
the token embedding plus an output bias).

    BERT(vocab_size, hidden_size=128, num_layers=2, num_heads=4, intermediate_size=None,
         max_position_embeddings=512, type_vocab_size=2, dropout=0.1)
    model(input_ids, token_type_ids=None, attention_mask=None) -> hidden (batch, T, hidden)
    model.mlm_logits(hidden)                                    -> (batch, T, vocab)
    model.mlm_loss(input_ids, labels, ...)                      labels -100 where not masked
    mask_tokens(ids, mask_token_id, vocab_size, rng)            the 80/10/10 masking recipe

attention_mask follows the Hugging Face convention: 1 for tokens to attend to, 0 for padding."""
import numpy as np

from fastdl import _tensor
from fastdl import nn
from fastdl.nn import functional as F, init
from fastdl.nn.parameter import Parameter


class BertEmbeddings(nn.Module):
    def __init__(self, vocab_size, hidden_size, max_position_embeddings, type_vocab_size, dropout, eps, **kw):
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab_size, hidden_size, **kw)
        self.position_embeddings = nn.Embedding(max_position_embeddings, hidden_size, **kw)
        self.token_type_embeddings = nn.Embedding(type_vocab_size, hidden_size, **kw)
        self.LayerNorm = nn.LayerNorm(hidden_size, eps=eps, **kw)
        self.dropout = nn.Dropout(dropout)

    def forward(self, input_ids, token_type_ids=None):
        T = input_ids.shape[1]
        x = self.word_embeddings(input_ids) + self.position_embeddings(_tensor.arange(T, device=input_ids.device))
        if token_type_ids is not None:
            x = x + self.token_type_embeddings(token_type_ids)
        else:
            x = x + self.token_type_embeddings.weight[0]
        return self.dropout(self.LayerNorm(x))


class BERT(nn.Module):
    def __init__(self, vocab_size, hidden_size=128, num_layers=2, num_heads=4, intermediate_size=None,
                 max_position_embeddings=512, type_vocab_size=2, dropout=0.1, layer_norm_eps=1e-12,
                 device=None, dtype=None):
        super().__init__()
        kw = dict(device=device, dtype=dtype)
        self.vocab_size, self.hidden_size = vocab_size, hidden_size
        self.max_position_embeddings, self.type_vocab_size = max_position_embeddings, type_vocab_size
        self.embeddings = BertEmbeddings(vocab_size, hidden_size, max_position_embeddings, type_vocab_size, dropout,
                                         layer_norm_eps, **kw)
        layer = nn.TransformerEncoderLayer(hidden_size, num_heads, dim_feedforward=intermediate_size or 4 * hidden_size,
                                           dropout=dropout, activation="gelu", layer_norm_eps=layer_norm_eps,
                                           batch_first=True, norm_first=False, **kw)
        self.encoder = nn.TransformerEncoder(layer, num_layers)
        self.pooler = nn.Linear(hidden_size, hidden_size, **kw)
        # masked-LM head: transform, then the tied decoder
        self.mlm_dense = nn.Linear(hidden_size, hidden_size, **kw)
        self.mlm_norm = nn.LayerNorm(hidden_size, eps=layer_norm_eps, **kw)
        self.mlm_bias = Parameter(_tensor.zeros(vocab_size, **kw))
        self._init_weights()

    def _init_weights(self):
        """BERT's initialisation: N(0, 0.02) weights and embeddings, zero biases."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                init.normal_(m.weight, std=0.02)
                if m.bias is not None:
                    init.zeros_(m.bias)
            elif isinstance(m, nn.Embedding):
                init.normal_(m.weight, std=0.02)
            elif isinstance(m, nn.MultiheadAttention):
                init.normal_(m.in_proj_weight, std=0.02)

    def forward(self, input_ids, token_type_ids=None, attention_mask=None):
        if input_ids.ndim != 2:
            raise ValueError(f"BERT: input_ids must be (batch, T); got shape {tuple(input_ids.shape)}")
        if input_ids.shape[1] > self.max_position_embeddings:
            raise ValueError(f"BERT: sequence length {input_ids.shape[1]} exceeds max_position_embeddings "
                             f"{self.max_position_embeddings}")
        for name, t in (("token_type_ids", token_type_ids), ("attention_mask", attention_mask)):
            if t is not None and tuple(t.shape) != tuple(input_ids.shape):
                raise ValueError(f"BERT: {name} must have the shape of input_ids {tuple(input_ids.shape)}; got "
                                 f"{tuple(t.shape)}")
        x = self.embeddings(input_ids, token_type_ids)
        pad = None if attention_mask is None else attention_mask == 0
        return self.encoder(x, src_key_padding_mask=pad)

    def pool(self, hidden):
        """tanh(W h_[CLS] + b): the sentence representation for classification heads."""
        return F.tanh(self.pooler(hidden[:, 0]))

    def mlm_logits(self, hidden):
        h = self.mlm_norm(F.gelu(self.mlm_dense(hidden)))
        return F.linear(h, self.embeddings.word_embeddings.weight, self.mlm_bias)

    def mlm_loss(self, input_ids, labels, token_type_ids=None, attention_mask=None):
        """Cross-entropy of the masked-LM head over positions whose label is not -100."""
        logits = self.mlm_logits(self(input_ids, token_type_ids, attention_mask))
        return F.cross_entropy(logits.reshape(-1, self.vocab_size), labels.reshape(-1), ignore_index=-100)


def mask_tokens(ids, mask_token_id, vocab_size, rng, prob=0.15, special=()):
    """BERT's masking of a numpy (batch, T) id array: each non-special token is chosen with
    probability `prob`; chosen tokens become mask_token_id (80%), a random token (10%) or stay
    (10%). Returns (inputs, labels), labels -100 where not chosen."""
    ids = np.asarray(ids)
    chosen = rng.random(ids.shape) < prob
    for s in special:
        chosen &= ids != s
    labels = np.where(chosen, ids, -100)
    r = rng.random(ids.shape)
    inputs = np.where(chosen & (r < 0.8), mask_token_id, ids)
    rand = chosen & (r >= 0.8) & (r < 0.9)
    inputs = np.where(rand, rng.integers(0, vocab_size, ids.shape), inputs)
    return inputs.astype(np.int64), labels.astype(np.int64)
