# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Fix ``onnx_torchscript_exporter``: mmdeploy 1.3.1 exports with the
TorchScript exporter where ``torch.onnx.export`` defaults to the dynamo one
(torch >= 2.9).

mmdeploy calls ``torch.onnx.export`` without ``dynamo=``, which then selects
the dynamo exporter. That exporter does not run mmdeploy's function and
symbolic rewrites (NMS, RoIAlign, the post-processing of every head) and
here fails at once with ``No module named 'onnxscript'``. The fix registers
an mmdeploy rewriter of ``torch.onnx.export``, active only inside mmdeploy's
export, that passes ``dynamo=False`` when the caller gave no ``dynamo``.
"""
from ..stack_api import onnx_export_defaults_to_dynamo
from .registry import Fix


def _torchscript_export(*args, **kwargs):
    """mmdeploy's rewrite of ``torch.onnx.export``: the TorchScript exporter
    unless the caller chose one."""
    from mmdeploy.core import FUNCTION_REWRITER
    kwargs.setdefault('dynamo', False)
    return FUNCTION_REWRITER.get_context().origin_func(*args, **kwargs)


def export_onnx_with_torchscript() -> None:
    from mmdeploy.core import FUNCTION_REWRITER
    FUNCTION_REWRITER.register_rewriter('torch.onnx.export')(
        _torchscript_export)


FIX = Fix(
    name='onnx_torchscript_exporter',
    defect='torch.onnx.export defaults to the dynamo exporter, which skips '
    "mmdeploy's rewrites",
    probe=onnx_export_defaults_to_dynamo,
    apply=export_onnx_with_torchscript)
