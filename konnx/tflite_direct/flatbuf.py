"""A TFLite flatbuffer built with LiteRT's own generated schema (object API), no TensorFlow.

`ModelBuilder` collects tensors (constants get their own 16-byte aligned buffer, so the
interpreter and XNNPACK read the weights in place and pre-pack them), operators with their
builtin options, one subgraph, a `serving_default` signature and metadata entries."""
from __future__ import annotations

from typing import Sequence

import numpy as np

# ops whose output is >= 0 whatever the input, and ops that keep an input's sign (first input, or
# every input for CONCATENATION): ModelBuilder.nonneg, which lets max pooling pad with zeros
_NONNEG_OPS = frozenset({"RELU", "RELU6", "LOGISTIC"})
_SIGN_KEEPING = frozenset({"MAX_POOL_2D", "AVERAGE_POOL_2D", "MEAN", "TRANSPOSE", "RESHAPE", "PAD", "STRIDED_SLICE",
                           "CONCATENATION"})
_TYPES = {"float32": 0, "float16": 1, "int32": 2, "uint8": 3, "int64": 4, "bool": 6, "int8": 9}


def schema():
    from ai_edge_litert import schema_py_generated as S

    return S


class _AlignedBuffer:
    """A BufferT whose bytes start on a 16-byte boundary (the schema's Pack aligns to the
    element size only). `data`: bytes or a C-contiguous array, copied once, into the builder."""

    def __init__(self, data):
        self.data = None if data is None else memoryview(data).cast("B")

    def Pack(self, builder):
        S = schema()
        off = None
        if self.data is not None:
            n = len(self.data)
            builder.StartVector(1, n, 16)
            head = builder.head - n
            builder.head = head
            builder.Bytes[head:head + n] = self.data
            builder.vectorNumElems = n
            off = builder.EndVector()
            self.data = None  # the builder holds the bytes now
        S.BufferStart(builder)
        if off is not None:
            S.BufferAddData(builder, off)
        return S.BufferEnd(builder)


class ModelBuilder:
    def __init__(self):
        self.S = schema()
        self.tensors: list = []
        self.buffers: list = [_AlignedBuffer(None)]  # buffer 0: the empty sentinel
        self.operators: list = []
        self.opcodes: dict = {}  # (builtin code, version) -> index
        self.metadata: list = []
        self.size = 0
        self.nonneg: set = set()  # indices of tensors that cannot hold a negative value

    def tensor(self, shape: Sequence[int], name: str, dtype: str = "float32") -> int:
        t = self.S.TensorT()
        t.shape = [int(d) for d in shape]
        t.type = _TYPES[dtype]
        t.name = name
        t.buffer = 0
        self.tensors.append(t)
        return len(self.tensors) - 1

    def constant(self, value: np.ndarray, name: str) -> int:
        value = np.ascontiguousarray(value)
        dtype = str(value.dtype)
        if dtype not in _TYPES:
            raise TypeError(f"a TFLite constant of dtype {dtype}")
        index = self.tensor(value.shape, name, dtype)
        self.buffers.append(_AlignedBuffer(value.reshape(-1) if value.ndim else value.reshape(1)))
        self.size += value.nbytes
        self.tensors[index].buffer = len(self.buffers) - 1
        return index

    def shape(self, index: int) -> tuple:
        return tuple(self.tensors[index].shape)

    def op(self, name: str, inputs: Sequence[int], outputs: Sequence[int], options=None, version: int = 1) -> None:
        code = getattr(self.S.BuiltinOperator, name)
        key = (code, version)
        if key not in self.opcodes:
            self.opcodes[key] = len(self.opcodes)
        o = self.S.OperatorT()
        o.opcodeIndex = self.opcodes[key]
        o.inputs, o.outputs = [int(i) for i in inputs], [int(i) for i in outputs]
        if options is not None:
            kind = type(options).__name__[:-1]  # Conv2DOptionsT -> Conv2DOptions
            o.builtinOptionsType = getattr(self.S.BuiltinOptions, kind)
            o.builtinOptions = options
        self.operators.append(o)
        fused = getattr(options, "fusedActivationFunction", 0) in (1, 3)  # RELU, RELU6
        kept = (name in _SIGN_KEEPING
                and all(i in self.nonneg for i in (inputs if name == "CONCATENATION" else inputs[:1])))
        if name in _NONNEG_OPS or fused or kept:
            self.nonneg.update(int(i) for i in outputs)

    def add_metadata(self, name: str, payload: bytes) -> None:
        self.buffers.append(_AlignedBuffer(payload))
        m = self.S.MetadataT()
        m.name, m.buffer = name, len(self.buffers) - 1
        self.metadata.append(m)

    def finish(self, inputs: list, outputs: list) -> bytes:
        """`inputs` / `outputs`: (signature name, tensor index) in order."""
        import flatbuffers

        S = self.S
        sub = S.SubGraphT()
        sub.tensors, sub.operators, sub.name = self.tensors, self.operators, "main"
        sub.inputs, sub.outputs = [i for _, i in inputs], [i for _, i in outputs]
        sig = S.SignatureDefT()
        sig.signatureKey, sig.subgraphIndex = "serving_default", 0
        sig.inputs = [_tensor_map(S, n, i) for n, i in inputs]
        sig.outputs = [_tensor_map(S, n, i) for n, i in outputs]
        model = S.ModelT()
        model.version, model.description = 3, "konnx (direct TFLite writer)"
        codes = []
        for (code, version), _ in sorted(self.opcodes.items(), key=lambda kv: kv[1]):
            c = S.OperatorCodeT()
            c.builtinCode, c.deprecatedBuiltinCode, c.version = code, min(code, 127), version
            codes.append(c)
        model.operatorCodes, model.subgraphs, model.buffers = codes, [sub], self.buffers
        model.metadata, model.signatureDefs = self.metadata or None, [sig]
        builder = flatbuffers.Builder(self.size + 64 * len(self.buffers) + (1 << 16))
        builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
        # one copy out of the builder (Output() slices a bytearray: a second copy of every weight)
        return bytes(memoryview(builder.Bytes)[builder.Head():])


def _tensor_map(S, name: str, index: int):
    m = S.TensorMapT()
    m.name, m.tensorIndex = name, int(index)
    return m
