# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""What every stack fix is, and when it is applied.

A :class:`Fix` names a defect of the installed stack, carries a probe that
finds that defect on the running stack and the ``apply`` that repairs it.
:func:`apply_fixes` applies a fix only where its probe finds the defect, the
fix is not disabled (``MMDET_YOLOR_DISABLE_FIXES``) and every private
attribute it needs exists; a missing attribute skips the fix with one
warning line that names it. Probes are cheap; one that needs dynamo (which
importing this plugin must not import) runs when dynamo is first imported.
"""
import importlib
import importlib.abc
import importlib.util
import logging
import os
import sys
import warnings
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Set

DISABLE_FIXES_ENV = 'MMDET_YOLOR_DISABLE_FIXES'
# The fixes a run applies itself, with its config (not at import).
PER_RUN_FIXES = ('cpu_distributed', )

logger = logging.getLogger('mmdet_yolor')


@dataclass(frozen=True)
class Fix:
    """A defect of the stack and its repair.

    Attributes:
        name (str): What ``MMDET_YOLOR_DISABLE_FIXES`` and
            :func:`applied_fixes` call it.
        defect (str): What goes wrong on a stack with the defect, in one
            line (the plugin's log gives it as the reason).
        probe (Callable[[], bool]): True where the running stack has the
            defect. Cheap: no compile, no training.
        apply (Callable[[], None]): Repair it, once per process.
        private_attributes (Sequence[str]): Dotted paths of the private
            attributes ``apply`` replaces or reads (e.g.
            ``'mmengine.runner.Runner._maybe_compile'``).
        probe_after_import (str, optional): A module the probe imports that
            importing the plugin does not: the probe then runs when that
            module is first imported (at once if it already is).
        confirmed_at_first_use (bool): The probe only finds that the stack
            may have the defect; confirming it would compile or train, so
            ``apply`` installs that check where the feature is first used,
            and the check records the fix (:func:`record_applied`) where it
            finds the defect.
    """
    name: str
    defect: str
    probe: Callable[[], bool]
    apply: Callable[[], None]
    private_attributes: Sequence[str] = ()
    probe_after_import: Optional[str] = None
    confirmed_at_first_use: bool = False


# name -> the defect it repaired, in the order applied
_applied: Dict[str, str] = {}
# the fixes probed, or waiting for their probe's module: never twice (a fix
# confirmed at first use is applied long before it is recorded)
_settled: Set[str] = set()
_declared: Dict[str, Fix] = {}


def declare(fixes: Sequence[Fix]) -> None:
    """Make ``fixes`` known (to :func:`is_disabled`), applied or not."""
    for fix in fixes:
        _declared.setdefault(fix.name, fix)


def applied_fixes() -> List[str]:
    """The names of the fixes applied in this process, in order."""
    return list(_applied)


def record_applied(name: str, defect: str) -> None:
    """Note that fix ``name`` is in effect, and log once why."""
    if name not in _applied:
        _applied[name] = defect
        logger.info('mmdet_yolor applied stack fix %s: %s', name, defect)


def applied_fixes_summary() -> str:
    """One line: the fixes applied in this process and why (for a run's
    log)."""
    if not _applied:
        return 'mmdet_yolor applied no stack fix: this stack has none of ' \
               'the defects it repairs'
    return 'mmdet_yolor applied stack fixes: ' + '; '.join(
        f'{name} ({defect})' for name, defect in _applied.items())


def disabled_fixes() -> List[str]:
    """The names listed in ``MMDET_YOLOR_DISABLE_FIXES`` (``all`` for
    every fix)."""
    return [
        name.strip()
        for name in os.environ.get(DISABLE_FIXES_ENV, '').split(',')
        if name.strip()
    ]


def is_disabled(name: str) -> bool:
    """Whether ``MMDET_YOLOR_DISABLE_FIXES`` disables fix ``name``.

    Raises:
        ValueError: If the variable names a fix that does not exist.
    """
    listed = _checked_disabled_fixes()
    return name in listed or 'all' in listed


def _checked_disabled_fixes() -> List[str]:
    """:func:`disabled_fixes`, each a known fix or ``all``."""
    listed = disabled_fixes()
    known = sorted(_declared) + list(PER_RUN_FIXES)
    unknown = sorted(set(listed) - set(known) - {'all'})
    if unknown:
        raise ValueError(
            f'{DISABLE_FIXES_ENV} names unknown fixes {unknown}; use a '
            f'comma-separated list of {known} or all')
    return listed


def missing_private_attribute(fix: Fix) -> Optional[str]:
    """The first of ``fix.private_attributes`` the stack lacks, or None."""
    for path in fix.private_attributes:
        module_name, *attributes = path.split('.')
        owner = importlib.import_module(module_name)
        for attribute in attributes:
            if isinstance(owner, type(sys)) and not hasattr(owner, attribute):
                try:  # a submodule not imported yet
                    owner = importlib.import_module(
                        f'{owner.__name__}.{attribute}')
                except ImportError:
                    return path
            elif not hasattr(owner, attribute):
                return path
            else:
                owner = getattr(owner, attribute)
    return None


def apply_fixes(fixes: Sequence[Fix]) -> List[str]:
    """Apply each of ``fixes`` that is not applied yet nor disabled, where
    its probe finds the defect.

    Returns:
        list[str]: The fixes applied by this call (a fix whose probe waits
        for its module's import, or confirms the defect at first use, is
        recorded later).

    Raises:
        ValueError: If ``MMDET_YOLOR_DISABLE_FIXES`` names a fix that does
            not exist.
    """
    declare(fixes)
    disabled = _checked_disabled_fixes()
    before = set(_applied)
    for fix in fixes:
        if fix.name in _settled or fix.name in disabled or \
                'all' in disabled:
            continue
        _settled.add(fix.name)
        if fix.probe_after_import and \
                fix.probe_after_import not in sys.modules:
            _after_import(fix.probe_after_import, lambda fix=fix: _try(fix))
        else:
            _try(fix)
    return [name for name in _applied if name not in before]


def _try(fix: Fix) -> None:
    """Probe ``fix`` and apply it where the stack has its defect."""
    missing = missing_private_attribute(fix)
    if missing is not None:
        warnings.warn(
            f'mmdet_yolor: stack fix {fix.name} skipped: this stack has no '
            f'{missing} (the fix repairs: {fix.defect})',
            stacklevel=3)
        return
    if fix.probe():
        fix.apply()
        if not fix.confirmed_at_first_use:
            record_applied(fix.name, fix.defect)


class _PostImportFinder(importlib.abc.MetaPathFinder):
    """Runs callbacks once a module has been imported (PEP 369's post-import
    hooks): the finder lets the other finders find the module and wraps its
    loader's ``exec_module``."""

    def __init__(self):
        self.callbacks: Dict[str, List[Callable[[], None]]] = {}
        self._finding = set()

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in self.callbacks or fullname in self._finding:
            return None
        self._finding.add(fullname)
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            self._finding.discard(fullname)
        if spec is None or spec.loader is None:
            return None
        exec_module = spec.loader.exec_module
        callbacks = self.callbacks.pop(fullname)
        if not self.callbacks:
            sys.meta_path.remove(self)

        def exec_then_call_back(module):
            exec_module(module)
            for callback in callbacks:
                callback()

        spec.loader.exec_module = exec_then_call_back
        return spec


_post_import = _PostImportFinder()


def _after_import(module: str, callback: Callable[[], None]) -> None:
    """Call ``callback`` once ``module`` is imported."""
    if _post_import not in sys.meta_path:
        sys.meta_path.insert(0, _post_import)
    _post_import.callbacks.setdefault(module, []).append(callback)
