"""AdaptiveLogSoftmaxWithLoss (Grave et al. 2017, "Efficient softmax approximation for GPUs"):
the head scores the shortlist (classes below cutoffs[0]) and one logit per tail cluster; cluster i
scores its classes through a Linear(in, in // div_value**(i+1)) -> Linear(.., cluster size)
bottleneck. log p(class) = log p_head(cluster) + log p_cluster(class). PyTorch's parameter names."""
from collections import namedtuple

from fastdl import _C, _tensor, no_grad
from fastdl.nn import functional as F
from fastdl.nn.modules.container import ModuleList, Sequential
from fastdl.nn.modules.linear import Linear
from fastdl.nn.modules.module import Module

_ASMoutput = namedtuple("_ASMoutput", ["output", "loss"])


class AdaptiveLogSoftmaxWithLoss(Module):
    def __init__(self, in_features, n_classes, cutoffs, div_value=4.0, head_bias=False, device=None, dtype=None):
        super().__init__()
        cutoffs = list(cutoffs)
        if len(cutoffs) == 0:
            raise ValueError("cutoffs should be a sequence of length larger than 0")
        if (cutoffs != sorted(cutoffs) or min(cutoffs) <= 0 or max(cutoffs) > n_classes - 1
                or len(set(cutoffs)) != len(cutoffs) or any(int(c) != c for c in cutoffs)):
            raise ValueError("cutoffs should be a sequence of unique, positive integers sorted in an increasing order, "
                             "where each value is between 1 and n_classes-1")
        if any(not isinstance(c, int) for c in cutoffs):
            raise TypeError(f"AdaptiveLogSoftmaxWithLoss: cutoffs must be ints; got {cutoffs}")
        self.in_features, self.n_classes = in_features, n_classes
        self.cutoffs = cutoffs + [n_classes]
        self.div_value, self.head_bias = div_value, head_bias
        self.shortlist_size = self.cutoffs[0]
        self.n_clusters = len(self.cutoffs) - 1
        self.head_size = self.shortlist_size + self.n_clusters
        kw = {"device": device, "dtype": dtype}
        self.head = Linear(in_features, self.head_size, bias=head_bias, **kw)
        self.tail = ModuleList()
        for i in range(self.n_clusters):
            hsz = int(in_features // (div_value ** (i + 1)))
            osz = self.cutoffs[i + 1] - self.cutoffs[i]
            self.tail.append(Sequential(Linear(in_features, hsz, bias=False, **kw),
                                        Linear(hsz, osz, bias=False, **kw)))

    def reset_parameters(self):
        self.head.reset_parameters()
        for i2h, h2o in self.tail:
            i2h.reset_parameters()
            h2o.reset_parameters()

    def forward(self, input, target):
        if target.ndim == 1:
            if input.shape[0] != target.shape[0]:
                raise RuntimeError("Input and target should have the same size in the batch dimension.")
            if input.ndim != 2:
                raise RuntimeError(f"1D target tensor expects 2D input tensors, but found inputs with size "
                                   f"{tuple(input.shape)}")
        elif target.ndim == 0:
            if input.ndim != 1:
                raise RuntimeError(f"0D target tensor expects 1D input tensors, but found inputs with size "
                                   f"{tuple(input.shape)}")
        else:
            raise RuntimeError("0D or 1D target tensor expected, multi-target not supported")
        batched = target.ndim > 0
        x = input if batched else input.unsqueeze(0)
        t = target if batched else target.unsqueeze(0)
        B = t.shape[0]
        output = _tensor.zeros(B, dtype=x.dtype, device=x.device)
        # the head's column each row reads: its class in the shortlist, else its cluster's logit
        gather = t.clone()
        used = 0
        bounds = [0] + self.cutoffs
        for i in range(self.n_clusters + 1):
            low, high = bounds[i], bounds[i + 1]
            mask = (t >= low) & (t < high)
            rows = mask.nonzero().reshape(-1)
            if rows.numel() == 0:
                continue
            used += rows.numel()
            if i == 0:
                continue
            local = F.log_softmax(self.tail[i - 1](x.index_select(0, rows)), dim=1)
            local = local.gather(1, (t.index_select(0, rows) - low).unsqueeze(1)).squeeze(1)
            output = output.index_add(0, rows, local)
            gather = gather.index_fill(0, rows, self.shortlist_size + i - 1)
        if used != B:
            raise RuntimeError(f"Target values should be in [0, {self.n_classes - 1}], but values in range "
                               f"[{t.min().item()}, {t.max().item()}] were found. ")
        head_logprob = F.log_softmax(self.head(x), dim=1)
        output = output + head_logprob.gather(1, gather.unsqueeze(1)).squeeze(1)
        loss = (-output).mean()
        return _ASMoutput(output if batched else output.squeeze(0), loss)

    def _full_log_prob(self, input, head_output):
        head_logprob = F.log_softmax(head_output, dim=1)
        parts = [head_logprob[:, :self.shortlist_size]]
        for i in range(self.n_clusters):
            cluster_logprob = F.log_softmax(self.tail[i](input), dim=1)
            parts.append(cluster_logprob + head_logprob[:, self.shortlist_size + i].unsqueeze(1))
        return _C.cat(parts, 1)

    def log_prob(self, input):
        """(B, in_features) -> (B, n_classes) log-probabilities of every class."""
        return self._full_log_prob(input, self.head(input))

    def predict(self, input):
        """(B, in_features) -> (B,) the most likely class; the tails run only for rows whose head
        argmax is a cluster."""
        with no_grad():
            head_output = self.head(input)
            output = head_output.argmax(1)
            tail_rows = output >= self.shortlist_size
            if not bool(tail_rows.any()):
                return output
            if bool(tail_rows.all()):
                return self._full_log_prob(input, head_output).argmax(1)
            output[tail_rows] = self._full_log_prob(input[tail_rows], head_output[tail_rows]).argmax(1)
            return output
