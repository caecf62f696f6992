// Example (Android only; not compiled here, see README.md): the edrlink
// credential in EncryptedSharedPreferences (androidx.security:security-crypto),
// encrypted with a Keystore-held AES key.
package org.edrlink.examples

import android.content.Context
import android.content.SharedPreferences
import androidx.security.crypto.EncryptedSharedPreferences
import androidx.security.crypto.MasterKey
import org.edrlink.CredentialStore
import org.edrlink.HostException

/**
 * [CredentialStore] over EncryptedSharedPreferences. edrlink hands it the
 * credential JSON (with [AndroidKeystoreHostKeys]: the key's alias and public
 * key, never a private key) and expects it back byte for byte. `commit()` is
 * synchronous, so a save that did not reach the disk is reported (edrlink
 * then fails the operation with `storage` and keeps the previous credential).
 */
class EncryptedPrefsCredentialStore(context: Context, file: String = "edrlink_credential") : CredentialStore {
    private val prefs: SharedPreferences = EncryptedSharedPreferences.create(
        context,
        file,
        MasterKey.Builder(context).setKeyScheme(MasterKey.KeyScheme.AES256_GCM).build(),
        EncryptedSharedPreferences.PrefKeyEncryptionScheme.AES256_SIV,
        EncryptedSharedPreferences.PrefValueEncryptionScheme.AES256_GCM,
    )

    override fun load(): String? = prefs.getString(KEY, null)

    override fun save(json: String) {
        if (!prefs.edit().putString(KEY, json).commit()) throw HostException.Failed("EncryptedSharedPreferences: commit failed")
    }

    override fun delete() {
        if (!prefs.edit().remove(KEY).commit()) throw HostException.Failed("EncryptedSharedPreferences: commit failed")
    }

    private companion object {
        const val KEY = "credential"
    }
}
