"""Plain data between a grading worker and the test process: numbers, strings, tensors, containers, nothing else.

The worker runs the student's code; the test process compares what comes back with the reference. So what
the test process reads must not be able to run code when it is read (``pickle`` could): :func:`encode` (in
the worker) writes a JSON tree in which every tensor is replaced by a reference to a raw buffer, and
:func:`decode` (in the test process) rebuilds it with ``json`` and ``torch.frombuffer`` only. An object of
any other type arrives as an :class:`Opaque` stand-in that carries its type's name, so a test can still say
"should be a torch.Tensor, got Sneaky". Subclasses (of float, list, Tensor ...) are opaque too: their
methods are student code.

Requests from the test process to the worker are trusted data and travel with pickle (the worker needs the
tests' modules and generators as objects).
"""

from __future__ import annotations

import json
import struct

import numpy as np
import torch

_DTYPES = {
    str(d).removeprefix("torch."): d
    for d in (torch.float64, torch.float32, torch.float16, torch.bfloat16, torch.int64, torch.int32, torch.int16,
              torch.int8, torch.uint8, torch.bool, torch.complex64, torch.complex128)
}  # fmt: skip
_MAX_DEPTH = 32


class Opaque:
    """What a value of a type the wire does not carry becomes (its class is named after the original type)."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} object from the submission>"


def _opaque(name: str) -> Opaque:
    name = name if name.isidentifier() else "object"
    return type(name[:60], (Opaque,), {})()


def _type_name(value) -> str:
    return type.__dict__["__name__"].__get__(type(value))  # never a metaclass's property (student code)


def encode(value, collect: list | None = None) -> bytes:
    """``value`` as bytes: an 8-byte header length, the JSON tree, then the tensors' raw bytes (each after
    its length). ``collect``, if given, receives the tensors written, in order."""
    buffers: list[bytes] = []

    def tree(v, depth=0):
        kind = type(v)
        if depth > _MAX_DEPTH:
            return {"$opaque": "deeply_nested"}
        if v is None or kind in (bool, str):
            return v
        if kind is int:
            return v if -(2**63) <= v < 2**63 else {"$opaque": "int"}
        if kind is float or kind is np.float64:  # numpy's float64 is a float (the base type's own repr below)
            return {"$float": float.__repr__(v)}  # exact, and keeps nan / inf out of JSON's way
        if kind in (torch.Tensor, torch.nn.Parameter):
            t = v.detach()
            if t.layout != torch.strided or t.device.type != "cpu" or str(t.dtype).removeprefix("torch.") not in _DTYPES:
                return {"$opaque": "Tensor"}
            data = t.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
            buffers.append(data)
            if collect is not None:
                collect.append(v)
            return {"$tensor": len(buffers) - 1, "dtype": str(t.dtype).removeprefix("torch."), "shape": list(t.shape),
                    "requires_grad": bool(v.requires_grad)}  # fmt: skip
        if kind is torch.dtype:
            return {"$dtype": str(v).removeprefix("torch.")}
        if kind is torch.Size:
            return {"$size": [int(s) for s in v]}
        if kind in (list, tuple):
            items = [tree(x, depth + 1) for x in v]
            return items if kind is list else {"$tuple": items}
        if kind is dict and all(type(k) is str for k in v):
            return {"$dict": {k: tree(x, depth + 1) for k, x in v.items()}}
        return {"$opaque": _type_name(v)}

    header = json.dumps(tree(value)).encode()
    return struct.pack("<Q", len(header)) + header + b"".join(struct.pack("<Q", len(b)) + b for b in buffers)


def decode(data: bytes):
    """The value :func:`encode` wrote (tensors are new, writable, CPU tensors)."""
    (size,) = struct.unpack_from("<Q", data, 0)
    header = json.loads(data[8 : 8 + size].decode())
    buffers, offset = [], 8 + size
    while offset < len(data):
        (n,) = struct.unpack_from("<Q", data, offset)
        buffers.append(data[offset + 8 : offset + 8 + n])
        offset += 8 + n

    def value(node):
        if node is None or isinstance(node, (bool, int, str)):
            return node
        if isinstance(node, list):
            return [value(x) for x in node]
        if "$float" in node:
            return float(node["$float"])
        if "$tensor" in node:
            dtype = _DTYPES[node["dtype"]]
            raw = buffers[node["$tensor"]]
            flat = torch.frombuffer(bytearray(raw), dtype=dtype) if raw else torch.empty(0, dtype=dtype)
            t = flat.reshape(node["shape"])
            return t.requires_grad_(True) if node["requires_grad"] and (t.is_floating_point() or t.is_complex()) else t
        if "$dtype" in node:
            return _DTYPES[node["$dtype"]]
        if "$size" in node:
            return torch.Size(node["$size"])
        if "$tuple" in node:
            return tuple(value(x) for x in node["$tuple"])
        if "$dict" in node:
            return {k: value(x) for k, x in node["$dict"].items()}
        return _opaque(str(node.get("$opaque", "object")))

    return value(header)


def tensors_in(value) -> list[torch.Tensor]:
    """The tensors of a decoded value, in the order :func:`replace_tensors` expects."""
    found: list[torch.Tensor] = []

    def walk(v):
        if isinstance(v, torch.Tensor):
            found.append(v)
        elif isinstance(v, (list, tuple)):
            for x in v:
                walk(x)
        elif isinstance(v, dict):
            for x in v.values():
                walk(x)

    walk(value)
    return found


def replace_tensors(value, new: list[torch.Tensor]):
    """``value`` with its tensors (in :func:`tensors_in` order) replaced by ``new``."""
    it = iter(new)

    def walk(v):
        if isinstance(v, torch.Tensor):
            return next(it)
        if isinstance(v, list):
            return [walk(x) for x in v]
        if isinstance(v, tuple) and not isinstance(v, torch.Size):
            return tuple(walk(x) for x in v)
        if isinstance(v, dict):
            return {k: walk(x) for k, x in v.items()}
        return v

    return walk(value)
