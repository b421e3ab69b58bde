"""A declarative search space of small convolutional classifiers.

    space = SearchSpace(depth=(1, 2, 3), width=(8, 16, 32), op=("conv", "sepconv"),
                        kernel=(3, 5), skip=(False, True), pool=(False, True),
                        input_shape=(1, 8, 8), num_classes=10)
    arch = space.sample(rng)          {"depth": 2, "layers": [{"width", "op", "kernel", "skip", "pool"}, ...]}
    model = space.build(arch); space.num_params(arch); space.mutate(arch, rng); space.describe(arch)

An architecture is a stack of `depth` cells, each an operation ("conv": k x k conv; "sepconv":
depthwise k x k then pointwise 1x1; "mbconv": 1x1 expansion x2, depthwise k x k, 1x1
projection) followed by BatchNorm and ReLU, an optional residual skip (through a 1x1 conv
when the width changes) and an optional 2x2 max pool; a flatten + linear head classifies.
The genome always holds max(depth) cells; cells past `depth` are inactive. Mutation (Real et
al. 2019) redraws one active decision (the depth or one field of one active cell) to a
different value."""
import copy

import numpy as np

from fastdl import nn

OPS = ("conv", "sepconv", "mbconv")
CELL_FIELDS = ("width", "op", "kernel", "skip", "pool")


class _Cell(nn.Module):
    def __init__(self, c_in, width, op, kernel, skip, pool):
        super().__init__()
        pad = kernel // 2
        if op == "conv":
            body = [nn.Conv2d(c_in, width, kernel, padding=pad, bias=False)]
        elif op == "sepconv":
            body = [nn.Conv2d(c_in, c_in, kernel, padding=pad, groups=c_in, bias=False),
                    nn.Conv2d(c_in, width, 1, bias=False)]
        elif op == "mbconv":
            e = 2 * c_in
            body = [nn.Conv2d(c_in, e, 1, bias=False), nn.BatchNorm2d(e), nn.ReLU(),
                    nn.Conv2d(e, e, kernel, padding=pad, groups=e, bias=False), nn.Conv2d(e, width, 1, bias=False)]
        else:
            raise ValueError(f"SearchSpace: op must be one of {OPS}; got '{op}'")
        self.body = nn.Sequential(*body, nn.BatchNorm2d(width), nn.ReLU())
        self.skip = (nn.Identity() if c_in == width else nn.Conv2d(c_in, width, 1, bias=False)) if skip else None
        self.pool = nn.MaxPool2d(2) if pool else None

    def forward(self, x):
        h = self.body(x)
        if self.skip is not None:
            h = h + self.skip(x)
        return self.pool(h) if self.pool is not None else h


class SearchSpace:
    """Each keyword is the tuple of values one decision may take (see the module docstring)."""

    def __init__(self, depth=(1, 2, 3), width=(8, 16, 32), op=("conv", "sepconv"), kernel=(3, 5),
                 skip=(False, True), pool=(False, True), input_shape=(1, 8, 8), num_classes=10):
        self.choices = {"depth": tuple(depth), "width": tuple(width), "op": tuple(op), "kernel": tuple(kernel),
                        "skip": tuple(skip), "pool": tuple(pool)}
        for k, v in self.choices.items():
            if not v:
                raise ValueError(f"SearchSpace: {k} needs at least one value")
        bad = [o for o in self.choices["op"] if o not in OPS]
        if bad or min(self.choices["depth"]) < 1 or min(self.choices["width"]) < 1:
            raise ValueError(f"SearchSpace: ops must be in {OPS}, depths and widths positive; got {self.choices}")
        self.input_shape, self.num_classes = tuple(input_shape), num_classes
        self.max_depth = max(self.choices["depth"])

    def size(self):
        """Number of distinct architectures (inactive cells not counted)."""
        per_cell = int(np.prod([len(self.choices[f]) for f in CELL_FIELDS]))
        return sum(per_cell ** d for d in self.choices["depth"])

    def sample(self, rng):
        """A uniformly random architecture (rng: numpy Generator)."""
        pick = lambda k: self.choices[k][int(rng.integers(len(self.choices[k])))]  # noqa: E731
        return {"depth": pick("depth"), "layers": [{f: pick(f) for f in CELL_FIELDS} for _ in range(self.max_depth)]}

    def mutate(self, arch, rng):
        """A copy with one active decision redrawn to a different value (decisions with a single
        option are never picked)."""
        child = copy.deepcopy(arch)
        slots = [("depth", None)] if len(self.choices["depth"]) > 1 else []
        slots += [(f, i) for i in range(arch["depth"]) for f in CELL_FIELDS if len(self.choices[f]) > 1]
        if not slots:
            return child
        field, i = slots[int(rng.integers(len(slots)))]
        current = child["depth"] if i is None else child["layers"][i][field]
        options = [v for v in self.choices[field] if v != current]
        value = options[int(rng.integers(len(options)))]
        if i is None:
            child["depth"] = value
        else:
            child["layers"][i][field] = value
        return child

    def _spatial(self, arch):
        h, w = self.input_shape[1:]
        for cell in arch["layers"][:arch["depth"]]:
            if cell["pool"]:
                h, w = h // 2, w // 2
        return h, w

    def build(self, arch):
        """The nn.Module for arch (input (N, *input_shape), output (N, num_classes) logits)."""
        h, w = self._spatial(arch)
        if h < 1 or w < 1:
            raise ValueError(f"SearchSpace: {self.describe(arch)} pools {self.input_shape} below 1x1")
        cells, c = [], self.input_shape[0]
        for cell in arch["layers"][:arch["depth"]]:
            cells.append(_Cell(c, cell["width"], cell["op"], cell["kernel"], cell["skip"], cell["pool"]))
            c = cell["width"]
        return nn.Sequential(*cells, nn.Flatten(), nn.Linear(c * h * w, self.num_classes))

    def valid(self, arch):
        h, w = self._spatial(arch)
        return h >= 1 and w >= 1

    def num_params(self, arch):
        """Trainable parameters of build(arch), counted without building it."""
        total, c = 0, self.input_shape[0]
        for cell in arch["layers"][:arch["depth"]]:
            width, k = cell["width"], cell["kernel"]
            if cell["op"] == "conv":
                total += c * width * k * k
            elif cell["op"] == "sepconv":
                total += c * k * k + c * width
            else:
                e = 2 * c
                total += c * e + 2 * e + e * k * k + e * width
            total += 2 * width
            if cell["skip"] and c != width:
                total += c * width
            c = width
        h, w = self._spatial(arch)
        return total + c * h * w * self.num_classes + self.num_classes

    def describe(self, arch):
        """One line per architecture, e.g. 'conv3x16+skip > sepconv5x32/pool'."""
        parts = []
        for cell in arch["layers"][:arch["depth"]]:
            parts.append(f"{cell['op']}{cell['kernel']}x{cell['width']}" + ("+skip" if cell["skip"] else "")
                         + ("/pool" if cell["pool"] else ""))
        return " > ".join(parts)

    def key(self, arch):
        """A hashable identity of the active part of arch."""
        return (arch["depth"],) + tuple(tuple(c[f] for f in CELL_FIELDS) for c in arch["layers"][:arch["depth"]])
