"""einsum by broadcasting and matmul, composed from native ops (autograd comes with them)."""
from fastdl import _C
from fastdl._shaping import diagonal


def _expand_ellipsis(ins, out, ops):
    """Replace '...' by placeholder letters (right-aligned, as numpy broadcasts them); returns the
    operand specs, the output spec (None when implicit) and the placeholders."""
    n_ell = 0
    for spec, t in zip(ins, ops):
        if "..." in spec:
            n_ell = max(n_ell, t.ndim - len(spec.replace("...", "")))
    used = set("".join(ins) + (out or ""))
    free = [chr(c) for c in range(0x3b1, 0x3b1 + 64) if chr(c) not in used][:n_ell]  # Greek: never in user letters
    new_ins = []
    for spec, t in zip(ins, ops):
        if "..." in spec:
            k = t.ndim - len(spec.replace("...", ""))
            if k < 0:
                raise ValueError(f"einsum: operand spec '{spec}' has more letters than the operand's {t.ndim} dims")
            spec = spec.replace("...", "".join(free[n_ell - k:]))
        if "." in spec:
            raise ValueError(f"einsum: invalid '.' in operand spec '{spec}'")
        new_ins.append(spec)
    if out is not None:
        out = out.replace("...", "".join(free))
    return new_ins, out, free


def _take_diagonals(t, spec):
    """Repeated letters in one operand select its diagonal over those dims (einsum's 'ii->i')."""
    while len(set(spec)) != len(spec):
        c = next(c for c in spec if spec.count(c) > 1)
        i = spec.index(c)
        j = spec.index(c, i + 1)
        t = diagonal(t, 0, i, j)  # the diagonal moves to the last dim
        spec = spec[:i] + spec[i + 1:j] + spec[j + 1:] + c
    return t, spec


def einsum(equation, *operands):
    """einsum by broadcasting: operands are aligned on the union of letters, multiplied, and
    the letters absent from the output are summed (matrix products go through matmul).
    Supports '...' and repeated letters within an operand (diagonals)."""
    ops = list(operands[0]) if len(operands) == 1 and isinstance(operands[0], (list, tuple)) else list(operands)
    eq = equation.replace(" ", "")
    lhs, out = eq.split("->") if "->" in eq else (eq, None)
    ins = lhs.split(",")
    if len(ins) != len(ops):
        raise ValueError(f"einsum: equation has {len(ins)} operands but {len(ops)} were given")
    ins, out, ell = _expand_ellipsis(ins, out, ops)
    for spec, t in zip(ins, ops):
        if len(spec) != t.ndim:
            raise ValueError(f"einsum: operand spec '{spec}' does not match an operand of shape {tuple(t.shape)}")
    if out is None:  # implicit output: the ellipsis dims, then the letters used once, sorted
        letters = "".join(ins)
        out = "".join(ell) + "".join(sorted(c for c in set(letters) if letters.count(c) == 1 and c not in ell))
    if len(set(out)) != len(out) or any(c not in "".join(ins) for c in out):
        raise ValueError(f"einsum: output spec '{out}' repeats a letter or uses one no operand has")
    pairs = [_take_diagonals(t, spec) for t, spec in zip(ops, ins)]
    ops, ins = [p[0] for p in pairs], [p[1] for p in pairs]
    if len(ops) == 2 and _is_matmul(ins[0], ins[1], out) and _same_sizes(ops, ins):
        a, b = ins
        k = (set(a) & set(b)) - set(out)
        batch = [c for c in out if c in a and c in b]
        m = [c for c in a if c not in k and c not in batch]
        n = [c for c in b if c not in k and c not in batch]
        A = _perm(ops[0], a, batch + m + sorted(k))
        B = _perm(ops[1], b, batch + sorted(k) + n)
        sizes = {c: s for s, c in zip(list(ops[0].shape) + list(ops[1].shape), a + b)}
        nb, nm, nn_, nk = ([sizes[c] for c in batch], _prod(sizes[c] for c in m), _prod(sizes[c] for c in n),
                           _prod(sizes[c] for c in k))
        r = A.reshape(*nb, nm, nk) @ B.reshape(*nb, nk, nn_)
        r = r.reshape(*nb, *[sizes[c] for c in m], *[sizes[c] for c in n])
        return _perm(r, "".join(batch + m + n), list(out))
    allc = []
    for s in ins:
        for c in s:
            if c not in allc:
                allc.append(c)
    prod = None
    for t, s in zip(ops, ins):
        x = _perm(t, s, [c for c in allc if c in s])
        shape = [t.shape[s.index(c)] if c in s else 1 for c in allc]
        x = x.reshape(*shape)
        prod = x if prod is None else prod * x
    red = [i for i, c in enumerate(allc) if c not in out]
    if red:
        prod = prod.sum(tuple(red))
    rest = [c for c in allc if c in out]
    return _perm(prod, "".join(rest), list(out))


def _same_sizes(ops, ins):
    sizes = {}
    for t, spec in zip(ops, ins):
        for c, n in zip(spec, t.shape):
            if sizes.setdefault(c, n) != n:
                return False
    return True


def _prod(xs):
    p = 1
    for x in xs:
        p *= x
    return p


def _is_matmul(a, b, out):
    if len(set(a)) != len(a) or len(set(b)) != len(b) or len(set(out)) != len(out):
        return False
    k = (set(a) & set(b)) - set(out)
    return bool(k) and all(c in a or c in b for c in out) and set(a) | set(b) == set(out) | k


def _perm(t, have, want):
    want = list(want)
    if list(have) == want:
        return t
    return t.permute(*[have.index(c) for c in want])
