// Example (Apple platforms; not compiled here, see README.md): a client whose
// device key lives in the Secure Enclave and whose credential lives in the
// Keychain. Every call blocks: run it off the main thread.
import Foundation
import Edrlink

func startEdrlink(device: DeviceInfo, dataDir: URL, accessToken: String?) throws -> EdrlinkClient {
    let client = try EdrlinkClient(
        // dataDir still holds the durable event spool; the credential goes to the Keychain.
        options: ClientOptions(device: device, signerTimeoutSecs: 10, dataDir: dataDir.path),
        credentialStore: KeychainCredentialStore(),
        hostKeys: SecureEnclaveHostKeys()
    )
    if try !client.health().onboarded, let token = accessToken {
        do {
            _ = try client.enroll(token: token) // createKey + signatures in the enclave
        } catch let e as EdrlinkError {
            // "signer_failed": the enclave refused (detail has its message); "storage": the Keychain did.
            print("edrlink enroll failed: \(e.code): \(e.detail)")
        }
    }
    return client
}
