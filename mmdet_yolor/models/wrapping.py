# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Build an mmdet module as a subclass that mixes YOLOR behaviour in.

The YOLOR wrappers must keep every state-dict key of the module they wrap (so
a baseline checkpoint loads unchanged) and must stay instances of the wrapped
type (mmdet checks ``isinstance`` and calls head methods directly). Holding
the module as a child would rename its keys (``neck.neck.*``), so instead the
wrapped type is subclassed with a mixin: ``FPN`` becomes ``YOLORFPN(
YOLORNeckMixin, FPN)``, which adds implicit modules as new keys only.
"""
from typing import Dict, Tuple, Type

from mmdet.registry import MODELS

_SUBCLASSES: Dict[Tuple[type, type], type] = {}


def resolve_type(cfg: dict, wrapper: str) -> type:
    """Return the registered class named by ``cfg['type']``.

    Args:
        cfg (dict): Config of the module to wrap.
        wrapper (str): Name of the wrapper, for error messages.
    """
    if not isinstance(cfg, dict) or 'type' not in cfg:
        raise TypeError(f'{wrapper} needs the config of the module it wraps '
                        f"(a dict with a 'type' key), got {cfg!r}")
    module_type = cfg['type']
    if isinstance(module_type, type):
        return module_type
    module_cls = MODELS.get(module_type)
    if module_cls is None:
        raise KeyError(f'{wrapper}: {module_type!r} is not registered in '
                       "mmdet's MODELS registry; check its spelling or add "
                       'the package that defines it to custom_imports')
    return module_cls


def subclass_with_mixin(base: type, mixin: type) -> Type:
    """Return the cached class ``YOLOR<base>(mixin, base)``."""
    key = (mixin, base)
    if key not in _SUBCLASSES:
        _SUBCLASSES[key] = type(
            f'YOLOR{base.__name__}', (mixin, base), {
                '__module__': mixin.__module__,
                '__doc__': f'{base.__name__} with {mixin.__name__} mixed in.',
            })
    return _SUBCLASSES[key]


def build_with_mixin(cfg: dict, mixin: type, wrapper: str):
    """Build the module configured by ``cfg`` as ``YOLOR<type>``, its class
    subclassed with ``mixin``. The mixin must not define ``__init__``."""
    base = resolve_type(cfg, wrapper)
    kwargs = {
        key: value
        for key, value in cfg.items() if key not in ('type', '_scope_')
    }
    return subclass_with_mixin(base, mixin)(**kwargs)


def wrapped_type(module) -> type:
    """The configured type of a module built by :func:`build_with_mixin`
    (``FPN`` for a ``YOLORFPN``)."""
    return type(module).__bases__[1]
