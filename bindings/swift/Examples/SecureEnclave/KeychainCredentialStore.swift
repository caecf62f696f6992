// Example (Apple platforms; not compiled here, see README.md): the edrlink
// credential as a Keychain generic password.
import Foundation
import Security
import Edrlink

/// `CredentialStore` over the Keychain (`kSecClassGenericPassword`, this
/// device only, readable after first unlock so background sending works).
/// edrlink hands it the credential JSON (with `SecureEnclaveHostKeys`: the
/// key's tag and public key, never a private key) and expects it back byte
/// for byte. `save` updates the item in place (the old value stays until the
/// new one is written) and adds it when missing.
final class KeychainCredentialStore: CredentialStore, @unchecked Sendable {
    private let service: String
    private let account: String

    init(service: String = "org.example.acme-av.edrlink", account: String = "credential") {
        self.service = service
        self.account = account
    }

    func load() throws -> String? {
        var q = base()
        q[kSecReturnData as String] = true
        q[kSecMatchLimit as String] = kSecMatchLimitOne
        var item: CFTypeRef?
        let status = SecItemCopyMatching(q as CFDictionary, &item)
        if status == errSecItemNotFound { return nil }
        guard status == errSecSuccess, let data = item as? Data, let json = String(data: data, encoding: .utf8) else {
            throw HostError.Failed(reason: "SecItemCopyMatching: OSStatus \(status)")
        }
        return json
    }

    func save(json: String) throws {
        let value = Data(json.utf8)
        var status = SecItemUpdate(base() as CFDictionary, [kSecValueData as String: value] as CFDictionary)
        if status == errSecItemNotFound {
            var add = base()
            add[kSecValueData as String] = value
            add[kSecAttrAccessible as String] = kSecAttrAccessibleAfterFirstUnlockThisDeviceOnly
            status = SecItemAdd(add as CFDictionary, nil)
        }
        guard status == errSecSuccess else { throw HostError.Failed(reason: "Keychain save: OSStatus \(status)") }
    }

    func delete() throws {
        let status = SecItemDelete(base() as CFDictionary)
        guard status == errSecSuccess || status == errSecItemNotFound else {
            throw HostError.Failed(reason: "SecItemDelete: OSStatus \(status)")
        }
    }

    private func base() -> [String: Any] {
        [
            kSecClass as String: kSecClassGenericPassword,
            kSecAttrService as String: service,
            kSecAttrAccount as String: account,
        ]
    }
}
