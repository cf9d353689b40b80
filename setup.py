"""Install mmdet_yolor, an MMDetection 3.x plugin for YOLOR implicit knowledge.

Requirements are read from ``requirements/*.txt`` (as mmdet and mmyolo do).
The OpenMMLab packages (``requirements/mminstall.txt``) are not in
``install_requires``: mmcv must be compiled against the installed torch, which
``make install`` does (see README).

As OpenMMLab packages do, the package ships the repository's ``configs/``,
``tools/`` and ``model-index.yml`` in ``mmdet_yolor/.mim/``, where
``mmdet_yolor::`` config paths, ``mmengine.hub.get_config`` and
:mod:`mmdet_yolor.package_data` find them. In the source tree they are links
(an editable install sees edits at once); a wheel holds copies, written into
the build directory so that building one leaves the links alone.
"""
import os
import os.path as osp
import shutil
from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

HERE = osp.dirname(osp.abspath(__file__))
MIM_DIR = osp.join('mmdet_yolor', '.mim')
MIM_FILES = ('configs', 'tools', 'model-index.yml')
# Not packaged: install_env.sh builds the environment of a source checkout.
MIM_IGNORE = shutil.ignore_patterns('__pycache__', '*.pyc', 'install_env.sh')


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


def remove(path):
    """Remove a file, link or directory tree if it exists."""
    if osp.islink(path) or osp.isfile(path):
        os.remove(path)
    elif osp.isdir(path):
        shutil.rmtree(path)


def link_mim_files():
    """Make ``mmdet_yolor/.mim/<name>`` a relative link to the repository's
    ``<name>`` for every MIM file, replacing anything else found there."""
    mim_dir = osp.join(HERE, MIM_DIR)
    os.makedirs(mim_dir, exist_ok=True)
    for name in MIM_FILES:
        link = osp.join(mim_dir, name)
        target = osp.relpath(osp.join(HERE, name), mim_dir)
        if not (osp.islink(link) and os.readlink(link) == target):
            remove(link)
            os.symlink(target, link)


class BuildPyWithMimFiles(build_py):
    """``build_py`` that copies the MIM files into the built package, so that
    a wheel holds the files themselves rather than links out of it."""

    def run(self):
        super().run()
        if self.editable_mode:  # an editable install uses the links
            return
        mim_dir = osp.join(self.build_lib, MIM_DIR)
        remove(mim_dir)
        os.makedirs(mim_dir)
        for name in MIM_FILES:
            source = osp.join(HERE, name)
            if osp.isdir(source):
                shutil.copytree(
                    source, osp.join(mim_dir, name), ignore=MIM_IGNORE)
            else:
                shutil.copyfile(source, osp.join(mim_dir, name))


link_mim_files()
setup(
    name='mmdet_yolor',
    version=read_version(),
    description='YOLOR implicit knowledge for MMDetection 3.x',
    long_description=open(osp.join(HERE, 'README.md')).read(),
    long_description_content_type='text/markdown',
    keywords='computer vision, object detection, YOLOR, implicit knowledge',
    packages=find_packages(exclude=('configs', 'tools', 'tests')),
    include_package_data=True,
    cmdclass={'build_py': BuildPyWithMimFiles},
    python_requires='>=3.8',
    install_requires=read_requirements('runtime'),
    extras_require=dict(
        tests=read_requirements('tests'),
        build=read_requirements('build'),
        optional=read_requirements('optional'),
        mim=read_requirements('mminstall'),
    ),
    license_expression='Apache-2.0',
    classifiers=[
        'Operating System :: POSIX :: Linux',
        'Programming Language :: Python :: 3',
        'Programming Language :: Python :: 3.8',
        'Programming Language :: Python :: 3.9',
        'Programming Language :: Python :: 3.10',
        'Programming Language :: Python :: 3.11',
        'Programming Language :: Python :: 3.12',
        'Topic :: Scientific/Engineering :: Artificial Intelligence',
    ],
    zip_safe=False)
