"""einsum by broadcasting and matmul, composed from native ops (autograd comes with them)."""
from fastdl import _C


def einsum(equation, *operands):
    """einsum by broadcasting: operands are aligned on the union of letters, multiplied, and
    the letters absent from the output are summed (matrix products go through matmul)."""
    ops = list(operands[0]) if len(operands) == 1 and isinstance(operands[0], (list, tuple)) else list(operands)
    eq = equation.replace(" ", "")
    if "->" in eq:
        lhs, out = eq.split("->")
    else:
        lhs = eq
        letters = [c for c in lhs.replace(",", "")]
        out = "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
    ins = lhs.split(",")
    if len(ins) != len(ops):
        raise ValueError(f"einsum: equation has {len(ins)} operands but {len(ops)} were given")
    if "." in eq:
        raise NotImplementedError("einsum: ellipsis is not supported")
    if len(ops) == 2 and _is_matmul(ins[0], ins[1], out):
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
        if len(set(s)) != len(s):
            raise NotImplementedError("einsum: repeated letters within one operand are not supported")
        x = _perm(t, s, [c for c in allc if c in s])
        shape = [t.shape[s.index(c)] if c in s else 1 for c in allc]
        x = x.reshape(*shape)
        prod = x if prod is None else prod * x
    red = [i for i, c in enumerate(allc) if c not in out]
    if red:
        prod = prod.sum(tuple(red))
    rest = [c for c in allc if c in out]
    return _perm(prod, "".join(rest), list(out))


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
