# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""YOLORNeck: implicit feature alignment on every output level of a neck.

:class:`FeatureAlignmentMixin` adds one implicit layer to each output level
of the module it is mixed into: a neck here (:class:`YOLORNeck`), a backbone
for detectors without a neck (``mmdet_yolor/models/backbones``). The number
of levels and their channels are read from the outputs themselves, by
running the module once on small probe inputs when it is built, so any neck
works whatever attributes it has. With ``placement='output_convs'`` the
implicits sit instead on the convs that produce FPN's levels
(:class:`OutputConvAlignmentMixin`), where every one folds into a conv bias
at inference.
"""
from typing import Callable, Dict, List, Optional, Sequence, Union

import torch
from mmcv.cnn import ConvModule
from mmdet.models.necks import FPN
from mmdet.registry import MODELS
from mmengine.model import Sequential
from torch import Tensor, nn

from ...errors import InputError
from ..foldable import ALIGNMENT, FoldableMixin, FoldSite, ImplicitSite
from ..layers import (BaseImplicit, ImplicitA, ImplicitM, build_implicit,
                      reset_implicits)
from ..layers.folding import (fold_add_into_producer,
                              fold_multiply_into_producer, is_plain)
from ..wrapping import (YOLORWrapper, build_with_mixin, forward_owner,
                        merged_config, mix_into, resolve_type, takes_argument,
                        unmix, wrapped_type)

PLACEMENTS = ('outputs', 'output_convs')
# The attribute holding feature-alignment implicits, on the aligned module
# (one per output level) or on an output conv (one).
ALIGNMENT_ATTRIBUTE = 'implicit_alignment'
# Options the wrappers took before they passed every other key to the module
# they wrap (as mmdet users set model.neck.out_channels), and their new names.
RENAMED_OPTIONS = {
    'num_outs': 'alignment_levels',
    'out_channels': 'alignment_channels'
}
# Side of the finest level of the probe inputs of a neck, in pixels; each
# further level halves it, as a backbone's strides do.
NECK_PROBE_SIZE = 64
FOLDED_HOW = 'folded into the bias or weight of the conv producing it'

# For placement='output_convs': the attribute holding the convs that produce
# a neck type's output levels, looked up along the class hierarchy.
NECK_OUTPUT_CONVS: Dict[type, str] = {
    FPN: 'fpn_convs',
}


def find_output_convs(neck_type: type) -> Optional[str]:
    """Return the :data:`NECK_OUTPUT_CONVS` entry of ``neck_type`` or of its
    nearest listed base class."""
    return next((NECK_OUTPUT_CONVS[cls]
                 for cls in neck_type.__mro__ if cls in NECK_OUTPUT_CONVS),
                None)


def fold_into_output_conv(conv: nn.Module, implicit: BaseImplicit) -> str:
    """Fold an alignment on the output of ``conv`` (a ConvModule or conv)
    into it; return why it cannot be folded, or '' when it was."""
    if isinstance(conv, ConvModule):
        if conv.with_norm or conv.with_activation:
            return 'the output conv has a norm or activation after it'
        conv = conv.conv
    if not is_plain(conv):
        return f'{type(conv).__name__} is not a plain conv'
    if isinstance(implicit, ImplicitA):
        fold_add_into_producer(conv, implicit.value())
    elif isinstance(implicit, ImplicitM):
        fold_multiply_into_producer(conv, implicit.value())
    else:
        return 'concatenation adds channels: no layer to fold into'
    implicit.mark_folded()
    return ''


def fpn_level_producers(neck: FPN) -> List[Union[nn.Module, str]]:
    """For each output level of an mmdet ``FPN``: the ConvModule producing
    it when an alignment of that level can move into the conv, else why
    not.

    A level the FPN reuses to derive the next one (the source of its extra
    convs or max-pooled levels) cannot change without changing that next
    level; a max-pooled level has no conv.
    """
    used = neck.backbone_end_level - neck.start_level
    extras = range(used, neck.num_outs)
    sources = set(range(used, neck.num_outs - 1))
    if len(extras) and neck.add_extra_convs in (False, 'on_output'):
        sources.add(used - 1)
    producers = []
    for level in range(neck.num_outs):
        if level in extras and not neck.add_extra_convs:
            producers.append('max-pooled level: no conv to fold into')
        elif level in sources:
            producers.append(
                f'the FPN derives level {level + 1} from this output')
        else:
            producers.append(neck.fpn_convs[level])
    return producers


# How the output levels of a neck type are produced, for folding the
# alignment of placement='outputs', keyed by the class whose ``forward``
# the neck runs: a subclass that overrides it (PAFPN adds a bottom-up path
# after ``fpn_convs``, RFP feeds its outputs back into the backbone) has
# outputs these rules do not describe, and keeps its implicits.
LEVEL_PRODUCERS: Dict[type, Callable[[nn.Module], list]] = {
    FPN: fpn_level_producers,
}


class FeatureAlignmentMixin(FoldableMixin):
    """Feature alignment of the module it is mixed into (a neck, or a
    backbone without neck): output level ``i`` becomes
    ``implicit_alignment[i](out_i)``.

    Levels whose implicit was folded hold an ``nn.Identity``.
    """

    def implicit_sites(self) -> List[ImplicitSite]:
        alignment = self._modules.get(ALIGNMENT_ATTRIBUTE) or ()
        return [
            ImplicitSite(f'{ALIGNMENT_ATTRIBUTE}.{level}', implicit, ALIGNMENT,
                         '', level) for level, implicit in enumerate(alignment)
            if isinstance(implicit, BaseImplicit)
        ]

    def init_weights(self) -> None:
        super().init_weights()
        reset_implicits(self)

    def forward(self, *args, **kwargs):
        outs = self.yolor_wrapped_forward(self, *args, **kwargs)
        # `in`, not _modules.get(): torch 2.1's dynamo breaks the graph on
        # get() of a module's _modules
        if ALIGNMENT_ATTRIBUTE not in self._modules:  # 'output_convs'
            return outs
        alignment = self._modules[ALIGNMENT_ATTRIBUTE]
        if isinstance(outs, Tensor):
            return alignment[0](outs)
        if len(outs) != len(alignment):
            raise ValueError(
                f'{type(self).__name__} was built for {len(alignment)} '
                f'output levels but returned {len(outs)}; pass '
                f'alignment_levels and alignment_channels to the YOLOR '
                f'wrapper.')
        return type(outs)(implicit(out)
                          for implicit, out in zip(alignment, outs))

    def fold_implicit(self) -> List[FoldSite]:
        """Fold what is exact of the alignment of each output level (see
        :data:`LEVEL_PRODUCERS`); report every level."""
        alignment = self._modules.get(ALIGNMENT_ATTRIBUTE)
        if alignment is None:
            return []
        rule = LEVEL_PRODUCERS.get(forward_owner(wrapped_type(self)))
        producers = rule(self) if rule else [
            f'no folding rule for the outputs of '
            f'{wrapped_type(self).__name__}'
        ] * len(alignment)
        sites = []
        for level, (implicit,
                    producer) in enumerate(zip(alignment, producers)):
            if not isinstance(implicit, BaseImplicit) or implicit.folded:
                continue
            why = producer if isinstance(producer, str) else \
                fold_into_output_conv(producer, implicit)
            sites.append(
                FoldSite(f'{ALIGNMENT_ATTRIBUTE}.{level}', not why, why
                         or FOLDED_HOW))
        return sites

    def strip_folded_implicit(self) -> None:
        """Replace folded level implicits by ``nn.Identity``."""
        alignment = self._modules.get(ALIGNMENT_ATTRIBUTE, ())
        for level, implicit in enumerate(alignment):
            if isinstance(implicit, BaseImplicit) and implicit.folded:
                alignment[level] = nn.Identity()


class OutputConvAlignmentMixin(FoldableMixin):
    """Mixed into a conv producing an output level of a neck
    (``placement='output_convs'``): ``y -> implicit_alignment(y)``."""

    def forward(self, *args, **kwargs):
        return self.implicit_alignment(
            self.yolor_wrapped_forward(self, *args, **kwargs))

    def implicit_sites(self) -> List[ImplicitSite]:
        return [
            ImplicitSite(ALIGNMENT_ATTRIBUTE, self.implicit_alignment,
                         ALIGNMENT, '', None)
        ]

    def fold_implicit(self) -> List[FoldSite]:
        if self.implicit_alignment.folded:
            return []
        why = fold_into_output_conv(self, self.implicit_alignment)
        return [FoldSite(ALIGNMENT_ATTRIBUTE, not why, why or FOLDED_HOW)]

    def strip_folded_implicit(self) -> None:
        if self.implicit_alignment.folded:
            del self.implicit_alignment
            unmix(self)


class NeckSequence(Sequential):
    """A list of necks applied in turn, with the keys mmdet gives a neck
    list (``0.*``, ``1.*``...). Unlike ``Sequential`` it skips the
    alignment it carries as a child."""

    def forward(self, x):
        for name, module in self._modules.items():
            if name != ALIGNMENT_ATTRIBUTE:
                x = module(x)
        return x


def _zeros_pyramid(channels: Sequence[int], size: int) -> List[Tensor]:
    return [
        torch.zeros(1, c, max(size >> level, 1), max(size >> level, 1))
        for level, c in enumerate(channels)
    ]


def neck_probe_inputs(neck_cfg: Union[dict, list]) -> List[list]:
    """Candidate inputs of a neck, from the ``in_channels`` of (the first
    of) its config: a pyramid halving from :data:`NECK_PROBE_SIZE` pixels,
    with the channels as listed, then reversed (``YOLOV3Neck`` lists them
    deepest first), then after an image (DetectoRS' ``RFP`` also reads the
    image)."""
    first = neck_cfg[0] if isinstance(neck_cfg, (list, tuple)) else neck_cfg
    in_channels = first.get('in_channels')
    if isinstance(in_channels, int):
        levels = first.get('num_levels', 1)
        return [_zeros_pyramid([in_channels] * levels, NECK_PROBE_SIZE)]
    if not isinstance(in_channels, (list, tuple)):
        return []
    pyramid = _zeros_pyramid(in_channels, NECK_PROBE_SIZE)
    image = torch.zeros(1, 3, NECK_PROBE_SIZE * 4, NECK_PROBE_SIZE * 4)
    return [
        pyramid,
        _zeros_pyramid(in_channels[::-1], NECK_PROBE_SIZE), [image] + pyramid
    ]


@torch.no_grad()
def probe_output_channels(module: nn.Module, candidates: list) -> List[int]:
    """Run ``module`` (in eval mode, restored afterwards) on each candidate
    input (the argument of its forward) until one works; return the
    channels of each output level.

    Raises:
        RuntimeError: If no candidate runs, with the last error.
    """
    modes = [(m, m.training) for m in module.modules()]
    module.eval()
    errors = []
    try:
        for inputs in candidates:
            try:
                outs = wrapped_type(module).forward(module, inputs)
            except Exception as error:  # the input did not fit: next one
                errors.append(error)
                continue
            if isinstance(outs, Tensor):
                outs = [outs]
            return [out.shape[1] for out in outs]
    finally:
        for m, training in modes:
            m.training = training
    # the first candidate is the usual input: its error says most
    raise RuntimeError(f'{type(errors[0]).__name__}: {errors[0]}' if errors
                       else 'it has no in_channels to build them from')


def attach_alignment(module: nn.Module, channels: List[int], operator: str,
                     implicit_cfg: dict) -> None:
    """Give ``module`` (mixed with :class:`FeatureAlignmentMixin`) one
    implicit per output level of ``channels`` channels (``concat`` appends
    ``implicit_cfg['channels']``, default the level's channels)."""
    implicit_cfg = dict(implicit_cfg)
    concat_channels = implicit_cfg.pop('channels', None)
    if operator != 'concat' and concat_channels is not None and any(
            c != concat_channels for c in channels):
        raise ValueError(f'implicit_cfg channels={concat_channels} must '
                         f'equal the output channels {channels} for '
                         f'operator {operator!r} (only concat sets its '
                         f'own channel count)')
    module.implicit_alignment = nn.ModuleList(
        build_implicit(
            operator, concat_channels or level, dim=1, **implicit_cfg)
        for level in channels)


def output_level_channels(
        wrapper: str, module: nn.Module, candidates: list,
        levels: Optional[int], channels: Union[int, Sequence[int],
                                               None]) -> List[int]:
    """The channels of each output level of ``module``, read from a probe
    run on ``candidates``; ``levels`` (their number) and ``channels`` (of
    every level, or of each), where given, take precedence, and when both
    are given no probe runs.

    Raises:
        InputError: If the probe fails, saying how to give them instead.
    """
    if isinstance(channels, (list, tuple)):
        return list(channels)
    if levels is not None and channels is not None:
        return [channels] * levels
    try:
        probed = probe_output_channels(module, candidates)
    except RuntimeError as error:
        raise InputError(
            f'{wrapper} could not tell the output levels of '
            f'{wrapped_type(module).__name__}: running it on probe inputs '
            f'built from its in_channels failed ({error}). Pass '
            f'alignment_levels=... and alignment_channels=... to '
            f'{wrapper}.') from None
    if channels is not None:
        return [channels] * len(probed)
    if levels is not None:
        return [probed[min(level, len(probed) - 1)] for level in range(levels)]
    return probed


def wrapped_options(wrapper: str, wrapped: Union[dict, list],
                    options: dict) -> Union[dict, list]:
    """The config of the module a wrapper wraps with the wrapper's other
    keys merged into it (:func:`merged_config`).

    Raises:
        InputError: For ``num_outs``/``out_channels`` that the wrapped
            module does not take: options of the wrapper once, renamed to
            ``alignment_levels``/``alignment_channels``.
    """
    modules = wrapped if isinstance(wrapped, (list, tuple)) else [wrapped]
    for old, new in RENAMED_OPTIONS.items():
        if old in options and (len(modules) > 1 or not takes_argument(
                resolve_type(modules[0], wrapper), old)):
            raise InputError(
                f'{wrapper}: {old}={options[old]!r} goes to the module it '
                f'wraps, and {" + ".join(str(m["type"]) for m in modules)} '
                f'takes no {old}. To set the number or channels of the '
                f'aligned levels, use {wrapper}({new}=...).')
    return merged_config(wrapped, options, wrapper)


@MODELS.register_module()
class YOLORNeck(FeatureAlignmentMixin, YOLORWrapper):
    """A neck with YOLOR implicit feature alignment; ``type='YOLORNeck'``.

    Every output level ``i`` of the neck becomes ``implicit_i(out_i)``, one
    implicit layer per level (the paper's feature alignment adds one vector
    per FPN level). Building it builds the neck and returns it as a
    ``YOLOR<NeckType>``, an instance of this class and of the neck's type:
    every state-dict key of the neck is kept, the implicits add
    ``implicit_alignment.<level>.*``. The levels and their channels are read
    from the neck's outputs on a probe input built from its ``in_channels``
    (``alignment_levels``/``alignment_channels`` skip the probe).

    With ``placement='output_convs'`` the implicits sit instead on the
    outputs of the convs that produce the levels (FPN's ``fpn_convs``, see
    :data:`NECK_OUTPUT_CONVS`), before the neck derives extra levels from
    them: FPN's pooled level then inherits the alignment of its source, and
    every implicit folds exactly into its conv's bias at inference.

    Example:
        >>> neck = dict(
        ...     type='YOLORNeck',
        ...     neck=dict(type='FPN', in_channels=[256, 512, 1024, 2048],
        ...               out_channels=256, num_outs=5),
        ...     operator='add')

    Args:
        neck (dict | list[dict]): Config of the neck to wrap, or a list of
            necks applied in turn (as mmdet's ``neck=[FPN, DyHead]``); the
            alignment goes on the outputs of the last. Its outputs must be
            ``(N, C, ...)`` tensors (a sequence of them or one).
        operator (str): ``'add'`` (the paper's feature alignment),
            ``'multiply'`` or ``'concat'``. ``'concat'`` appends
            ``implicit_cfg['channels']`` (default the level's channels)
            constant channels, so the heads' ``in_channels`` must grow by as
            much. Defaults to ``'add'``.
        implicit_cfg (dict, optional): Keyword arguments of the implicit
            layers (``form``, ``init``, ``std``, ``prior_dim``,
            ``num_atoms``, and ``channels`` for concat; see
            :class:`BaseImplicit`). Defaults to the paper's vector form.
        placement (str): ``'outputs'`` (every output level, any neck) or
            ``'output_convs'`` (on the output convs, for the neck types in
            :data:`NECK_OUTPUT_CONVS`). Defaults to ``'outputs'``.
        alignment_levels (int, optional): Number of output levels, with an
            int ``alignment_channels``: skips the probe run.
        alignment_channels (int | list[int], optional): Channels of every
            output level, or of each: skips the probe run.
        **neck_options: Keys of the neck, merged into ``neck`` as mmengine
            merges configs (``--cfg-options model.neck.out_channels=128``
            reaches the FPN).
    """
    wrapped_key = 'neck'

    def __new__(cls,
                neck: Union[dict, List[dict]],
                operator: str = 'add',
                implicit_cfg: Optional[dict] = None,
                placement: str = 'outputs',
                alignment_levels: Optional[int] = None,
                alignment_channels: Union[int, List[int], None] = None,
                **neck_options) -> nn.Module:
        if placement not in PLACEMENTS:
            raise ValueError(f'YOLORNeck: placement must be one of '
                             f'{PLACEMENTS}, got {placement!r}')
        neck = wrapped_options('YOLORNeck', neck, neck_options)
        implicit_cfg = dict(implicit_cfg or {})
        if placement == 'output_convs':
            return _build_output_conv_alignment(neck, operator, implicit_cfg)
        if isinstance(neck, (list, tuple)):
            module = mix_into(
                NeckSequence(*(MODELS.build(cfg) for cfg in neck)), cls)
        else:
            module = build_with_mixin(neck, cls, 'YOLORNeck')
        channels = output_level_channels('YOLORNeck', module,
                                         neck_probe_inputs(neck),
                                         alignment_levels, alignment_channels)
        attach_alignment(module, channels, operator, implicit_cfg)
        return module


def _build_output_conv_alignment(neck: dict, operator: str,
                                 implicit_cfg: dict) -> nn.Module:
    where = "YOLORNeck(placement='output_convs')"
    if operator == 'concat':
        raise ValueError(f"{where} cannot concat: the neck's own convs "
                         f'consume the aligned outputs; use add or multiply')
    if 'channels' in implicit_cfg:
        raise ValueError(f'{where}: implicit_cfg has channels='
                         f"{implicit_cfg['channels']}, but each implicit "
                         f"takes its output conv's channels; remove "
                         f"'channels' (it only sets the width of concat)")
    if isinstance(neck, (list, tuple)):
        raise ValueError(f'{where} wraps one neck, got a list of '
                         f"{len(neck)}; use placement='outputs'")
    convs_name = find_output_convs(resolve_type(neck, 'YOLORNeck'))
    if convs_name is None:
        raise TypeError(
            f'{where} does not know the output convs of {neck["type"]}; '
            f'supported: '
            f'{", ".join(cls.__name__ for cls in NECK_OUTPUT_CONVS)} and '
            f'their subclasses (add an entry to NECK_OUTPUT_CONVS in '
            f"{__name__.replace('.', '/')}.py) or use placement='outputs'.")
    module = build_with_mixin(neck, YOLORNeck, 'YOLORNeck')
    for conv in getattr(module, convs_name):
        conv.implicit_alignment = build_implicit(
            operator, conv.out_channels, dim=1, **implicit_cfg)
        mix_into(conv, OutputConvAlignmentMixin)
    return module
