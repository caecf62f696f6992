#!/usr/bin/env python3
"""Deterministic post-generation patch of uniffi 0.32's Kotlin output (run by
generate.sh on the fresh generation before it is written or compared, so
`generate.sh --check` proves the committed file == generator + this patch).

Why: every Rust call from the generated Kotlin allocated a new JNA
`UniffiRustCallStatus` (a `Structure` with a nested by-value `RustBuffer`:
native memory, a Cleaner registration and reflective field setup) — measured
at 8-12 µs under load against ~0.6 µs for the call itself, i.e. most of a
trivial call and, five times over, most of the FFI cost of a seal (handle
clone, two argument buffers, the call, the result free). uniffi 0.32's
`[bindings.kotlin]` options (cleaner, android, checksums, exclude) do not
touch this path, so the helper that creates the status is replaced:

- each thread keeps a small stack of call statuses; a call takes the next
  free one and gives it back afterwards. A Rust call made while another is in
  progress on the same thread (a Kotlin callback such as `Transport.send`
  calling back into Rust, or an argument being lowered through
  `RustBuffer.alloc`) takes a deeper slot, so nested calls never share one;
- the exported functions take the status as a JNA `Pointer` to the slot's
  memory (a `Structure` argument is written before and read back after every
  call through reflection: ~0.6 µs against ~0.06 µs for the call);
- a status Rust left at success (code 0, error buffer untouched) is reused
  as is: that is exactly the state of a new one;
- a status Rust wrote an error into is dropped from the stack (the next call
  at that depth allocates a fresh one) and handed to the generated
  `uniffiCheckCallStatus` after reading it back, so every error, panic and
  unknown code raises exactly as generated;
- `EnvelopeSigner.seal(String, ByteArray)` calls the Rust `seal_borrowed`
  (same construction, `&[u8]` arguments) with its arguments copied into a
  per-thread direct buffer and two reused `ForeignBytes`: one Rust call and
  one JNA `Structure` (the result) instead of three calls and three
  (each `RustBuffer` argument is a `rustbuffer_alloc` call returning a new
  by-value `Structure`). Above 1 MiB of arguments it takes the generated path.

Every replacement is an exact text match that must occur the expected number
of times: a different uniffi version fails loudly instead of being patched
wrongly.

    patch-kotlin.py FILE   (rewrites FILE in place)
"""

from __future__ import annotations

import pathlib
import sys

MARK = "// Patched by bindings/uniffi/scripts/patch-kotlin.py"

CALL_WITH_ERROR_GENERATED = """\
private inline fun <U, E: kotlin.Exception> uniffiRustCallWithError(errorHandler: UniffiRustCallStatusErrorHandler<E>, callback: (UniffiRustCallStatus) -> U): U {
    var status = UniffiRustCallStatus()
    val return_value = callback(status)
    uniffiCheckCallStatus(errorHandler, status)
    return return_value
}
"""

CALL_WITH_ERROR_PATCHED = MARK + """ (per-thread call statuses; see there).
private inline fun <U, E: kotlin.Exception> uniffiRustCallWithError(errorHandler: UniffiRustCallStatusErrorHandler<E>, callback: (Pointer) -> U): U {
    val stack = UniffiCallStatusStack.CURRENT.get()
    val status = stack.acquire()
    val pointer = status.pointer
    val return_value = try {
        callback(pointer)
    } finally {
        stack.release(status)
    }
    // Rust writes the status only when the call did not succeed.
    if (pointer.getByte(0) != UNIFFI_CALL_SUCCESS) {
        status.read()
        uniffiCheckCallStatus(errorHandler, status)
    }
    return return_value
}

""" + MARK + """.
// The call statuses of one thread: slot i serves the call at nesting depth i
// (a callback from Rust calling into Rust again goes one deeper). The Rust
// functions take the status as a plain pointer (no JNA Structure conversion
// per call). A status is reused only while Rust left it at success, which is
// the state of a new one; one that carries an error is dropped from its slot
// and handed to the generated checker.
internal class UniffiCallStatusStack {
    private var slots = arrayOfNulls<UniffiRustCallStatus>(4)
    private var depth = 0

    fun acquire(): UniffiRustCallStatus {
        val d = depth
        if (d == slots.size) {
            slots = slots.copyOf(d * 2)
        }
        val status = slots[d] ?: UniffiRustCallStatus().also {
            it.write()
            slots[d] = it
        }
        depth = d + 1
        return status
    }

    fun release(status: UniffiRustCallStatus) {
        depth -= 1
        if (status.pointer.getByte(0) != UNIFFI_CALL_SUCCESS) {
            slots[depth] = null
        }
    }

    companion object {
        @JvmField
        // (not ThreadLocal.withInitial: that needs Android API 26, the bindings support 24)
        val CURRENT: ThreadLocal<UniffiCallStatusStack> = object : ThreadLocal<UniffiCallStatusStack>() {
            override fun initialValue() = UniffiCallStatusStack()
        }
    }
}
"""

CALL_GENERATED = """\
private inline fun <U> uniffiRustCall(callback: (UniffiRustCallStatus) -> U): U {
"""

CALL_PATCHED = """\
private inline fun <U> uniffiRustCall(callback: (Pointer) -> U): U {
"""

SEAL_GENERATED = """\
    uniffiRustCallWithError(EdrlinkException) { _status ->
    UniffiLib.uniffi_edrlink_uniffi_fn_method_envelopesigner_seal(
        it,
        
        FfiConverterString.lower(`payloadType`),
        FfiConverterByteArray.lower(`payload`),_status)
}
"""

SEAL_PATCHED = """\
    uniffiRustCallWithError(EdrlinkException) { _status ->
    """ + MARK + """ (EnvelopeSigner.seal through seal_borrowed).
    UniffiBorrowedSealArgs.CURRENT.get().call(it, `payloadType`, `payload`, _status)
}
"""

BORROWED_ANCHOR = """\
// Check UniffiRustCallStatus and throw an error if the call wasn't successful
"""

BORROWED_PATCHED = MARK + """.
// EnvelopeSigner.seal passes its arguments to the Rust `seal_borrowed` (same
// construction, `&[u8]` arguments) out of one per-thread direct buffer, with
// two reused ForeignBytes: one FFI round trip and no Rust argument buffers,
// where the generated path allocates a RustBuffer per argument (a Rust call
// and a JNA Structure each). The payload type is encoded by the generated
// FfiConverterString.toUtf8 (same errors). Arguments above 1 MiB together
// take the generated path (the copy dominates there, and the per-thread
// buffer stays small). Rust does not call back into Kotlin during the call,
// so the buffer cannot be reused while it is borrowed.
internal class UniffiBorrowedSealArgs {
    private var buffer: java.nio.ByteBuffer = java.nio.ByteBuffer.allocateDirect(4096)
    private var base: Pointer = Native.getDirectBufferPointer(buffer)
    private val first = ForeignBytes.ByValue()
    private val second = ForeignBytes.ByValue()

    fun call(handle: Long, payloadType: String, payload: ByteArray, status: Pointer): RustBuffer.ByValue {
        val type = FfiConverterString.toUtf8(payloadType)
        val n = type.remaining()
        val total = n.toLong() + payload.size
        if (total > LIMIT) {
            return UniffiLib.uniffi_edrlink_uniffi_fn_method_envelopesigner_seal(
                handle, FfiConverterString.lower(payloadType), FfiConverterByteArray.lower(payload), status)
        }
        if (total > buffer.capacity()) {
            buffer = java.nio.ByteBuffer.allocateDirect(maxOf(total.toInt(), buffer.capacity() * 2).coerceAtMost(LIMIT))
            base = Native.getDirectBufferPointer(buffer)
        }
        buffer.clear()
        buffer.put(type)
        buffer.put(payload)
        first.len = n
        first.data = base
        second.len = payload.size
        second.data = base.share(n.toLong())
        return UniffiLib.uniffi_edrlink_uniffi_fn_method_envelopesigner_seal_borrowed(handle, first, second, status)
    }

    companion object {
        const val LIMIT = 1 shl 20

        @JvmField
        val CURRENT: ThreadLocal<UniffiBorrowedSealArgs> = object : ThreadLocal<UniffiBorrowedSealArgs>() {
            override fun initialValue() = UniffiBorrowedSealArgs()
        }
    }
}

""" + BORROWED_ANCHOR

# (generated text, patched text, expected occurrences; None: one or more)
REPLACEMENTS = [
    (CALL_WITH_ERROR_GENERATED, CALL_WITH_ERROR_PATCHED, 1),
    (CALL_GENERATED, CALL_PATCHED, 1),
    # Every exported Rust function takes the status as a pointer: JNA passes a
    # Pointer as is, where a Structure argument is written before and read
    # back after every call (measured ~10x the cost of the call itself).
    ("uniffi_out_err: UniffiRustCallStatus,", "uniffi_out_err: Pointer,", None),
    (SEAL_GENERATED, SEAL_PATCHED, 1),
    (BORROWED_ANCHOR, BORROWED_PATCHED, 1),
]


def patch(text: str) -> str:
    if MARK in text:
        raise SystemExit("patch-kotlin.py: the file is already patched")
    for old, new, count in REPLACEMENTS:
        found = text.count(old)
        if found == 0 or (count is not None and found != count):
            raise SystemExit(
                f"patch-kotlin.py: expected {count} occurrence(s) of the generated text, found {found} "
                f"(another uniffi version?):\n{old[:200]}"
            )
        text = text.replace(old, new)
    # Nothing may still pass a Structure status to Rust.
    if "uniffi_out_err: UniffiRustCallStatus" in text:
        raise SystemExit("patch-kotlin.py: a Rust function still takes the call status as a Structure")
    return text


def main() -> None:
    if len(sys.argv) != 2:
        raise SystemExit("usage: patch-kotlin.py FILE")
    path = pathlib.Path(sys.argv[1])
    path.write_text(patch(path.read_text()))


if __name__ == "__main__":
    main()
