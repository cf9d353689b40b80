"""Install mmdet_yolor, an MMDetection 3.x plugin for YOLOR implicit knowledge.

Requirements are read from ``requirements/*.txt`` (as mmdet and mmyolo do).
The OpenMMLab packages (``requirements/mminstall.txt``) are not in
``install_requires``: mmcv must be compiled against the installed torch, which
``make install`` does (see README).
"""
import os.path as osp
from setuptools import find_packages, setup

HERE = osp.dirname(osp.abspath(__file__))


def read_requirements(name):
    """Return the requirement lines of ``requirements/<name>.txt``."""
    with open(osp.join(HERE, 'requirements', name + '.txt')) as f:
        lines = (line.split('#')[0].strip() for line in f)
        return [line for line in lines if line]


def read_version():
    namespace = {}
    with open(osp.join(HERE, 'mmdet_yolor', 'version.py')) as f:
        exec(f.read(), namespace)
    return namespace['__version__']


setup(
    name='mmdet_yolor',
    version=read_version(),
    description='YOLOR implicit knowledge for MMDetection 3.x',
    long_description=open(osp.join(HERE, 'README.md')).read(),
    long_description_content_type='text/markdown',
    keywords='computer vision, object detection, YOLOR, implicit knowledge',
    packages=find_packages(exclude=('configs', 'tools', 'tests')),
    include_package_data=True,
    python_requires='>=3.8',
    install_requires=read_requirements('runtime'),
    extras_require=dict(
        tests=read_requirements('tests'),
        build=read_requirements('build'),
        mim=read_requirements('mminstall'),
    ),
    license='GPL-3.0',
    zip_safe=False)
