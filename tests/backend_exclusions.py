"""The ONNX backend test suite (onnx.backend.test) as konnx runs it: which cases are eligible
and which eligible cases konnx does not pass, each with its reason. This is the one place those
decisions live; tests/test_backend_suite.py, docs/operators.md (tools/opsdoc.py) and the README
read it. It is test bookkeeping, not part of the installed package.

Eligible: node cases whose graph, initializers, attributes and data hold only plain tensors
(bool, 8-64 bit integers, float16/bfloat16/float32/float64) in the default ONNX domain, plus
the pytorch-converted, pytorch-operator, simple and light (``real``) model cases that pass the
same test. Ineligible cases are skipped with the type or domain that rules them out.

    python -m tests.backend_exclusions      # prints the score the README quotes
"""
from __future__ import annotations

import os
import warnings
from collections import Counter
from typing import Iterable, Optional

import numpy as np
import onnx
from onnx import AttributeProto
from onnx import TensorProto as T

PLAIN = {T.FLOAT, T.DOUBLE, T.FLOAT16, T.BFLOAT16, T.INT8, T.INT16, T.INT32, T.INT64,
         T.UINT8, T.UINT16, T.UINT32, T.UINT64, T.BOOL}
_PLAIN_NP = {"float32", "float64", "float16", "bfloat16", "int8", "int16", "int32", "int64",
             "uint8", "uint16", "uint32", "uint64", "bool"}
_TYPE_ATTRS = ("to", "output_datatype", "dtype", "output_dtype", "saturate_to")

# reason -> case names (the suite's names without the device suffix). Every eligible case that
# is not listed here must pass; every listed one must fail (strict xfail), so a fix shows up.
EXCLUDED: dict[str, list[str]] = {
    # Random ops: the expected output is one draw of a random generator; nothing to compare.
    "random output (Bernoulli, RandomUniformLike, Dropout with training_mode=True)": [
        "test_bernoulli", "test_bernoulli_double", "test_bernoulli_seed", "test_bernoulli_expanded",
        "test_bernoulli_double_expanded", "test_bernoulli_seed_expanded", "test_training_dropout",
        "test_training_dropout_default", "test_training_dropout_default_mask", "test_training_dropout_mask",
    ],
    # No BitCast converter: reinterpreting bits needs keras.ops.view, which Keras has only from
    # 3.12 on (konnx supports keras >= 3.8); its arithmetic cannot express it.
    "BitCast: no converter (keras.ops.view, bit reinterpretation, exists only from Keras 3.12)": [
        "test_bitcast_2d_float32_to_int32", "test_bitcast_bool_to_uint8", "test_bitcast_float32_to_int32",
        "test_bitcast_float64_to_int64", "test_bitcast_int32_to_float32", "test_bitcast_int64_to_float64",
        "test_bitcast_int8_to_uint8", "test_bitcast_scalar_float32_to_int32", "test_bitcast_uint16_to_int16",
        "test_bitcast_uint32_to_int32",
    ],
    # Decoding JPEG/PNG/... bytes needs image codecs; keras.ops has none.
    "ImageDecoder: keras.ops has no image codecs": [
        "test_image_decoder_decode_bmp_rgb", "test_image_decoder_decode_jpeg2k_rgb",
        "test_image_decoder_decode_jpeg_bgr", "test_image_decoder_decode_jpeg_grayscale",
        "test_image_decoder_decode_jpeg_rgb", "test_image_decoder_decode_png_rgb",
        "test_image_decoder_decode_pnm_rgb", "test_image_decoder_decode_tiff_rgb",
        "test_image_decoder_decode_webp_rgb",
    ],
    # A keras.Model needs at least one input tensor; these graphs have none.
    "the graph has no input (a Keras model needs one)": [
        "test_constant", "test_optional_has_element_empty_no_input_name_optional_input",
        "test_optional_has_element_empty_no_input_name_tensor_input",
        "test_optional_has_element_empty_no_input_optional_input",
        "test_optional_has_element_empty_no_input_tensor_input",
    ],
    # Its only inputs are scalars that fix the output shape: bound, they leave no input; not
    # bound, the output shape is a run-time value.
    "MelWeightMatrix: only scalar inputs, which fix the output shape": ["test_melweightmatrix"],
    # konnx inlines If on a constant condition and unrolls Loop/Scan with a constant trip
    # count; a condition or trip count computed from the data at run time needs real control
    # flow, which a Keras functional graph does not have.
    "control flow decided at run time (If on a run-time condition, Loop with a run-time trip count)": [
        "test_if", "test_range_bfloat16_type_positive_delta_expanded",
        "test_range_float16_type_positive_delta_expanded", "test_range_float_type_positive_delta_expanded",
        "test_range_int32_type_negative_delta_expanded",
    ],
    # The expanded AffineGrid reads its `size` input inside If branches; konnx binds a shape
    # input to its value only when no subgraph reads it, so the branch conditions stay run-time.
    "expanded AffineGrid: If branches read the run-time size input": [
        "test_affine_grid_2d_align_corners_expanded", "test_affine_grid_2d_expanded",
        "test_affine_grid_3d_align_corners_expanded",
    ],
    # Not-1 models: konnx reads opset 6 and later (legacy broadcast semantics from 6 on).
    "opset 1 model: konnx supports opset >= 6": ["test_not_2d", "test_not_3d", "test_not_4d"],
    # Scan-8 has a batch axis and a sequence_lens input; konnx unrolls Scan from opset 9 on.
    "Scan-8 (batched signature with sequence_lens)": ["test_scan_sum"],
    # konnx converts inference graphs; tests/ops/test_norm.py requires this refusal.
    "BatchNormalization training_mode=1 is refused (inference graphs only)": [
        "test_batchnorm_epsilon_training_mode", "test_batchnorm_example_training_mode",
    ],
    # onnxruntime (konnx's oracle) maps align_corners with the integer output length; the ONNX
    # reference with the unrounded in*scale length. konnx matches onnxruntime.
    "Resize align_corners with a fractional scaled length: onnxruntime and the ONNX reference "
    "disagree, konnx follows onnxruntime": [
        "test_resize_downsample_scales_cubic_align_corners", "test_resize_downsample_scales_linear_align_corners",
    ],
}
# (the float16 expanded graphs and DFT inverse cases whose stored outputs carry rounding the
# suite's tolerance cannot absorb are checked at a justified tolerance instead: see _ROUNDING in
# tests/test_backend_suite.py)

# the regression floor the test suite holds: node cases that pass (raise it when it improves)
NODE_PASS_FLOOR = 1581


def excluded() -> dict[str, str]:
    """case name -> reason."""
    return {name: reason for reason, names in EXCLUDED.items() for name in names}


# ----------------------------------------------------------------------------- eligibility
def _type_reason(tp: onnx.TypeProto) -> Optional[str]:
    kind = tp.WhichOneof("value")
    if kind == "tensor_type":
        et = tp.tensor_type.elem_type
        return T.DataType.Name(et) if et and et not in PLAIN else None
    if kind is None:
        return None
    return kind.replace("_type", "")  # sequence, optional, map, sparse_tensor


def _attr_reason(node: onnx.NodeProto) -> Optional[str]:
    for a in node.attribute:
        if a.type == AttributeProto.TENSOR and a.t.data_type not in PLAIN:
            return T.DataType.Name(a.t.data_type)
        if a.type in (AttributeProto.STRING, AttributeProto.STRINGS) and node.op_type == "Constant":
            return "STRING"
        if a.type in (AttributeProto.SPARSE_TENSOR, AttributeProto.SPARSE_TENSORS):
            return "sparse_tensor"
        if a.name in _TYPE_ATTRS and a.type == AttributeProto.INT and a.i and a.i not in PLAIN:
            return T.DataType.Name(a.i)
        if a.type == AttributeProto.TYPE_PROTO:
            r = _type_reason(a.tp)
            if r:
                return r
        for g in ([a.g] if a.type == AttributeProto.GRAPH else list(a.graphs)):
            r = _graph_reason(g)
            if r:
                return r
    return None


def _graph_reason(g: onnx.GraphProto) -> Optional[str]:
    for vi in list(g.input) + list(g.output) + list(g.value_info):
        r = _type_reason(vi.type)
        if r:
            return r
    for init in g.initializer:
        if init.data_type not in PLAIN:
            return T.DataType.Name(init.data_type)
    if len(g.sparse_initializer):
        return "sparse_tensor"
    for n in g.node:
        if n.domain not in ("", "ai.onnx"):
            return f"domain {n.domain}"
        r = _attr_reason(n)
        if r:
            return r
    return None


def _value_reason(values: Iterable) -> Optional[str]:
    for a in values:
        if isinstance(a, onnx.TensorProto):
            a = onnx.numpy_helper.to_array(a)
        if isinstance(a, np.generic):
            a = np.asarray(a)
        if not isinstance(a, np.ndarray):
            return "sequence/optional value"
        if a.dtype.name not in _PLAIN_NP:
            return "STRING" if a.dtype == object or a.dtype.kind in "SU" else a.dtype.name
    return None


def ineligible_reason(model: onnx.ModelProto, data_sets=None) -> Optional[str]:
    """Why a case is outside the plain-tensor, default-domain scope, or None when it is in."""
    for imp in model.opset_import:
        if imp.domain not in ("", "ai.onnx"):
            return f"domain {imp.domain}"
    r = _graph_reason(model.graph)
    if r:
        return r
    for ins, outs in data_sets or []:
        r = _value_reason(list(ins) + list(outs))
        if r:
            return r
    return None


def model_case_proto(case) -> Optional[onnx.ModelProto]:
    """The model of a data-directory case (simple, pytorch-*, light), or None if not stored."""
    if case.model_dir:
        path = os.path.join(case.model_dir, "model.onnx")
    elif case.url and case.url.startswith("onnx/backend/test/data/light/"):
        path = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light",
                            os.path.basename(case.url))
    else:
        return None
    return onnx.load(path, load_external_data=False) if os.path.exists(path) else None


KINDS = ("node", "pytorch-converted", "pytorch-operator", "simple", "real")


def collect() -> list[tuple[str, str, Optional[str]]]:
    """Every case of the suite konnx runs: (kind, name, ineligible reason or None)."""
    from onnx.backend.test.loader import load_model_tests

    out = []
    for kind in KINDS:
        with warnings.catch_warnings():  # the node case generators warn about overflow and log(0)
            warnings.simplefilter("ignore")
            cases = load_model_tests(kind=kind)
        for case in cases:
            if kind == "node":
                why = ineligible_reason(case.model, case.data_sets)
            else:
                proto = model_case_proto(case)
                if proto is None:
                    why = "model not shipped with the onnx wheel"
                else:  # intermediate values have declared types only after inference
                    why = ineligible_reason(proto) or ineligible_reason(_inferred(proto))
            out.append((kind, case.name, why))
    return out


def _inferred(proto: onnx.ModelProto) -> onnx.ModelProto:
    try:
        return onnx.shape_inference.infer_shapes(proto)
    except (onnx.shape_inference.InferenceError, onnx.checker.ValidationError):
        return proto


def score(cases=None) -> dict:
    """Eligible / passing counts per kind (passing = eligible and not in EXCLUDED)."""
    cases = collect() if cases is None else cases
    skip = excluded()
    result = {}
    for kind in KINDS:
        mine = [(n, w) for k, n, w in cases if k == kind]
        eligible = [n for n, w in mine if w is None]
        result[kind] = {"total": len(mine), "eligible": len(eligible),
                        "passed": sum(1 for n in eligible if n not in skip)}
    return result


def ineligible_summary(cases=None) -> Counter:
    cases = collect() if cases is None else cases
    return Counter(w for _, _, w in cases if w is not None)


def main() -> None:
    cases = collect()
    s = score(cases)
    for kind, c in s.items():
        print(f"{kind:18s} {c['passed']:5d} / {c['eligible']:5d} eligible pass  ({c['total']} cases)")
    print("not eligible:", dict(ineligible_summary(cases).most_common()))


if __name__ == "__main__":
    main()
