// Example (Apple platforms; not compiled here, see README.md): the edrlink
// device key in the Secure Enclave. The private key is created inside the
// enclave and cannot be exported; edrlink gets the public key and signatures.
import Foundation
import Security
import Edrlink

/// `HostKeys` over the Secure Enclave: P-256 keys (`kSecAttrTokenIDSecureEnclave`),
/// signatures `.ecdsaSignatureMessageX962SHA256` (DER, which edrlink accepts
/// as is). The handle edrlink stores is the key's application tag.
///
/// Called on the thread that called the client method (never the main thread
/// if you follow the client's rules); the Security framework is thread-safe,
/// so several clients may share one instance. A thrown error fails the
/// operation with `signer_failed` and keeps queued events for the next flush.
///
/// Keys are created without user presence (`.privateKeyUsage` only): edrlink
/// signs in the background, where no Face ID / Touch ID prompt can be shown.
final class SecureEnclaveHostKeys: HostKeys, @unchecked Sendable {
    private let tagPrefix: String

    init(tagPrefix: String = "org.example.acme-av.edrlink-device-key") {
        self.tagPrefix = tagPrefix
    }

    func createKey() throws -> HostKey {
        let tag = "\(tagPrefix).\(UUID().uuidString)"
        var error: Unmanaged<CFError>?
        guard let access = SecAccessControlCreateWithFlags(
            kCFAllocatorDefault, kSecAttrAccessibleAfterFirstUnlockThisDeviceOnly, .privateKeyUsage, &error
        ) else { throw failure("SecAccessControlCreateWithFlags", error) }
        let attributes: [String: Any] = [
            kSecAttrKeyType as String: kSecAttrKeyTypeECSECPrimeRandom,
            kSecAttrKeySizeInBits as String: 256,
            kSecAttrTokenID as String: kSecAttrTokenIDSecureEnclave,
            kSecPrivateKeyAttrs as String: [
                kSecAttrIsPermanent as String: true,
                kSecAttrApplicationTag as String: Data(tag.utf8),
                kSecAttrAccessControl as String: access,
            ] as [String: Any],
        ]
        guard let privateKey = SecKeyCreateRandomKey(attributes as CFDictionary, &error) else {
            throw failure("SecKeyCreateRandomKey (Secure Enclave)", error)
        }
        guard let publicKey = SecKeyCopyPublicKey(privateKey),
              let point = SecKeyCopyExternalRepresentation(publicKey, &error) as Data?
        else { throw failure("SecKeyCopyExternalRepresentation", error) }
        // `point` is the uncompressed SEC1 point 04 || x || y (65 bytes), what edrlink takes.
        return HostKey(handle: tag, publicKey: point)
    }

    func sign(handle: String, message: Data) throws -> Data {
        let key = try privateKey(tag: handle)
        var error: Unmanaged<CFError>?
        // The enclave hashes `message` with SHA-256 and returns a DER (X9.62) signature.
        guard let signature = SecKeyCreateSignature(key, .ecdsaSignatureMessageX962SHA256, message as CFData, &error) as Data? else {
            throw failure("SecKeyCreateSignature", error)
        }
        return signature
    }

    func deleteKey(handle: String) throws {
        let status = SecItemDelete(query(tag: handle) as CFDictionary)
        guard status == errSecSuccess || status == errSecItemNotFound else {
            throw HostError.Failed(reason: "SecItemDelete: OSStatus \(status)")
        }
    }

    private func query(tag: String) -> [String: Any] {
        [
            kSecClass as String: kSecClassKey,
            kSecAttrKeyType as String: kSecAttrKeyTypeECSECPrimeRandom,
            kSecAttrTokenID as String: kSecAttrTokenIDSecureEnclave,
            kSecAttrApplicationTag as String: Data(tag.utf8),
        ]
    }

    private func privateKey(tag: String) throws -> SecKey {
        var q = query(tag: tag)
        q[kSecReturnRef as String] = true
        var item: CFTypeRef?
        let status = SecItemCopyMatching(q as CFDictionary, &item)
        guard status == errSecSuccess, let found = item, CFGetTypeID(found) == SecKeyGetTypeID() else {
            throw HostError.Failed(reason: "no Secure Enclave key \(tag): OSStatus \(status)")
        }
        return found as! SecKey // swiftlint:disable:this force_cast (type checked above)
    }

    private func failure(_ what: String, _ error: Unmanaged<CFError>?) -> HostError {
        let text = error.map { String(describing: $0.takeRetainedValue()) } ?? "unknown error"
        return HostError.Failed(reason: "\(what): \(text)")
    }
}
