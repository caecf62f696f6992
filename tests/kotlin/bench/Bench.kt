// Kotlin envelope-seal benchmark (report only): edrlink (Rust core through
// uniffi + JNA) beside the same DSSE construction on the JVM's own Ed25519
// (java.security, Java 15+), the native Rust figure (argument: JSON from the
// seal_bench example) and the per-call overhead of a trivial call.
package edrlinkbench

import org.edrlink.EnvelopeSigner
import org.edrlink.protocolVersion
import java.security.KeyFactory
import java.security.Signature
import java.security.spec.PKCS8EncodedKeySpec
import java.util.Base64

const val PT = "application/vnd.edrlink.batch.v1+json"

fun nsPerCall(f: () -> Any?): Double {
    repeat(2000) { f() } // JIT warm-up
    var n = 1L
    while (true) {
        val t = System.nanoTime()
        for (i in 0 until n) f()
        if (System.nanoTime() - t > 50_000_000) break
        n *= 2
    }
    n *= 4
    var best = Double.MAX_VALUE
    repeat(5) {
        val t = System.nanoTime()
        for (i in 0 until n) f()
        best = minOf(best, (System.nanoTime() - t).toDouble() / n)
    }
    return best
}

fun main(args: Array<String>) {
    val rust = args.firstOrNull() ?: ""
    fun rustNs(key: String): Double? = Regex("\"$key\":\\s*([0-9.]+)").find(rust)?.groupValues?.get(1)?.toDouble()

    val seed = ByteArray(32) { it.toByte() }
    val signer = EnvelopeSigner(seed)
    val kid = signer.keyId()
    val pkcs8 = byteArrayOf(0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20) + seed
    val sk = KeyFactory.getInstance("Ed25519").generatePrivate(PKCS8EncodedKeySpec(pkcs8))
    val b64 = Base64.getEncoder()
    val ptBytes = PT.toByteArray()

    fun sealJvm(payload: ByteArray): ByteArray {
        val pae = "DSSEv1 ${ptBytes.size} $PT ${payload.size} ".toByteArray() + payload
        val s = Signature.getInstance("Ed25519")
        s.initSign(sk)
        s.update(pae)
        val sig = s.sign()
        val json = StringBuilder(payload.size * 4 / 3 + 200)
            .append("{\"payload\":\"").append(b64.encodeToString(payload))
            .append("\",\"payloadType\":\"").append(PT)
            .append("\",\"signatures\":[{\"keyid\":\"").append(kid)
            .append("\",\"sig\":\"").append(b64.encodeToString(sig)).append("\"}]}")
        return json.toString().toByteArray()
    }

    println("edrlink Kotlin/JVM envelope seal, best of 5 (JVM ${System.getProperty("java.version")})")
    println(String.format("%6s %11s %12s %13s %8s %13s", "size", "edrlink µs", "jvm-ed25519", "jvm/edrlink", "rust µs", "edrlink/rust"))
    for (size in listOf(1024, 64 * 1024)) {
        val payload = ByteArray(size) { ((it * 31) % 251).toByte() }
        val a = signer.seal(PT, payload)
        val b = sealJvm(payload)
        if (!a.contentEquals(b)) {
            System.err.println("constructions disagree at $size bytes:\n${String(a).take(200)}\n${String(b).take(200)}")
            System.exit(1)
        }
        val e = nsPerCall { signer.seal(PT, payload) }
        val j = nsPerCall { sealJvm(payload) }
        val r = rustNs("seal_${size / 1024}k_ns")
        val rs = if (r != null) String.format("%8.1f %12.2fx", r / 1000, e / r) else String.format("%8s %13s", "-", "-")
        println(String.format("%5dK %11.1f %12.1f %12.2fx %s", size / 1024, e / 1000, j / 1000, j / e, rs))
        // One FFI crossing for many envelopes: the fixed per-call cost is paid once.
        val batch = 64
        val payloads = List(batch) { payload }
        if (!signer.sealBatch(PT, payloads).all { it.contentEquals(a) }) {
            System.err.println("sealBatch disagrees with seal at $size bytes")
            System.exit(1)
        }
        val eb = nsPerCall { signer.sealBatch(PT, payloads) } / batch
        val rb = if (r != null) String.format(" (%.2fx Rust)", eb / r) else ""
        println(String.format("%6s sealBatch of %d: %.1f µs per envelope, %.2fx JVM Ed25519%s", "", batch, eb / 1000, j / eb, rb))
    }
    val t = nsPerCall { protocolVersion() }
    println(String.format("trivial call protocolVersion(): %.0f ns", t))
    signer.close()
}
