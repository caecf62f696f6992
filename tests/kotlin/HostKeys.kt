// Keys that never leave the device, from Kotlin: a java.security EC P-256
// key (KeyPairGenerator "EC" + Signature "SHA256withECDSA", DER signatures),
// standing in for the Android Keystore, and an in-memory CredentialStore,
// against the real reference service. Proves: enroll, signed batches and
// rotation with a key the SDK never sees (stored == sent); the credential has
// host_key and no key_seed; a failing signer is signer_failed and loses no
// queued event; no private key byte reaches the store, the transport or the
// log sink.
package edrlinktest

import org.edrlink.*
import java.math.BigInteger
import java.security.KeyPair
import java.security.KeyPairGenerator
import java.security.Signature
import java.security.interfaces.ECPrivateKey
import java.security.interfaces.ECPublicKey
import java.security.spec.ECGenParameterSpec
import java.util.Base64
import java.util.Collections
import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.atomic.AtomicInteger

/** A big-endian integer as exactly [n] bytes (Java adds a sign byte or drops leading zeros). */
fun fixed(v: BigInteger, n: Int): ByteArray {
    val b = v.toByteArray()
    return when {
        b.size == n -> b
        b.size > n -> b.copyOfRange(b.size - n, b.size)
        else -> ByteArray(n - b.size) + b
    }
}

/** The platform keystore: P-256 keys that stay in this object. */
class JavaP256Keys : HostKeys {
    val keys = ConcurrentHashMap<String, KeyPair>()
    val retired = ConcurrentHashMap<String, KeyPair>()
    val publicKeys = ConcurrentHashMap<String, ByteArray>()
    val created: MutableList<String> = Collections.synchronizedList(mutableListOf())
    val deleted: MutableList<String> = Collections.synchronizedList(mutableListOf())
    val signed = AtomicInteger()
    private val next = AtomicInteger()

    /** When set, sign() throws it (a locked keystore, an invalidated key). */
    @Volatile var failWith: Throwable? = null

    override fun createKey(): HostKey {
        val gen = KeyPairGenerator.getInstance("EC")
        gen.initialize(ECGenParameterSpec("secp256r1"))
        val kp = gen.generateKeyPair()
        val w = (kp.public as ECPublicKey).w
        // Uncompressed SEC1 point: 04 || x || y.
        val point = byteArrayOf(4) + fixed(w.affineX, 32) + fixed(w.affineY, 32)
        val handle = "kt-p256-${next.incrementAndGet()}"
        keys[handle] = kp
        publicKeys[handle] = point
        created.add(handle)
        return HostKey(handle, point)
    }

    override fun sign(handle: String, message: ByteArray): ByteArray {
        signed.incrementAndGet()
        failWith?.let { throw it }
        val kp = keys[handle] ?: throw HostException.Failed("no key named $handle")
        val s = Signature.getInstance("SHA256withECDSA")
        s.initSign(kp.private)
        s.update(message)
        return s.sign() // DER (X9.62)
    }

    override fun deleteKey(handle: String) {
        deleted.add(handle)
        keys.remove(handle)?.let { retired[handle] = it }
    }

    /** Every private key ever held: the scalar (32 bytes) and its PKCS#8 DER. */
    fun privateMaterial(): List<ByteArray> =
        (keys.values + retired.values).flatMap { listOf(fixed((it.private as ECPrivateKey).s, 32), it.private.encoded) }
}

/** The host's credential store: a field (standing in for EncryptedSharedPreferences). */
class MemoryStore : CredentialStore {
    @Volatile var value: String? = null
    val saved: MutableList<String> = Collections.synchronizedList(mutableListOf())
    override fun load(): String? = value
    override fun save(json: String) { saved.add(json); value = json }
    override fun delete() { value = null }
}

/** Decorates the native transport, keeping every request the SDK made and the response it got. */
class RecordingTransport : Transport {
    private val native = nativeTransport()
    val requests: MutableList<TransportRequest> = Collections.synchronizedList(mutableListOf())
    val exchanges: MutableList<Pair<TransportRequest, TransportResponse>> = Collections.synchronizedList(mutableListOf())
    override fun send(request: TransportRequest): TransportResponse {
        requests.add(request)
        return native.send(request).also { exchanges.add(request to it) }
    }
    fun blobs(): List<ByteArray> = synchronized(requests) {
        requests.flatMap { r -> listOf(r.url.toByteArray(), r.body) + r.headers.map { "${it.name}: ${it.value}".toByteArray() } }
    }

    /** The events of every batch the service acknowledged as newly stored (`status: accepted`). */
    fun acceptedEvents(): List<Map<String, Any?>> = synchronized(exchanges) { exchanges.toList() }
        .filter { (req, resp) -> req.url.endsWith("/v1/ingest") && resp.status.toInt() == 200 && Json.parse(String(resp.body)).obj()["status"] == "accepted" }
        .flatMap { (req, _) ->
            val payload = Base64.getDecoder().decode(Json.parse(String(req.body)).obj()["payload"].str())
            Json.parse(String(payload)).obj()["events"].list().map { it.obj() }
        }
}

/** The service stored exactly the events of the batches it accepted (the SDK's
 * heartbeats included), and among them each event the test submitted once. */
fun checkStoredEqualsSent(t: Tenant, tr: RecordingTransport, ours: Int) {
    val events = tr.acceptedEvents()
    check(t.events() == events.size.toLong()) { "stored ${t.events()}, accepted ${events.size}" }
    val submitted = events.filter { it["name"] == "process_start" }.map { it["data"].obj().let { d -> d["tag"] to d["i"] } }
    check(submitted.size == ours && submitted.toSet().size == ours) { "submitted events delivered: $submitted" }
}

class RecordingLog : LogSink {
    val messages: MutableList<String> = Collections.synchronizedList(mutableListOf())
    override fun log(level: LogLevel, message: String) { messages.add(message) }
}

fun containsBytes(hay: ByteArray, needle: ByteArray): Boolean {
    if (needle.isEmpty() || needle.size > hay.size) return false
    outer@ for (i in 0..hay.size - needle.size) {
        for (j in needle.indices) if (hay[i + j] != needle[j]) continue@outer
        return true
    }
    return false
}

/** Raw, hex, base64 and base64url forms of [secret] found in any blob. */
fun leaks(secrets: List<ByteArray>, blobs: List<ByteArray>): List<String> {
    val found = mutableListOf<String>()
    for ((i, s) in secrets.withIndex()) {
        val forms = listOf(
            s, hex(s).toByteArray(), hex(s).uppercase().toByteArray(),
            Base64.getEncoder().encode(s), Base64.getUrlEncoder().withoutPadding().encode(s), Base64.getUrlEncoder().encode(s),
        )
        for (f in forms) for ((n, b) in blobs.withIndex()) if (containsBytes(b, f)) found.add("secret $i in blob $n")
    }
    return found
}

fun hostKeyTests(admin: Admin) {
    fun submit(c: EdrlinkClient, n: Int, tag: String) = repeat(n) {
        c.submitJson("""{"type":"generic","time":"${rfc3339Time()}","name":"process_start","data":{"tag":"$tag","i":$it}}""")
    }

    test("host keys (java.security P-256): enroll, batches, rotate, stored == sent, no private key reaches edrlink") {
        val t = Tenant(admin)
        val keys = JavaP256Keys()
        val store = MemoryStore()
        val tr = RecordingTransport()
        val log = RecordingLog()
        EdrlinkClient(options(), tr, credentialStore = store, hostKeys = keys).use { c ->
            c.setLogSink(log, LogLevel.TRACE)
            val iid = c.enroll(t.token()).installationId
            check(keys.created.size == 1 && keys.signed.get() >= 1)
            val first = keys.created[0]
            var cred = Json.parse(store.value!!).obj()
            check("key_seed" !in cred && cred["host_key"].obj()["handle"] == first) { store.value!! }
            val jwk = cred["host_key"].obj()["jwk"].obj()
            val pub = keys.publicKeys[first]!!
            val b64 = Base64.getUrlEncoder().withoutPadding()
            check(jwk["kty"] == "EC" && jwk["crv"] == "P-256" && jwk["x"] == b64.encodeToString(pub.copyOfRange(1, 33)) &&
                jwk["y"] == b64.encodeToString(pub.copyOfRange(33, 65)) && "d" !in jwk) { "$jwk" }
            for (b in 0 until 3) { submit(c, 5, "before-$b"); check(c.flush(30uL).queued == 0uL) }
            checkStoredEqualsSent(t, tr, 15)

            c.rotate()
            check(keys.created.size == 2 && keys.deleted == listOf(first)) { "${keys.created} ${keys.deleted}" }
            cred = Json.parse(store.value!!).obj()
            check("key_seed" !in cred && cred["host_key"].obj()["handle"] == keys.created[1])
            check(c.health().installationId == iid)
            submit(c, 5, "after")
            check(c.flush(30uL).queued == 0uL)
            checkStoredEqualsSent(t, tr, 20)
            val kids = tr.requests.filter { it.url.endsWith("/v1/ingest") }
                .map { Json.parse(String(it.body)).obj()["signatures"].list()[0].obj()["keyid"] }
            check(kids.first() == keyId(pub) && kids.last() == keyId(keys.publicKeys[keys.created[1]]!!)) { "$kids" }
        }
        val secrets = keys.privateMaterial()
        check(secrets.size == 4)
        val blobs = store.saved.map { it.toByteArray() } + tr.blobs() + log.messages.map { it.toByteArray() }
        check(store.saved.isNotEmpty() && tr.requests.isNotEmpty() && log.messages.isNotEmpty())
        val found = leaks(secrets, blobs)
        check(found.isEmpty()) { "private key material reached edrlink: $found" }
        check(leaks(secrets, listOf(byteArrayOf(1) + secrets[0])).isNotEmpty()) { "the scan misses a raw key" }
    }

    test("host keys: restart from the host store keeps sending; without the keys it is invalid_state") {
        val t = Tenant(admin)
        val keys = JavaP256Keys()
        val store = MemoryStore()
        val tr = RecordingTransport()
        val opts = options()
        val iid = EdrlinkClient(opts, tr, credentialStore = store, hostKeys = keys).use { c ->
            val id = c.enroll(t.token()).installationId
            submit(c, 3, "first"); check(c.flush(30uL).queued == 0uL)
            id
        }
        EdrlinkClient(opts, tr, credentialStore = store, hostKeys = keys).use { c ->
            check(c.health().installationId == iid)
            submit(c, 3, "second"); check(c.flush(30uL).queued == 0uL)
        }
        checkStoredEqualsSent(t, tr, 6)
        expectErr("invalid_state") { EdrlinkClient(opts, credentialStore = store) }
    }

    test("host keys: a failing signer is signer_failed, keeps the queue, recovers") {
        val t = Tenant(admin)
        val keys = JavaP256Keys()
        val opts = ClientOptions(device = device(), maxBackoffSecs = 1uL, recoveryJitterSecs = 0uL)
        EdrlinkClient(opts, credentialStore = MemoryStore(), hostKeys = keys).use { c ->
            c.enroll(t.token())
            check(c.flush(30uL).queued == 0uL) // the first heartbeat goes out
            val before = t.events()
            submit(c, 6, "held")
            for (e in listOf(HostException.Failed("keystore locked"), java.security.SignatureException("key invalidated"))) {
                keys.failWith = e
                val err = expectErr("signer_failed") { c.flush(5uL) }
                val want = if (e is HostException.Failed) "keystore locked" else "key invalidated"
                check(err.detail.contains(want)) { err.detail }
                val h = c.health()
                check(h.queuedEvents == 6uL && h.drops.isEmpty() && h.lastError?.code == "signer_failed") { "$h" }
                check(t.events() == before)
            }
            keys.failWith = null
            val out = c.flush(30uL)
            check(out.delivered == 6uL && out.queued == 0uL) { "$out" }
            check(t.events() == before + 6) { "stored ${t.events() - before}" }
        }
    }
}
