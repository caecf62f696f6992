// Hand-written companion to the generated Edrlink.swift (not generated).
// uniffi generates errors from enums only, so EdrlinkError has the one case
// `Failure(code:number:httpStatus:retryAfter:detail:)`; these properties read
// its fields on the base type, so callers never switch over it.
import Foundation

extension EdrlinkError {
    /// The stable snake_case code name, e.g. "token_expired" (see `errorCodes()`).
    public var code: String {
        switch self { case let .Failure(code, _, _, _, _): return code }
    }

    /// The stable number of the code (as the C API returns it).
    public var number: UInt32 {
        switch self { case let .Failure(_, number, _, _, _): return number }
    }

    /// The HTTP status that goes with the code.
    public var httpStatus: UInt16 {
        switch self { case let .Failure(_, _, httpStatus, _, _): return httpStatus }
    }

    /// Seconds the service asked the client to wait (`Retry-After`), if any.
    public var retryAfter: UInt64? {
        switch self { case let .Failure(_, _, _, retryAfter, _): return retryAfter }
    }

    /// Human-readable detail (never a secret).
    public var detail: String {
        switch self { case let .Failure(_, _, _, _, detail): return detail }
    }
}
