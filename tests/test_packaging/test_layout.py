# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Tests mirror the package: ``mmdet_yolor/<pkg>/<mod>.py`` is tested by
``tests/test_<pkg>/test_<mod>.py``, so that a module's tests are found
where one looks and a module without tests shows."""
import os
import os.path as osp

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PACKAGE = osp.join(REPO, 'mmdet_yolor')
TESTS = osp.join(REPO, 'tests')

# Modules tested under another name: module -> (its tests, why).
ELSEWHERE = {
    # the two mmdeploy fixes are checked on the same ONNX exports, with and
    # without each fix, in one file
    'compat/onnx_cast_long.py':
    ('test_compat/test_onnx_fixes.py', 'shares the exports of the fixes'),
    'compat/onnx_exporter.py':
    ('test_compat/test_onnx_fixes.py', 'shares the exports of the fixes'),
    # the demo's logic runs as tools/demo.py does, beside the other tools
    'demo.py': ('test_tools/test_demo.py', 'tested through tools/demo.py'),
}


def package_modules():
    """Paths relative to the package of its public modules: ``__init__.py``
    and ``_``-prefixed modules and packages left out (``__main__.py``
    too); only directories that are packages are walked."""
    modules = []
    for root, dirs, files in os.walk(PACKAGE):
        dirs[:] = sorted(
            d for d in dirs if not d.startswith(('_', '.'))
            and osp.isfile(osp.join(root, d, '__init__.py')))
        for name in sorted(files):
            if name.endswith('.py') and not name.startswith('_'):
                modules.append(
                    osp.relpath(osp.join(root, name),
                                PACKAGE).replace(os.sep, '/'))
    return modules


def mirror(module):
    """``models/heads/levels.py`` -> ``test_models/test_heads/
    test_levels.py``."""
    return '/'.join(f'test_{part}' for part in module.split('/'))


def import_name(module):
    """``compat/onnx_exporter.py`` -> ``mmdet_yolor.compat.onnx_exporter``."""
    return 'mmdet_yolor.' + module[:-len('.py')].replace('/', '.')


def test_the_mirror_name_prefixes_every_part():
    assert mirror('checks.py') == 'test_checks.py'
    assert mirror('models/heads/levels.py') == \
        'test_models/test_heads/test_levels.py'
    assert mirror('analysis/config_check/row.py') == \
        'test_analysis/test_config_check/test_row.py'


def test_the_walk_finds_nested_modules_and_skips_private_ones():
    modules = package_modules()
    assert 'analysis/config_check/row.py' in modules
    assert 'checks.py' in modules
    assert not any(m.rsplit('/', 1)[-1].startswith('_')
                   for m in modules), modules


def test_every_module_has_its_mirror_test_file():
    missing = [
        f'mmdet_yolor/{module} -> tests/{mirror(module)}'
        for module in package_modules() if module not in ELSEWHERE
        and not osp.isfile(osp.join(TESTS, mirror(module)))
    ]
    assert not missing, 'modules without their mirror test file:\n' + \
        '\n'.join(missing)


def test_every_module_tested_elsewhere_is_so_still():
    # a stale entry would hide a module that lost its tests
    modules = package_modules()
    stale = [
        f'{module}: {tests} ({why})'
        for module, (tests, why) in ELSEWHERE.items()
        if module not in modules or not osp.isfile(osp.join(TESTS, tests))
        or osp.isfile(osp.join(TESTS, mirror(module)))
        or import_name(module) not in open(osp.join(TESTS, tests)).read()
    ]
    assert not stale, 'stale entries of ELSEWHERE:\n' + '\n'.join(stale)
