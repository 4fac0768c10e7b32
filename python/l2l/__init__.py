"""l2l from PyTorch: plugin stages, pipelines and data sets as differentiable torch modules.

The native module reuses the l2l host for everything (plugin discovery and trust checks, config
loading, stage building and contract checks, data sets, checkpoints); this file only shapes what it
builds as ``torch.nn.Module`` and ``torch.utils.data.Dataset``. Tensors cross as the same libtorch
tensors, so a stage's parameters *are* the tensors its plugin computes with and gradients flow
through plugin stages into PyTorch code and back.

Plugins are searched as ``l2l-host`` searches them: ``plugin_dirs`` given here, the config's
``plugin_dirs``, ``L2L_PLUGIN_PATH``, then the build folder of the checkout this package was built
from (``target/debug``, where ``make build`` puts the workspace's plugins). A plugin lock
(``./l2l-plugins.lock`` or ``L2L_PLUGIN_LOCK``) is honoured as by the host.
"""

import torch
from torch import nn

try:
    from . import _l2l
except ImportError as err:  # a libtorch whose symbols differ from the one l2l was built against
    raise ImportError(
        f"l2l: the native module does not load with torch {torch.__version__} ({err}); "
        "l2l must be rebuilt against this torch (make python)"
    ) from err

if torch.__version__ != _l2l.libtorch_version():
    raise ImportError(
        f"l2l was built against torch {_l2l.libtorch_version()}, but this Python has torch {torch.__version__}; "
        "tensors cannot be shared between two libtorch versions: install torch "
        f"{_l2l.libtorch_version()} or rebuild l2l against this torch (make python)"
    )

L2LError = _l2l.L2LError

__all__ = ["L2LError", "Pipeline", "Stage", "TaskModel", "Dataset", "collate", "plugins"]


def plugins(plugin_dirs=()):
    """Every component of every plugin found, as ``l2l-host plugins list`` lists them (one dict
    each: plugin, kind, component, version, file); refused plugin files raise ``L2LError``."""
    return _l2l.plugins([str(d) for d in plugin_dirs])


def _overrides(overrides):
    """Keyword overrides as config keys: ``stages__gamma__gamma=2.4`` is ``stages.gamma.gamma``
    (or pass ``**{"stages.gamma.gamma": 2.4}``)."""
    return {key.replace("__", "."): value for key, value in overrides.items()}


def _device_text(device):
    device = torch.device(device)
    if device.type == "cpu":
        return "cpu"
    if device.type == "cuda":
        return f"cuda:{device.index if device.index is not None else torch.cuda.current_device()}"
    raise L2LError(f"device {device}: l2l stages run on cpu or cuda")


class _StageCalls:
    """Stage ``index`` of a native pipeline, with the calls a native task model has."""

    def __init__(self, native, index):
        self._native, self._index = native, index

    def label(self):
        return self._native.label(self._index)

    def parameters(self):
        return self._native.parameters(self._index)

    def forward(self, x):
        return self._native.forward_stage(self._index, x)

    def to(self, device, double):
        self._native.to_stage(self._index, device, double)

    def state(self):
        return self._native.stage_state(self._index)

    def load_state(self, state):
        self._native.load_stage_state(self._index, state)


class _PluginModule(nn.Module):
    """A module a plugin built, as a torch module. Its parameters are the plugin's own tensors, so
    gradients reach them and an optimiser step changes what the plugin computes; ``state_dict`` holds
    the plugin's whole state (parameters and buffers) under the names l2l checkpoints use; ``.to()``,
    ``.double()``, ``.cuda()`` move the plugin's tensors."""

    def __init__(self, calls, device):
        super().__init__()
        self._calls = calls
        self._device = torch.device(device)
        self._dtype = torch.float32
        self._share_parameters()

    def _share_parameters(self):
        self._parameters.clear()
        for name, tensor, _trainable in self._calls.parameters():
            # the plugin's leaf tensor itself becomes the Parameter (nn.Parameter(t) would make a new
            # leaf whose gradients the plugin never sees)
            tensor.__class__ = nn.Parameter
            self._parameters[name] = tensor

    def forward(self, x):
        return self._calls.forward(x)

    def extra_repr(self):
        return self._calls.label()

    def _apply(self, fn, recurse=True):
        probe = fn(torch.empty(0, device=self._device, dtype=self._dtype))
        if probe.device == self._device and probe.dtype == self._dtype:
            return self
        if probe.dtype not in (torch.float32, torch.float64):
            raise L2LError(f"{self._calls.label()}: plugin modules compute in float32 or float64, not {probe.dtype}")
        self._calls.to(_device_text(probe.device), probe.dtype == torch.float64)
        self._device, self._dtype = probe.device, probe.dtype
        self._share_parameters()
        return self

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        for name, tensor in self._calls.state():
            if keep_vars and name in self._parameters:
                tensor = self._parameters[name]
            destination[prefix + name] = tensor

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs):
        expected = [name for name, _ in self._calls.state()]
        given = {key[len(prefix):]: value for key, value in state_dict.items() if key.startswith(prefix)}
        missing = [name for name in expected if name not in given]
        missing_keys.extend(prefix + name for name in missing)
        if strict:
            unexpected_keys.extend(prefix + name for name in given if name not in expected)
        if not missing:
            try:
                self._calls.load_state([(name, given[name].detach()) for name in expected])
            except L2LError as err:
                error_msgs.append(str(err))
        elif not strict:
            with torch.no_grad():
                for name, value in given.items():
                    if name in self._parameters:
                        self._parameters[name].copy_(value)


class Stage(_PluginModule):
    """One plugin stage of a :class:`Pipeline`."""


class TaskModel(_PluginModule):
    """A config's ``[task_model]`` (ResNet, UNet++, a third party's network) built by its plugin:
    ``forward(images)`` gives the logits."""

    @classmethod
    def from_config(cls, path, *, num_classes, device="cpu", plugin_dirs=(), **overrides):
        """The task model of config file ``path`` for ``num_classes`` outputs (overrides as for
        :meth:`Pipeline.from_config`)."""
        native = _l2l.NativeTaskModel.from_config(
            str(path), _overrides(overrides), [str(d) for d in plugin_dirs], _device_text(device), num_classes
        )
        model = cls(native, _device_text(device))
        model.train(True)
        return model

    def train(self, mode=True):
        self._calls.set_train(mode)
        return super().train(mode)


class Pipeline(nn.Module):
    """A processing pipeline of plugin stages, built by the l2l host: ``forward(mosaic, camera)``
    takes ``[B, 1, H, W]`` mosaics (or what the first stage takes) and returns the last stage's
    output; ``trace=True`` returns every stage's output by name. ``parameters()`` are the stages'
    learnable tensors; ``state_dict()`` names them as l2l checkpoints do (``stage.parameter``).

    ``Pipeline(stages=[...])`` takes stages in order, each a component name (``"gamma"``), a dict with
    ``kind`` (and optionally ``name``, ``plugin`` and the component's keys) or a ``(name, dict)``
    pair, and takes whatever its first stage takes; :meth:`from_config` reads a config file's
    ``pipeline`` and ``[stages.*]`` and, like ``l2l-host``, takes raw mosaics.
    """

    def __init__(self, stages=None, *, device="cpu", plugin_dirs=(), _native=None):
        super().__init__()
        if _native is None:
            if stages is None:
                raise L2LError("Pipeline: give `stages` (or use Pipeline.from_config)")
            _native = _l2l.NativePipeline.from_stages(
                [_stage_table(item) for item in stages], [str(d) for d in plugin_dirs], _device_text(device)
            )
        self._native = _native
        for index, name in enumerate(_native.names()):
            if hasattr(self, name):
                raise L2LError(f"stage `{name}`: the name is taken by torch.nn.Module; rename the stage")
            self.add_module(name, Stage(_StageCalls(_native, index), _device_text(device)))
        self.train(True)

    @classmethod
    def from_config(cls, path, *, device="cpu", plugin_dirs=(), **overrides):
        """The pipeline of config file ``path``, with overrides as ``--set`` takes them
        (``stages__gamma__gamma=2.4`` or ``**{"stages.gamma.gamma": 2.4}``)."""
        native = _l2l.NativePipeline.from_config(
            str(path), _overrides(overrides), [str(d) for d in plugin_dirs], _device_text(device)
        )
        return cls(device=device, _native=native)

    def forward(self, mosaic, camera=None, trace=False):
        """Runs the stages on ``mosaic``; ``camera`` is one camera dict (for every sample) or one per
        sample, as :class:`Dataset` gives them, for stages that read the camera from the data."""
        if camera is None:
            cameras = []
        elif isinstance(camera, dict):
            cameras = [camera] * mosaic.shape[0]
        else:
            cameras = list(camera)
        self._native.set_camera(cameras)
        outputs = {}
        x = mosaic
        for name, stage in self.named_children():
            x = stage(x)
            if trace:
                outputs[name] = x
        return outputs if trace else x

    def train(self, mode=True):
        self._native.set_train(mode)
        return super().train(mode)

    def save(self, path):
        """Writes the stages' state as an l2l checkpoint (safetensors), which
        ``l2l-host process --state FILE`` applies to the same config's pipeline."""
        self._native.save(str(path))

    def load(self, path):
        """Restores the stages' state, in place, from an l2l checkpoint: one :meth:`save` wrote, or a
        training run's fold checkpoint (its processing half)."""
        self._native.load(str(path))


def _stage_table(item):
    """A stage as ``(name, table)``."""
    if isinstance(item, str):
        return item, {"kind": item}
    if isinstance(item, tuple) and len(item) == 2:
        name, table = item
        return str(name), dict(table)
    if isinstance(item, dict):
        table = dict(item)
        if "kind" not in table:
            raise L2LError(f"stage {item}: missing `kind` (the component, e.g. \"gamma\")")
        return str(table.pop("name", table["kind"])), table
    raise L2LError(f"stage {item!r}: expected a component name, a dict with `kind`, or a (name, dict) pair")


class Dataset(torch.utils.data.Dataset):
    """A config's ``[dataset]``, opened by its plugin: item ``i`` is ``(mosaic [1, H, W], target,
    camera dict)``; batch with :func:`collate`. The embedded ``synthetic`` data set needs no files."""

    def __init__(self, native):
        self._native = native

    @classmethod
    def from_config(cls, path, *, plugin_dirs=(), **overrides):
        """The data set of config file ``path`` (overrides as for :meth:`Pipeline.from_config`)."""
        return cls(_l2l.NativeDataset.from_config(str(path), _overrides(overrides), [str(d) for d in plugin_dirs]))

    def __len__(self):
        return len(self._native)

    def __getitem__(self, index):
        if index < 0:
            index += len(self)
        raw, target, camera = self._native.sample(index)
        return raw.unsqueeze(0), target, camera

    @property
    def class_names(self):
        """Class names (classification) or ``None`` (segmentation)."""
        return self._native.class_names()

    def __repr__(self):
        return f"Dataset({self._native.label()}, {len(self)} samples)"


def collate(samples):
    """Batches :class:`Dataset` items: mosaics ``[B, 1, H, W]``, targets stacked, cameras a list
    (what :meth:`Pipeline.forward` takes)."""
    mosaics, targets, cameras = zip(*samples)
    return torch.stack(mosaics), torch.stack(targets), list(cameras)
