"""Leaner replacements for the per-call helpers of the uniffi-generated
``edrlink._native`` module (uniffi 0.32).

Why: with a 1 KiB payload, ``EnvelopeSigner.seal`` spent more time in the
generated Python glue than in Rust's Ed25519. The generated code makes every
call build its status struct through keyword arguments plus a second struct,
and lowers each ``str`` / ``bytes`` argument through a growable buffer builder
that costs two to three ctypes round trips (allocate 16 bytes, reserve,
write); a ``bytes`` result is read through a context manager and a stream
object. The replacements below keep the same FFI functions, wire format and
error handling and only cut the Python work:

- call status: ``_UniffiRustCallStatus()`` is already zero-filled by ctypes,
  which *is* the success state with an empty error buffer, and a status whose
  call succeeded is still in that state, so it is reused (per thread) instead
  of building two structs per call; the generated checker still runs (and
  raises exactly as before) whenever Rust reports something other than
  success, and such a status is never reused;
- ``str`` and ``bytes`` arguments: one allocation of the exact size, one
  ``memmove``;
- ``bytes`` results: one copy out of the buffer, then the buffer is freed
  (also when the length prefix is inconsistent, which raises as before).
- ``EnvelopeSigner.seal``: calls the Rust ``seal_borrowed`` (the same
  construction with ``&[u8]`` arguments) so both arguments are passed as
  pointers into the caller's ``bytes`` instead of Rust buffers (see
  ``_install_seal``).

Apart from ``seal`` (which calls ``seal_borrowed``), nothing here changes
which Rust functions are called or what they receive. If the generated
module does not have the expected shape (another uniffi version), nothing is
replaced and the generated helpers are used as they are.
"""

from __future__ import annotations

import ctypes
import struct
import threading
from typing import Any

#: Whether ``EnvelopeSigner.seal`` goes through ``seal_borrowed`` (set by install).
BORROWED_SEAL = False


def install(native: Any, seal: bool = True) -> bool:
    """Installs the replacements into ``native``; returns whether it did.
    ``seal=False`` keeps the generated ``EnvelopeSigner.seal`` (for the
    benchmark's same-run comparison)."""
    lib = getattr(native, "_UniffiLib", None)
    names = (
        "_UniffiRustCallStatus",
        "_UniffiRustBuffer",
        "_uniffi_check_call_status",
        "_uniffi_rust_call_with_error",
        "_uniffi_rust_call",
        "_UniffiFfiConverterString",
        "_UniffiFfiConverterBytes",
        "InternalError",
    )
    alloc = getattr(lib, "ffi_edrlink_uniffi_rustbuffer_alloc", None)
    free = getattr(lib, "ffi_edrlink_uniffi_rustbuffer_free", None)
    if lib is None or alloc is None or free is None or not all(hasattr(native, n) for n in names):
        return False
    status_type = native._UniffiRustCallStatus
    if status_type.CALL_SUCCESS != 0 or status_type().code != 0:
        return False
    check = native._uniffi_check_call_status
    internal_error = native.InternalError
    byref = ctypes.byref
    memmove = ctypes.memmove
    string_at = ctypes.string_at
    c_void_p = ctypes.c_void_p
    cast = ctypes.cast
    be_i32 = struct.Struct(">i")

    # Call statuses are reused per thread: a status whose call succeeded is
    # untouched by Rust (code 0, empty error buffer) and goes back to the
    # thread's free list; one that reported an error is handed to the checker
    # and never reused. A nested call on the same thread (a Rust call made
    # from a callback such as Transport.send) takes another status, so
    # re-entrancy is safe.
    local = threading.local()

    def take() -> Any:
        free_list = getattr(local, "free", None)
        if free_list:
            return free_list.pop()
        if free_list is None:
            local.free = []
        status = status_type()
        return (status, byref(status))

    def rust_call_with_error(error_ffi_converter: Any, fn: Any, *args: Any) -> Any:
        item = take()
        result = fn(*args, item[1])
        if item[0].code:
            check(error_ffi_converter, item[0])
        else:
            local.free.append(item)
        return result

    def rust_call(fn: Any, *args: Any) -> Any:
        item = take()
        result = fn(*args, item[1])
        if item[0].code:
            check(None, item[0])
        else:
            local.free.append(item)
        return result

    def buffer_with(prefix: bytes, data: bytes) -> Any:
        n = len(prefix) + len(data)
        rbuf = rust_call(alloc, n)
        addr = cast(rbuf.data, c_void_p).value
        if prefix:
            memmove(addr, prefix, len(prefix))
        if data:
            memmove(addr + len(prefix), data, len(data))
        rbuf.len = n
        return rbuf

    def lower_str(value: str) -> Any:
        return buffer_with(b"", value.encode("utf-8"))

    def lower_bytes(value: Any) -> Any:
        data = bytes(value) if not isinstance(value, bytes) else value
        if len(data) > 0x7FFFFFFF:
            raise ValueError("byte string longer than i32::MAX")
        return buffer_with(be_i32.pack(len(data)), data)

    def lift_bytes(rbuf: Any) -> bytes:
        try:
            n = rbuf.len
            if n < 4:
                raise internal_error("buffer too short for a byte string length")
            addr = cast(rbuf.data, c_void_p).value
            size = be_i32.unpack(string_at(addr, 4))[0]
            if size < 0:
                raise internal_error("Unexpected negative byte string length")
            if size != n - 4:
                raise RuntimeError(f"junk data left in buffer at end of consume_with_stream {n - 4 - size}")
            return string_at(addr + 4, size)
        finally:
            rust_call(free, rbuf)

    native._uniffi_rust_call_with_error = rust_call_with_error
    native._uniffi_rust_call = rust_call
    native._UniffiFfiConverterString.lower = staticmethod(lower_str)
    native._UniffiFfiConverterBytes.lower = staticmethod(lower_bytes)
    native._UniffiFfiConverterBytes.lift = staticmethod(lift_bytes)
    global BORROWED_SEAL
    BORROWED_SEAL = seal and _install_seal(native, lib, take, local)
    return True


class _RustBuffer(ctypes.Structure):
    """The C layout of uniffi's ``RustBuffer`` with ``data`` as an address
    (an ``int``), so reading the result needs no ``ctypes.cast``."""

    _fields_ = [("capacity", ctypes.c_uint64), ("len", ctypes.c_uint64), ("data", ctypes.c_void_p)]


class _ForeignBytes(ctypes.Structure):
    """The C layout of uniffi's ``ForeignBytes`` (a borrowed ``&[u8]``) with
    ``data`` as ``c_char_p``: assigning a ``bytes`` object stores the address of
    its own buffer (no copy) and keeps the object alive with the struct."""

    _fields_ = [("len", ctypes.c_int32), ("data", ctypes.c_char_p)]


def _install_seal(native: Any, lib: Any, take: Any, local: Any) -> bool:
    """Makes ``EnvelopeSigner.seal`` call the Rust ``seal_borrowed`` (same
    construction, arguments borrowed as ``&[u8]``): a seal is then three FFI
    round trips (handle clone, the call, freeing the result) instead of five,
    with no argument buffers and no copies into Rust. Private copies of the
    two function pointers carry ``argtypes`` that take the layouts above; the
    generated ones are left as they are. Errors go through the generated
    checker with the generated error converter, as in the generated ``seal``."""
    signer = getattr(native, "EnvelopeSigner", None)
    names = ("_UniffiFfiConverterTypeEdrlinkError", "_UniffiForeignBytes")
    fn_names = (
        "uniffi_edrlink_uniffi_fn_method_envelopesigner_seal_borrowed",
        "uniffi_edrlink_uniffi_fn_clone_envelopesigner",
        "ffi_edrlink_uniffi_rustbuffer_free",
    )
    if signer is None or not callable(getattr(signer, "seal", None)) or not all(hasattr(native, n) for n in names):
        return False
    if not all(getattr(lib, n, None) is not None for n in fn_names):
        return False
    # The generated argument types of seal_borrowed must be the layouts mirrored
    # above (handle, two ForeignBytes, call status), else nothing is replaced.
    generated = getattr(lib, fn_names[0])
    status_type = native._UniffiRustCallStatus
    expect = (ctypes.c_uint64, native._UniffiForeignBytes, native._UniffiForeignBytes, ctypes.POINTER(status_type))
    if tuple(generated.argtypes or ()) != expect or generated.restype is not native._UniffiRustBuffer:
        return False
    if ctypes.sizeof(native._UniffiForeignBytes) != ctypes.sizeof(_ForeignBytes) or ctypes.sizeof(native._UniffiRustBuffer) != ctypes.sizeof(_RustBuffer):
        return False

    status_ptr = ctypes.POINTER(status_type)
    seal_fn = lib._FuncPtr((fn_names[0], lib))
    seal_fn.argtypes = (ctypes.c_uint64, _ForeignBytes, _ForeignBytes, status_ptr)
    seal_fn.restype = _RustBuffer
    free_fn = lib._FuncPtr((fn_names[2], lib))
    free_fn.argtypes = (_RustBuffer, status_ptr)
    free_fn.restype = None
    clone_fn = getattr(lib, fn_names[1])
    check = native._uniffi_check_call_status
    error_converter = native._UniffiFfiConverterTypeEdrlinkError
    check_str = native._UniffiFfiConverterString.check_lower
    check_bytes = native._UniffiFfiConverterBytes.check_lower
    internal_error = native.InternalError
    string_at = ctypes.string_at
    unpack_len = struct.Struct(">i").unpack_from

    def seal(self: Any, payload_type: str, payload: bytes) -> bytes:
        check_str(payload_type)
        check_bytes(payload)
        pt = payload_type.encode("utf-8")
        if type(payload) is not bytes:
            payload = bytes(payload)
        if len(payload) > 0x7FFFFFFF or len(pt) > 0x7FFFFFFF:
            raise ValueError("byte string longer than i32::MAX")
        # A status that reports an error goes to the checker (which raises)
        # and is never handed back to the free list.
        item = take()
        status, ref = item
        handle = clone_fn(self._handle, ref)
        if status.code:
            check(None, status)
        rbuf = seal_fn(handle, _ForeignBytes(len(pt), pt), _ForeignBytes(len(payload), payload), ref)
        if status.code:
            check(error_converter, status)
        try:
            n = rbuf.len
            if n < 4:
                raise internal_error("buffer too short for a byte string length")
            raw = string_at(rbuf.data, n)
            size = unpack_len(raw)[0]
            if size < 0:
                raise internal_error("Unexpected negative byte string length")
            if size != n - 4:
                raise RuntimeError(f"junk data left in buffer at end of consume_with_stream {n - 4 - size}")
            return raw[4:]
        finally:
            free_fn(rbuf, ref)
            if status.code:
                check(None, status)
            local.free.append(item)

    seal.__doc__ = signer.seal.__doc__
    signer.seal = seal
    return True
