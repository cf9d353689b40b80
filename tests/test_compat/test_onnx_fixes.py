# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""The mmdeploy fixes ``onnx_torchscript_exporter`` and ``onnx_cast_long``."""
import os
import os.path as osp
import subprocess
import sys
import textwrap

import onnx
import pytest
import torch
from mmcv.ops import RoIAlign
from torch import nn

from mmdet_yolor import compat
from mmdet_yolor.compat.onnx_cast_long import (_cast_long, define_cast_long,
                                               lacks_cast_long)
from mmdet_yolor.compat.onnx_exporter import _torchscript_export
from mmdet_yolor.stack_api import onnx_export_defaults_to_dynamo


def run_python(code, **env):
    return subprocess.run(
        [sys.executable, '-c', textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=dict(os.environ, **env))


def test_importing_the_plugin_imports_no_deploy_package():
    # beyond what the stack imports anyway: torch 2.1's dynamo imports onnx
    # and onnxruntime where installed, and mmengine imports dynamo there
    result = run_python('''
        import sys
        import mmdet.models, mmengine.runner
        def deploy_packages():
            return {name for name in ('mmdeploy', 'onnx', 'onnxruntime')
                    if name in sys.modules}
        stock = deploy_packages()
        import mmdet_yolor, mmdet_yolor.deploy
        print(sorted(deploy_packages() - stock), 'mmdeploy' in sys.modules)
    ''')
    assert result.returncode == 0, result.stderr
    assert result.stdout.split('\n')[-2] == '[] False'


class _RoIs(nn.Module):
    """RoIAlign of fixed boxes: what mmdeploy's RoIAlign symbolic exports."""

    def __init__(self):
        super().__init__()
        self.roi_align = RoIAlign((2, 2), spatial_scale=0.5)
        self.register_buffer('rois', torch.tensor([[0., 1., 1., 6., 6.]]))

    def forward(self, x):
        return self.roi_align(x, self.rois)


def mmdeploy_export(model, path, opset=11):
    from mmdeploy.apis.onnx import export
    from mmengine.config import Config
    deploy_cfg = Config(
        dict(
            onnx_config=dict(type='onnx', opset_version=opset),
            backend_config=dict(type='onnxruntime'),
            codebase_config=dict(type='mmdet', task='ObjectDetection')))
    export(
        model.eval(),
        torch.rand(1, 2, 8, 8),
        output_path_prefix=path[:-len('.onnx')],
        backend='onnxruntime',
        context_info=dict(deploy_cfg=deploy_cfg),
        input_names=['input'],
        output_names=['output'],
        opset_version=opset)


def test_mmdeploy_exports_rewrites_after_the_fixes(tmp_path):
    compat.apply_deploy_fixes()
    applied = compat.applied_fixes()
    assert [fix.name for fix in compat.DEPLOY_FIXES
            if fix.name in applied] == [
                fix.name for fix in compat.DEPLOY_FIXES
                if torch_has_the_defect(fix.name)
            ]
    path = str(tmp_path / 'roi_align.onnx')
    # mmdeploy's RoIAlign symbolic: it needs both fixes (without the
    # first, the dynamo exporter ignores mmdeploy's symbolics)
    mmdeploy_export(_RoIs(), path)
    ops = [node.op_type for node in onnx.load(path).graph.node]
    assert ops == ['RoiAlign']


def test_the_fixes_apply_once():
    compat.apply_deploy_fixes()
    assert compat.apply_deploy_fixes() == []


def test_cast_long_is_torchs_old_symbolic(monkeypatch):
    from torch.onnx import symbolic_opset9

    # as on a torch without it (torch's own is restored afterwards)
    monkeypatch.delattr(symbolic_opset9, '_cast_Long', raising=False)
    assert lacks_cast_long()
    define_cast_long()
    from torch.onnx.symbolic_opset9 import _cast_Long
    assert _cast_Long is _cast_long and not lacks_cast_long()
    graph = torch._C.Graph()
    value = graph.addInput()

    class Context:

        def op(self, name, *inputs, **attributes):
            return name, inputs, attributes

    assert _cast_Long(
        Context(), value,
        False) == ('Cast', (value, ),
                   dict(to_i=torch.onnx.TensorProtoDataType.INT64))


def test_an_explicit_exporter_choice_is_kept(monkeypatch):
    from mmdeploy.core import FUNCTION_REWRITER
    calls = []

    class Context:
        origin_func = staticmethod(lambda *a, **k: calls.append(k))

    monkeypatch.setattr(FUNCTION_REWRITER, 'get_context', lambda: Context)
    _torchscript_export('model', dynamo=True)
    _torchscript_export('model')
    assert calls == [dict(dynamo=True), dict(dynamo=False)]


# what the stock stack does without each fix, where its torch has the defect
STOCK_FAILURES = {
    'onnx_torchscript_exporter':
    "ModuleNotFoundError: No module named 'onnxscript'",
    'onnx_cast_long':
    "ImportError: cannot import name '_cast_Long' from "
    "'torch.onnx.symbolic_opset9'",
}


def torch_has_the_defect(fix: str) -> bool:
    """Whether this torch breaks stock mmdeploy as ``fix`` describes: its
    ``torch.onnx.export`` defaults to the dynamo exporter (>= 2.9), or it
    lacks ``symbolic_opset9._cast_Long`` (> 2.8)."""
    if fix == 'onnx_torchscript_exporter':
        return onnx_export_defaults_to_dynamo()
    from torch.onnx import symbolic_opset9

    # this process may have applied the fix already
    cast_long = getattr(symbolic_opset9, '_cast_Long', None)
    return cast_long is None or cast_long is _cast_long


@pytest.mark.parametrize('fix', STOCK_FAILURES)
def test_a_disabled_fix_keeps_the_stock_behaviour(fix, tmp_path):
    result = run_python(
        f'''
        import sys
        sys.path.insert(0, {osp.dirname(__file__)!r})
        from mmdet_yolor import compat
        from test_onnx_fixes import _RoIs, mmdeploy_export
        print(compat.apply_deploy_fixes())
        mmdeploy_export(_RoIs(), {str(tmp_path / 'model.onnx')!r})
    ''',
        MMDET_YOLOR_DISABLE_FIXES=fix)
    assert fix not in result.stdout
    if torch_has_the_defect(fix):
        assert result.returncode == 1
        assert STOCK_FAILURES[fix] in result.stderr
    else:  # an older torch: stock mmdeploy exports, and so it still does
        assert result.returncode == 0, result.stderr
