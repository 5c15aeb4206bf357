"""The built-in network: a multi-layer perceptron sized from the data (E3)."""

import torch
from torch import nn

from ..core.checkpoint import register_builder

#: Largest ``|mean / scale|`` for which the input scaling may be computed as
#: ``x / scale - mean / scale`` (one kernel, or folded into the first layer): beyond it
#: float32 loses the data's variation to the offset, and ``(x - mean) / scale`` is used.
SMALL_OFFSET = 1e3

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
        The network that receives the standardised input.
    """

    def __init__(self, n_features, net):
        super().__init__()
        self.register_buffer("mean", torch.zeros(n_features, dtype=torch.float64))
        self.register_buffer("scale", torch.ones(n_features, dtype=torch.float64))
        self.net = net

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

    def forward(self, x):
        if x.dtype == torch.float64 and self.mean.dtype == torch.float64:
            scaled = (x - self.mean) / self.scale
            dtype = next((p.dtype for p in self.net.parameters() if p.is_floating_point()),
                         scaled.dtype)
            return self.net(scaled.to(dtype))
        mean, inverse, shift, small = self._affine(x.dtype)
        first = self.net[0] if isinstance(self.net, nn.Sequential) and len(self.net) else None
        if self.training or not small or not isinstance(first, nn.Linear):
            scaled = torch.addcmul(shift, x, inverse) if small else (x - mean) * inverse
            return self.net(scaled)
        # Predicting: folded into the first layer, W (x - m) / s + b = (W / s) x +
        # (b - (W / s) m), the same function without a pass over the (large) batch.
        weight = first.weight * inverse
        bias = first.weight @ shift
        out = nn.functional.linear(x, weight, bias if first.bias is None else bias + first.bias)
        for layer in self.net[1:]:
            out = layer(out)
        return out
