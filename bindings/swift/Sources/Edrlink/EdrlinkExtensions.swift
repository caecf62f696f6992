// Hand-written companion to the generated Edrlink.swift (not generated).
import Foundation

extension EdrlinkError {
    /// The stable snake_case code name, e.g. "token_expired".
    public var code: String {
        // Generated cases are named after the Rust variants (TokenExpired(message:)).
        let name = String(describing: self).prefix { $0 != "(" }
        var out = ""
        for (i, ch) in name.enumerated() {
            if ch.isUppercase && i > 0 { out.append("_") }
            out.append(contentsOf: ch.lowercased())
        }
        return out
    }

    /// The stable number of the code (as the C API returns it).
    public var number: UInt32? { errorCodeInfo(name: code)?.number }
}
