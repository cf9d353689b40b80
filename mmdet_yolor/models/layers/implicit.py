# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Implicit knowledge layers of YOLOR (arXiv 2105.04206).

An implicit layer owns a learned representation ``g(z)`` that does not depend
on the input: one value per channel. It is combined with an explicit feature
``x`` by an operator: ``ImplicitA`` adds (``x + g``), ``ImplicitM`` multiplies
(``x * g``) and ``ImplicitC`` concatenates (``cat([x, g])``) along the channel
dimension.

``g(z)`` is modelled in one of the paper's three forms (section 4.2):

- ``'vector'``: ``g = z``, one free parameter per channel;
- ``'nn'``: ``g = offset + W z``, a latent ``z`` of ``prior_dim`` values
  projected by a learned ``W`` (the paper uses ``prior_dim = 2 * channels``);
- ``'mf'``: ``g = offset + Z^T c``, a basis ``Z`` of ``num_atoms`` vectors
  mixed by learned coefficients ``c`` (matrix factorization).

``offset`` is the operator's neutral element (0 for add and concat, 1 for
multiply), so every form starts near the identity. Parameters are never named
``weight`` or ``bias``: mmdet heads initialise every ``weight`` below a named
layer (``init_cfg`` ``override``), which must not touch implicit knowledge.
"""
from typing import Optional

import torch
from mmdet.registry import MODELS
from mmengine.model import BaseModule
from torch import Tensor, nn

from ...errors import InputError
from ..eager_frames import eager_at_top_level, skip_dynamo_frames

IMPLICIT_FORMS = ('vector', 'nn', 'mf')
IMPLICIT_INITS = ('paper', 'identity')
# Every module attribute holding implicit layers starts with this prefix
# (``implicit_alignment``, ``implicit_a``, ``implicit_m``), so the optimizer
# finds their parameters by name (``paramwise_cfg.custom_keys``).
IMPLICIT_MODULE_PREFIX = 'implicit_'


def is_implicit_parameter(name: str) -> bool:
    """Whether the parameter or state-dict key ``name``
    (``neck.implicit_alignment.0.implicit``) belongs to an implicit layer:
    one of its module names starts with :data:`IMPLICIT_MODULE_PREFIX`.
    The one test of it in the package; the optimizer's ``custom_keys`` match
    the prefix as a substring, which agrees for every module name the
    plugin gives."""
    return any(
        part.startswith(IMPLICIT_MODULE_PREFIX) for part in name.split('.'))


class BaseImplicit(BaseModule):
    """Learned, input-independent representation ``g(z)`` of ``channels``
    values, combined with a feature map by :meth:`combine`.

    Args:
        channels (int): Number of values of ``g(z)``. For add and multiply it
            must equal the channel count of the feature it meets.
        form (str): How ``g(z)`` is modelled: ``'vector'``, ``'nn'`` or
            ``'mf'`` (see module docstring). Defaults to ``'vector'``.
        prior_dim (int, optional): Length of the latent ``z`` of the ``'nn'``
            form. Defaults to ``2 * channels`` as in the paper.
        num_atoms (int): Number of basis vectors of the ``'mf'`` form.
            Defaults to 4.
        init (str): ``'paper'`` draws ``g`` from ``N(offset, std)`` (section
            4.3); ``'identity'`` makes ``g`` exactly ``offset`` (add 0,
            multiply 1), so a model warm-started from a baseline checkpoint
            starts with the baseline's outputs. Defaults to ``'paper'``.
        std (float): Standard deviation of ``g`` under ``'paper'`` init.
            Defaults to 0.02.
        dim (int): Channel dimension of the tensors this layer meets: 1 for
            ``(N, C, H, W)`` feature maps, -1 for ``(..., C)`` inputs of
            ``nn.Linear``. Defaults to 1.
    """

    # Neutral element of the operator; ``g`` is initialised around it.
    offset = 0.0

    def __init__(self,
                 channels: int,
                 form: str = 'vector',
                 prior_dim: Optional[int] = None,
                 num_atoms: int = 4,
                 init: str = 'paper',
                 std: float = 0.02,
                 dim: int = 1) -> None:
        super().__init__()
        skip_dynamo_frames()  # the code YOLOR runs around mmdet's layers
        if form not in IMPLICIT_FORMS:
            raise ValueError(f'{type(self).__name__}: form must be one of '
                             f'{IMPLICIT_FORMS}, got {form!r}')
        if init not in IMPLICIT_INITS:
            raise ValueError(f'{type(self).__name__}: init must be one of '
                             f'{IMPLICIT_INITS}, got {init!r}')
        self.channels = channels
        # Set once the value was folded into a neighbouring layer: folding
        # it again would apply it twice.
        self.folded = False
        self.form = form
        self.init = init
        self.std = std
        self.dim = dim
        if form == 'vector':
            self.implicit = nn.Parameter(torch.empty(channels))
        elif form == 'nn':
            self.prior_dim = prior_dim or 2 * channels
            self.latent = nn.Parameter(torch.empty(self.prior_dim))
            self.projection = nn.Parameter(
                torch.empty(channels, self.prior_dim))
        else:
            self.num_atoms = num_atoms
            self.coefficients = nn.Parameter(torch.empty(num_atoms))
            self.basis = nn.Parameter(torch.empty(num_atoms, channels))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Initialise ``g`` as chosen by ``init`` (``'paper'`` or
        ``'identity'``).

        The latent ``z`` and coefficients ``c`` are drawn from ``N(0, 1)``;
        the projection ``W`` and basis ``Z`` from ``N(0, std / |z|)`` and
        ``N(0, std / |c|)``, so that every value of ``g - offset`` follows
        ``N(0, std)`` exactly as in the vector form. Identity init zeroes
        ``W`` (``'nn'``) or ``c`` (``'mf'``): ``g`` is then exactly
        ``offset`` while gradients still reach the zeroed parameter.
        """
        with torch.no_grad():
            if self.form == 'vector':
                self.implicit.normal_(self.offset, self.std)
            elif self.form == 'nn':
                self.latent.normal_(0, 1)
                self.projection.normal_(0,
                                        float(self.std / self.latent.norm()))
            else:
                self.coefficients.normal_(0, 1)
                self.basis.normal_(0,
                                   float(self.std / self.coefficients.norm()))
        if self.init == 'identity':
            self.make_identity()

    @torch.no_grad()
    def make_identity(self) -> None:
        """Make ``g`` exactly ``offset`` (add 0, multiply 1)."""
        if self.form == 'vector':
            self.implicit.fill_(self.offset)
        elif self.form == 'nn':
            self.projection.zero_()
        else:
            self.coefficients.zero_()

    def value(self) -> Tensor:
        """``g(z)`` as a constant, shape ``(channels, )``, for folding."""
        return self.representation().detach()

    def mark_folded(self) -> None:
        """Record that a neighbouring layer absorbed ``g``: make this layer
        the identity, so the model computes the same outputs, and remember
        it, so it is neither folded again nor kept by ``strip``."""
        self.make_identity()
        self.folded = True

    def init_weights(self) -> None:
        """Re-initialise after a parent's ``init_weights``, which may have
        overwritten matrix-shaped parameters (``DIIHead`` xavier-initialises
        every parameter with ``dim() > 1``)."""
        super().init_weights()
        self.reset_parameters()

    @eager_at_top_level
    def representation(self) -> Tensor:
        """Return ``g(z)``, the implicit values, as a tensor of shape
        ``(channels, )``."""
        if self.form == 'vector':
            return self.implicit
        if self.form == 'nn':
            return self.offset + self.projection @ self.latent
        return self.offset + self.basis.t() @ self.coefficients

    @eager_at_top_level
    def broadcastable(self, x: Tensor) -> Tensor:
        """Return ``g(z)`` shaped to broadcast against ``x`` along ``dim``:
        ``(C, 1, ..., 1)`` for the channels of ``(N, C, ...)``, ``(C, )``
        for the last dimension, in ``x``'s dtype (autocast). Kept to as few
        tensor calls as it takes: the implicits run once per level of every
        prediction layer, where per-call overhead is what they cost."""
        g = self.representation()
        if self.dim != -1 and self.dim != x.dim() - 1:
            g = g.view((self.channels, ) + (1, ) * (x.dim() - 1 - self.dim))
        return g if g.dtype == x.dtype else g.to(x.dtype)

    @eager_at_top_level
    def check_channels(self, x: Tensor) -> None:
        """Raise a clear error if ``x`` does not have ``channels`` channels
        along ``dim``."""
        if x.dim() == 0 or x.shape[self.dim] != self.channels:
            raise InputError(
                f'{type(self).__name__} was built for {self.channels} '
                f'channels but met a tensor of shape {tuple(x.shape)} '
                f'(channel dim {self.dim}). Set its channels to the '
                f'out_channels of the layer that feeds it.')

    def extra_repr(self) -> str:
        return (f'channels={self.channels}, form={self.form!r}, '
                f'init={self.init!r}, dim={self.dim}')


@MODELS.register_module()
class ImplicitA(BaseImplicit):
    """Implicit addition: ``y = x + g(z)`` (feature alignment, and the input
    of a prediction layer in prediction refinement).

    Shape:
        - x: ``(N, C, H, W)`` with ``dim=1`` or ``(..., C)`` with ``dim=-1``.
        - output: same shape as ``x``.
    """

    offset = 0.0

    @eager_at_top_level
    def forward(self, x: Tensor) -> Tensor:
        self.check_channels(x)
        return self.combine(x, self.broadcastable(x))

    @staticmethod
    @eager_at_top_level
    def combine(x: Tensor, g: Tensor) -> Tensor:
        """``x + g`` for ``g`` broadcastable against ``x``."""
        return x + g


@MODELS.register_module()
class ImplicitM(BaseImplicit):
    """Implicit multiplication: ``y = x * g(z)`` (the raw output of a
    prediction layer in prediction refinement).

    Shape:
        - x: ``(N, C, H, W)`` with ``dim=1`` or ``(..., C)`` with ``dim=-1``.
        - output: same shape as ``x``.
    """

    offset = 1.0

    @eager_at_top_level
    def forward(self, x: Tensor) -> Tensor:
        self.check_channels(x)
        return self.combine(x, self.broadcastable(x))

    @staticmethod
    @eager_at_top_level
    def combine(x: Tensor, g: Tensor) -> Tensor:
        """``x * g`` for ``g`` broadcastable against ``x``."""
        return x * g


@MODELS.register_module()
class ImplicitC(BaseImplicit):
    """Implicit concatenation: ``y = cat([x, g(z)], dim)``, ``g`` repeated
    over every other position. ``channels`` is the number of channels
    appended, independent of ``x``.

    Shape:
        - x: ``(N, C, H, W)`` with ``dim=1`` or ``(..., C)`` with ``dim=-1``.
        - output: ``(N, C + channels, H, W)`` or ``(..., C + channels)``.
    """

    offset = 0.0

    def forward(self, x: Tensor) -> Tensor:
        return self.combine(x, self.broadcastable(x))

    @eager_at_top_level
    def combine(self, x: Tensor, g: Tensor) -> Tensor:
        """``cat([x, g], dim)``, ``g`` (broadcastable against ``x``)
        repeated over every other position."""
        expanded = list(x.shape)
        expanded[self.dim] = self.channels
        return torch.cat([x, g.expand(expanded)], dim=self.dim)


IMPLICIT_OPERATORS = {
    'add': ImplicitA,
    'multiply': ImplicitM,
    'concat': ImplicitC,
}


def build_implicit(operator: str, channels: int, **kwargs) -> BaseImplicit:
    """Build the implicit layer of ``operator`` (``'add'``, ``'multiply'`` or
    ``'concat'``) with ``channels`` values; ``kwargs`` go to
    :class:`BaseImplicit`."""
    if operator not in IMPLICIT_OPERATORS:
        raise ValueError(f'implicit operator must be one of '
                         f'{tuple(IMPLICIT_OPERATORS)}, got {operator!r}')
    return IMPLICIT_OPERATORS[operator](channels, **kwargs)


def reset_implicits(module: nn.Module) -> None:
    """Re-initialise every implicit layer in ``module``: after the
    ``init_weights`` of a module that initialises every parameter
    (``DIIHead`` xavier-initialises all matrices), implicits keep their
    own initialisation."""
    for child in module.modules():
        if isinstance(child, BaseImplicit):
            child.reset_parameters()
