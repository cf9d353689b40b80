# Copyright (c) mmdet_yolor contributors. All rights reserved.
import subprocess
import sys
import textwrap

import torch
from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.runner import load_checkpoint

from mmdet_yolor import yolorize
from mmdet_yolor.stack_api import tree_leaves

# Outputs of a model on a fixed normalised input, computed in a process that
# cannot import mmdet_yolor.
PLAIN_OUTPUTS = textwrap.dedent('''
    import sys
    sys.modules['mmdet_yolor'] = None  # not installed
    import torch
    from mmengine.config import Config
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    register_all_modules()
    config, checkpoint, out = sys.argv[1:]
    model = MODELS.build(Config.fromfile(config).model).eval()
    state = torch.load(checkpoint, weights_only=True)['state_dict']
    model.load_state_dict(state, strict=True)
    torch.manual_seed(0)
    with torch.no_grad():
        outputs = model(torch.randn(1, 3, 256, 256), mode='tensor')
    torch.save(outputs, out)
''')


def yolor_outputs(cfg, checkpoint):
    model = MODELS.build(cfg.model).eval()
    load_checkpoint(model, checkpoint, map_location='cpu')
    torch.manual_seed(0)
    with torch.no_grad():
        return tree_leaves(model(torch.randn(1, 3, 256, 256), mode='tensor'))


def assert_close(expected, actual):
    assert len(expected) == len(actual) > 0
    for e, a in zip(expected, actual):
        torch.testing.assert_close(a, e, rtol=1e-4, atol=1e-4 * e.abs().max())


def test_foldable_yolor_becomes_a_plain_mmdet_checkpoint(
        tiny_config, run_tool, tmp_path):
    config = tiny_config()
    run_tool(
        'train.py',
        config,
        '--yolor',
        'foldable',
        '--work-dir',
        str(tmp_path / 'yolor'),
        cwd=tmp_path)
    trained = str(tmp_path / 'yolor' / 'epoch_1.pth')
    out = tmp_path / 'fused.pth'
    result = run_tool(
        'deploy/fuse_implicit.py',
        config,
        trained,
        str(out),
        '--yolor',
        'foldable',
        cwd=tmp_path)
    # 5 output convs, conv_cls/conv_reg/conv_centerness (3x3: no ImplicitA)
    assert 'folded 8 of 8 implicit layers' in result.stdout
    assert 'Everything folded' in result.stdout
    assert (tmp_path / 'fused.py').is_file()

    plain = subprocess.run([
        sys.executable, '-c', PLAIN_OUTPUTS,
        str(tmp_path / 'fused.py'),
        str(out),
        str(tmp_path / 'plain.pt')
    ],
                           capture_output=True,
                           text=True)
    assert plain.returncode == 0, plain.stderr
    expected = yolor_outputs(
        yolorize(Config.fromfile(config), foldable=True), trained)
    assert_close(expected, tree_leaves(torch.load(tmp_path / 'plain.pt')))


def test_partial_fold_loads_into_the_yolor_config(tiny_config, run_tool,
                                                  tmp_path):
    config = tiny_config()
    run_tool(
        'train.py',
        config,
        '--yolor',
        '--work-dir',
        str(tmp_path / 'yolor'),
        cwd=tmp_path)
    trained = str(tmp_path / 'yolor' / 'epoch_1.pth')
    out = str(tmp_path / 'fused.pth')
    result = run_tool(
        'deploy/fuse_implicit.py',
        config,
        trained,
        out,
        '--yolor',
        cwd=tmp_path)
    assert 'kept   bbox_head.conv_cls.implicit_m.0: per-level' in \
        result.stdout
    assert f'loads into {config} with --yolor all' in result.stdout
    cfg = yolorize(Config.fromfile(config))
    assert_close(yolor_outputs(cfg, trained), yolor_outputs(cfg, out))
    # the source is named by its file, not by a path of this machine
    meta = torch.load(out, weights_only=True)['meta']['mmdet_yolor']
    assert meta == dict(fused_from='epoch_1.pth', complete=False)
