// Hand-written companions to the generated bindings (edrlink.kt). Not generated.
// uniffi generates exceptions from enums only, so EdrlinkException has the one
// subclass `Failure` holding the core's fields; these properties read them on
// the base type, so `catch (e: EdrlinkException) { e.code }` needs no cast.
package org.edrlink

/** The stable snake_case code name, e.g. `"token_expired"` (see [errorCodes]). */
val EdrlinkException.code: String
    get() = when (this) { is EdrlinkException.Failure -> this.code }

/** The stable number of the code (as the C API returns it). */
val EdrlinkException.number: UInt
    get() = when (this) { is EdrlinkException.Failure -> this.number }

/** The HTTP status that goes with the code. */
val EdrlinkException.httpStatus: UShort
    get() = when (this) { is EdrlinkException.Failure -> this.httpStatus }

/** Seconds the service asked the client to wait (`Retry-After`), or null. */
val EdrlinkException.retryAfter: ULong?
    get() = when (this) { is EdrlinkException.Failure -> this.retryAfter }

/** Human-readable detail (never a secret). */
val EdrlinkException.detail: String
    get() = when (this) { is EdrlinkException.Failure -> this.detail }
