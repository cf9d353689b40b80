# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""When the stack fixes apply: only where their probes find the defect, not
where disabled, never failing the import (mmdet_yolor.compat.registry)."""
import json
import os
import subprocess
import sys
import textwrap

import pytest

from mmdet_yolor import compat
from mmdet_yolor.compat import registry
from mmdet_yolor.compat.registry import Fix


@pytest.fixture
def fresh_registry(monkeypatch):
    """A registry that has applied nothing yet (the process's own is
    restored afterwards)."""
    monkeypatch.setattr(registry, '_applied', {})
    monkeypatch.setattr(registry, '_settled', set())
    monkeypatch.setattr(registry, '_declared', {})
    monkeypatch.delenv(compat.DISABLE_FIXES_ENV, raising=False)
    return registry


def toy_fix(name, has_defect, applied, **kwargs):
    return Fix(
        name=name,
        defect=f'{name} is broken',
        probe=lambda: has_defect,
        apply=lambda: applied.append(name),
        **kwargs)


def test_a_fix_applies_only_where_its_probe_finds_the_defect(fresh_registry):
    applied = []
    fixes = [toy_fix('needed', True, applied), toy_fix('not', False, applied)]
    assert fresh_registry.apply_fixes(fixes) == ['needed']
    assert applied == ['needed']
    assert fresh_registry.applied_fixes() == ['needed']
    assert fresh_registry.apply_fixes(fixes) == []  # once a process
    assert applied == ['needed']
    assert fresh_registry.applied_fixes_summary() == (
        'mmdet_yolor applied stack fixes: needed (needed is broken)')


def test_disabled_fixes_are_not_applied(fresh_registry, monkeypatch):
    applied = []
    monkeypatch.setenv(compat.DISABLE_FIXES_ENV, ' a , b')
    fixes = [toy_fix(name, True, applied) for name in 'abc']
    assert fresh_registry.apply_fixes(fixes) == ['c']
    assert applied == ['c']
    monkeypatch.setenv(compat.DISABLE_FIXES_ENV, 'all')
    assert fresh_registry.is_disabled('c')


def test_unknown_fix_names_are_refused(monkeypatch):
    monkeypatch.setenv(compat.DISABLE_FIXES_ENV, 'resume,atomic')
    with pytest.raises(ValueError) as error:
        compat.apply_import_fixes()
    message = str(error.value)
    assert "names unknown fixes ['atomic']" in message
    # every fix can be named, the per-run and the deploy fixes included
    for name in ('cpu_distributed', 'onnx_cast_long', 'multi_apply'):
        assert repr(name) in message


def test_a_missing_private_attribute_skips_the_fix_with_one_warning(
        fresh_registry):
    applied = []
    fix = toy_fix(
        'renamed',
        True,
        applied,
        private_attributes=('mmengine.runner.Runner._no_such_method', ))
    with pytest.warns(UserWarning) as warnings:
        assert fresh_registry.apply_fixes([fix]) == []
    assert applied == [] and len(warnings) == 1
    assert str(warnings[0].message) == (
        'mmdet_yolor: stack fix renamed skipped: this stack has no '
        'mmengine.runner.Runner._no_such_method (the fix repairs: renamed '
        'is broken)')
    present = toy_fix(
        'present',
        True,
        applied,
        private_attributes=('mmengine.runner.Runner._maybe_compile',
                            'mmdet.models.utils.misc.multi_apply'))
    assert fresh_registry.apply_fixes([present]) == ['present']


def test_a_probe_that_needs_a_module_runs_when_it_is_imported(
        fresh_registry, tmp_path, monkeypatch):
    (tmp_path / 'late_module.py').write_text('VALUE = 1\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    probed, applied = [], []
    fix = Fix(
        name='late',
        defect='late is broken',
        probe=lambda: probed.append(sys.modules['late_module'].VALUE) or 1,
        apply=lambda: applied.append('late'),
        probe_after_import='late_module')
    try:
        assert fresh_registry.apply_fixes([fix]) == []
        assert probed == [] and applied == []
        import late_module  # noqa: F401
        assert probed == [1] and applied == ['late']
        assert fresh_registry.applied_fixes() == ['late']
        assert 'late_module' not in registry._post_import.callbacks
    finally:
        sys.modules.pop('late_module', None)


def test_a_fix_confirmed_at_first_use_is_recorded_by_its_check(fresh_registry):
    applied = []
    fix = toy_fix('deferred', True, applied, confirmed_at_first_use=True)
    assert fresh_registry.apply_fixes([fix]) == []
    assert applied == ['deferred'] and fresh_registry.applied_fixes() == []
    # applied once: probing it again would apply it again
    assert fresh_registry.apply_fixes([fix]) == []
    assert applied == ['deferred']
    fresh_registry.record_applied('deferred', 'it was broken')
    assert fresh_registry.applied_fixes() == ['deferred']


def test_importing_again_wraps_nothing_twice():
    from mmengine.runner import Runner
    assert compat.apply_import_fixes() == []
    # the compile fix's wrapper wraps mmengine's own method, once
    assert not hasattr(Runner._maybe_compile.__wrapped__, '__wrapped__')


# What each fix changes, observed in a fresh process; the probes run on the
# stock stack (every fix disabled) in another.
OBSERVE = textwrap.dedent("""
    import copyreg, json, os
    from mmengine.fileio.backends import registry_utils
    from mmengine.logging import HistoryBuffer
    from mmengine.runner import Runner
    from mmengine.runner.checkpoint import CheckpointLoader
    from mmdet.models.dense_heads import SSDHead
    from mmdet.models.roi_heads.mask_heads import fcn_mask_head
    import mmdet_yolor
    from mmdet_yolor import compat
    import torch._dynamo  # runs the probe of multi_apply
    from mmdet.models.utils.misc import multi_apply
    if os.environ.get('PROBE'):
        print(json.dumps({fix.name: bool(fix.probe())
                          for fix in compat.IMPORT_FIXES}))
    else:
        print(json.dumps(dict(
            applied=compat.applied_fixes(),
            resume=CheckpointLoader._schemes[''].__module__.startswith(
                'mmdet_yolor'),
            history_buffer_pickle=HistoryBuffer in copyreg.dispatch_table,
            atomic_checkpoints=registry_utils.backends['local'].__module__
            .startswith('mmdet_yolor'),
            ssd_predict=hasattr(SSDHead, 'loss_cls'),
            cpu_mask_paste=hasattr(fcn_mask_head._do_paste_mask,
                                   '__wrapped__'),
            compile=hasattr(Runner._maybe_compile, '__wrapped__'),
            multi_apply=multi_apply.__code__.co_filename ==
            compat.multi_apply.__file__)))
""")


def observe(disabled='', **env):
    result = subprocess.run([sys.executable, '-c', OBSERVE],
                            capture_output=True,
                            text=True,
                            env=dict(os.environ,
                                     **{compat.DISABLE_FIXES_ENV:
                                        disabled}, **env))
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().split('\n')[-1])


@pytest.fixture(scope='module')
def stock_defects():
    """Fix name -> whether this stack has its defect (probed with every fix
    disabled)."""
    return observe('all', PROBE='1')


@pytest.mark.parametrize('disabled', [
    '', 'all', 'resume', 'ssd_predict,'
    'compile', 'multi_apply', 'cpu_mask_paste'
])
def test_what_importing_applies(disabled, stock_defects):
    observed = observe(disabled)
    off = set(disabled.split(',')) if disabled != 'all' else set(stock_defects)
    expected = [
        fix.name for fix in compat.IMPORT_FIXES
        if stock_defects[fix.name] and fix.name not in off
    ]
    # compile is confirmed by the first compile=True run, not at import
    assert observed.pop('applied') == [
        name for name in expected if name != 'compile'
    ]
    assert observed == {name: name in expected for name in stock_defects}


def test_this_process_applied_what_its_probes_found(stock_defects):
    import torch._dynamo  # noqa: F401  (runs the probe of multi_apply)
    applied = compat.applied_fixes()
    for name, has_defect in stock_defects.items():
        if name != 'compile':
            assert (name in applied) == has_defect, name


def test_importing_the_plugin_imports_no_dynamo_beyond_the_stack():
    code = textwrap.dedent("""
        import sys
        import mmdet.models, mmengine.runner
        stock = 'torch._dynamo' in sys.modules
        import mmdet_yolor
        print(stock, 'torch._dynamo' in sys.modules)
    """)
    result = subprocess.run([sys.executable, '-c', code],
                            capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr
    stock, plugin = result.stdout.split()
    assert plugin == stock


def test_the_summary_names_the_fixes_and_why(monkeypatch):
    monkeypatch.setattr(registry, '_applied', {})
    assert registry.applied_fixes_summary() == (
        'mmdet_yolor applied no stack fix: this stack has none of the '
        'defects it repairs')
