# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""The plugin is found through `custom_imports` in a config loaded by
mmengine, in a fresh interpreter (this process imported it already)."""
import subprocess
import sys
import textwrap

BUILD = textwrap.dedent('''
    import sys
    from mmengine.config import Config
    from mmdet.registry import MODELS
    cfg = Config.fromfile(sys.argv[1])
    neck = MODELS.build(cfg.model.neck)
    print(type(neck).__name__, len(neck.implicit_alignment))
''')

CONFIG = textwrap.dedent('''
    _base_ = 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'
    {imports}
    model = dict(neck=dict(_delete_=True, type='YOLORNeck',
                           neck=_base_.model.neck))
''')


def build_in_fresh_interpreter(tmp_path, imports):
    config = tmp_path / 'config.py'
    config.write_text(CONFIG.format(imports=imports))
    return subprocess.run(
        [sys.executable, '-c', BUILD, str(config)],
        capture_output=True,
        text=True)


def test_custom_imports_registers_the_plugin(tmp_path):
    result = build_in_fresh_interpreter(
        tmp_path, "custom_imports = dict(imports=['mmdet_yolor'], "
        'allow_failed_imports=False)')
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == 'YOLORFPN 5'


def test_without_custom_imports_the_wrapper_is_unknown(tmp_path):
    result = build_in_fresh_interpreter(tmp_path, imports='')
    assert result.returncode != 0
    assert 'YOLORNeck is not in the mmdet::model registry' in result.stderr
