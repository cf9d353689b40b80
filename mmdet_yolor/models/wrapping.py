# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Give an mmdet module YOLOR behaviour by subclassing its type with a mixin.

The YOLOR wrappers must keep every state-dict key of the module they wrap (so
a baseline checkpoint loads unchanged) and must stay instances of the wrapped
type (mmdet checks ``isinstance`` and calls head methods directly). Holding
the module as a child would rename its keys (``neck.neck.*``), so instead the
wrapped type is subclassed with a mixin: ``FPN`` becomes ``YOLORFPN(
YOLORNeckMixin, FPN)``, which adds implicit modules as new keys only.

:func:`mix_into` turns a module into its ``YOLOR<Type>`` in place (a head's
prediction ``Conv2d`` becomes a ``YOLORConv2d`` whose forward applies the
implicits), :func:`unmix` turns it back, and :func:`build_with_mixin` builds
a configured neck, head or backbone exactly as mmdet would and then mixes
in: its ``__init__`` runs as the configured type's (``DETRHead`` checks
``self.__class__ is DETRHead``).

The generated classes are not importable by name, so every mixin derives
from :class:`YOLORMixin`, whose ``__reduce_ex__`` rebuilds the class from its
mixin and base: models pickle, ``torch.save`` and ``copy.deepcopy`` (EMA).
"""
from typing import Dict, Tuple, Type

from mmdet.registry import MODELS
from torch import nn

_SUBCLASSES: Dict[Tuple[type, type], type] = {}


class YOLORMixin:
    """Base of the mixins: makes the generated ``YOLOR<Type>`` classes
    picklable."""

    def __reduce_ex__(self, protocol):
        mixin, base = type(self).__bases__
        return _new_mixed, (mixin, base), self.__dict__


def _new_mixed(mixin: type, base: type):
    """An empty instance of ``YOLOR<base>``; unpickling fills its state."""
    cls = subclass_with_mixin(base, mixin)
    return cls.__new__(cls)


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


def subclass_with_mixin(base: type, mixin: Type[YOLORMixin]) -> type:
    """Return the cached class ``YOLOR<base>(mixin, base)``."""
    if issubclass(base, mixin):
        raise TypeError(f'{base.__name__} has {mixin.__name__} already')
    key = (mixin, base)
    if key not in _SUBCLASSES:
        _SUBCLASSES[key] = type(
            f'YOLOR{base.__name__}', (mixin, base), {
                '__module__': mixin.__module__,
                '__doc__': f'{base.__name__} with {mixin.__name__} mixed in.',
            })
    return _SUBCLASSES[key]


def build_with_mixin(cfg: dict, mixin: Type[YOLORMixin],
                     wrapper: str) -> nn.Module:
    """Build the module configured by ``cfg`` and mix ``mixin`` into it
    (:func:`mix_into`)."""
    resolve_type(cfg, wrapper)  # a clear error for unknown types
    return mix_into(MODELS.build(cfg), mixin)


def mix_into(module: nn.Module, mixin: Type[YOLORMixin]) -> nn.Module:
    """Turn ``module`` into a ``YOLOR<type>`` with ``mixin``, in place: its
    parameters, children and keys stay; only its class changes."""
    module.__class__ = subclass_with_mixin(type(module), mixin)
    return module


def unmix(module: nn.Module) -> nn.Module:
    """Undo :func:`mix_into`: ``module`` is of its original type again."""
    module.__class__ = wrapped_type(module)
    return module


def wrapped_type(module: nn.Module) -> type:
    """The type a ``YOLOR<Type>`` module was made from (``FPN`` for a
    ``YOLORFPN``)."""
    return type(module).__bases__[1]
