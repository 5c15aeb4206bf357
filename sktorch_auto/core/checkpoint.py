"""Checkpoint files: atomic, verified, and never running code on load.

A checkpoint is one dict saved with ``torch.save``: the network's weights and the
plain data that prediction needs afterwards (the criterion's state, the network
builder's import path and arguments). It carries a SHA-256 checksum of its content,
verified on load; the checksum detects accidents (a flipped byte, a truncated copy),
not attacks, since whoever crafts a file can recompute it. Files are loaded with
``torch.load(..., weights_only=True)`` only, and a builder named by a file is only
called when it is trusted (see :func:`resolve_builder`).
"""

import errno
import hashlib
import importlib
import io
import json
import os
import secrets

import torch

FORMAT = "sktorch_auto.checkpoint"
VERSION = 1
#: The first bytes of the files torch.save writes: a zip archive, or (with
#: ``_use_new_zipfile_serialization=False``) a pickle stream.
_TORCH_MAGIC = (b"PK\x03\x04", b"\x80")
_PLAIN = (str, int, float, bool, type(None))
#: Builders that a file may name and that are called without being passed in.
_TRUSTED_BUILDERS = set()


def register_builder(builder):
    """Let checkpoints that name ``builder`` rebuild it without ``trust_builder``.

    Meant for this library's own network builders (a decorator); a user may
    register their own too, which is the same as trusting every file naming it.
    """
    _TRUSTED_BUILDERS.add((builder.__module__, builder.__qualname__))
    return builder


def is_plain(value):
    """Whether ``value`` is plain data (numbers, strings, lists, tuples, dicts of them)."""
    if isinstance(value, _PLAIN):
        return True
    if isinstance(value, (list, tuple)):
        return all(is_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, (str, int, float, bool)) and is_plain(v)
                   for k, v in value.items())
    return False


def _digest(content):
    """SHA-256 of the content: the plain data as JSON, then each tensor's bytes."""
    h = hashlib.sha256()
    tensors = {}

    def plain(value, path):
        if isinstance(value, torch.Tensor):
            tensors[path] = value
            return f"<tensor {path}>"
        if isinstance(value, dict):
            return {repr(k): plain(v, f"{path}/{k!r}") for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [plain(v, f"{path}/{i}") for i, v in enumerate(value)]
        return value

    h.update(json.dumps(plain(content, ""), sort_keys=True).encode())
    for path in sorted(tensors):
        t = tensors[path].detach().cpu().contiguous()
        h.update(f"{path}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _new_temporary(folder):
    """``(fd, path)`` of a new, exclusively created file ``.tmp-*.part`` in ``folder``.

    Created with mode 0666 less the umask, as a file written in place would be (mkstemp
    makes it private, 0600, and the renamed file would keep that)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = os.path.join(folder, f".tmp-{secrets.token_hex(8)}.part")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "No unused temporary file name", folder)


def atomic_write(path, write):
    """Call ``write(file)`` on a temporary file beside ``path``, then rename it over ``path``.

    A failure (disk full, size limit, exception) leaves a previous ``path`` intact and
    no partial file; it is raised as ``OSError`` naming the path.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = _new_temporary(folder)
    except OSError as exc:  # no such folder, no permission: name the user's path
        raise OSError(exc.errno, f"Could not write {path!r}: {exc.strerror or exc}") from exc
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise OSError(exc.errno, f"Could not write {path!r}: {exc.strerror or exc}") from exc
        if isinstance(exc, RuntimeError):  # torch reports write failures as RuntimeError
            raise OSError(f"Could not write {path!r}: {exc}") from exc
        raise


def save_checkpoint(path, content):
    """Save ``content`` (a dict of tensors and plain data) atomically with its checksum."""
    record = {"format": FORMAT, "version": VERSION, "content": content}
    record["checksum"] = _digest(content)
    atomic_write(path, lambda f: torch.save(record, f))


def load_checkpoint(path, map_location="cpu"):
    """Load and verify a file written by :func:`save_checkpoint`; return its content."""
    path = os.fspath(path)
    with open(path, "rb") as f:
        data = f.read()
    if not data.startswith(_TORCH_MAGIC):
        raise ValueError(f"{path!r} is not an sktorch_auto model file (nor a file of "
                         "torch.save: a CSV or some other file?).")
    try:
        record = torch.load(io.BytesIO(data), map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure means an unreadable file
        # torch's own message advises weights_only=False, i.e. running the file's code:
        # not advice to pass on for a file that should hold weights only.
        raise ValueError(
            f"{path!r} is not a readable sktorch_auto checkpoint (corrupted, truncated, "
            f"or holding objects other than weights and plain data; {type(exc).__name__})."
        ) from exc
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise ValueError(f"{path!r} is not an sktorch_auto checkpoint (or it is corrupted).")
    version = record.get("version", 0)
    if isinstance(version, int) and version > VERSION:
        raise ValueError(
            f"{path!r} was written by a newer sktorch_auto (format version "
            f"{version}); upgrade to read it."
        )
    content = record.get("content")
    try:
        intact = isinstance(content, dict) and _digest(content) == record.get("checksum")
    except Exception:  # noqa: BLE001 - a damaged tensor can fail in many ways
        intact = False
    if not intact:
        raise ValueError(f"{path!r} is corrupted: its checksum does not match its content.")
    return content


def builder_record(net_builder, net_builder_args):
    """How a checkpoint names the builder: import path and plain arguments, or None."""
    module = getattr(net_builder, "__module__", None)
    qualname = getattr(net_builder, "__qualname__", None)
    if not module or not qualname or "<" in qualname or module == "__main__":
        return None
    args = list(net_builder_args)
    return {"module": module, "qualname": qualname, "args": args if is_plain(args) else None}


def _import(module, qualname):
    obj = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def resolve_builder(record, net_builder=None, trust_builder=False, source=""):
    """The builder to rebuild a network with.

    ``net_builder`` when the caller passes one; else the builder the file names, but
    only when it is registered (:func:`register_builder`, as this library's own are) or
    ``trust_builder`` is True: importing and calling whatever a file names would let a
    crafted file run code.
    """
    if net_builder is not None:
        return net_builder
    if not record:
        raise ValueError(
            f"{source!r} does not record an importable network builder; pass net_builder=."
        )
    module, qualname = record["module"], record["qualname"]
    if not (trust_builder or (module, qualname) in _TRUSTED_BUILDERS):
        raise ValueError(
            f"{source!r} names the network builder {module}.{qualname}, which is not "
            "a registered one. Calling a function named by a file can run "
            "arbitrary code, so pass the builder yourself (net_builder=...) or, if you "
            "trust the file, pass trust_builder=True."
        )
    try:
        builder = _import(module, qualname)
    except (ImportError, AttributeError) as exc:
        raise ValueError(
            f"{source!r} names the network builder {module}.{qualname}, which cannot "
            f"be imported ({exc}); pass net_builder=."
        ) from exc
    named_as = (getattr(builder, "__module__", None), getattr(builder, "__qualname__", None))
    if not callable(builder) or named_as != (module, qualname):
        raise ValueError(
            f"{source!r} names {module}.{qualname}, which is not a function or class "
            "defined under that name."
        )
    return builder
