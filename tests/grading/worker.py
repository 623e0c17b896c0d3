"""The grading worker: the only process in which a student's exercise runs.

Each exercise of a submission gets a worker of its own, forked from a server that has torch and the harness
loaded and has never seen a test (so forking is cheap and the worker holds nothing worth stealing: no
expected value, no reference result, no key of the grader's result channel). The test process
(:class:`grading.harness.Remote`) sends it the arguments of each call; the worker loads the student's
function through the harness's safety nets (static scan, guarded imports, reference watch, global-state
checks, output cap), calls it, and sends back only plain data (:mod:`grading.wire`): the result, the
arguments as the call left them (for in-place updates), the global random state, and, when the test
process asks for it, the gradients of a backward pass through the call. The comparison with the reference
happens in the test process, where no student code ever runs.
"""

from __future__ import annotations

import os
import pickle

import torch
import torch.nn as nn

from . import harness, wire


class _WorkerChannel:
    """The harness's view of the grader inside a worker: the submitted files' digests, and no way to report."""

    def __init__(self, grader: bool, digests: dict[str, str]):
        self.grader = bool(grader)  # the grader's rules apply (digests checked, output capped); no key here
        self.digests = dict(digests)

    def send(self, record: dict) -> None:
        pass


def _builtin_base(error: BaseException) -> str:
    """The name of the nearest built-in exception class of ``error`` (``pytest.raises(ValueError)`` in the test
    process must accept a student's ``class BadShape(ValueError)``)."""
    for cls in type(error).__mro__:
        if cls.__module__ == "builtins" and issubclass(cls, Exception):
            return cls.__name__
    return "Exception"


def _snapshot_arguments(values: list) -> list:
    """What the worker must compare after the call: each tensor's storage and version (its count of in-place
    changes), each module's tensors by name."""
    seen = []
    for value in values:
        if type(value) in (torch.Tensor, nn.Parameter):
            seen.append((value.data_ptr(), value._version))
        elif isinstance(value, nn.Module):
            named = dict(value.named_parameters()) | dict(value.named_buffers())
            seen.append({name: (t, t.data_ptr(), t._version) for name, t in named.items() if t is not None})
        else:
            seen.append(None)
    return seen


def _tensor_after(t, same: bool, pointer: int, version: int) -> dict:
    same_storage = same and t.data_ptr() == pointer
    if same_storage and t._version == version:
        return {"same": True, "same_storage": True, "changed": False}  # untouched: nothing to write back
    return {"value": t.detach(), "same": same, "same_storage": same_storage, "changed": True, "leaf": t.is_leaf,
            "requires_grad": t.requires_grad, "parameter": type(t) is nn.Parameter}  # fmt: skip


def _arguments_after(values: list, before: list) -> list:
    """Each argument as the call left it: a tensor's values, a module's tensors, a generator's state."""
    after = []
    for value, seen in zip(values, before):
        if type(value) in (torch.Tensor, nn.Parameter):
            after.append({"kind": "tensor", **_tensor_after(value, True, *seen)})
        elif isinstance(value, nn.Module):
            tensors = {}
            for name, (original, pointer, version) in seen.items():
                try:
                    current = value.get_parameter(name) if name in dict(value.named_parameters()) else value.get_buffer(name)
                except (AttributeError, TypeError):
                    current = None
                if type(current) not in (torch.Tensor, nn.Parameter):
                    tensors[name] = {"missing": True}
                else:
                    tensors[name] = _tensor_after(current, current is original, pointer, version)
            after.append({"kind": "module", "tensors": tensors})
        elif type(value) is torch.Generator:
            after.append({"kind": "generator", "state": value.get_state()})
        else:
            after.append({"kind": "other"})
    return after


def _call(function, request: dict):
    args, kwargs = request["args"], request["kwargs"]
    values = list(args) + list(kwargs.values())
    torch.set_rng_state(request["rng"])
    torch.set_grad_enabled(request["grad"])
    before = _snapshot_arguments(values)
    leaves = harness.leaves(values)
    result = function(*args, **kwargs)
    outputs: list[torch.Tensor] = []
    wire.encode(result, collect=outputs)  # the result's tensors, in the order the test process will see them
    differentiable = [i for i, t in enumerate(outputs) if t.requires_grad]
    reply = {"ok": True, "result": result, "arguments": _arguments_after(values, before), "rng": torch.get_rng_state(),
             "differentiable": differentiable if leaves else []}  # fmt: skip
    torch.set_grad_enabled(True)
    kept = ([outputs[i] for i in differentiable], leaves) if leaves and differentiable else None
    return reply, kept


def _backward(function, kept, request: dict) -> dict:
    if kept is None:
        raise harness.GradingFailure("no gradient can flow back through an earlier call of this function", "failed")
    outputs, leaves = kept
    pairs = [(o, g) for o, g in zip(outputs, request["grads"]) if g is not None]
    if not pairs:
        return {"ok": True, "grads": [None] * len(leaves)}

    def gradients():
        return torch.autograd.grad([o for o, _ in pairs], leaves, [g for _, g in pairs], allow_unused=True)

    grads = harness.run_student_code(f"the backward pass of {function.name}", function.allow, gradients)
    return {"ok": True, "grads": [g if g is None else g.detach() for g in grads]}


def ready() -> None:
    """A worker that only says whether the fork server loaded its preload (starting one waits until it has)."""
    import sys

    sys.exit(0 if __name__.rpartition(".")[0] + ".preload" in sys.modules else 1)


def serve(conn, settings: dict) -> None:
    """Answer the test process's requests until it closes the connection."""
    os.environ.pop("MINIJEPA_GRADING_REPORT", None)  # the results file of harness tests: not the worker's
    os.environ["MINIJEPA_SUBMISSION"] = settings["submission"]  # the fork server's environment may be older
    harness._channel = _WorkerChannel(settings["grader"], settings["digests"])
    # the submitted bytes, verified by the test process: the worker never reads them from disk
    harness._sources.update({(settings["submission"], m): data for m, data in settings["files"].items()})
    torch.set_num_threads(1)
    from . import preload  # noqa: F401 - already loaded when forked from the fork server; else (spawn, or a
    # restarted fork server) loaded here, before the baseline, so that its changes are nobody's fault
    baseline = harness.code_snapshot()  # before any student code: what the worker's checks compare with
    function, kept = None, None
    while True:
        try:
            request = pickle.loads(conn.recv_bytes())  # from the test process: trusted
        except (EOFError, OSError):
            return
        try:
            op = request["op"]
            if op == "load":
                function = harness.student(settings["module"], settings["name"], tuple(settings["allow"]))
                reply = {"ok": True}
            elif op == "call":
                kept = None
                reply, kept = _call(function, request)
            elif op == "backward":
                reply = _backward(function, kept, request)
            else:  # "check": did the exercise's code change functions of the reference, torch ... in this process?
                reply = {"ok": True, "changes": harness.code_changes(baseline, harness.code_snapshot())}
            data = wire.encode(reply)
        except harness.GradingFailure as error:
            data = wire.encode({"ok": False, "message": str(error), "category": error.category})
        except BaseException as error:  # noqa: BLE001 - the student's exception, described for the test
            data = wire.encode({"ok": False, "message": harness._describe(error), "exception": _builtin_base(error)})
        conn.send_bytes(data)
