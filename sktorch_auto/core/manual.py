"""Hand-written gradients for plain multi-layer perceptrons.

On the small networks of tabular data a training step costs what its kernels are
launched for, not what they compute: autograd's graph (a node per layer, activation and
loss term) costs more than the arithmetic. For a ``torch.nn.Sequential`` of ``Linear``
layers, ``Dropout`` and ReLU / GELU / SiLU / tanh / sigmoid / identity activations
trained with one of the built-in criteria, :func:`manual_step` computes the same
gradients directly (one matrix product per gradient; an activation's derivative by
torch's own backward kernel, the one autograd runs; the loss and its gradient together):
about 40% less time per step. Anything else (other layers or activations, hooks, frozen
parameters, other criteria, mixed precision, sparse inputs) goes through autograd as
usual. A module that prepares its MLP's input itself (categorical columns' one-hot
inputs and embeddings, periodic embeddings of numbers) takes part through
``manual_inputs``: it builds the input, and sets its own parameters' gradients from the
input's gradient.
"""

import torch
from torch import nn

from .criterion import MixedCriterion, SoftmaxCriterion, check_output_shape

#: ``backward(grad, input, output, layer)`` of each supported activation: torch's own
#: backward kernel, the one autograd runs (one kernel each, from the output where that
#: gives the derivative), so the gradients are autograd's to the bit.
_aten = torch.ops.aten
_DERIVATIVES = {
    nn.ReLU: lambda grad, inp, out, layer: _aten.threshold_backward(grad, out, 0),
    nn.Tanh: lambda grad, inp, out, layer: _aten.tanh_backward(grad, out),
    nn.Sigmoid: lambda grad, inp, out, layer: _aten.sigmoid_backward(grad, out),
    nn.Identity: lambda grad, inp, out, layer: grad,
    nn.GELU: lambda grad, inp, out, layer: _aten.gelu_backward(
        grad, inp, approximate=layer.approximate),
    nn.SiLU: lambda grad, inp, out, layer: _aten.silu_backward(grad, inp),
}
_CRITERIA = (MixedCriterion, SoftmaxCriterion)


_HOOKS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")


def _has_hooks(module):
    """Whether ``module`` has hooks (which a hand-written pass would skip)."""
    return any(getattr(module, name, None) for name in _HOOKS)


def _global_hooks():
    """Whether hooks are registered for every module (``register_module_forward_hook``)."""
    return any(getattr(torch.nn.modules.module, "_global" + name, None) for name in _HOOKS)


def manual_step(net, criterion):
    """A function computing a batch's loss and setting the gradients by hand, or None.

    Parameters
    ----------
    net : torch.nn.Module
        A ``Sequential`` MLP, or a module whose ``net`` attribute is one and which
        prepares that MLP's input itself: ``net.manual_inputs(*inputs)`` returns
        ``(x, columns, backward)`` -- the MLP's input, computed without autograd, the
        slice of its columns whose gradient ``backward`` needs (or None), and
        ``backward(grad)``, which sets the gradients of the module's own parameters from
        the loss's gradient for those columns (e.g. categories' embeddings).
    criterion : object
        The training criterion.

    Returns
    -------
    step : callable or None
        ``step(inputs, target, weight) -> loss`` (a 0-d tensor, detached) that leaves
        each parameter's ``.grad`` as ``loss.backward()`` after ``zero_grad`` would, or
        None when ``net`` or ``criterion`` is not of the supported kind. ``step`` returns
        None for a batch it cannot handle (then use autograd for it).
    """
    if type(criterion) not in _CRITERIA or not all(p.requires_grad for p in net.parameters()):
        return None
    if any(_has_hooks(module) for module in net.modules()):
        return None
    if type(net) is nn.Sequential:
        mlp = _sequential_step(net, criterion)
        if mlp is None:
            return None

        def step(inputs, target, weight):
            if len(inputs) != 1 or _global_hooks():
                return None
            out = mlp(inputs[0], target, weight)
            return None if out is None else out[0]

        return step
    prepare = getattr(net, "manual_inputs", None)
    inner = getattr(net, "net", None)
    mlp = _sequential_step(inner, criterion) if type(inner) is nn.Sequential else None
    if not callable(prepare) or mlp is None:
        return None

    def prepared_step(inputs, target, weight):
        if _global_hooks():
            return None
        with torch.no_grad():
            prepared = prepare(*inputs)
        if prepared is None:
            return None
        x, columns, backward = prepared
        out = mlp(x, target, weight, columns)
        if out is None:
            return None
        loss, grad = out
        if backward is not None:
            with torch.no_grad():
                backward(grad)
        return loss

    return prepared_step


def _sequential_step(net, criterion):
    """``step(x, target, weight, columns=None) -> (loss, grad)`` for a plain MLP, or None.

    ``grad`` is the loss's gradient for the input columns ``columns`` (a slice), None
    without them; the step returns None for a batch it cannot handle.
    """
    if not len(net):
        return None
    layers = list(net)
    kinds = [type(layer) for layer in layers]
    if not all(k is nn.Linear or k is nn.Dropout or k in _DERIVATIVES for k in kinds) \
            or kinds[0] is not nn.Linear:
        return None
    if any(type(layer) is nn.Dropout and layer.p >= 1 for layer in layers):
        return None  # everything dropped: autograd's zeros, not 0 * inf
    # In-place activations overwrite what a derivative may need (autograd refuses them then).
    if any(getattr(layer, "inplace", False) for layer in layers):
        return None

    # torch runs float32 GELU on the CPU through oneDNN when its input is contiguous;
    # oneDNN's set-up per call (about 5 us forward, 10 us backward) is most of a small
    # batch's cost, and torch's own kernel, taken for other layouts, is 3-4x faster there
    # (as fast on large batches). So with GELU the hidden layers' outputs and gradients
    # are kept column-major: W x^T + b is one matrix product whose transpose is the
    # output. The same numbers up to rounding, and no global switch.
    last_linear = max(i for i, k in enumerate(kinds) if k is nn.Linear)
    column_major = nn.GELU in kinds

    def step(x, target, weight, columns=None):
        first = layers[0].weight
        if x.layout != torch.strided or x.dtype != first.dtype or x.dim() != 2:
            return None
        transposed = column_major and x.device.type == "cpu" and x.dtype == torch.float32
        input_grad = None
        with torch.no_grad():
            saved = [x]  # the input of each layer
            out = x
            # dropout layer -> its mask: torch's own kernel, so the same draws as
            # autograd's dropout for the same seed where the layout is the same
            # (row-major; the column-major GELU path draws as many, in another order)
            masks = {}
            for i, layer in enumerate(layers):
                if type(layer) is nn.Dropout:
                    if layer.training and layer.p:
                        out, masks[i] = _aten.native_dropout(out, layer.p, True)
                elif type(layer) is not nn.Linear:
                    out = layer(out)
                elif transposed and i != last_linear:
                    out = (torch.addmm(layer.bias.unsqueeze(1), layer.weight, out.t())
                           if layer.bias is not None else layer.weight.mm(out.t())).t()
                else:
                    out = (torch.addmm(layer.bias, out, layer.weight.t())
                           if layer.bias is not None else out.mm(layer.weight.t()))
                saved.append(out)
            check_output_shape(out, target)
            loss, grad = criterion.loss_and_gradient(out, target, weight)
            for i in range(len(layers) - 1, -1, -1):
                layer = layers[i]
                if type(layer) is nn.Linear:
                    layer.weight.grad = grad.t().mm(saved[i])
                    if layer.bias is not None:
                        layer.bias.grad = grad.sum(0)
                    if i:
                        grad = (layer.weight.t().mm(grad.t()).t() if transposed
                                else grad.mm(layer.weight))
                    elif columns is not None:
                        input_grad = grad.mm(layer.weight[:, columns])
                elif type(layer) is nn.Dropout:
                    if i in masks:
                        grad = _aten.native_dropout_backward(grad, masks[i],
                                                             1.0 / (1.0 - layer.p))
                else:
                    grad = _DERIVATIVES[type(layer)](grad, saved[i], saved[i + 1], layer)
        return loss, input_grad

    return step
