# Copyright (c) mmdet_yolor contributors. All rights reserved.
import subprocess
import sys
import warnings
from importlib import metadata

import pytest

from mmdet_yolor.version import (TESTED_VERSIONS, UntestedVersionWarning,
                                 check_versions)


def fake_installed(**versions):
    real = dict(mmcv='2.1.0', mmengine='0.10.7', mmdet='3.3.0')
    real.update(versions)

    def installed(package):
        if real[package] is None:
            raise metadata.PackageNotFoundError(package)
        return real[package]

    return installed


def test_installed_stack_is_accepted():
    versions = check_versions()
    assert set(versions) == {'mmcv', 'mmengine', 'mmdet'}


def test_mismatch_names_package_versions_and_fix():
    with pytest.raises(ImportError) as error:
        check_versions(fake_installed(mmcv='2.2.0'))
    message = str(error.value)
    assert 'needs mmcv>=2.0.0rc4,<2.2.0 but mmcv 2.2.0 is installed' in \
        message
    assert 'make install' in message


def test_old_mmdet_is_refused():
    with pytest.raises(
            ImportError,
            match='needs mmdet>=3.0.0,<3.4.0 but '
            'mmdet 2.28.2 is installed'):
        check_versions(fake_installed(mmdet='2.28.2'))


def test_missing_package_is_named():
    with pytest.raises(
            ImportError,
            match='needs mmengine>=0.10.0,<1.0.0, '
            'which is not installed'):
        check_versions(fake_installed(mmengine=None))


def test_import_fails_with_the_message(tmp_path):
    # a fake mmdet 2.x distribution first on the path
    dist = tmp_path / 'mmdet-2.28.2.dist-info'
    dist.mkdir()
    (dist / 'METADATA'
     ).write_text('Metadata-Version: 2.1\nName: mmdet\nVersion: 2.28.2\n')
    result = subprocess.run([sys.executable, '-c', 'import mmdet_yolor'],
                            env={'PYTHONPATH': str(tmp_path)},
                            capture_output=True,
                            text=True)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1] == (
        'ImportError: mmdet_yolor 0.1.0 needs mmdet>=3.0.0,<3.4.0 but mmdet '
        '2.28.2 is installed. Run `make install`, or install a compatible '
        'version (mmcv 2.1.0, mmengine 0.10.4-0.10.7, mmdet 3.2.0-3.3.0 are '
        'tested).')


def test_untested_version_warns_in_one_line():
    with pytest.warns(UntestedVersionWarning) as record:
        versions = check_versions(fake_installed(mmdet='3.1.0'))
    assert versions['mmdet'] == '3.1.0'
    message, = [str(warning.message) for warning in record]
    assert message == ('mmdet_yolor 0.1.0 was tested with mmdet 3.2.0-3.3.0, '
                       'not 3.1.0 (README, "Supported stacks").')


def test_tested_versions_import_without_warning():
    oldest = {name: low for name, (low, _) in TESTED_VERSIONS.items()}
    with warnings.catch_warnings():
        warnings.simplefilter('error', UntestedVersionWarning)
        check_versions(fake_installed(**oldest), torch_has_adafactor=False)


def test_old_mmengine_beside_a_torch_with_adafactor_is_refused():
    with pytest.raises(ImportError) as error:
        check_versions(
            fake_installed(mmengine='0.10.4'), torch_has_adafactor=True)
    message = str(error.value)
    assert '\n' not in message
    assert message.startswith('mmengine 0.10.4 fails to import beside this '
                              'torch')
    assert 'install mmengine>=0.10.6' in message
    # the same mmengine beside a torch without it imports (tested: torch 2.1)
    with warnings.catch_warnings():
        warnings.simplefilter('error', UntestedVersionWarning)
        check_versions(
            fake_installed(mmengine='0.10.4'), torch_has_adafactor=False)
    # an older one too, with a warning
    with pytest.warns(
            UntestedVersionWarning, match='mmengine 0.10.4-0.10.7, not'):
        check_versions(
            fake_installed(mmengine='0.10.3'), torch_has_adafactor=False)
