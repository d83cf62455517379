"""The Tensor API keeps the rules: nn modules refuse bad shapes and bad constructor arguments
with messages that give the sizes (as torch's do), a failed load_state_dict changes nothing,
and backward() a second time through a freed graph is a clear error, never a wrong gradient."""
import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, strategies as st  # noqa: E402

from fastbp import Tensor, nn  # noqa: E402
from strategies import OPS  # noqa: E402


def T(*shape):
    return Tensor(np.ones(shape, np.float32))


# (module, input, exception, words the message must contain)
BAD_SHAPES = [
    ("Linear-features", lambda: nn.Linear(3, 4)(T(2, 5)), ValueError, ["5", "3"]),
    ("Linear-0d", lambda: nn.Linear(3, 4)(T()), ValueError, ["input"]),
    ("Linear-None", lambda: nn.Linear(3, 4)(None), TypeError, ["input"]),
    ("Conv1d-channels", lambda: nn.Conv1d(3, 4, 3)(T(2, 5, 9)), ValueError, ["5", "3"]),
    ("Conv1d-4d", lambda: nn.Conv1d(3, 4, 3)(T(2, 3, 9, 9)), ValueError, ["input"]),
    ("Conv2d-channels", lambda: nn.Conv2d(3, 4, 3)(T(2, 5, 9, 9)), ValueError, ["5", "3"]),
    ("Conv2d-too-small", lambda: nn.Conv2d(3, 4, 5)(T(2, 3, 3, 3)), ValueError, ["kernel", "5"]),
    ("Conv2d-2d", lambda: nn.Conv2d(3, 4, 3)(T(9, 9)), ValueError, ["input"]),
    ("ConvTranspose2d-channels", lambda: nn.ConvTranspose2d(3, 4, 3)(T(2, 5, 9, 9)), ValueError,
     ["5", "3"]),
    ("BatchNorm1d-channels", lambda: nn.BatchNorm1d(4)(T(2, 3, 9)), ValueError, ["4", "3"]),
    ("BatchNorm1d-4d", lambda: nn.BatchNorm1d(4)(T(2, 4, 9, 9)), ValueError, ["4D"]),
    ("BatchNorm2d-3d", lambda: nn.BatchNorm2d(4)(T(4, 9, 9)), ValueError, ["3D"]),
    ("BatchNorm2d-None", lambda: nn.BatchNorm2d(4)(None), TypeError, ["input"]),
    ("LayerNorm", lambda: nn.LayerNorm(5)(T(2, 4)), ValueError, ["normalized_shape", "5"]),
    ("MaxPool2d-1d", lambda: nn.MaxPool2d(2)(T(9)), ValueError, ["max_pool2d"]),
    ("MaxPool2d-too-small", lambda: nn.MaxPool2d(5)(T(1, 1, 3, 3)), ValueError, ["kernel_size"]),
    ("AvgPool1d-too-small", lambda: nn.AvgPool1d(5)(T(1, 1, 3)), ValueError, ["kernel_size"]),
    ("MultiheadAttention-embed", lambda: nn.MultiheadAttention(8, 2)(T(3, 2, 6), T(3, 2, 6), T(3, 2, 6)),
     ValueError, ["8", "6"]),
    ("Flatten-dim", lambda: nn.Flatten(3)(T(2, 3)), IndexError, ["start_dim"]),
    ("Sequential", lambda: nn.Sequential(nn.Linear(3, 4), nn.Linear(5, 2))(T(2, 3)), ValueError,
     ["4", "5"]),
    # constructors
    ("Linear-negative", lambda: nn.Linear(-1, 4), ValueError, ["in_features"]),
    ("Linear-float", lambda: nn.Linear(3.5, 4), TypeError, ["in_features"]),
    ("Conv2d-kernel0", lambda: nn.Conv2d(3, 4, 0), ValueError, ["kernel_size"]),
    ("Conv2d-stride0", lambda: nn.Conv2d(3, 4, 3, stride=0), ValueError, ["stride"]),
    ("Conv1d-groups", lambda: nn.Conv1d(3, 4, 3, groups=2), ValueError, ["groups"]),
    ("Conv1d-channels0", lambda: nn.Conv1d(0, 4, 3), ValueError, ["in_channels"]),
    ("ConvTranspose1d-padding", lambda: nn.ConvTranspose1d(3, 4, 3, padding=-1), ValueError,
     ["padding"]),
    ("Dropout-p", lambda: nn.Dropout(1.5), ValueError, ["1.5"]),
]


@pytest.mark.parametrize("call,error,words", [c[1:] for c in BAD_SHAPES],
                         ids=[c[0] for c in BAD_SHAPES])
def test_module_refuses_bad_shapes_and_arguments(call, error, words):
    with pytest.raises(error) as info:
        call()
    assert isinstance(info.value, (TypeError, ValueError)), type(info.value)
    for word in words:
        assert word in str(info.value), f"{word!r} not in: {info.value}"


# --- load_state_dict: all or nothing ------------------------------------------------------------
def _model():
    return nn.Sequential(nn.Conv1d(2, 3, 3), nn.BatchNorm1d(3), nn.ReLU(), nn.Flatten(),
                         nn.Linear(3 * 5, 2))


CORRUPTIONS = {
    "shape": lambda v: np.ones(v.shape + (1,), v.dtype),
    "object": lambda v: np.full(v.shape, None, object),
    "strings": lambda v: np.full(v.shape, "x"),
    "ragged": lambda v: [[1.0], [1.0, 2.0]],
    "none": lambda v: None,
    "complex": lambda v: np.ones(v.shape, complex),
    "scalar": lambda v: 1.0 if v.shape != () else np.ones(2),
}


@given(data=st.data())
def test_failed_load_state_dict_changes_nothing(data):
    model = _model()
    before = {k: np.array(v) for k, v in model.state_dict().items()}
    new = {k: np.asarray(v) + 1 for k, v in before.items()}  # a valid dict that changes all
    keys = sorted(new)
    corrupt = data.draw(st.lists(st.sampled_from(keys), min_size=1, max_size=3, unique=True))
    for key in corrupt:
        new[key] = CORRUPTIONS[data.draw(st.sampled_from(sorted(CORRUPTIONS)))](new[key])
    if data.draw(st.booleans()):  # and a key missing (an error only when strict)
        new.pop(data.draw(st.sampled_from(sorted(set(keys) - set(corrupt)))))
    with pytest.raises(RuntimeError, match="state_dict"):
        model.load_state_dict(new, strict=data.draw(st.booleans()))
    for k, v in model.state_dict().items():
        assert np.array_equal(np.asarray(v), before[k]), f"{k} changed by a failed load"


# --- a second backward through a freed graph ----------------------------------------------------
TENSOR_OPS = sorted(n for n, op in OPS.items() if not op.numpy_level and n != "F.dropout")


@pytest.mark.parametrize("name", TENSOR_OPS)
@given(data=st.data())
def test_second_backward_is_an_error_or_exact(name, data):
    """Either a RuntimeError that says how to keep the graph and leaves every .grad as the first
    backward left it, or (a graph that saved nothing, as in torch) exactly twice the gradient."""
    args, kwargs = data.draw(OPS[name].valid, label="call")
    out = OPS[name].fn(*args, **kwargs)
    out = out[0] if isinstance(out, tuple) else out
    if not out.requires_grad:
        return
    leaves = [a for a in args if isinstance(a, Tensor) and a.requires_grad]
    loss = (out * out).sum()
    loss.backward()
    first = [None if t.grad is None else t.grad.copy() for t in leaves]
    try:
        loss.backward()
    except RuntimeError as error:
        assert "retain_graph=True" in str(error)
        for t, g in zip(leaves, first):
            assert (t.grad is None and g is None) or np.array_equal(t.grad, g, equal_nan=True), \
                "a failed second backward changed a gradient"
        return
    for t, g in zip(leaves, first):
        if g is not None:
            np.testing.assert_allclose(t.grad, 2 * g, rtol=1e-6, atol=0)
