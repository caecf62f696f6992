// Hand-written companions to the generated bindings (edrlink.kt). Not generated.
package org.edrlink

private val CAMEL = Regex("(?<!^)(?=[A-Z])")

/** The stable snake_case code name, e.g. `"token_expired"`. */
val EdrlinkException.code: String
    get() = CAMEL.replace(javaClass.simpleName, "_").lowercase()

/** The stable number of the code (as the C API returns it). */
val EdrlinkException.number: UInt?
    get() = errorCodeInfo(code)?.number

/** The HTTP status the service uses for this code. */
val EdrlinkException.httpStatus: UShort?
    get() = errorCodeInfo(code)?.httpStatus

/** The message without its `code: ` prefix. */
val EdrlinkException.detail: String
    get() = (message ?: "").removePrefix("$code: ")
