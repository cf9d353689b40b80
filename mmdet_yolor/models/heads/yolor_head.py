# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""YOLORHead: implicit prediction refinement for mmdet heads.

As the official ``IDetect`` does per level (``ImplicitM(Conv1x1(ImplicitA(
x)))``), every final prediction layer of a head gets an add-implicit on its
input and a multiply-implicit on its raw output. :data:`PREDICTION_LAYERS`
is the one place that says which layers those are for each head type.
"""
from dataclasses import dataclass
from typing import Iterator, List, Optional, Tuple

from mmdet.registry import MODELS
from torch import Tensor, nn

from ..layers import ImplicitA, ImplicitM
from ..wrapping import build_with_mixin, resolve_type


@dataclass(frozen=True)
class PredictionLayers:
    """Where a head type makes its predictions.

    Attributes:
        names (tuple[str]): Attributes of the head holding its final
            prediction layers (``nn.Conv2d`` or ``nn.Linear``). Empty for a
            head that predicts nothing from features.
        shared_across_levels (bool): True when the head applies the same
            layers to every pyramid level, calling ``forward_single`` once
            per level in order; each level then gets its own implicits.
    """
    names: Tuple[str, ...]
    shared_across_levels: bool = False


# Final prediction layers of each supported head type. A head type not listed
# is looked up along its class hierarchy (``Shared2FCBBoxHead`` is found as
# ``BBoxHead``, ``HTCMaskHead`` as ``FCNMaskHead``). To support a new head,
# add one entry and a test in tests/test_models/test_heads/.
PREDICTION_LAYERS = {
    # dense heads: one set of convs shared by every pyramid level
    'RPNHead': PredictionLayers(('rpn_cls', 'rpn_reg'), True),
    'RetinaHead': PredictionLayers(('retina_cls', 'retina_reg'), True),
    'FCOSHead': PredictionLayers(('conv_cls', 'conv_reg', 'conv_centerness'),
                                 True),
    'ATSSHead': PredictionLayers(('atss_cls', 'atss_reg', 'atss_centerness'),
                                 True),
    # RoI heads: the Linear classifier and regressor of each RoI
    # (ConvFCBBoxHead, Shared2FCBBoxHead, Shared4Conv1FCBBoxHead, DIIHead)
    'BBoxHead': PredictionLayers(('fc_cls', 'fc_reg')),
    'FCNMaskHead': PredictionLayers(('conv_logits', )),
    # Sparse R-CNN's proposals are learned embeddings: input-independent
    # already, with no prediction layer to refine.
    'EmbeddingRPNHead': PredictionLayers(()),
}


def find_prediction_layers(head_type: type) -> Optional[PredictionLayers]:
    """Return the :data:`PREDICTION_LAYERS` entry of ``head_type`` or of its
    nearest listed base class, or None if the type is not supported."""
    for cls in head_type.__mro__:
        if cls.__name__ in PREDICTION_LAYERS:
            return PREDICTION_LAYERS[cls.__name__]
    return None


def unsupported_head_message(head_type: type) -> str:
    return (f'YOLORHead does not support head type {head_type.__name__!r}. '
            f'Supported types and their subclasses: '
            f'{", ".join(sorted(PREDICTION_LAYERS))}. To add one, list the '
            f'attributes holding its final prediction layers in '
            f'PREDICTION_LAYERS in {__name__.replace(".", "/")}.py.')


def _layer_channels(layer: nn.Module, where: str) -> Tuple[int, int, int]:
    """Return ``(in_channels, out_channels, channel_dim)`` of a prediction
    layer."""
    if isinstance(layer, nn.Conv2d):
        return layer.in_channels, layer.out_channels, 1
    if isinstance(layer, nn.Linear):
        return layer.in_features, layer.out_features, -1
    raise TypeError(f'{where} is a {type(layer).__name__}; prediction '
                    'refinement supports nn.Conv2d and nn.Linear layers. Fix '
                    'its entry in PREDICTION_LAYERS.')


def input_add_folds(layer: nn.Module) -> bool:
    """Whether an add on the input of ``layer`` folds exactly into its bias:
    true for ``nn.Linear`` and 1x1 convs without padding. A kxk conv with
    zero padding sees the added constant only inside its padding border."""
    if isinstance(layer, nn.Linear):
        return True
    return (isinstance(layer, nn.Conv2d) and layer.kernel_size == (1, 1)
            and layer.padding == (0, 0))


INPUT_IMPLICIT_MODES = ('all', 'foldable', 'none')


def _add_implicit_to_input(layer: nn.Module, inputs: tuple) -> tuple:
    """Forward pre-hook: ``x -> ImplicitA_level(x)``."""
    x, *rest = inputs
    return (layer.implicit_a[layer.implicit_level](x), *rest)


def _multiply_implicit_onto_output(layer: nn.Module, inputs: tuple,
                                   output: Tensor) -> Tensor:
    """Forward hook: ``y -> ImplicitM_level(y)``; then move on to the next
    pyramid level (a shared layer is called once per level, in order)."""
    output = layer.implicit_m[layer.implicit_level](output)
    layer.implicit_level = (layer.implicit_level + 1) % len(layer.implicit_m)
    return output


def attach_prediction_refinement(layer: nn.Module,
                                 num_levels: int,
                                 implicit_cfg: dict,
                                 where: str,
                                 input_implicit: bool = True) -> None:
    """Give ``layer`` one ImplicitA on its input (if ``input_implicit``) and
    one ImplicitM on its output per level, applied by forward hooks.

    The implicits are children of ``layer`` (keys ``<layer>.implicit_a.<l>``
    and ``<layer>.implicit_m.<l>``) and the layer keeps its type and keys, so
    ``init_cfg`` overrides by name or layer type treat it as before. The hooks
    are module-level functions reading the layer they are called with, so
    ``copy.deepcopy`` (EMA) copies them correctly.
    """
    in_channels, out_channels, dim = _layer_channels(layer, where)
    if input_implicit:
        layer.implicit_a = nn.ModuleList(
            ImplicitA(in_channels, dim=dim, **implicit_cfg)
            for _ in range(num_levels))
        layer.register_forward_pre_hook(_add_implicit_to_input)
    layer.implicit_m = nn.ModuleList(
        ImplicitM(out_channels, dim=dim, **implicit_cfg)
        for _ in range(num_levels))
    layer.implicit_level = 0
    layer.register_forward_hook(_multiply_implicit_onto_output)


class YOLORHeadMixin:
    """Mixed into a head type by :func:`build_yolor_head`; see there."""

    def refined_layers(self) -> Iterator[nn.Module]:
        """Yield the prediction layers that carry implicit refinement."""
        for name in self.yolor_prediction_layers:
            yield getattr(self, name)

    def implicit_modules(self) -> Iterator[nn.Module]:
        """Yield the implicit layers of the prediction layers."""
        for layer in self.refined_layers():
            yield from getattr(layer, 'implicit_a', ())
            yield from getattr(layer, 'implicit_m', ())

    def forward(self, *args, **kwargs):
        # A forward starts at the first pyramid level, even if an earlier
        # call was interrupted between levels.
        for layer in self.refined_layers():
            layer.implicit_level = 0
        return super().forward(*args, **kwargs)

    def init_weights(self) -> None:
        # The head may re-initialise every parameter (DIIHead xavier-inits
        # all matrices), so the implicits are reset afterwards.
        super().init_weights()
        for implicit in self.implicit_modules():
            implicit.reset_parameters()


@MODELS.register_module(name='YOLORHead')
def build_yolor_head(head: dict,
                     implicit_cfg: Optional[dict] = None,
                     share_across_levels: bool = False,
                     input_implicit: str = 'all',
                     **head_kwargs) -> nn.Module:
    """Build ``head`` with YOLOR implicit prediction refinement; registered
    in ``MODELS`` as ``'YOLORHead'``.

    The result is an instance of ``YOLOR<HeadType>``, a subclass of the
    configured head type: mmdet's loss, predict, test-time augmentation and
    ``init_weights`` run unchanged, every state-dict key of the original head
    is kept, and each final prediction layer (see :data:`PREDICTION_LAYERS`)
    computes ``ImplicitM(layer(ImplicitA(x)))``.

    Example:
        >>> bbox_head = dict(
        ...     type='YOLORHead',
        ...     head=dict(type='FCOSHead', num_classes=80, in_channels=256),
        ...     implicit_cfg=dict(form='vector', init='paper'))

    Args:
        head (dict): Config of the head to wrap.
        implicit_cfg (dict, optional): Keyword arguments of the implicit
            layers (``form``, ``init``, ``std``, ``prior_dim``,
            ``num_atoms``; see :class:`BaseImplicit`). Defaults to the
            paper's vector form and initialisation.
        share_across_levels (bool): For heads whose prediction layers serve
            every pyramid level, use one implicit pair for all levels instead
            of one per level. Shared implicits fold exactly into the shared
            layer (see ``mmdet_yolor.deploy``). Defaults to False.
        input_implicit (str): Where prediction layers get the ImplicitA on
            their input: ``'all'`` (the official ``IDetect`` pattern),
            ``'foldable'`` (only where it folds exactly into the layer:
            ``nn.Linear`` and unpadded 1x1 convs, not the padded 3x3 convs
            of FCOS/ATSS) or ``'none'``. Defaults to ``'all'``.
        **head_kwargs: Merged into ``head``. mmdet detectors inject
            ``train_cfg``, ``test_cfg`` and ``num_classes`` this way.

    Returns:
        nn.Module: The head, of type ``YOLOR<HeadType>``.
    """
    if input_implicit not in INPUT_IMPLICIT_MODES:
        raise ValueError(f'YOLORHead: input_implicit must be one of '
                         f'{INPUT_IMPLICIT_MODES}, got {input_implicit!r}')
    head = {**head, **head_kwargs}
    head_type = resolve_type(head, 'YOLORHead')
    entry = find_prediction_layers(head_type)
    if entry is None:
        raise TypeError(unsupported_head_message(head_type))
    module = build_with_mixin(head, YOLORHeadMixin, 'YOLORHead')

    num_levels = 1
    if entry.shared_across_levels and not share_across_levels:
        num_levels = module.prior_generator.num_levels
    names: List[str] = []
    for name in entry.names:
        where = f'{head_type.__name__}.{name}'
        layer = getattr(module, name, None)
        if layer is None:
            if hasattr(module, name):  # disabled branch, e.g. with_cls=False
                continue
            raise AttributeError(
                f'{where} does not exist: {head_type.__name__} is matched to '
                f'PREDICTION_LAYERS but names its layers differently; add '
                f'an entry for {head_type.__name__}.')
        with_input = (
            input_implicit == 'all'
            or input_implicit == 'foldable' and input_add_folds(layer))
        attach_prediction_refinement(layer, num_levels, implicit_cfg or {},
                                     where, with_input)
        names.append(name)
    module.yolor_prediction_layers = tuple(names)
    return module
