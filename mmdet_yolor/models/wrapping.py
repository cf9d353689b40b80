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

A generated class names its base in :data:`WRAPPED_TYPE` and keeps the
base's methods that the mixins' forward paths call as static
``yolor_wrapped_<name>`` (:data:`WRAPPED_METHODS`): a mixin calls
``self.yolor_wrapped_forward(self, ...)``, a plain function call, which
every torch of the supported stacks compiles. The other spellings each fail
one of them: zero-argument ``super()`` on torch 2.1 (its dynamo guards the
defaults of a method reached so from a class-swapped module through a wrong
source, ``super(<method>.__class__, obj)``: mmcv's ``ConvModule``),
``<Type>.forward(self, ...)`` on torch 2.4 where ``<Type>`` inherits its
``forward`` (a graph break: RetinaHead), and a bound method on torch 2.4
for a ``torch.nn`` layer (dynamo calls the layer's own, overridden
``forward``). One YOLOR mixin per module.

The registered wrappers (``YOLORNeck``, ``YOLORBackbone``, ``YOLORHead``)
are mixins too: building one returns the wrapped module as an instance of
``YOLOR<Type>(<Wrapper>, <Type>)`` (:class:`YOLORWrapper`), the keys of
the wrapped module merged into its config (:func:`merged_config`).

"""
import copy
import inspect
from typing import Dict, Optional, Tuple, Type

from mmdet.registry import MODELS
from mmengine.config import ConfigDict
from torch import nn

from ..errors import InputError

_SUBCLASSES: Dict[Tuple[type, type], type] = {}
# The class attribute of a generated ``YOLOR<Type>`` naming ``<Type>``.
WRAPPED_TYPE = 'yolor_wrapped_type'
# The methods of ``<Type>`` the mixins call, kept on ``YOLOR<Type>`` as
# ``yolor_wrapped_<name>`` (see module docstring).
WRAPPED_METHODS = ('forward', 'forward_single')


class YOLORMixin:
    """Base of the mixins: makes the generated ``YOLOR<Type>`` classes
    picklable.

    Attributes:
        yolor_wrapped_type (type): The type a generated class was made from
            (:data:`WRAPPED_TYPE`).
        yolor_wrapped_forward (callable): That type's ``forward`` as a
            static method, which the mixins call with ``self`` (and
            ``yolor_wrapped_forward_single`` where it has one;
            :data:`WRAPPED_METHODS`).
    """

    def __reduce_ex__(self, protocol):
        mixin, base = type(self).__bases__
        return _new_mixed, (mixin, base), self.__dict__


def _new_instance(cls, *args, **kwargs):
    """``__new__`` of the generated classes: an empty instance, as for any
    module. Their instances come from class swaps and unpickling, never from
    a call; torch 2.4's dynamo makes proxies of modules with
    ``type(m).__new__(type(m))``, which a registered wrapper's own
    ``__new__`` (it builds the wrapped module from its config) refuses."""
    return object.__new__(cls)


def _new_mixed(mixin: type, base: type):
    """An empty instance of ``YOLOR<base>``; unpickling fills its state.
    (``object.__new__``: a wrapper's own ``__new__`` builds a module.)"""
    return object.__new__(subclass_with_mixin(base, mixin))


class YOLORWrapper(YOLORMixin):
    """Base of the registered wrappers: building ``YOLORNeck(neck=...)``
    builds the wrapped module and returns it as a ``YOLOR<Type>`` (an
    instance of the wrapper and of the wrapped type), so a config's
    ``type`` names the class of what it builds.

    A subclass implements ``__new__(cls, <wrapped_key>, <own options>...,
    **options)``: ``options`` are keys of the wrapped module (a user's
    overrides of it, the keys mmdet detectors inject into heads), merged
    into its config by :func:`merged_config`.

    Attributes:
        wrapped_key (str): The option holding the wrapped module's config.
    """
    wrapped_key = ''

    def __init__(self, *args, **kwargs) -> None:
        """Nothing left to do: ``__new__`` built the module."""

    @classmethod
    def own_options(cls) -> Tuple[str, ...]:
        """The options of this wrapper's ``__new__``; every other key of
        its config belongs to the wrapped module."""
        parameters = list(inspect.signature(cls.__new__).parameters.values())
        return tuple(p.name for p in parameters[1:]
                     if p.kind is not inspect.Parameter.VAR_KEYWORD)


def forward_owner(module_type: type) -> type:
    """The class along ``module_type``'s MRO that defines its
    ``forward``."""
    return next(cls for cls in module_type.__mro__ if 'forward' in vars(cls))


def init_parameter(module_type: type,
                   name: str) -> Optional[inspect.Parameter]:
    """The keyword argument ``name`` of building ``module_type``: of its
    ``__init__``, or of a base class's that it passes ``**kwargs`` to; None
    if it takes no such argument."""
    for cls in module_type.__mro__:
        init = vars(cls).get('__init__')
        if init is None:
            continue
        parameters = inspect.signature(init).parameters
        if name in parameters:
            return parameters[name]
        if not any(p.kind is inspect.Parameter.VAR_KEYWORD
                   for p in parameters.values()):
            return None
    return None


def takes_argument(module_type: type, name: str) -> bool:
    """Whether building ``module_type`` takes the keyword argument
    ``name`` (:func:`init_parameter`)."""
    return init_parameter(module_type, name) is not None


def merged_config(cfg: dict, options: dict, wrapper: str) -> dict:
    """``cfg`` (a wrapped module's config) with ``options`` merged into it
    as mmengine merges configs: nested dicts key by key, ``_delete_=True``
    replacing one. Neither argument is modified.

    Raises:
        InputError: If ``cfg`` is a list (of necks), which keys cannot be
            merged into.
    """
    if not options:
        return cfg
    if isinstance(cfg, (list, tuple)):
        raise InputError(
            f'{wrapper} wraps a list of {len(cfg)} modules and got keys for '
            f'the wrapped module ({", ".join(sorted(options))}); set them '
            f'on one of the list, e.g. model.neck.neck[0].<key>.')
    merged = ConfigDict(copy.deepcopy(cfg))
    merged.merge(copy.deepcopy(options))
    return merged


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
    """Return the cached class ``YOLOR<base>(mixin, base)``.

    Raises:
        TypeError: If ``base`` has a YOLOR mixin already (one a module).
    """
    if issubclass(base, YOLORMixin):
        raise TypeError(f'{base.__name__} has a YOLOR mixin already; '
                        f'{mixin.__name__} cannot be mixed in too')
    key = (mixin, base)
    if key not in _SUBCLASSES:
        _SUBCLASSES[key] = type(
            f'YOLOR{base.__name__}', (mixin, base), {
                '__module__': mixin.__module__,
                '__doc__': f'{base.__name__} with {mixin.__name__} mixed in.',
                WRAPPED_TYPE: base,
                '__new__': _new_instance,
                **{
                    f'yolor_wrapped_{name}': staticmethod(getattr(base, name))
                    for name in WRAPPED_METHODS if hasattr(base, name)
                },
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
    module.__class__ = type(module).__bases__[1]
    return module


def wrapped_type(module: nn.Module) -> type:
    """The mmdet type of ``module``: the type a ``YOLOR<Type>`` was made
    from (``FPN`` for a ``YOLORFPN``), or the type of a plain module."""
    return getattr(type(module), WRAPPED_TYPE, type(module))
