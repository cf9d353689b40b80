# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""tools/analysis/check_config.py on a user's config outside the
repository: a small FCOS inheriting the repo's demo config by its path."""
import json
import os.path as osp

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO = osp.join(REPO, 'configs', 'demo')


def check(run_tool, tmp_path, text, *args):
    """Run the tool on a config of ``text`` in ``tmp_path``, with generated
    inputs small enough for seconds."""
    config = tmp_path / 'my_config.py'
    config.write_text(text)
    return run_tool(
        'analysis/check_config.py',
        str(config),
        '--image-size',
        '96',
        '--steps',
        '1',
        *args,
        cwd=tmp_path,
        env=dict(PYTHONPATH=REPO),
        check=False)


def test_check_config_prints_sites_folds_and_checks(run_tool, tmp_path):
    base = osp.join(DEMO, 'fcos_r18_fpn_6e_shapes.py')
    result = check(run_tool, tmp_path, f'_base_ = {base!r}\n', '--json',
                   'check.json')
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == (
        f'checking {tmp_path}/my_config.py with --yolor all: the baseline '
        'and its YOLOR form train 1 step on 2 generated images (72x96, '
        '96x72 px) and predict, then the YOLOR model is folded')
    phases = [line.split('] ', 1)[1] for line in lines if line[0] == '[']
    assert phases == [
        'building the baseline', 'building the YOLOR model',
        'training the baseline (1 step)', 'predicting with the baseline',
        'training the YOLOR model (1 step)', 'predicting with the YOLOR model',
        'folding the implicits and predicting again'
    ]
    assert 'feature alignment: neck' in lines
    assert '  bbox_head: conv_cls, conv_reg, conv_centerness' in lines
    assert 'folded 3 of 35 implicit layers' in lines
    assert '  kept   bbox_head.conv_cls.implicit_a.0: per-level implicits ' \
        'on a layer shared by every level (train with ' \
        'share_across_levels=True to fold them)' in lines
    checks = lines[lines.index('checks:') + 1:][:5]
    assert [line[:6] for line in checks] == ['  pass'] * 5, checks
    assert [line[8:].split(':')[0] for line in checks] == [
        'losses finite', 'every implicit called',
        'gradients reach the implicits', 'folding keeps the predictions',
        'folding keeps the raw outputs'
    ]
    assert lines[-1].startswith('ok (covered, ')
    saved = json.loads((tmp_path / 'check.json').read_text())
    assert saved['row']['status'] == 'ok' and saved['yolor'] == 'all'
    assert len(saved['fold_report']['sites']) == 35


def test_a_config_not_covered_exits_with_the_reason(run_tool, tmp_path):
    result = check(run_tool, tmp_path, "model = dict(type='ByteTrack')\n")
    assert result.returncode == 1
    assert result.stdout.splitlines()[-1] == (
        'n/a (not covered, 0s): not an image detector: ByteTrack is a '
        'tracking/video model')


def test_a_yolor_config_is_checked_through_its_baseline(run_tool, tmp_path):
    base = osp.join(DEMO, 'fcos-yolor_r18_fpn_6e_shapes.py')
    result = check(run_tool, tmp_path, f'_base_ = {base!r}\n')
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[0] == (
        f'{tmp_path}/my_config.py is in YOLOR form: checking its baseline '
        '(unyolorize) with --yolor all')
    assert 'feature alignment: neck' in result.stdout
