"""NonMaxSuppression and RoiAlign input checks (konnx/ops/detect_checks.py, issue 14): each spec
rule onnxruntime enforces refuses a bad model in the plan with a konnx error naming the node and
what was expected, and the valid neighbour converts and matches onnxruntime; the degenerate
inputs onnxruntime runs (no boxes, NaN regions) give its answer."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from ..util import assert_matches_ort, assert_refused_like_ort, make_model, run_keras, run_ort

F, I64 = np.float32, np.int64


def _model(op, feeds: dict, inits: dict = None, out=np.float32, opset=16, **attrs):
    """One `op` node named 'n' over graph inputs `feeds` then initializers `inits` (both in order)."""
    inits = inits or {}
    node = helper.make_node(op, list(feeds) + list(inits), ["y"], name="n", **attrs)
    ins = [(k, v.dtype, list(v.shape)) for k, v in feeds.items()]
    model = make_model([node], ins, [("y", out, None)], initializers=list(inits.items()), opset=opset)
    return model, dict(feeds)


def _boxes(b, n, seed=0):
    rng = np.random.default_rng(seed)
    lo = rng.random((b, n, 2)).astype(F)
    return np.concatenate([lo, lo + rng.random((b, n, 2)).astype(F)], axis=2)


def _nms(boxes, scores, iou=0.5, max_out=2):
    return _model("NonMaxSuppression", dict(boxes=boxes, scores=scores),
                  dict(m=np.array([max_out], I64), iou=np.array([iou], F)), out=I64, opset=13)


SCORES = np.random.default_rng(1).random((1, 2, 3)).astype(F)

NMS_CASES = {  # bad (boxes, scores), expected words
    "scores_rank": ((_boxes(1, 3), SCORES[:, :, None]), "scores has shape [1, 2, 1, 3]: expected rank 3"),
    "boxes_rank": ((_boxes(1, 3)[0], SCORES), "boxes has shape [3, 4]: expected rank 3"),
    "coordinates": ((np.concatenate([_boxes(1, 3), _boxes(1, 3)[..., :1]], 2), SCORES),
                    "its last axis must hold the 4 coordinates"),
    "batch": ((_boxes(2, 3), SCORES), "different batch sizes"),
    "box_count": ((_boxes(1, 4), SCORES), "different box counts (boxes axis 1, scores axis 2)"),
}


@pytest.mark.parametrize("name", sorted(NMS_CASES))
def test_nms_shapes(name):
    (boxes, scores), expect = NMS_CASES[name]
    assert_refused_like_ort(_nms(boxes, scores), _nms(_boxes(1, 3), SCORES), expect)


@pytest.mark.parametrize("iou", [1.5, -0.25, float("nan")])
def test_nms_iou_threshold_range(iou):
    assert_refused_like_ort(_nms(_boxes(1, 3), SCORES, iou=iou), _nms(_boxes(1, 3), SCORES, iou=1.0),
                            f"iou_threshold={iou}: must be in [0, 1]")


@pytest.mark.parametrize("b,c,n", [(1, 2, 0), (0, 2, 3), (1, 0, 3)])
def test_nms_nothing_to_select_matches_ort(b, c, n):
    """No batch, class or box: onnxruntime selects nothing, a (0, 3) tensor; so does konnx."""
    assert_matches_ort(*_nms(_boxes(b, n), np.random.default_rng(2).random((b, c, n)).astype(F)))


ROIS = np.array([[0, 0, 5, 5], [1, 1, 8, 6], [2, 0, 9, 9]], F)
X = np.random.default_rng(3).standard_normal((2, 3, 10, 10)).astype(F)
ATTRS = dict(output_height=3, output_width=2, sampling_ratio=2)


def _roi(x=X, rois=ROIS, idx=np.array([0, 1, 1], I64), const_idx=False, **attrs):
    a = dict(ATTRS, **attrs)
    if const_idx:
        return _model("RoiAlign", dict(X=x, rois=rois), dict(bi=idx), **a)
    return _model("RoiAlign", dict(X=x, rois=rois, bi=idx), **a)


ROI_CASES = {  # bad model, expected words
    "rois_columns": (_roi(rois=ROIS[:, :3]), "rois has shape [3, 3]: expected (num_rois, 4)"),
    "negative_width": (_roi(output_width=-2), "attribute output_width=-2: must not be negative"),
    "negative_height": (_roi(output_height=-(1 << 31)), "output_height=-2147483648: must not be negative"),
    "negative_ratio": (_roi(sampling_ratio=-1), "attribute sampling_ratio=-1: must not be negative"),
    "mode": (_roi(mode="median"), "attribute mode='median': expected 'avg' or 'max'"),
    "batch_index": (_roi(idx=np.array([0, 2, 1], I64), const_idx=True), "batch_indices hold [2]: each must be in [0, 2)"),
    "budget": (_roi(sampling_ratio=1 << 31), "above konnx's budget"),
}


@pytest.mark.parametrize("name", sorted(ROI_CASES))
def test_roi_align_inputs(name):
    bad, expect = ROI_CASES[name]
    assert_refused_like_ort(bad, _roi(const_idx=name == "batch_index"), expect)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_roi_align_non_finite_region_runs(value):
    """onnxruntime refuses a non-finite region at run time ('All rois values must be finite');
    konnx cannot see data before running, so its model runs: the other regions get onnxruntime's
    values, the bad one finite values (its samples count as outside the image), no crash."""
    import konnx

    rois = ROIS.copy()
    rois[1, 2] = value
    model, feeds = _roi(rois=rois)
    with pytest.raises(Exception, match="finite"):
        run_ort(model, feeds)
    got = run_keras(konnx.convert(model), feeds, model)[0]
    ref = run_ort(*_roi())[0]
    np.testing.assert_allclose(got[[0, 2]], ref[[0, 2]], atol=1e-4)
    assert np.isfinite(got[1]).all()


def test_roi_align_huge_region_matches_ort():
    rois = ROIS.copy()
    rois[1, 2] = 3e38
    assert_matches_ort(*_roi(rois=rois))


@pytest.mark.parametrize("scale", [float("nan"), float("inf")])
def test_roi_align_spatial_scale_finite(scale):
    import konnx

    with pytest.raises(konnx.UnsupportedOpError, match=f"'n'.*spatial_scale={scale}: must be finite"):
        konnx.convert(_roi(spatial_scale=scale)[0])
    assert_matches_ort(*_roi(spatial_scale=-0.5))  # any finite scale is computed


def test_no_regions_matches_ort():
    assert_matches_ort(*_roi(rois=ROIS[:0], idx=np.zeros((0,), I64)))



def test_fixed_input_type_refused_like_ort():
    """A schema input of one fixed type (NonMaxSuppression's boxes are tensor(float), not a type
    parameter) given another: onnxruntime refuses the model when it loads it, konnx too."""
    import konnx

    model, feeds = _nms(_boxes(1, 3).astype(np.float16), SCORES)
    with pytest.raises(konnx.InvalidModelError, match="input 0 'boxes' is FLOAT16, but the op's schema wants tensor\\(float\\)"):
        konnx.convert(model)
    with pytest.raises(Exception, match="tensor\\(float16\\)"):
        run_ort(model, feeds)
