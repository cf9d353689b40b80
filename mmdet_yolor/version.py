# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Version of mmdet_yolor and the OpenMMLab versions it runs on."""
from importlib import metadata
from typing import Callable, Dict, Optional

from packaging.version import Version

__version__ = '0.1.0'

# Half-open ranges [minimum, maximum) of the OpenMMLab stack. mmdet 3.3.0
# itself refuses mmcv >= 2.2.0; the compat fixes target mmengine 0.10.
REQUIRED_VERSIONS = {
    'mmcv': ('2.0.0rc4', '2.2.0'),
    'mmengine': ('0.10.0', '1.0.0'),
    'mmdet': ('3.0.0', '3.4.0'),
}


def check_versions(
        installed: Optional[Callable[[str], str]] = None) -> Dict[str, str]:
    """Check that the installed mmcv, mmengine and mmdet fit
    :data:`REQUIRED_VERSIONS`, without importing them.

    Args:
        installed (callable, optional): Maps a distribution name to its
            installed version; raises ``PackageNotFoundError`` if absent.
            Defaults to :func:`importlib.metadata.version`.

    Returns:
        dict: The installed version of each package.

    Raises:
        ImportError: Naming the package, the installed and the required
            versions and how to fix it.
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
                f'compatible version (mmcv 2.1.0, mmengine 0.10.7, mmdet '
                f'3.3.0 are tested).')
        versions[package] = version
    return versions
