// JUnit-free test program for the Kotlin bindings, run against the real
// reference service (URL + admin key from tests/kotlin/run.sh). Prints
// `N passed, N failed` and exits non-zero on any failure.
package edrlinktest

import org.edrlink.*
import java.io.File
import java.net.URI
import java.net.http.HttpClient
import java.net.http.HttpRequest
import java.net.http.HttpResponse
import java.nio.file.Files
import java.security.MessageDigest
import java.time.Duration
import java.util.Collections
import java.util.UUID
import java.util.concurrent.atomic.AtomicInteger
import kotlin.concurrent.thread

const val PARTNER = "acme-av"

class Admin(val url: String, private val key: String) {
    val http: HttpClient = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build()

    fun call(method: String, path: String, body: Any? = null, auth: Boolean = true): Any? {
        val b = HttpRequest.newBuilder(URI.create(url + path)).timeout(Duration.ofSeconds(30))
        if (auth) b.header("authorization", "Bearer $key")
        val pub = if (body == null) HttpRequest.BodyPublishers.noBody() else HttpRequest.BodyPublishers.ofString(Json.write(body))
        if (body != null) b.header("content-type", "application/json")
        b.method(method, pub)
        val r = http.send(b.build(), HttpResponse.BodyHandlers.ofString())
        check(r.statusCode() in 200..299) { "$method $path -> ${r.statusCode()}: ${r.body().take(300)}" }
        return if (r.body().isEmpty()) null else Json.parse(r.body())
    }
}

class Tenant(val admin: Admin) {
    val id = "kt-" + UUID.randomUUID().toString().take(12)
    val base get() = "/admin/tenants/$id/integrations/$PARTNER"

    init {
        admin.call("POST", "/admin/tenants", mapOf("tenant_id" to id, "region" to "eu"))
        setEnabled(true)
    }

    fun setEnabled(on: Boolean) = admin.call("PUT", base, mapOf("enabled" to on)).obj()
    fun token(lifetime: Long? = null): String =
        admin.call("POST", "$base/tokens", if (lifetime == null) mapOf<String, Any?>() else mapOf("lifetime_secs" to lifetime)).obj()["token"].str()
    fun onboardingPackage(): String = Json.write(admin.call("POST", "$base/onboarding-package", mapOf<String, Any?>()))
    fun offboardingPackage(ids: List<String>): String =
        admin.call("POST", "$base/offboarding-package", mapOf("installation_ids" to ids)).obj()["package"].str()
    fun alerts(): List<Map<String, Any?>> = admin.call("GET", "/admin/tenants/$id/alerts").obj()["alerts"].list().map { it.obj() }
    fun installations(): List<Map<String, Any?>> = admin.call("GET", "/admin/tenants/$id/installations").obj()["installations"].list().map { it.obj() }
    fun events(): Long = admin.call("GET", "/admin/tenants/$id/stats").obj()["events"].long()
}

fun device() = DeviceInfo(
    deviceId = "dev-" + UUID.randomUUID(), hostname = "kt-host", os = "linux", osVersion = "6.1",
    product = "Acme AV", productVersion = "1.0.0",
)

fun options(dataDir: String? = null, opTimeout: ULong = 30uL, override: String? = null) =
    ClientOptions(device = device(), dataDir = dataDir, opTimeoutSecs = opTimeout, serviceUrl = override)

/** The app's own HTTP stack: java.net.http. */
class JavaHttpTransport : Transport {
    private val http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build()
    val urls: MutableList<String> = Collections.synchronizedList(mutableListOf())

    override fun send(request: TransportRequest): TransportResponse {
        urls.add(request.url)
        val b = HttpRequest.newBuilder(URI.create(request.url)).timeout(Duration.ofSeconds(30))
            .method(request.method, HttpRequest.BodyPublishers.ofByteArray(request.body))
        for (h in request.headers) if (h.name.lowercase() !in setOf("content-length", "host", "connection")) b.header(h.name, h.value)
        val r = try {
            http.send(b.build(), HttpResponse.BodyHandlers.ofByteArray())
        } catch (e: java.io.IOException) {
            throw TransportException.Failed("java.net.http: $e")
        }
        val headers = r.headers().map().flatMap { (k, vs) -> vs.map { TransportHeader(k, it) } }
        return TransportResponse(r.statusCode().toUShort(), headers, r.body())
    }
}

class Failing(private val e: Throwable) : Transport {
    val calls = AtomicInteger()
    override fun send(request: TransportRequest): TransportResponse { calls.incrementAndGet(); throw e }
}

// ---------------------------------------------------------------------------

var passed = 0
var failed = 0

fun test(name: String, body: () -> Unit) {
    val t0 = System.nanoTime()
    try {
        body()
        passed++
        println("ok   $name (${(System.nanoTime() - t0) / 1_000_000} ms)")
    } catch (e: Throwable) {
        failed++
        println("FAIL $name: $e")
        e.printStackTrace(System.out)
    }
}

fun check(cond: Boolean, msg: () -> String = { "check failed" }) { if (!cond) throw AssertionError(msg()) }

/** Runs [f], which must throw [EdrlinkException] with [code]; every field comes
 * from the core (number and status match the code table), read on the base type. */
fun expectErr(code: String, f: () -> Unit): EdrlinkException {
    try {
        f()
    } catch (e: EdrlinkException) {
        check(e.code == code) { "code ${e.code} != $code (${e.detail})" }
        val row = errorCodeInfo(code)!!
        check(e.number == row.number && e.httpStatus == row.httpStatus) { "fields of $e" }
        check(e.detail.isNotEmpty()) { "empty detail" }
        return e
    }
    throw AssertionError("expected EdrlinkException ($code)")
}

fun hex(b: ByteArray) = b.joinToString("") { "%02x".format(it) }
fun unhex(s: String) = ByteArray(s.length / 2) { s.substring(2 * it, 2 * it + 2).toInt(16).toByte() }

fun main() {
    val url = System.getenv("EDRLINK_TEST_SERVICE_URL") ?: error("EDRLINK_TEST_SERVICE_URL not set: use tests/kotlin/run.sh")
    val admin = Admin(url, System.getenv("EDRLINK_ADMIN_KEY") ?: error("EDRLINK_ADMIN_KEY not set"))
    val vectorsDir = File(System.getenv("EDRLINK_VECTORS_DIR") ?: "tests/vectors")

    test("version and error table") {
        check(version().isNotEmpty() && protocolVersion() == 1u)
        val codes = errorCodes()
        check(codes.size >= 30)
        check(errorCodeInfo("token_expired")?.number == 300u)
    }

    test("full story: token -> redeem -> handshake -> send -> EICAR alert -> offboard (AutoCloseable)") {
        val t = Tenant(admin)
        val tok = t.token()
        val info = inspectToken(tok)
        check(info.claims.tenantId == t.id && info.status == TokenStatus.VALID)
        val dir = Files.createTempDirectory("edrlink-kt").toString()
        var iid = ""
        EdrlinkClient(options(dir)).use { c ->
            val h = c.enroll(tok)
            check(h.onboarded && h.flow == FlowState.OPEN)
            iid = h.installationId!!
            check(File(dir, "credential.json").exists())
            check(c.handshake() == FlowState.OPEN)
            c.submitJson("""{"type":"generic","time":"${rfc3339Time()}","name":"process_start","data":{"pid":1}}""")
            c.submitDetection(Detection(threatName = "Trojan.Kt", filePath = "/tmp/x", sha256 = "cd".repeat(32), severity = Severity.HIGH, action = DetectionAction.BLOCKED))
            c.sendTestDetection()
            val out = c.flush(30uL)
            check(out.queued == 0uL && out.delivered >= 3uL) { "$out" }
            val eicar = t.alerts().filter { it["title"] == "EICAR test file" }
            check(eicar.size == 1 && eicar[0]["test"] == true && eicar[0]["installation_id"] == iid) { "$eicar" }
            check(eicar[0]["sha256"] == eicarSha256())
            check(t.alerts().any { it["threat_name"] == "Trojan.Kt" })
            check(t.installations().any { it["id"] == iid && it["offboarded"] == false })
            c.offboard()
            check(!c.health().onboarded && !File(dir, "credential.json").exists())
        }
        check(t.installations().any { it["id"] == iid && it["offboarded"] == true })
    }

    test("down-level onboarding package") {
        val t = Tenant(admin)
        val pkg = t.onboardingPackage()
        check(inspectOnboardingPackage(pkg).tenantId == t.id)
        EdrlinkClient(options()).use { c ->
            check(c.enrollWithPackage(pkg).onboarded)
            c.sendTestDetection()
            check(c.flush(30uL).queued == 0uL)
        }
        check(t.alerts().any { it["title"] == "EICAR test file" })
    }

    test("offboarding package") {
        val t = Tenant(admin)
        EdrlinkClient(options()).use { c ->
            val iid = c.enroll(t.token()).installationId!!
            c.offboard(t.offboardingPackage(listOf(iid)))
            check(!c.health().onboarded)
        }
    }

    test("error: token expired") {
        val t = Tenant(admin)
        val tok = t.token(lifetime = 1)
        Thread.sleep(2200)
        check(inspectToken(tok).status == TokenStatus.EXPIRED)
        EdrlinkClient(options()).use { c ->
            val e = expectErr("token_expired") { c.enroll(tok) }
            check(e.number == 300u && e.httpStatus == 401.toUShort() && e.retryAfter == null)
        }
    }

    test("error: token tampered (service and verifyToken)") {
        val t = Tenant(admin)
        val tok = t.token()
        val (h, p, s) = tok.split(".")
        val bad = "$h.$p.${s.substring(0, 5)}${if (s[5] == 'A') 'B' else 'A'}${s.substring(6)}"
        EdrlinkClient(options()).use { c -> expectErr("bad_signature") { c.enroll(bad) } }
        val keyset = Json.write(admin.call("GET", "/v1/keys", auth = false))
        check(verifyToken(tok, keyset).tenantId == t.id)
        expectErr("bad_signature") { verifyToken(bad, keyset) }
        expectErr("malformed") { inspectToken("nope") }
    }

    test("error: integration disabled") {
        val t = Tenant(admin)
        val tok = t.token()
        t.setEnabled(false)
        EdrlinkClient(options()).use { c -> expectErr("integration_disabled") { c.enroll(tok) } }
    }

    test("error: epoch mismatch after toggle off/on") {
        val t = Tenant(admin)
        val tok = t.token()
        t.setEnabled(false); t.setEnabled(true)
        EdrlinkClient(options()).use { c ->
            expectErr("epoch_mismatch") { c.enroll(tok) }
            check(c.enroll(t.token()).onboarded)
        }
    }

    test("error: flow blocked, then revoked") {
        val t = Tenant(admin)
        EdrlinkClient(options()).use { c ->
            c.enroll(t.token())
            t.setEnabled(false)
            check(c.handshake() == FlowState.BLOCKED)
            c.sendTestDetection()
            expectErr("flow_blocked") { c.flush(5uL) }
            check(c.health().queuedEvents >= 1uL)
            t.setEnabled(true)
            check(c.handshake() == FlowState.REVOKED && c.health().needsNewToken)
        }
    }

    test("error: invalid JSON event, invalid argument, invalid state") {
        EdrlinkClient(options()).use { c ->
            expectErr("malformed") { c.submitJson("{not json") }
            expectErr("malformed") { c.submitJson("""{"type":"generic","time":"nope","name":"x"}""") }
            expectErr("invalid_state") { c.handshake() }
            check(c.health().queuedEvents == 0uL)
        }
        val bad = device().copy(deviceId = "")
        expectErr("invalid_argument") { EdrlinkClient(ClientOptions(device = bad)) }
        // wrong-length seeds and keys: the core's codes
        expectErr("invalid_argument") { sealEnvelope("a/b", byteArrayOf(1), ByteArray(31)) }
        expectErr("invalid_argument") { publicKeyFromSeed(ByteArray(33)) }
        expectErr("malformed") { openEnvelope(byteArrayOf(), ByteArray(5), "a/b") }
        val c = EdrlinkClient(options())
        c.shutdown()
        check(c.isShutDown())
        expectErr("invalid_state") { c.health() }
        c.close()
    }

    test("error: transport (closed port)") {
        val t = Tenant(admin)
        EdrlinkClient(options(opTimeout = 2uL, override = "http://127.0.0.1:9")).use { c ->
            expectErr("transport") { c.enroll(t.token()) }
        }
    }

    test("envelopes: bytes in, bytes out; signer") {
        val seed = ByteArray(32) { it.toByte() }
        val pk = publicKeyFromSeed(seed)
        val payload = ByteArray(4096) { (it * 7).toByte() }
        val env = sealEnvelope("application/x", payload, seed)
        check(openEnvelope(env, pk, "application/x").contentEquals(payload))
        EnvelopeSigner(seed).use { s -> check(s.seal("application/x", payload).contentEquals(env)) }
        EnvelopeSigner(seed).use { s ->
            val payloads = listOf(byteArrayOf(), payload, byteArrayOf(1, 2, 3))
            val envs = s.sealBatch("application/x", payloads)
            check(envs.size == 3 && envs[1].contentEquals(env))
            envs.zip(payloads).forEach { (e, p) -> check(openEnvelope(e, pk, "application/x").contentEquals(p)) }
            check(s.sealBatch("application/x", listOf()).isEmpty())
            expectErr("malformed") { s.sealBatch("not a type", payloads) }
        }
        expectErr("wrong_type") { openEnvelope(env, pk, "application/y") }
        expectErr("unknown_key") { openEnvelope(env, publicKeyFromSeed(ByteArray(32)), "application/x") }
        val s = EnvelopeSigner.generate(); s.wipe()
        expectErr("invalid_state") { s.seal("a/b", byteArrayOf()) }
        s.close()
    }

    // --- the per-call path (reused call statuses, nesting)
    callPathTests(admin)

    // --- host transport
    test("host transport (java.net.http): real exchange") {
        val t = Tenant(admin)
        val tr = JavaHttpTransport()
        EdrlinkClient(options(), tr).use { c ->
            check(c.enroll(t.token()).onboarded)
            c.sendTestDetection()
            check(c.flush(30uL).queued == 0uL)
            c.offboard()
        }
        val paths = tr.urls.map { it.substringAfter("/v1/") }.toSet()
        check(paths.containsAll(listOf("redeem", "handshake", "ingest", "offboard"))) { "$paths" }
        check(t.alerts().any { it["title"] == "EICAR test file" })
    }

    test("host transport: problem details keep their code") {
        val t = Tenant(admin)
        val tok = t.token(); t.setEnabled(false)
        EdrlinkClient(options(), JavaHttpTransport()).use { c -> expectErr("integration_disabled") { c.enroll(tok) } }
    }

    test("host transport: thrown exceptions become Transport errors") {
        val t = Tenant(admin)
        for (e in listOf(TransportException.Failed("no route"), java.io.IOException("reset"), IllegalStateException("host bug"))) {
            val f = Failing(e)
            EdrlinkClient(options(opTimeout = 1uL), f).use { c ->
                expectErr("transport") { c.enroll(t.token()) }
                check(f.calls.get() >= 1)
            }
        }
    }

    test("native transport object wrapped by a host decorator") {
        val t = Tenant(admin)
        val native = nativeTransport()
        val statuses = Collections.synchronizedList(mutableListOf<Int>())
        val metered = object : Transport {
            override fun send(request: TransportRequest): TransportResponse = native.send(request).also { statuses.add(it.status.toInt()) }
        }
        EdrlinkClient(options(), metered).use { c -> check(c.enroll(t.token()).onboarded) }
        check(statuses.isNotEmpty() && statuses.all { it == 200 }) { "$statuses" }
    }

    // --- threads
    for ((label, mk) in listOf<Pair<String, () -> Transport?>>("native" to { null }, "host" to { JavaHttpTransport() })) {
        test("threads: 8 threads x 25 events ($label transport)") {
            val t = Tenant(admin)
            EdrlinkClient(options(), mk()).use { c ->
                c.enroll(t.token())
                val before = t.events()
                val errors = Collections.synchronizedList(mutableListOf<Throwable>())
                val threads = (0 until 8).map { n ->
                    thread {
                        try {
                            for (i in 0 until 25) {
                                c.submitJson("""{"type":"generic","time":"${rfc3339Time()}","name":"file_write","data":{"t":$n,"i":$i}}""")
                                if (i % 10 == 9) c.flush(30uL)
                                c.health()
                            }
                        } catch (e: Throwable) { errors.add(e) }
                    }
                }
                threads.forEach { it.join(120_000) }
                check(errors.isEmpty()) { "$errors" }
                check(c.flush(30uL).queued == 0uL)
                val stored = t.events() - before
                check(stored in 200..203) { "stored $stored" }
                check(c.health().drops.isEmpty())
            }
        }
    }

    contractTests(admin, File(System.getenv("EDRLINK_ROOT") ?: "."))
    hookTests(admin)
    hostKeyTests(admin)

    // --- shared vectors
    val implemented = setOf("pae", "key_from_seed", "token_inspect", "token_verify", "envelope_seal", "envelope_open",
        "shared_key_sign", "shared_key_verify", "eicar", "eicar_detection", "error_code", "rfc3339_format", "event_validate")
    val skipped = sortedMapOf<String, Int>()
    var run = 0
    val files = vectorsDir.listFiles { f -> f.name.endsWith(".json") }?.sortedBy { it.name } ?: emptyList()
    test("vectors present") { check(files.isNotEmpty()) { "no vectors in $vectorsDir" } }
    for (f in files) {
        for (case in Json.parse(f.readText()).obj()["cases"].list().map { it.obj() }) {
            val kind = case["kind"].str()
            if (kind !in implemented) { skipped[kind] = (skipped[kind] ?: 0) + 1; continue }
            run++
            test("vector ${f.nameWithoutExtension}:${case["name"]}") { vector(kind, case["input"].obj(), case["expect"].obj()) }
        }
    }
    println("vectors: $run cases run; skipped kinds (no Kotlin API): ${skipped.entries.joinToString(", ") { "${it.key}=${it.value}" }}")

    // --- shared scenarios (Scenarios.kt): each failed scenario counts as a failed test
    val (scnOk, scnBad) = scenariosMain(url, System.getenv("EDRLINK_ADMIN_KEY")!!, File(System.getenv("EDRLINK_ROOT") ?: "."))
    passed += scnOk
    failed += scnBad

    println("$passed passed, $failed failed")
    System.exit(if (failed == 0 && passed > 0) 0 else 1)
}

fun claimsMap(c: TokenClaims): Map<String, Any?> = mapOf(
    "iss" to c.iss, "aud" to c.aud, "jti" to c.jti, "iat" to c.iat, "nbf" to c.nbf, "exp" to c.exp,
    "partner_id" to c.partnerId, "tenant_id" to c.tenantId, "region" to c.region, "service_url" to c.serviceUrl,
    "epoch" to c.epoch.toLong(), "max_uses" to c.maxUses.toLong(),
)

fun vector(kind: String, i: Map<String, Any?>, expect: Map<String, Any?>) {
    val run: () -> Map<String, Any?> = {
        when (kind) {
            "pae" -> mapOf("pae_hex" to hex(pae(i["payload_type"].str(), unhex(i["payload_hex"].str()))))
            "key_from_seed" -> publicKeyFromSeed(unhex(i["seed_hex"].str())).let { mapOf("public_key_hex" to hex(it), "kid" to keyId(it)) }
            "token_inspect" -> inspectToken(i["token"].str()).let { mapOf("kid" to it.kid, "claims" to claimsMap(it.claims)) }
            "token_verify" -> mapOf("claims" to claimsMap(verifyToken(i["token"].str(), i["keyset_json"].str(), i["now"].long(), i["skew"].long())))
            "envelope_seal" -> mapOf("envelope" to String(sealEnvelope(i["payload_type"].str(), unhex(i["payload_hex"].str()), unhex(i["seed_hex"].str()))))
            "envelope_open" -> mapOf("payload_hex" to hex(openEnvelope(i["envelope"].str().toByteArray(), unhex(i["public_key_hex"].str()), i["payload_type"].str())))
            "shared_key_sign" -> {
                val a = listOf(i["method"].str(), i["path"].str(), i["content_type"].str(), i["date"].str())
                val body = unhex(i["body_hex"].str())
                mapOf(
                    "string_to_sign" to sharedKeyStringToSign(a[0], a[1], a[2], a[3], body),
                    "authorization" to sharedKeyAuthorization(i["workspace_id"].str(), unhex(i["key_hex"].str()), a[0], a[1], a[2], a[3], body),
                )
            }
            "shared_key_verify" -> {
                sharedKeyVerify(i["authorization"].str(), unhex(i["key_hex"].str()), i["method"].str(), i["path"].str(), i["content_type"].str(), i["date"].str(), unhex(i["body_hex"].str()), i["now"].long())
                mapOf("ok" to true)
            }
            "eicar" -> {
                val b = eicarBytes()
                check(String(b) == i["eicar_text"].str())
                check(hex(MessageDigest.getInstance("SHA-256").digest(b)) == eicarSha256())
                mapOf("length" to b.size.toLong(), "sha256_hex" to eicarSha256())
            }
            "eicar_detection" -> mapOf("event_json" to eicarTestEventJson(i["file_path"].str(), i["now"].long()))
            "error_code" -> errorCodeInfo(i["name"].str())!!.let { mapOf("number" to it.number.toLong(), "http_status" to it.httpStatus.toLong()) }
            "rfc3339_format" -> mapOf("text" to rfc3339Time(i["unix"].long()))
            "event_validate" -> mapOf("category" to validateEventJson(i["event_json"].str()).category.name.lowercase())
            else -> error(kind)
        }
    }
    val err = expect["error"]
    if (err != null) {
        try {
            run()
        } catch (e: EdrlinkException) {
            check(e.code == err) { "got ${e.code}, want $err" }
            return
        }
        throw AssertionError("expected error $err")
    }
    for ((k, v) in run()) {
        check(expect.containsKey(k)) { "unexpected key $k" }
        if (k.endsWith("_json")) check(Json.parse(v.str()) == Json.parse(expect[k].str())) { "$k: $v != ${expect[k]}" }
        else check(v == expect[k]) { "$k: $v != ${expect[k]}" }
    }
}
