"""The built-in network: a multi-layer perceptron sized from the data (E3), the input
scaling in front of it, and the inputs of categorical columns (one-hot or embeddings)."""

import math
from functools import partial

import numpy as np
import torch
from torch import nn

from ..core.checkpoint import register_builder

#: Largest ``|mean / scale|`` for which the input scaling may be computed as
#: ``x / scale - mean / scale`` (one kernel, or folded into the first layer): beyond it
#: float32 loses the data's variation to the offset, and ``(x - mean) / scale`` is used.
SMALL_OFFSET = 1e3
#: Categorical columns with at most this many codes (their categories plus "missing"
#: and "rare or unknown") are one-hot encoded; the others get embeddings of
#: EMBEDDING_DIM learned numbers per category. 64 rather than 10: on the real tables of
#: ``benchmarks/realdata.py`` one-hot columns of 11-64 codes gained on sacramento
#: (+0.023 R^2: its zip codes and cities) and hawks, tied elsewhere, and fit faster.
ONE_HOT_MAX = 64
EMBEDDING_DIM = 8


def compress_tails(z, low, high):
    """``z`` within ``[low, high]``, and beyond a bound the bound plus the logarithm of
    the excess (``high + log1p(z - high)``): continuous, increasing, and an extreme
    value lands a few units past the bound instead of millions. numpy or torch."""
    log1p = torch.log1p if isinstance(z, torch.Tensor) else np.log1p
    inside = z.clip(low, high)
    return inside + log1p((z - high).clip(0)) - log1p((low - z).clip(0))

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU, "silu": nn.SiLU,
               "logistic": nn.Sigmoid, "identity": nn.Identity}


@register_builder
def build_mlp(n_features_in, n_outputs, hidden_layer_sizes=(64, 64), activation="relu",
              dropout=0.0, dtype=torch.float32):
    """A fully connected network ``n_features_in -> hidden... -> n_outputs``.

    Parameters
    ----------
    n_features_in : int
        Number of input features.
    n_outputs : int
        Number of outputs (raw: logits or scaled values; the criterion interprets them).
    hidden_layer_sizes : sequence of int, default=(64, 64)
        Width of each hidden layer; empty for a linear model.
    activation : {'relu', 'tanh', 'gelu', 'silu', 'logistic', 'identity'}, default='relu'
    dropout : float in [0, 1), default=0.0
        Dropout after each hidden activation.
    dtype : torch.dtype, default=torch.float32

    Returns
    -------
    torch.nn.Sequential
    """
    layers = []
    width = n_features_in
    for size in hidden_layer_sizes:
        layers += [nn.Linear(width, size, dtype=dtype), ACTIVATIONS[activation]()]
        if dropout:
            layers.append(nn.Dropout(dropout))
        width = size
    layers.append(nn.Linear(width, n_outputs, dtype=dtype))
    return nn.Sequential(*layers)


class InputScaled(nn.Module):
    """A network whose input is standardised first: ``net((x - mean) / scale)``.

    ``mean`` and ``scale`` are float64 buffers, so they travel with the weights in every
    file. float64 inputs are standardised in float64 before the network's dtype;
    float32 ones in float32 (folded into the first layer when predicting).

    Parameters
    ----------
    n_features : int
    net : torch.nn.Module
        The network that receives the standardised input (and any further inputs,
        such as category codes, unchanged).
    fences : bool, default=False
        Also hold ``low`` and ``high`` bounds (float64 buffers, in standardised units,
        infinite by default) beyond which the standardised values are compressed
        logarithmically (:func:`compress_tails`).
    """

    #: Models pickled before the fences existed have no such attribute.
    fences = False

    def __init__(self, n_features, net, fences=False):
        super().__init__()
        self.register_buffer("mean", torch.zeros(n_features, dtype=torch.float64))
        self.register_buffer("scale", torch.ones(n_features, dtype=torch.float64))
        self.fences = fences
        if fences:
            self.register_buffer("low", torch.full((n_features,), -np.inf, dtype=torch.float64))
            self.register_buffer("high", torch.full((n_features,), np.inf, dtype=torch.float64))
        self.net = net

    def _compress(self, scaled):
        if not self.fences:
            return scaled
        return compress_tails(scaled, self.low.to(scaled.dtype), self.high.to(scaled.dtype))

    def _affine(self, dtype):
        """``mean``, ``1 / scale``, ``-mean / scale`` in ``dtype`` and whether the
        one-kernel form is exact enough; recomputed only when the buffers change."""
        key = (dtype, self.mean._version, self.scale._version, self.mean.data_ptr(),
               self.scale.data_ptr())
        if getattr(self, "_key", None) != key:
            # Plain tensors even under inference mode: training may use them later.
            with torch.inference_mode(False), torch.no_grad():
                inverse = self.scale.reciprocal()
                shift = -self.mean * inverse
                # x / s - m / s cancels catastrophically in float32 when the offset is
                # large next to the spread (raw units): then subtract first.
                small = shift.numel() == 0 or float(shift.abs().max()) <= SMALL_OFFSET
                self._cached = (self.mean.to(dtype), inverse.to(dtype), shift.to(dtype), small)
            self._key = key
        return self._cached

    def forward(self, x, *rest):
        if x.dtype == torch.float64 and self.mean.dtype == torch.float64:
            scaled = self._compress((x - self.mean) / self.scale)
            dtype = next((p.dtype for p in self.net.parameters() if p.is_floating_point()),
                         scaled.dtype)
            return self.net(scaled.to(dtype), *rest)
        mean, inverse, shift, small = self._affine(x.dtype)
        first = self.net[0] if isinstance(self.net, nn.Sequential) and len(self.net) else None
        if self.training or not small or not isinstance(first, nn.Linear) or rest or self.fences:
            scaled = torch.addcmul(shift, x, inverse) if small else (x - mean) * inverse
            return self.net(self._compress(scaled), *rest)
        # Predicting: folded into the first layer, W (x - m) / s + b = (W / s) x +
        # (b - (W / s) m), the same function without a pass over the (large) batch.
        weight = first.weight * inverse
        bias = first.weight @ shift
        out = nn.functional.linear(x, weight, bias if first.bias is None else bias + first.bias)
        for layer in self.net[1:]:
            out = layer(out)
        return out


class CategoricalInput(nn.Module):
    """``net`` applied to numeric inputs joined with their rows' encoded categories.

    ``forward(x, codes)``: ``x`` float of shape (n, n_numeric), ``codes`` int64 of shape
    (n, n_categorical), column ``j`` holding codes in ``[0, cardinalities[j])``. Columns
    with at most ``one_hot_max`` codes are one-hot encoded; the others look up
    ``embedding_dim`` learned numbers per code in one shared table (one kernel for all
    columns). ``net`` receives ``n_numeric + encoded_width(...)`` inputs.

    Parameters
    ----------
    net : torch.nn.Module
    cardinalities : sequence of int
    one_hot_max : int or float, default=ONE_HOT_MAX
        ``float('inf')`` one-hot encodes every column.
    embedding_dim : int, default=EMBEDDING_DIM
    neutral_reserved : int, default=0
        Inputs of the first ``neutral_reserved`` codes of each column (missing, rare or
        unknown) start at zero: embeddings of zeros, and zero weights of ``net``'s first
        layer for their one-hot inputs, so that a code never seen in training adds
        nothing. Only for a ``Sequential`` ``net`` starting with ``Linear``.
    n_numeric : int, optional
        Numeric inputs ahead of the one-hot block (needed by ``neutral_reserved``).
    """

    def __init__(self, net, cardinalities, one_hot_max=ONE_HOT_MAX, embedding_dim=EMBEDDING_DIM,
                 neutral_reserved=0, n_numeric=None):
        super().__init__()
        cards = [int(c) for c in cardinalities]
        one_hot = [j for j, c in enumerate(cards) if c <= one_hot_max]
        embedded = [j for j, c in enumerate(cards) if c > one_hot_max]
        self.net = net
        self.embedding_dim = embedding_dim
        for name, columns in (("one_hot", one_hot), ("embedded", embedded)):
            offsets = [0]
            for j in columns[:-1]:
                offsets.append(offsets[-1] + cards[j])
            self.register_buffer(f"{name}_columns", torch.tensor(columns, dtype=torch.long),
                                 persistent=False)
            self.register_buffer(f"{name}_offsets", torch.tensor(offsets[:len(columns)],
                                                                 dtype=torch.long),
                                 persistent=False)
        self.one_hot_width = sum(cards[j] for j in one_hot)
        self.all_one_hot, self.all_embedded = len(one_hot) == len(cards), len(embedded) == len(
            cards)
        self.embedding = (nn.Embedding(sum(cards[j] for j in embedded), embedding_dim)
                          if embedded else None)
        if neutral_reserved:
            self._neutral(neutral_reserved, n_numeric)

    @staticmethod
    def encoded_width(cardinalities, one_hot_max=ONE_HOT_MAX, embedding_dim=EMBEDDING_DIM):
        """Number of inputs the categories add: one-hot widths plus embeddings."""
        return sum(c if c <= one_hot_max else embedding_dim for c in map(int, cardinalities))

    @torch.no_grad()
    def _neutral(self, reserved, n_numeric, net=None):
        """Zero the reserved codes' embeddings and the weights of their one-hot inputs in
        the first layer of ``net`` (default: this module's), which reads ``n_numeric``
        inputs ahead of the one-hot block."""
        if self.embedding is not None:
            for offset in self.embedded_offsets.tolist():
                self.embedding.weight[offset:offset + reserved] = 0.0
        net = self.net if net is None else net
        first = net[0] if isinstance(net, nn.Sequential) and len(net) else None
        if isinstance(first, nn.Linear) and n_numeric is not None:
            for offset in self.one_hot_offsets.tolist():
                first.weight[:, n_numeric + offset:n_numeric + offset + reserved] = 0.0

    def _embedded_index(self, codes):
        """Rows of the shared embedding table for the embedded columns' codes."""
        index = codes if self.all_embedded else codes.index_select(1, self.embedded_columns)
        return index + self.embedded_offsets

    def encode(self, codes, dtype, embedded_index=None):
        """The float inputs of ``codes``: one-hot block, then embeddings
        (``embedded_index``: :meth:`_embedded_index` when the caller has it already)."""
        parts = []
        if len(self.one_hot_columns):
            index = codes if self.all_one_hot else codes.index_select(1, self.one_hot_columns)
            block = torch.zeros(len(codes), self.one_hot_width, dtype=dtype, device=codes.device)
            parts.append(block.scatter_(1, index + self.one_hot_offsets, 1.0))
        if self.embedding is not None:
            if embedded_index is None:
                embedded_index = self._embedded_index(codes)
            vectors = nn.functional.embedding(embedded_index, self.embedding.weight)
            parts.append(vectors.flatten(1).to(dtype))
        return parts

    def forward(self, x, codes):
        return self.net(torch.cat([x, *self.encode(codes, x.dtype)], dim=1))

    def manual_inputs(self, x, codes):
        """The MLP's input for the hand-written gradients of
        :func:`~sktorch_auto.core.manual.manual_step`: ``(input, columns, backward)``,
        ``backward`` accumulating the embeddings' gradient (None without embeddings)."""
        if codes.dtype != torch.long or x.dim() != 2:
            return None
        index = None if self.embedding is None else self._embedded_index(codes)
        full = torch.cat([x, *self.encode(codes, x.dtype, index)], dim=1)
        if self.embedding is None:
            return full, None, None
        index = index.reshape(-1)
        width = len(self.embedded_offsets) * self.embedding_dim

        return full, slice(full.shape[1] - width, None), partial(
            self._embedding_backward, index)

    def _embedding_backward(self, index, grad):
        """Set the embedding table's gradient from the loss's gradient for the embedded
        inputs (``index``: the flat table rows of :meth:`_embedded_index`)."""
        weight = self.embedding.weight
        rows = grad.reshape(-1, self.embedding_dim).to(weight.dtype)
        weight.grad = torch.zeros_like(weight).index_add_(0, index, rows)


#: ``numeric_embedding='periodic'``: each numeric input ``x`` also enters the network as
#: ``PERIODIC_DIM`` learned combinations of ``cos(2 pi (w x + b))`` for
#: ``PERIODIC_FREQUENCIES`` learned frequencies ``w`` (drawn from N(0, PERIODIC_SIGMA) in
#: standardised units) and phases ``b``: the "PBLD" embedding of RealMLP (Holzmueller et
#: al. 2024), after Gorishniy et al. 2022 ("On embeddings for numerical features").
PERIODIC_FREQUENCIES = 16
PERIODIC_DIM = 4
PERIODIC_SIGMA = 0.1
#: ``numeric_embedding='auto'`` embeds a table's numeric columns when there are at most
#: this many to embed: each widens the first layer fivefold, and an epoch of the default
#: network costs 1.7x as much with 8 embedded columns, 3.3x with 32 and 3.7x with 64
#: (10,000 rows, measured), more for wider tables.
PERIODIC_AUTO_MAX_COLUMNS = 64
#: Numbers the float64 evaluation path of the periodic embeddings holds at once (it takes
#: the rows of a prediction batch a chunk at a time).
EVAL_CHUNK_ELEMENTS = 2**22


class TabularInput(nn.Module):
    """``net`` applied to numeric inputs, their periodic embeddings and their rows'
    encoded categories.

    ``forward(x, codes=None)``: ``net`` receives ``[x, one-hot categories, category
    embeddings, periodic embeddings of x's periodic columns]`` (see
    :class:`CategoricalInput` for the categories and :data:`PERIODIC_FREQUENCIES` for the
    embeddings), ``n_numeric + n_periodic * PERIODIC_DIM +
    CategoricalInput.encoded_width(cardinalities, ...)`` columns.

    Parameters
    ----------
    net : torch.nn.Module
    n_numeric : int
    cardinalities : sequence of int, default=()
    one_hot_max, embedding_dim, neutral_reserved
        As in :class:`CategoricalInput`.
    periodic_columns : sequence of int, optional
        The numeric inputs that get embeddings (default: all); the others (0/1 columns
        such as missing-value indicators, whose two values the plain input already
        tells apart) enter as they are.
    """

    def __init__(self, net, n_numeric, cardinalities=(), one_hot_max=ONE_HOT_MAX,
                 embedding_dim=EMBEDDING_DIM, neutral_reserved=0, periodic_columns=None):
        super().__init__()
        self.net = net
        self.n_numeric = int(n_numeric)
        columns = (list(range(self.n_numeric)) if periodic_columns is None
                   else [int(j) for j in periodic_columns])
        self.all_periodic = columns == list(range(self.n_numeric))
        self.register_buffer("periodic_columns", torch.tensor(columns, dtype=torch.long),
                             persistent=False)
        n = self.n_periodic = len(columns)
        k, d = PERIODIC_FREQUENCIES, PERIODIC_DIM
        params = list(net.parameters())
        dtype = params[0].dtype if params else torch.float32
        self.frequency = nn.Parameter(torch.randn(n, k, dtype=dtype) * PERIODIC_SIGMA)
        self.phase = nn.Parameter(torch.rand(n, k, dtype=dtype))
        self.mix = nn.Parameter(torch.randn(n, k, d, dtype=dtype) / math.sqrt(k))
        self.mix_bias = nn.Parameter(torch.zeros(n, d, dtype=dtype))
        self.categorical = (CategoricalInput(nn.Identity(), cardinalities, one_hot_max,
                                             embedding_dim) if len(cardinalities) else None)
        if neutral_reserved and self.categorical is not None:
            self.categorical._neutral(neutral_reserved, self.n_numeric, self.net)

    def __setstate__(self, state):
        super().__setstate__(state)
        if "n_periodic" not in self.__dict__:  # pickled before periodic_columns existed
            self.n_periodic, self.all_periodic = self.n_numeric, True
            self.register_buffer("periodic_columns", torch.arange(self.n_numeric),
                                 persistent=False)

    @staticmethod
    def encoded_width(n_numeric, cardinalities=(), one_hot_max=ONE_HOT_MAX,
                      embedding_dim=EMBEDDING_DIM, n_periodic=None):
        """Number of inputs of ``net`` (``n_periodic``: embedded columns, default all)."""
        n_periodic = n_numeric if n_periodic is None else n_periodic
        return n_numeric + n_periodic * PERIODIC_DIM + CategoricalInput.encoded_width(
            cardinalities, one_hot_max, embedding_dim)

    def _embedded(self, x):
        """The columns of ``x`` that get embeddings."""
        return x if self.all_periodic else x.index_select(1, self.periodic_columns)

    def _angles(self, x):
        """``2 pi (w x + b)`` of every embedded input (``x``: those columns only) and
        frequency, shape (n_periodic, frequencies, rows): rows last, so that the batched
        products below have the long dimension last (5-8x faster on the CPU than rows
        in the middle)."""
        turn = 2 * math.pi
        return torch.addcmul((self.phase * turn).unsqueeze(2), x.t().unsqueeze(1),
                             (self.frequency * turn).unsqueeze(2))

    def _periodic(self, x, cos=None):
        """The embeddings of ``x`` (the embedded columns only), shape (rows, n_periodic *
        PERIODIC_DIM) (``cos``: the cosines of :meth:`_angles` when the caller has them).

        In evaluation each row's embedding must not depend on the other rows of its
        batch, and in float32 it would, in the last bits: the vectorised and the scalar
        code paths of torch's kernels (which one a row takes depends on its position)
        round differently. So there the angles, cosines and their mixing are computed in
        float64 and rounded to float32 at the end.
        """
        mix, bias = self.mix.transpose(1, 2), self.mix_bias.unsqueeze(2)
        if cos is None and not self.training:
            # a few rows at a time: the cosines hold rows x n_periodic x frequencies numbers
            rows = max(1, EVAL_CHUNK_ELEMENTS // max(1, self.n_periodic * self.mix[0].numel()))
            if len(x) > rows:
                return torch.cat([self._periodic(x[i:i + rows])
                                  for i in range(0, len(x), rows)])
            turn = 2 * math.pi
            angles = torch.addcmul((self.phase.double() * turn).unsqueeze(2),
                                   x.t().double().unsqueeze(1),
                                   (self.frequency.double() * turn).unsqueeze(2))
            mixed = torch.baddbmm(bias.double(), mix.double(), torch.cos(angles)).to(x.dtype)
        else:
            cos = torch.cos(self._angles(x)) if cos is None else cos
            mixed = torch.baddbmm(bias, mix, cos)  # (n_periodic, dim, rows)
        return mixed.permute(2, 0, 1).reshape(len(x), -1)

    def _parts(self, x, codes, index=None):
        parts = [x]
        if self.categorical is not None:
            parts += self.categorical.encode(codes, x.dtype, index)
        return parts

    def forward(self, x, codes=None):
        parts = self._parts(x, codes)
        if self.n_periodic:
            parts.append(self._periodic(self._embedded(x)))
        return self.net(torch.cat(parts, dim=1))

    def manual_inputs(self, x, codes=None):
        """The MLP's input for :func:`~sktorch_auto.core.manual.manual_step`, and the
        backward pass of the embeddings (periodic ones and categories')."""
        if x.dim() != 2 or (self.categorical is not None and (
                codes is None or codes.dtype != torch.long)):
            return None
        cat = self.categorical
        index = None if cat is None or cat.embedding is None else cat._embedded_index(codes)
        parts = self._parts(x, codes, index)
        angles = cos = embedded = None
        if self.n_periodic:
            embedded = self._embedded(x)
            angles = self._angles(embedded)
            cos = torch.cos(angles)
            parts.append(self._periodic(embedded, cos))
        full = torch.cat(parts, dim=1)
        n_cat = 0 if index is None else index.shape[1] * cat.embedding_dim
        n_periodic = self.n_periodic * PERIODIC_DIM
        if not n_cat + n_periodic:
            return full, None, None

        def backward(grad):
            if n_cat:
                cat._embedding_backward(index.reshape(-1), grad[:, :n_cat])
            if n_periodic:
                self._periodic_backward(embedded, angles, cos, grad[:, n_cat:])

        return full, slice(full.shape[1] - n_cat - n_periodic, None), backward

    def _periodic_backward(self, x, angles, cos, grad):
        """Set the periodic embeddings' gradients from ``grad`` (rows, n_periodic * dim;
        ``x``: the embedded columns; ``angles`` and ``cos``: (n_periodic, frequencies,
        rows))."""
        # contiguous, rows last: batched products of strided views take a slow path
        g = grad.reshape(len(x), self.n_periodic, PERIODIC_DIM).permute(1, 2, 0).contiguous()
        self.mix.grad = torch.bmm(g, cos.transpose(1, 2)).transpose(1, 2).contiguous()
        self.mix_bias.grad = g.sum(2)
        g_angles = torch.bmm(self.mix, g).mul_(torch.sin(angles)).mul_(-2 * math.pi)
        self.phase.grad = g_angles.sum(2)
        self.frequency.grad = torch.bmm(g_angles, x.t().unsqueeze(2)).squeeze(2)


def build_periodic_mlp(n_features_in, n_outputs, cardinalities=(), hidden_layer_sizes=(64, 64),
                       activation="relu", dropout=0.0, one_hot_max=None, embedding_dim=None,
                       periodic_columns=None):
    """The built-in MLP with periodic embeddings of its ``n_features_in`` numeric inputs
    (those of ``periodic_columns``, default all; and categorical columns of these
    ``cardinalities``), see :class:`TabularInput`."""
    one_hot_max = ONE_HOT_MAX if one_hot_max is None else one_hot_max
    embedding_dim = EMBEDDING_DIM if embedding_dim is None else embedding_dim
    n_periodic = None if periodic_columns is None else len(periodic_columns)
    width = TabularInput.encoded_width(n_features_in, cardinalities, one_hot_max, embedding_dim,
                                       n_periodic)
    mlp = build_mlp(width, n_outputs, hidden_layer_sizes, activation, dropout)
    return TabularInput(mlp, n_features_in, cardinalities, one_hot_max, embedding_dim,
                        neutral_reserved=2, periodic_columns=periodic_columns)


def build_categorical_mlp(n_features_in, n_outputs, cardinalities, hidden_layer_sizes=(64, 64),
                          activation="relu", dropout=0.0, one_hot_max=None, embedding_dim=None):
    """The built-in MLP for ``n_features_in`` numeric inputs and categorical columns.

    Parameters
    ----------
    n_features_in : int
        Numeric inputs.
    n_outputs : int
    cardinalities : sequence of int
        Codes of each categorical column.
    hidden_layer_sizes, activation, dropout
        As in :func:`build_mlp`.
    one_hot_max, embedding_dim : optional
        As in :class:`CategoricalInput`; by default :data:`ONE_HOT_MAX` and
        :data:`EMBEDDING_DIM`.

    Returns
    -------
    CategoricalInput
    """
    one_hot_max = ONE_HOT_MAX if one_hot_max is None else one_hot_max
    embedding_dim = EMBEDDING_DIM if embedding_dim is None else embedding_dim
    width = n_features_in + CategoricalInput.encoded_width(cardinalities, one_hot_max,
                                                           embedding_dim)
    mlp = build_mlp(width, n_outputs, hidden_layer_sizes, activation, dropout)
    return CategoricalInput(mlp, cardinalities, one_hot_max, embedding_dim, neutral_reserved=2,
                            n_numeric=n_features_in)
