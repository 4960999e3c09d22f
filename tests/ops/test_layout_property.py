"""Property test of the layout bookkeeping: random chains of Reshape / Transpose / MatMul /
element-wise / reduce / Softmax ops on rank-3/4/5 non-image tensors, with and without a Conv
feeding them, compared with onnxruntime. Sizes are drawn from a few small values so that axes of
equal length are common (a swapped pair of equal axes gives no shape error, only wrong numbers),
and values are reused by later ops so that one tensor has consumers wanting different layouts."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import helper

from ..util import assert_matches_ort, make_model

SIZES = (2, 3, 4, 6)


class Chain:
    """Builds one random graph; every value records its static ONNX shape."""

    def __init__(self, rng: np.random.Generator, with_conv: bool):
        self.rng, self.nodes, self.inits, self.shapes = rng, [], [], {}
        self.n, self.values = 0, []
        if with_conv:
            c, h, w = (int(rng.choice(SIZES)) for _ in range(3))
            self.input_shape = (2, c, h, w)
            k = int(rng.choice([1, 3]))
            wt = rng.standard_normal((c, c, k, k)).astype(np.float32) * 0.5
            y = self.add("Conv", ["x", self.const(wt)], (2, c, h, w), pads=[k // 2] * 4)
            self.values = [y]  # the chain starts from the conv's (channels-last) output
        else:
            rank = int(rng.integers(3, 6))
            self.input_shape = tuple(int(rng.choice(SIZES)) for _ in range(rank))
            self.values = ["x"]
        self.shapes["x"] = self.input_shape

    def fresh(self, prefix="v"):
        self.n += 1
        return f"{prefix}{self.n}"

    def const(self, arr):
        name = self.fresh("c")
        self.inits.append((name, arr))
        return name

    def add(self, op, inputs, shape, **attrs):
        out = self.fresh()
        self.nodes.append(helper.make_node(op, inputs, [out], **attrs))
        self.shapes[out] = tuple(shape)
        self.values.append(out)
        return out

    def pick(self):
        # later values more often, but any earlier value may get another consumer
        k = len(self.values)
        i = k - 1 if self.rng.random() < 0.5 else int(self.rng.integers(0, k))
        return self.values[i]

    # ------------------------------------------------------------------ ops
    def transpose(self, v):
        s = self.shapes[v]
        perm = [int(p) for p in self.rng.permutation(len(s))]
        return self.add("Transpose", [v], [s[p] for p in perm], perm=perm)

    def reshape(self, v):
        s = list(self.shapes[v])
        splittable = [i for i, d in enumerate(s) if d in (4, 6)]
        if len(s) < 5 and splittable and self.rng.random() < 0.5:
            i = int(self.rng.choice(splittable))
            a = 2
            new = s[:i] + [a, s[i] // a] + s[i + 1:]
        elif len(s) > 3:
            i = int(self.rng.integers(0, len(s) - 1))
            new = s[:i] + [s[i] * s[i + 1]] + s[i + 2:]
        else:
            return self.transpose(v)
        target = list(new)
        j = int(self.rng.integers(0, len(target)))
        if self.rng.random() < 0.5:
            target[j] = -1
        return self.add("Reshape", [v, self.const(np.array(target, np.int64))], new)

    def matmul_const(self, v):
        s = self.shapes[v]
        n = int(self.rng.choice(SIZES))
        w = self.rng.standard_normal((s[-1], n)).astype(np.float32) * 0.5
        return self.add("MatMul", [v, self.const(w)], s[:-1] + (n,))

    def matmul_self(self, v):
        s = self.shapes[v]
        perm = list(range(len(s) - 2)) + [len(s) - 1, len(s) - 2]
        t = self.add("Transpose", [v], [s[p] for p in perm], perm=perm)
        y = self.add("MatMul", [v, t], s[:-1] + (s[-2],))
        # attention scores: the softmax keeps chained products well conditioned in float32
        return self.add("Softmax", [y], self.shapes[y], axis=-1)

    def matmul_pair(self, v):
        s = self.shapes[v]
        others = [u for u in self.values if len(self.shapes[u]) == len(s)
                  and self.shapes[u][:-2] == s[:-2] and self.shapes[u][-2] == s[-1]]
        if not others:
            return self.matmul_self(v)
        u = others[int(self.rng.integers(0, len(others)))]
        return self.add("MatMul", [v, u], s[:-1] + (self.shapes[u][-1],))

    def elementwise(self, v):
        s = self.shapes[v]
        kind = self.rng.integers(0, 3)
        if kind == 0:
            bshape = [d if self.rng.random() < 0.5 else 1 for d in s]
            c = self.const(self.rng.standard_normal(bshape).astype(np.float32))
            return self.add("Add", [v, c], s)
        if kind == 1:
            same = [u for u in self.values if self.shapes[u] == s and u != v]
            if same:
                return self.add("Mul", [v, same[int(self.rng.integers(0, len(same)))]], s)
        return self.add("Tanh", [v], s)

    def reduce(self, v):
        s = self.shapes[v]
        axis = int(self.rng.integers(0, len(s)))
        keep = len(s) == 3 or self.rng.random() < 0.5
        out = list(s)
        if keep:
            out[axis] = 1
        else:
            del out[axis]
        if self.rng.random() < 0.5:
            return self.add("ReduceMean", [v], out, axes=[axis], keepdims=int(keep))
        return self.add("ReduceSum", [v, self.const(np.array([axis], np.int64))], out, keepdims=int(keep))

    def softmax(self, v):
        s = self.shapes[v]
        return self.add("Softmax", [v], s, axis=int(self.rng.integers(-len(s), len(s))))


OPS = ("transpose", "reshape", "matmul_const", "matmul_self", "matmul_pair", "elementwise", "reduce",
       "softmax")


def build(seed: int, length: int, with_conv: bool):
    rng = np.random.default_rng(seed)
    ch = Chain(rng, with_conv)
    for _ in range(length):
        op = OPS[int(rng.integers(0, len(OPS)))]
        v = ch.pick()
        if max(ch.shapes[v]) > 36 or np.prod(ch.shapes[v]) > 2000:
            v = ch.values[-1] if np.prod(ch.shapes[ch.values[-1]]) <= 2000 else "x"
        getattr(ch, op)(v)
    outs = [u for u in ch.values if u != "x"][-4:]
    model = make_model(ch.nodes, [("x", np.float32, list(ch.input_shape))],
                       [(o, np.float32, list(ch.shapes[o])) for o in outs], ch.inits, opset=17)
    x = rng.standard_normal(ch.input_shape).astype(np.float32)
    return model, {"x": x}


@settings(max_examples=150, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2 ** 31 - 1), length=st.integers(3, 9), with_conv=st.booleans())
def test_random_layout_chains_match_onnxruntime(seed, length, with_conv):
    model, feeds = build(seed, length, with_conv)
    assert_matches_ort(model, feeds)


@pytest.mark.parametrize("c", [6, 8])
def test_shared_tensor_two_layouts(c):
    """The reduction of issue 12 (BoTNet's rel_logits): Reshape -> Transpose -> Reshape gives r,
    which feeds MatMul(r, W1) and MatMul(Transpose(r, [0,2,1,3]), W2), with equal-length axes."""
    rng = np.random.default_rng(0)
    b, hw = 2, 6
    nodes = [
        helper.make_node("Transpose", ["x"], ["xt"], perm=[0, 2, 1]),
        helper.make_node("Reshape", ["xt", "s"], ["r"]),
        helper.make_node("MatMul", ["r", "w1"], ["o1"]),
        helper.make_node("Transpose", ["r"], ["rt"], perm=[0, 2, 1, 3]),
        helper.make_node("MatMul", ["rt", "w2"], ["o2"]),
    ]
    inits = [("s", np.array([b, c, hw, hw], np.int64)),
             ("w1", rng.standard_normal((hw, 5)).astype(np.float32)),
             ("w2", rng.standard_normal((hw, 5)).astype(np.float32))]
    m = make_model(nodes, [("x", np.float32, [b, hw * hw, c])],
                   [("o1", np.float32, None), ("o2", np.float32, None)], inits)
    assert_matches_ort(m, {"x": rng.standard_normal((b, hw * hw, c)).astype(np.float32)})
