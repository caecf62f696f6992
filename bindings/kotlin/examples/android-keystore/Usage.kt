// Example (Android only; not compiled here, see README.md): a client whose
// device key lives in the Android Keystore and whose credential lives in
// EncryptedSharedPreferences. Run it off the main thread (every call blocks).
package org.edrlink.examples

import android.content.Context
import android.os.Build
import org.edrlink.ClientOptions
import org.edrlink.DeviceInfo
import org.edrlink.EdrlinkClient
import org.edrlink.EdrlinkException
import org.edrlink.code
import org.edrlink.detail

fun startEdrlink(context: Context, deviceId: String, accessToken: String?): EdrlinkClient {
    val device = DeviceInfo(
        deviceId = deviceId, hostname = Build.MODEL, os = "android", osVersion = Build.VERSION.RELEASE,
        product = "Acme AV", productVersion = "1.0.0",
    )
    val client = EdrlinkClient(
        // data_dir still holds the durable event spool; the credential goes to the store.
        ClientOptions(device = device, dataDir = context.filesDir.path + "/edrlink", signerTimeoutSecs = 10uL),
        credentialStore = EncryptedPrefsCredentialStore(context),
        hostKeys = AndroidKeystoreHostKeys(context),
    )
    if (!client.health().onboarded && accessToken != null) {
        try {
            client.enroll(accessToken) // create_key + signatures in the Keystore
        } catch (e: EdrlinkException) {
            // "signer_failed": the Keystore refused (detail has its message); "storage": the prefs did.
            android.util.Log.w("edrlink", "enroll failed: ${e.code}: ${e.detail}")
        }
    }
    return client
}
