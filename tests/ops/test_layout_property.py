"""Property test of the layout bookkeeping: random chains of Reshape / Transpose / MatMul / Einsum /
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

import konnx

from ..util import assert_matches_ort, make_model

SIZES = (2, 3, 4, 6)


class Chain:
    """Builds one random graph; every value records its static ONNX shape."""

    def __init__(self, rng: np.random.Generator, with_conv: bool, dynamic: bool = False):
        self.rng, self.nodes, self.inits, self.shapes = rng, [], [], {}
        self.n, self.values = 0, []
        batch = "B" if dynamic else int(rng.choice(SIZES))  # "B": a dynamic axis, moved by transposes
        if with_conv:
            c, h, w = (int(rng.choice(SIZES)) for _ in range(3))
            self.input_shape = (batch, c, h, w)
            k = int(rng.choice([1, 3]))
            wt = rng.standard_normal((c, c, k, k)).astype(np.float32) * 0.5
            y = self.add("Conv", ["x", self.const(wt)], (batch, c, h, w), pads=[k // 2] * 4)
            self.values = [y]  # the chain starts from the conv's (channels-last) output
        else:
            rank = int(rng.integers(3, 6))
            self.input_shape = (batch,) + tuple(int(rng.choice(SIZES)) for _ in range(rank - 1))
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
        mergeable = [i for i in range(len(s) - 1) if "B" not in (s[i], s[i + 1])]
        if len(s) < 5 and splittable and self.rng.random() < 0.5:
            i = int(self.rng.choice(splittable))
            a = 2
            new = s[:i] + [a, s[i] // a] + s[i + 1:]
        elif len(s) > 3 and mergeable:
            i = int(self.rng.choice(mergeable))
            new = s[:i] + [s[i] * s[i + 1]] + s[i + 2:]
        else:
            return self.transpose(v)
        target = list(new)
        if "B" in new:  # the dynamic axis: 0 where it keeps its index, else -1
            j = new.index("B")
            target[j] = 0 if j < len(s) and s[j] == "B" and self.rng.random() < 0.5 else -1
        else:
            j = int(self.rng.integers(0, len(target)))
            if self.rng.random() < 0.5:
                target[j] = -1
        return self.add("Reshape", [v, self.const(np.array(target, np.int64))], new)

    def matmul_const(self, v):
        s = self.shapes[v]
        if s[-1] == "B":
            return self.transpose(v)
        n = int(self.rng.choice(SIZES))
        w = self.rng.standard_normal((s[-1], n)).astype(np.float32) * 0.5
        return self.add("MatMul", [v, self.const(w)], s[:-1] + (n,))

    def matmul_self(self, v):
        s = self.shapes[v]
        if "B" in s[-2:]:
            return self.transpose(v)
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

    def einsum(self, v):
        """Einsum contracting the last axis with a constant, or v with itself (v @ v^T)."""
        s = self.shapes[v]
        letters = "abcde"[:len(s)]
        if "B" in s[-2:] or self.rng.random() < 0.5:
            if s[-1] == "B":
                return self.transpose(v)
            n = int(self.rng.choice(SIZES))
            w = self.rng.standard_normal((s[-1], n)).astype(np.float32) * 0.5
            return self.add("Einsum", [v, self.const(w)], s[:-1] + (n,), equation=f"{letters},{letters[-1]}z->{letters[:-1]}z")
        other = letters[:-2] + "y" + letters[-1]
        y = self.add("Einsum", [v, v], s[:-1] + (s[-2],),
                     equation=f"{letters},{other}->{letters[:-1]}y")
        return self.add("Softmax", [y], self.shapes[y], axis=-1)

    # axis ops: each remaps its ONNX axes through the stored layout
    def concat(self, v):
        s = self.shapes[v]
        axis = int(self.rng.integers(0, len(s)))
        out = list(s)
        out[axis] = s[axis] * 2 if s[axis] != "B" else "B2"
        if out[axis] == "B2":
            return self.softmax(v)
        t = self.add("Tanh", [v], s)
        return self.add("Concat", [v, t], out, axis=axis)

    def slice(self, v):
        s = self.shapes[v]
        axes = [i for i, d in enumerate(s) if d != "B" and d > 1]
        if not axes:
            return self.softmax(v)
        a = int(self.rng.choice(axes))
        out = list(s)
        out[a] = s[a] - 1
        consts = [np.array([v_], np.int64) for v_ in (1, s[a], a)]
        return self.add("Slice", [v] + [self.const(c) for c in consts], out)

    def gather(self, v):
        s = self.shapes[v]
        axes = [i for i, d in enumerate(s) if d != "B"]
        a = int(self.rng.choice(axes))
        idx = self.rng.integers(-s[a], s[a], size=(2,)).astype(np.int64)
        out = list(s)
        out[a] = 2
        return self.add("Gather", [v, self.const(idx)], out, axis=a)

    def unsqueeze_squeeze(self, v):
        s = self.shapes[v]
        a = int(self.rng.integers(0, len(s) + 1))
        out = list(s[:a]) + [1] + list(s[a:])
        u = self.add("Unsqueeze", [v, self.const(np.array([a], np.int64))], out)
        if len(out) > 4 or self.rng.random() < 0.5:  # ranks stay <= 5 (einsum letters)
            b = int(self.rng.choice([i for i, d in enumerate(out) if d == 1]))
            if len(out) > 5:
                self.values.remove(u)  # no later op picks a rank-6 tensor (einsum letters)
            return self.add("Squeeze", [u, self.const(np.array([b], np.int64))], out[:b] + out[b + 1:])
        return u

    def pad(self, v):
        s = self.shapes[v]
        a = int(self.rng.integers(0, len(s)))
        if s[a] == "B":
            return self.softmax(v)
        pads = [0] * (2 * len(s))
        pads[a], pads[a + len(s)] = 1, 2
        out = list(s)
        out[a] = s[a] + 3
        return self.add("Pad", [v, self.const(np.array(pads, np.int64))], out)

    def elementwise(self, v):
        s = self.shapes[v]
        kind = self.rng.integers(0, 3)
        if kind == 0:
            bshape = [d if self.rng.random() < 0.5 and d != "B" else 1 for d in s]
            c = self.const(self.rng.standard_normal(bshape).astype(np.float32))
            return self.add("Add", [v, c], s)
        if kind == 1:
            same = [u for u in self.values if self.shapes[u] == s and u != v]
            if same:
                return self.add("Mul", [v, same[int(self.rng.integers(0, len(same)))]], s)
        return self.add("Tanh", [v], s)

    def reduce(self, v):
        s = self.shapes[v]
        axis = int(self.rng.choice([i for i, d in enumerate(s) if d != "B"]))
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


OPS = ("transpose", "reshape", "matmul_const", "matmul_self", "matmul_pair", "einsum", "elementwise", "reduce",
       "softmax", "concat", "slice", "gather", "unsqueeze_squeeze", "pad")


def _numel(shape) -> int:
    return int(np.prod([3 if d == "B" else d for d in shape]))


def build(seed: int, length: int, with_conv: bool, dynamic: bool = False, batches=(2,)):
    """A random chain and feeds (one per batch size; the batch axis is symbolic if dynamic)."""
    rng = np.random.default_rng(seed)
    ch = Chain(rng, with_conv, dynamic)
    for _ in range(length):
        op = OPS[int(rng.integers(0, len(OPS)))]
        v = ch.pick()
        if max(_numel([d]) for d in ch.shapes[v]) > 36 or _numel(ch.shapes[v]) > 2000:
            v = ch.values[-1] if _numel(ch.shapes[ch.values[-1]]) <= 2000 else "x"
        getattr(ch, op)(v)
    outs = [u for u in ch.values if u != "x"][-4:]
    model = make_model(ch.nodes, [("x", np.float32, list(ch.input_shape))],
                       [(o, np.float32, list(ch.shapes[o])) for o in outs], ch.inits, opset=17)
    feeds = [{"x": rng.standard_normal([b if d == "B" else d for d in ch.input_shape]).astype(np.float32)}
             for b in batches]
    return model, feeds if dynamic else feeds[0]


@settings(max_examples=500, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2 ** 31 - 1), length=st.integers(3, 9), with_conv=st.booleans())
def test_random_layout_chains_match_onnxruntime(seed, length, with_conv):
    model, feeds = build(seed, length, with_conv)
    assert_matches_ort(model, feeds)


@settings(max_examples=200, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2 ** 31 - 1), length=st.integers(3, 9), with_conv=st.booleans())
def test_random_chains_with_dynamic_batch(seed, length, with_conv):
    """The same chains with a symbolic batch axis (moved around by the transposes): converted
    once, run at two batch sizes."""
    model, feeds = build(seed, length, with_conv, dynamic=True, batches=(1, 3))
    km = konnx.convert(model)
    for f in feeds:
        assert_matches_ort(model, f, keras_model=km)


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


@pytest.mark.parametrize("axis", [-1, 2])
def test_softmax_rank_6(axis):
    """Found by the chains above: TensorFlow's Softmax kernel refuses rank > 5 at run time."""
    m = make_model([helper.make_node("Softmax", ["x"], ["y"], axis=axis)], [("x", np.float32, [2, 2, 3, 2, 2, 3])],
                   [("y", np.float32, None)])
    assert_matches_ort(m, {"x": np.random.default_rng(axis + 2).standard_normal((2, 2, 3, 2, 2, 3)).astype(np.float32)})
