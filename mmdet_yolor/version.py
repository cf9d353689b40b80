# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Version of mmdet_yolor and the OpenMMLab versions it runs on."""
import warnings
from importlib import metadata
from typing import Callable, Dict, Optional

from packaging.version import Version

__version__ = '0.1.0'

# Half-open ranges [minimum, maximum) of the OpenMMLab stack that import:
# mmdet 3.3.0 itself refuses mmcv >= 2.2.0; the compat fixes target
# mmengine 0.10. Outside them importing mmdet_yolor fails.
REQUIRED_VERSIONS = {
    'mmcv': ('2.0.0rc4', '2.2.0'),
    'mmengine': ('0.10.0', '1.0.0'),
    'mmdet': ('3.0.0', '3.4.0'),
}
# Closed ranges [oldest, newest] that the supported-stack matrix ran
# (README, "Supported stacks"); a version inside REQUIRED_VERSIONS but not
# here imports with a one-line warning.
TESTED_VERSIONS = {
    'mmcv': ('2.1.0', '2.1.0'),
    'mmengine': ('0.10.4', '0.10.7'),
    'mmdet': ('3.2.0', '3.3.0'),
}
# mmengine < 0.10.6 registers torch's optimizers and an ``Adafactor`` of its
# own, and fails at import ("Adafactor is already registered") once torch
# has ``torch.optim.Adafactor`` (torch >= 2.5).
MMENGINE_WITH_ADAFACTOR = '0.10.6'


def _tested_range(package: str) -> str:
    oldest, newest = TESTED_VERSIONS[package]
    return oldest if oldest == newest else f'{oldest}-{newest}'


def _tested() -> str:
    return ', '.join(f'{package} {_tested_range(package)}'
                     for package in TESTED_VERSIONS)


class UntestedVersionWarning(UserWarning):
    """An OpenMMLab package of a version the matrix did not run."""


def check_versions(
        installed: Optional[Callable[[str], str]] = None,
        torch_has_adafactor: Optional[bool] = None) -> Dict[str, str]:
    """Check that the installed mmcv, mmengine and mmdet fit
    :data:`REQUIRED_VERSIONS`, without importing them; warn in one line
    about each outside :data:`TESTED_VERSIONS`.

    Args:
        installed (callable, optional): Maps a distribution name to its
            installed version; raises ``PackageNotFoundError`` if absent.
            Defaults to :func:`importlib.metadata.version`.
        torch_has_adafactor (bool, optional): Whether torch has
            ``torch.optim.Adafactor``; found out when not given.

    Returns:
        dict: The installed version of each package.

    Raises:
        ImportError: Naming the package, the installed and the required
            versions and how to fix it; also for a known-broken pair
            (mmengine < 0.10.6 beside a torch with ``optim.Adafactor``).
    """
    installed = installed or metadata.version
    versions = {}
    for package, (minimum, maximum) in REQUIRED_VERSIONS.items():
        required = f'{package}>={minimum},<{maximum}'
        try:
            version = installed(package)
        except metadata.PackageNotFoundError:
            raise ImportError(
                f'mmdet_yolor {__version__} needs {required}, which is not '
                f'installed. Run `make install` (see README.md).') from None
        if not Version(minimum) <= Version(version) < Version(maximum):
            raise ImportError(
                f'mmdet_yolor {__version__} needs {required} but {package} '
                f'{version} is installed. Run `make install`, or install a '
                f'compatible version ({_tested()} are tested).')
        versions[package] = version
    if Version(versions['mmengine']) < Version(MMENGINE_WITH_ADAFACTOR):
        if torch_has_adafactor is None:
            import torch
            torch_has_adafactor = hasattr(torch.optim, 'Adafactor')
        if torch_has_adafactor:
            raise ImportError(
                f'mmengine {versions["mmengine"]} fails to import beside '
                f'this torch, which has its own optim.Adafactor ("Adafactor '
                f'is already registered"): install mmengine>='
                f'{MMENGINE_WITH_ADAFACTOR} (pip install mmengine==0.10.7).')
    for package, (oldest, newest) in TESTED_VERSIONS.items():
        if not Version(oldest) <= Version(
                versions[package]) <= Version(newest):
            warnings.warn(
                f'mmdet_yolor {__version__} was tested with {package} '
                f'{_tested_range(package)}, not {versions[package]} '
                f'(README, "Supported stacks").',
                UntestedVersionWarning,
                stacklevel=2)
    return versions
