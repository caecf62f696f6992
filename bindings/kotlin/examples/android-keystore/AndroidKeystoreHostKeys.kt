// Example (Android only; not compiled here, see README.md): the edrlink
// device key in the Android Keystore. The private key is generated inside
// the Keystore (StrongBox when the device has it, the TEE otherwise) and
// never leaves it; edrlink gets the public key and signatures only.
package org.edrlink.examples

import android.content.Context
import android.content.pm.PackageManager
import android.os.Build
import android.security.keystore.KeyGenParameterSpec
import android.security.keystore.KeyProperties
import android.security.keystore.StrongBoxUnavailableException
import org.edrlink.HostException
import org.edrlink.HostKey
import org.edrlink.HostKeys
import java.math.BigInteger
import java.security.KeyPair
import java.security.KeyPairGenerator
import java.security.KeyStore
import java.security.Signature
import java.security.interfaces.ECPublicKey
import java.security.spec.ECGenParameterSpec
import java.util.UUID

/**
 * [HostKeys] over the Android Keystore: EC P-256 keys with `PURPOSE_SIGN`,
 * StrongBox-backed when available (falls back to the TEE when the device has
 * no StrongBox or it refuses the key), signatures `SHA256withECDSA` (DER,
 * which edrlink accepts as is).
 *
 * edrlink calls these methods on the thread that called the client method
 * (never the main thread if you follow the client's rules); the Keystore is
 * thread-safe, and several clients may share one instance. An
 * exception thrown here (a `KeyPermanentlyInvalidatedException`, a locked
 * StrongBox) fails the operation with `signer_failed`; queued events stay
 * queued and are signed again on the next flush.
 *
 * Keys are created without user authentication: edrlink signs in the
 * background (every batch), where no biometric prompt can be shown.
 */
class AndroidKeystoreHostKeys(
    private val context: Context,
    private val aliasPrefix: String = "edrlink-device-key",
) : HostKeys {
    private val keyStore: KeyStore = KeyStore.getInstance(KEYSTORE).apply { load(null) }

    override fun createKey(): HostKey {
        // The alias is the handle edrlink stores in its credential (not secret, <= 256 bytes).
        val alias = "$aliasPrefix-${UUID.randomUUID()}"
        val pair = try {
            generate(alias, strongBox = hasStrongBox())
        } catch (e: StrongBoxUnavailableException) {
            generate(alias, strongBox = false)
        }
        return HostKey(handle = alias, publicKey = uncompressedPoint(pair.public as ECPublicKey))
    }

    override fun sign(handle: String, message: ByteArray): ByteArray {
        val entry = keyStore.getEntry(handle, null) as? KeyStore.PrivateKeyEntry
            ?: throw HostException.Failed("no Android Keystore key named $handle")
        return Signature.getInstance("SHA256withECDSA").run {
            initSign(entry.privateKey)
            update(message)
            sign() // DER (X9.62)
        }
    }

    override fun deleteKey(handle: String) {
        if (keyStore.containsAlias(handle)) keyStore.deleteEntry(handle)
    }

    private fun hasStrongBox(): Boolean =
        Build.VERSION.SDK_INT >= Build.VERSION_CODES.P &&
            context.packageManager.hasSystemFeature(PackageManager.FEATURE_STRONGBOX_KEYSTORE)

    private fun generate(alias: String, strongBox: Boolean): KeyPair {
        val spec = KeyGenParameterSpec.Builder(alias, KeyProperties.PURPOSE_SIGN)
            .setAlgorithmParameterSpec(ECGenParameterSpec("secp256r1"))
            .setDigests(KeyProperties.DIGEST_SHA256)
            .apply { if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.P) setIsStrongBoxBacked(strongBox) }
            .build()
        val gen = KeyPairGenerator.getInstance(KeyProperties.KEY_ALGORITHM_EC, KEYSTORE)
        gen.initialize(spec)
        return gen.generateKeyPair()
    }

    private companion object {
        const val KEYSTORE = "AndroidKeyStore"

        /** The public key as edrlink takes it: 65 bytes, 04 || x || y. */
        fun uncompressedPoint(key: ECPublicKey): ByteArray =
            byteArrayOf(4) + fixed(key.w.affineX) + fixed(key.w.affineY)

        /** A coordinate as exactly 32 big-endian bytes (BigInteger adds or drops leading zeros). */
        fun fixed(v: BigInteger): ByteArray {
            val b = v.toByteArray()
            return when {
                b.size == 32 -> b
                b.size > 32 -> b.copyOfRange(b.size - 32, b.size)
                else -> ByteArray(32 - b.size) + b
            }
        }
    }
}
