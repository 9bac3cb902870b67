"""Build oracle/data/networks.json: the seed-layer configurations of real networks.

    python scripts/networks_corpus.py [--out oracle/data/networks.json]

Two sources, one record per distinct (layer spec, input shape):

* ``keras.applications`` models built with ``weights=None`` (nothing is downloaded):
  every layer of a class the suite covers (Conv*, DepthwiseConv*, SeparableConv*,
  Conv*Transpose, ZeroPadding*, Cropping*, UpSampling*), its Keras config reduced to the
  arguments that decide the result, and its real input shape with batch 1;
* architectures written out layer by layer from their papers (:data:`PAPERS`): U-Net,
  a DCGAN generator, WaveNet, 3D U-Net, C3D, YOLOv3's downsampling, DeepLabV3's atrous
  convolutions and ESRGAN's upsampling.

A layer whose forward pass costs more than :data:`MAX_MACS` multiply-adds, or whose input
or output has more than :data:`MAX_ELEMENTS` elements, is shrunk along
its spatial axes only (channels, kernel, strides, dilation and padding kept); the record
says so (``shrunk_from``). Each record lists every (model, layer) it occurs in. The file
records the Keras version it was built with; :mod:`oracle.networks` reads it without
TensorFlow.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from conv_conformance import reference  # noqa: E402
from conv_conformance.reference import InvalidConfig  # noqa: E402

MODELS = ("ResNet50", "MobileNetV2", "EfficientNetB0", "Xception", "DenseNet121", "MobileNetV3Small",
          "InceptionV3", "ConvNeXtTiny", "EfficientNetV2B0", "ResNet50V2", "VGG16", "NASNetMobile")
MAX_MACS = 1.5e8
MAX_ELEMENTS = 2 ** 20  # of the input and of the output: the tolerance model's elementwise passes
FORMAT_VERSION = 1


# ------------------------------------------------------------------ papers

def _c(cls: str, **config) -> dict:
    return {"class_name": cls, "config": config}


def _unet() -> list:
    """Ronneberger et al. 2015, fig. 1: 572x572 input, 3x3 'valid' convolutions, 2x2/2
    up-convolutions, skip connections cropped to the decoder's size."""
    out, n, c_in = [], 572, 1
    skips = []
    for level, c in enumerate((64, 128, 256, 512, 1024)):
        out.append((f"enc{level}_conv1", _c("Conv2D", filters=c, kernel_size=3, activation="relu"), (1, n, n, c_in)))
        out.append((f"enc{level}_conv2", _c("Conv2D", filters=c, kernel_size=3, activation="relu"), (1, n - 2, n - 2, c)))
        n -= 4
        skips.append((n, c))
        c_in = c
        if level < 4:
            n //= 2
    for level, c in enumerate((512, 256, 128, 64)):
        out.append((f"dec{level}_upconv", _c("Conv2DTranspose", filters=c, kernel_size=2, strides=2), (1, n, n, c_in)))
        n *= 2
        skip_n, skip_c = skips[3 - level]
        crop = (skip_n - n) // 2
        out.append((f"dec{level}_crop", _c("Cropping2D", cropping=[[crop, crop], [crop, crop]]),
                    (1, skip_n, skip_n, skip_c)))
        out.append((f"dec{level}_conv1", _c("Conv2D", filters=c, kernel_size=3, activation="relu"), (1, n, n, 2 * c)))
        out.append((f"dec{level}_conv2", _c("Conv2D", filters=c, kernel_size=3, activation="relu"), (1, n - 2, n - 2, c)))
        n -= 4
        c_in = c
    out.append(("final_1x1", _c("Conv2D", filters=2, kernel_size=1), (1, n, n, 64)))
    return out


def _dcgan() -> list:
    """Radford et al. 2016, fig. 1: 4x4x1024 projected, then four Conv2DTranspose 5x5/2 'same'."""
    out, n = [], 4
    chans = (1024, 512, 256, 128, 3)
    for i in range(4):
        last = i == 3
        spec = _c("Conv2DTranspose", filters=chans[i + 1], kernel_size=5, strides=2, padding="same",
                  use_bias=last, activation="tanh" if last else "linear")
        out.append((f"deconv{i + 1}", spec, (2, n, n, chans[i])))
        n *= 2
    return out


def _wavenet() -> list:
    """van den Oord et al. 2016: a causal Conv1D k=2 on the 256-way input, then dilated
    causal Conv1D k=2 with dilations 1, 2, ..., 512 (filter: tanh, gate: sigmoid), 1x1
    residual and skip convolutions; one second of 16 kHz audio."""
    length, res, skip = 16000, 32, 256
    out = [("causal_input", _c("Conv1D", filters=res, kernel_size=2, padding="causal"), (1, length, 256))]
    for d in (2 ** i for i in range(10)):
        out.append((f"dilated{d}_filter", _c("Conv1D", filters=res, kernel_size=2, padding="causal",
                                             dilation_rate=d, activation="tanh"), (1, length, res)))
        out.append((f"dilated{d}_gate", _c("Conv1D", filters=res, kernel_size=2, padding="causal",
                                           dilation_rate=d, activation="sigmoid"), (1, length, res)))
    out.append(("residual_1x1", _c("Conv1D", filters=res, kernel_size=1), (1, length, res)))
    out.append(("skip_1x1", _c("Conv1D", filters=skip, kernel_size=1), (1, length, res)))
    return out


def _unet3d() -> list:
    """Cicek et al. 2016, fig. 1: 132x132x116 input with 3 channels, 3x3x3 'valid'
    convolutions, 2x2x2/2 up-convolutions."""
    out, shape, c_in = [], [132, 132, 116], 3
    skips = []
    for level, (c1, c2) in enumerate(((32, 64), (64, 128), (128, 256), (256, 512))):
        out.append((f"enc{level}_conv1", _c("Conv3D", filters=c1, kernel_size=3, activation="relu"), (1, *shape, c_in)))
        shape = [v - 2 for v in shape]
        out.append((f"enc{level}_conv2", _c("Conv3D", filters=c2, kernel_size=3, activation="relu"), (1, *shape, c1)))
        shape = [v - 2 for v in shape]
        skips.append(c2)
        c_in = c2
        if level < 3:
            shape = [v // 2 for v in shape]
    for level, c in enumerate((256, 128, 64)):
        out.append((f"dec{level}_upconv", _c("Conv3DTranspose", filters=c_in, kernel_size=2, strides=2), (1, *shape, c_in)))
        shape = [2 * v for v in shape]
        c_cat = c_in + skips[2 - level]
        out.append((f"dec{level}_conv1", _c("Conv3D", filters=c, kernel_size=3, activation="relu"), (1, *shape, c_cat)))
        shape = [v - 2 for v in shape]
        out.append((f"dec{level}_conv2", _c("Conv3D", filters=c, kernel_size=3, activation="relu"), (1, *shape, c)))
        shape = [v - 2 for v in shape]
        c_in = c
    out.append(("final_1x1x1", _c("Conv3D", filters=3, kernel_size=1), (1, *shape, 64)))
    return out


def _c3d() -> list:
    """Tran et al. 2015: 16x112x112 clips, 3x3x3 'same' convolutions, pool1 1x2x2, the others 2x2x2."""
    out, shape, c_in = [], [16, 112, 112], 3
    for name, c, pool in (("conv1a", 64, (1, 2, 2)), ("conv2a", 128, (2, 2, 2)), ("conv3a", 256, None),
                          ("conv3b", 256, (2, 2, 2)), ("conv4a", 512, None), ("conv4b", 512, (2, 2, 2)),
                          ("conv5a", 512, None), ("conv5b", 512, (2, 2, 2))):
        out.append((name, _c("Conv3D", filters=c, kernel_size=3, padding="same", activation="relu"), (1, *shape, c_in)))
        c_in = c
        if pool:
            shape = [v // p for v, p in zip(shape, pool)]
    return out


def _yolov3() -> list:
    """Redmon & Farhadi 2018 (Darknet-53 as in the reference Keras port): each downsampling
    is ZeroPadding2D(((1, 0), (1, 0))) then Conv2D 3x3/2 'valid' without bias; 416x416 input."""
    out, n = [], 416
    for i, (c_in, c) in enumerate(((32, 64), (64, 128), (128, 256), (256, 512), (512, 1024))):
        out.append((f"down{i + 1}_pad", _c("ZeroPadding2D", padding=[[1, 0], [1, 0]]), (1, n, n, c_in)))
        out.append((f"down{i + 1}_conv", _c("Conv2D", filters=c, kernel_size=3, strides=2, use_bias=False),
                    (1, n + 1, n + 1, c_in)))
        n //= 2
    return out


def _deeplabv3() -> list:
    """Chen et al. 2017, ASPP at output stride 16 on a 513x513 crop: 33x33x2048 features,
    a 1x1 and three 3x3 'same' convolutions with dilations 6, 12, 18 to 256 channels."""
    x = (1, 33, 33, 2048)
    out = [("aspp_1x1", _c("Conv2D", filters=256, kernel_size=1, use_bias=False), x)]
    for d in (6, 12, 18):
        out.append((f"aspp_atrous{d}", _c("Conv2D", filters=256, kernel_size=3, padding="same",
                                          dilation_rate=d, use_bias=False), x))
    return out


def _esrgan() -> list:
    """Wang et al. 2018 (ESRGAN): x4 by two nearest UpSampling2D x2, each followed by a
    3x3 'same' convolution with 64 channels, on 32x32 low-resolution patches (128x128 HR);
    and the bilinear x2 variant (SRGAN-style resize-convolution)."""
    out = []
    for interp in ("nearest", "bilinear"):
        n = 32
        for i in range(2):
            out.append((f"up{i + 1}_{interp}", _c("UpSampling2D", size=2, interpolation=interp), (1, n, n, 64)))
            n *= 2
            out.append((f"up{i + 1}_conv", _c("Conv2D", filters=64, kernel_size=3, padding="same"), (1, n, n, 64)))
    return out


PAPERS = {"U-Net": _unet, "DCGAN-generator": _dcgan, "WaveNet": _wavenet, "3D-U-Net": _unet3d, "C3D": _c3d,
          "YOLOv3-downsampling": _yolov3, "DeepLabV3-ASPP": _deeplabv3, "ESRGAN-upsampling": _esrgan}


# ------------------------------------------------------------------ shrinking

def macs(spec: dict, shape) -> int:
    """Multiply-adds of one forward pass (0 for the layers that only copy or resize)."""
    lay = reference.LAYERS[spec["class_name"]]
    cfg = spec["config"]
    out = reference.output_shape(spec, shape)
    first = cfg.get("data_format") == "channels_first"
    c_in = shape[1] if first else shape[-1]
    taps = math.prod(cfg.get("kernel_size", [1]))
    if lay.family == "conv":
        return math.prod(out) * taps * c_in // cfg["groups"]
    if lay.family == "conv_transpose":
        return math.prod(shape) * taps * cfg["filters"]
    if lay.family == "depthwise":
        return math.prod(out) * taps
    if lay.family == "separable":
        return math.prod(shape) // c_in * c_in * cfg["depth_multiplier"] * taps + math.prod(out) * c_in * cfg["depth_multiplier"]
    return math.prod(out)


def affordable(spec: dict, shape) -> bool:
    """At most MAX_MACS multiply-adds and MAX_ELEMENTS input and output elements."""
    return (macs(spec, shape) <= MAX_MACS and math.prod(shape) <= MAX_ELEMENTS
            and math.prod(reference.output_shape(spec, shape)) <= MAX_ELEMENTS)


def shrink(spec: dict, shape: tuple) -> tuple:
    """The largest spatial scaling of shape (channels and batch kept) that is affordable;
    shape itself when it already is."""
    if affordable(spec, shape):
        return tuple(shape)
    first = spec["config"].get("data_format") == "channels_first"
    axes = range(2, len(shape)) if first else range(1, len(shape) - 1)
    lo, hi = 0.0, 1.0
    best = smallest = None
    for _ in range(30):
        f = (lo + hi) / 2
        trial = list(shape)
        for a in axes:
            trial[a] = max(1, round(shape[a] * f))
        try:
            ok = affordable(spec, tuple(trial))
        except InvalidConfig:  # too small for the kernel or the cropping: grow
            lo = f
            continue
        if ok:
            lo, best = f, tuple(trial)
        else:
            hi, smallest = f, tuple(trial)
    if best is None and smallest is not None and macs(spec, smallest) <= MAX_MACS:
        return smallest  # a copying layer (Cropping) whose smallest valid input is still large
    if best is None:
        raise ValueError(f"cannot shrink {spec} on {shape} under {MAX_MACS} multiply-adds")
    return best


# ------------------------------------------------------------------ keras.applications

def _keras_layers(model_name: str):
    """(layer name, spec, input shape) of every covered layer of a keras.applications model."""
    import keras

    # MobileNetV3 is built for any resolution unless told; 224x224 is its default
    extra = {"input_shape": (224, 224, 3)} if model_name.startswith("MobileNetV3") else {}
    model = getattr(keras.applications, model_name)(weights=None, **extra)
    out = []
    for layer in model.layers:
        cls = type(layer).__name__
        if cls not in reference.LAYERS:
            continue
        cfg = layer.get_config()
        args = reference.LAYERS[cls].arguments
        config = {k: v for k, v in cfg.items() if k in args}
        if isinstance(config.get("activation"), dict):  # a registered activation object: skip
            continue
        if any(v is None for v in layer.input.shape[1:]):
            raise ValueError(f"{model_name}/{layer.name}: input shape {layer.input.shape} is not fully known")
        shape = (1, *(int(v) for v in layer.input.shape[1:]))
        out.append((layer.name, {"class_name": cls, "config": config}, shape))
    return out


def _record(records: dict, source: str, model: str, name: str, spec: dict, shape: tuple, version: str) -> None:
    try:
        nspec = reference.normalize(spec)
        reference.output_shape(nspec, shape)
    except InvalidConfig as exc:
        print(f"skipped {model}/{name}: {exc}", file=sys.stderr)
        return
    small = shrink(nspec, shape)
    key = json.dumps([nspec, list(small)], sort_keys=True)
    if key not in records:
        records[key] = {"spec": nspec, "input_shape": list(small), "source": source, "occurrences": []}
        if small != tuple(shape):
            records[key]["shrunk_from"] = list(shape)
    records[key]["occurrences"].append(f"{model}/{name}")


def build(models=MODELS) -> dict:
    """The corpus document (see the module docstring)."""
    import keras

    records: dict = {}
    for model in models:
        for name, spec, shape in _keras_layers(model):
            _record(records, "keras.applications", model, name, spec, shape, keras.__version__)
        keras.backend.clear_session()
    for model, layers in PAPERS.items():
        for name, spec, shape in layers():
            _record(records, "paper", model, name, spec, shape, keras.__version__)
    return {"format_version": FORMAT_VERSION, "keras_version": keras.__version__, "max_macs": MAX_MACS, "max_elements": MAX_ELEMENTS,
            "models": list(models), "papers": list(PAPERS), "layers": list(records.values())}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "oracle" / "data" / "networks.json"))
    args = p.parse_args(argv)
    doc = build()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=0, sort_keys=True)
        f.write("\n")
    shrunk = sum("shrunk_from" in r for r in doc["layers"])
    print(f"{len(doc['layers'])} distinct layer configurations ({shrunk} shrunk) -> {args.out}")


if __name__ == "__main__":
    main()
