// Runner of the shared scenarios (tests/scenarios/*.json; format in
// tests/scenarios/README.md) for the Kotlin binding, against the reference
// service tests/kotlin/run.sh started with EDRLINK_TEST_FAULTS=1. Each step is
// one call of the public API; results are converted to the README's
// snake_case JSON shape and compared. Log records go to a list (an Android
// host would send them to logcat). Prints one line per scenario, then
// exactly `scenarios: N passed, M failed`; exits non-zero when anything
// failed or N is not the number of files.
package edrlinktest

import org.edrlink.*
import java.io.File
import java.net.URI
import java.net.http.HttpClient
import java.net.http.HttpRequest
import java.net.http.HttpResponse
import java.nio.file.Files
import java.security.SecureRandom
import java.time.Duration
import java.util.Base64
import java.util.Collections

class StepFailed(msg: String) : Exception(msg)

/** A failed call, as the README's error object (read on the base type). */
data class Failure(val code: String, val number: Long, val httpStatus: Long, val retryAfter: Long?, val detail: String)

val SEVERITY = mapOf("error" to 4, "warn" to 3, "info" to 2, "debug" to 1, "trace" to 0)
val KNOWN_EXPECT = setOf("error", "retry_after", "http_status", "number", "status", "result", "events", "no_events", "log")
const val SCN_PARTNER = "acme-av"

fun randomHex(n: Int): String = ByteArray(n).also { SecureRandom().nextBytes(it) }.joinToString("") { "%02x".format(it) }

fun jsonText(v: Any?): String = if (v is String) v else Json.write(v)

fun jsonEq(a: Any?, b: Any?): Boolean = when {
    a is Boolean || b is Boolean -> a == b
    a is Number && b is Number -> a.toDouble() == b.toDouble()
    a is List<*> && b is List<*> -> a.size == b.size && a.indices.all { jsonEq(a[it], b[it]) }
    a is Map<*, *> && b is Map<*, *> -> a.keys == b.keys && a.keys.all { jsonEq(a[it], b[it]) }
    else -> a == b
}

object Absent

fun getPath(v: Any?, path0: String): Any? {
    val len = path0.endsWith("#")
    val path = path0.removeSuffix("#")
    var cur = v
    for (seg in path.split(".").filter { it.isNotEmpty() }) {
        cur = when (cur) {
            is List<*> -> seg.toIntOrNull()?.let { if (it < cur.size) cur[it] else return Absent } ?: return Absent
            is Map<*, *> -> if (cur.containsKey(seg)) cur[seg] else return Absent
            else -> return Absent
        }
    }
    if (len) return when (cur) { is List<*> -> cur.size.toLong(); is Map<*, *> -> cur.size.toLong(); else -> Absent }
    return cur
}

fun b64url(b: ByteArray): String = Base64.getUrlEncoder().withoutPadding().encodeToString(b)

fun errorMap(e: ErrorInfo?): Map<String, Any?>? = e?.let {
    mapOf("code" to it.code, "number" to it.number.toLong(), "http_status" to it.httpStatus.toLong(),
        "retry_after" to it.retryAfter?.toLong(), "detail" to it.detail)
}

fun healthMap(h: Health): Map<String, Any?> = mapOf(
    "healthy" to h.healthy, "onboarded" to h.onboarded, "installation_id" to h.installationId,
    "flow" to h.flow?.name?.lowercase(), "needs_new_token" to h.needsNewToken,
    "last_handshake" to h.lastHandshake, "last_send" to h.lastSend,
    "queued_events" to h.queuedEvents.toLong(), "queued_bytes" to h.queuedBytes.toLong(),
    "oldest_queued_age" to h.oldestQueuedAge, "sent_events" to h.sentEvents.toLong(),
    "drops" to h.drops.mapValues { it.value.toLong() }, "clock_offset" to h.clockOffset,
    "last_error" to errorMap(h.lastError), "next_attempt" to h.nextAttempt,
)

fun inspectionMap(i: TokenInspection): Map<String, Any?> = mapOf(
    "kid" to i.kid, "claims" to claimsMap(i.claims), "status" to i.status.name.lowercase(),
    "seconds_left" to i.secondsLeft, "expires_at" to i.expiresAt, "expiry_warning_secs" to i.expiryWarningSecs,
    "checked_at" to i.checkedAt, "verified" to i.verified,
)

/** The hooks of one client: what arrived during the current step. */
class Hooks : LogSink, EventSink {
    val events: MutableList<Map<String, Any?>> = Collections.synchronizedList(mutableListOf())
    val logs: MutableList<Pair<String, String>> = Collections.synchronizedList(mutableListOf())
    override fun log(level: LogLevel, message: String) { logs.add(level.name.lowercase() to message) }
    override fun onEvent(event: ClientEvent) { events.add(Json.parse(clientEventToJson(event)).obj()) }
    fun clear() { events.clear(); logs.clear() }
}

class ScenarioRunner(val url: String, private val adminKey: String, private val tmp: File) {
    private val http: HttpClient = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build()

    fun admin(method: String, path: String, body: Any? = null): Pair<Int, Any?> {
        val b = HttpRequest.newBuilder(URI.create(url + path)).timeout(Duration.ofSeconds(60))
            .header("authorization", "Bearer $adminKey").header("content-type", "application/json")
        b.method(method, if (body == null) HttpRequest.BodyPublishers.noBody() else HttpRequest.BodyPublishers.ofString(Json.write(body)))
        val r = http.send(b.build(), HttpResponse.BodyHandlers.ofString())
        val v = if (r.body().isEmpty()) null else try { Json.parse(r.body()) } catch (e: Exception) {
            throw StepFailed("$method $path: answer is not JSON: ${r.body().take(200)}")
        }
        return r.statusCode() to v
    }

    fun run(file: File) = ScenarioRun(this, file, tmp).run()
}

class ScenarioRun(private val r: ScenarioRunner, file: File, private val tmp: File) {
    private val sc = Json.parse(file.readText()).obj()
    private val name = (sc["name"] as? String) ?: file.nameWithoutExtension
    private val vars = LinkedHashMap<String, Any?>()
    private val clients = LinkedHashMap<String, Pair<EdrlinkClient, Hooks>>()
    private val secrets = mutableListOf<String>()

    fun run() {
        if ((sc["story"] as? String).isNullOrEmpty()) throw StepFailed("no story")
        val steps = sc["steps"] as? List<*> ?: throw StepFailed("no steps")
        val tenant = "scn-" + randomHex(6)
        vars["tenant"] = tenant; vars["partner"] = SCN_PARTNER; vars["service_url"] = r.url
        r.admin("POST", "/admin/tenants", mapOf("tenant_id" to tenant, "region" to "eu")).let { (s, b) ->
            if (s != 201) throw StepFailed("setup: creating the tenant answered $s: $b")
        }
        r.admin("PUT", "/admin/tenants/$tenant/integrations/$SCN_PARTNER", mapOf("enabled" to true)).let { (s, b) ->
            if (s != 200) throw StepFailed("setup: turning the integration on answered $s: $b")
        }
        try {
            steps.forEachIndexed { i, st ->
                try { step(st.obj()) } catch (e: StepFailed) { throw StepFailed("step $i (${st.obj()["do"]}): ${e.message}") }
            }
        } finally {
            clients.values.forEach { it.first.close() }
        }
    }

    private fun subst(v: Any?): Any? = when (v) {
        is String -> {
            if (v.startsWith("\${") && v.endsWith("}") && v.indexOf("\${", 1) < 0 && v.indexOf('}') == v.length - 1) {
                val n = v.substring(2, v.length - 1)
                if (!vars.containsKey(n)) throw StepFailed("unknown variable $n")
                vars[n]
            } else {
                val out = StringBuilder(); var rest: String = v
                while (rest.contains("\${")) {
                    val i = rest.indexOf("\${"); out.append(rest, 0, i)
                    val after = rest.substring(i + 2); val j = after.indexOf('}')
                    if (j < 0) throw StepFailed("unclosed \${ in $v")
                    val n = after.substring(0, j)
                    if (!vars.containsKey(n)) throw StepFailed("unknown variable $n")
                    out.append(jsonText(vars[n])); rest = after.substring(j + 1)
                }
                out.append(rest).toString()
            }
        }
        is List<*> -> v.map { subst(it) }
        is Map<*, *> -> v.entries.associate { (it.key as String) to subst(it.value) }
        else -> v
    }

    private fun collect(v: Any?, under: Boolean) {
        when (v) {
            is String -> if (under) secrets.add(v)
            is List<*> -> v.forEach { collect(it, under) }
            is Map<*, *> -> v.forEach { (k, x) -> collect(x, under || k in setOf("token", "workspace_key", "package")) }
        }
    }

    private fun step(raw: Map<String, Any?>) {
        val step = subst(raw).obj()
        val kind = step["do"] as? String ?: throw StepFailed("no \"do\"")
        val expect = (step["expect"] ?: mapOf<String, Any?>()).obj()
        (expect.keys - KNOWN_EXPECT).let { if (it.isNotEmpty()) throw StepFailed("unknown expectation $it") }
        val cname = step["client"] as? String ?: "a"
        clients[cname]?.second?.clear()

        var adminStatus: Int? = null
        val outcome: Any? = if (kind == "admin") {
            val (s, b) = r.admin(step["method"].str(), step["path"].str(), step["body"])
            adminStatus = s; collect(b, false); b
        } else {
            try { call(kind, cname, step) } catch (e: EdrlinkException) {
                Failure(e.code, e.number.toLong(), e.httpStatus.toLong(), e.retryAfter?.toLong(), e.detail)
            }
        }
        checkSecrets(cname, outcome)
        val wantErr = expect["error"]
        val result: Any? = if (outcome is Failure) {
            if (wantErr == null) throw StepFailed("failed with ${outcome.code} (${outcome.detail}), expected success")
            if (outcome.code != wantErr) throw StepFailed("failed with ${outcome.code} (${outcome.detail}), expected $wantErr")
            if (expect.containsKey("retry_after") && !jsonEq(outcome.retryAfter, expect["retry_after"]))
                throw StepFailed("retry_after ${outcome.retryAfter}, expected ${expect["retry_after"]}")
            if (expect.containsKey("http_status") && !jsonEq(outcome.httpStatus, expect["http_status"]))
                throw StepFailed("http_status ${outcome.httpStatus}, expected ${expect["http_status"]}")
            if (expect.containsKey("number") && !jsonEq(outcome.number, expect["number"]))
                throw StepFailed("number ${outcome.number}, expected ${expect["number"]}")
            null
        } else {
            if (wantErr != null) throw StepFailed("succeeded, expected error $wantErr")
            outcome
        }
        if (expect.containsKey("status")) {
            val s = adminStatus ?: throw StepFailed("status is an expectation of admin steps")
            if (!jsonEq(s.toLong(), expect["status"])) throw StepFailed("HTTP status $s, expected ${expect["status"]}: ${Json.write(outcome)}")
        } else if (adminStatus != null && adminStatus !in 200..299) {
            throw StepFailed("HTTP status $adminStatus: ${Json.write(outcome)}")
        }
        for ((path, v) in (expect["result"] ?: mapOf<String, Any?>()).obj()) {
            val got = getPath(result, path)
            if (got === Absent || !jsonEq(got, v))
                throw StepFailed("$path = ${if (got === Absent) "<absent>" else Json.write(got)}, expected ${Json.write(v)} (result ${Json.write(result)})")
        }
        for ((v, p) in (step["save"] ?: mapOf<String, Any?>()).obj()) {
            val got = getPath(result, p.str())
            if (got === Absent) throw StepFailed("save: $p is absent in ${Json.write(result)}")
            if (v.startsWith("token") || v.startsWith("package") || v.contains("key")) collect(got, got is String)
            vars[v] = got
        }
        checkHooks(cname, expect)
    }

    private fun checkHooks(cname: String, expect: Map<String, Any?>) {
        if (listOf("events", "no_events", "log").none { expect.containsKey(it) }) return
        val hooks = clients[cname]?.second ?: throw StepFailed("events/log expectations need a client")
        val events = synchronized(hooks.events) { hooks.events.toList() }
        val logs = synchronized(hooks.logs) { hooks.logs.toList() }
        fun seen(want: String): Boolean {
            val ty = want.substringBefore(":"); val sub = if (want.contains(":")) want.substringAfter(":") else null
            return events.any { e -> e["type"] == ty && (sub == null || e.any { (k, v) -> k != "type" && v == sub }) }
        }
        for (w in (expect["events"] ?: listOf<Any?>()).list()) if (!seen(w.str())) throw StepFailed("event $w not received (got ${Json.write(events)})")
        for (w in (expect["no_events"] ?: listOf<Any?>()).list()) if (seen(w.str())) throw StepFailed("event $w received (got ${Json.write(events)})")
        expect["log"]?.let { lv ->
            val want = SEVERITY[lv.str()] ?: throw StepFailed("unknown log level $lv")
            if (logs.none { (SEVERITY[it.first] ?: -1) >= want }) throw StepFailed("no log record at $lv or more severe (got $logs)")
        }
    }

    private fun checkSecrets(cname: String, outcome: Any?) {
        val texts = mutableListOf<String>()
        if (outcome is Failure) texts.add(outcome.detail) else (getPath(outcome, "last_error.detail") as? String)?.let { texts.add(it) }
        clients[cname]?.let { (c, hooks) ->
            synchronized(hooks.logs) { hooks.logs.forEach { texts.add(it.second) } }
            try { c.health().lastError?.let { texts.add(it.detail) } } catch (e: EdrlinkException) {}
        }
        if (secrets.any { s -> s.length >= 12 && texts.any { it.contains(s) } })
            throw StepFailed("a secret appeared in a log message or an error detail")
    }

    private fun b64(s: String): ByteArray = try { Base64.getUrlDecoder().decode(s) } catch (e: IllegalArgumentException) {
        throw StepFailed("scenario value is not base64url: ${e.message}")
    }

    private fun call(kind: String, cname: String, step: Map<String, Any?>): Any? {
        when (kind) {
            "client" -> { newClient(cname, step); return null }
            "inspect_token" -> return inspectionMap(inspectToken(step["token"].str(), step["now"] as Long?))
            "verify_envelope" -> return verifyEnvelope(step["envelope"].str().toByteArray(), b64(step["public_key"].str()))
                .let { mapOf("payload_type" to it.payloadType, "keyid" to it.keyid) }
            "public_key_from_seed" -> return mapOf("public_key" to b64url(publicKeyFromSeed(b64(step["seed"].str()))))
        }
        val c = clients[cname]?.first ?: throw StepFailed("no client $cname (add a \"client\" step)")
        return when (kind) {
            "enroll" -> healthMap(c.enroll(step["token"].str()))
            "enroll_package" -> healthMap(c.enrollWithPackage(jsonText(step["package"])))
            "handshake" -> mapOf("flow" to c.handshake().name.lowercase())
            "submit" -> { c.submitJson(Json.write(step["event"])); null }
            "submit_json" -> { c.submitJson(step["json"].str()); null }
            "send_test_detection" -> { c.sendTestDetection(); null }
            "flush" -> c.flush(((step["timeout_secs"] ?: 10L) as Long).toULong()).let { mapOf("delivered" to it.delivered.toLong(), "queued" to it.queued.toLong()) }
            "offboard" -> { c.offboard(step["package"]?.let { jsonText(it) }); null }
            "rotate" -> { c.rotate(); null }
            "health" -> healthMap(c.health())
            else -> throw StepFailed("unknown step kind $kind")
        }
    }

    private fun newClient(cname: String, step: Map<String, Any?>) {
        val dev = mapOf(
            "device_id" to (step["device_id"] as? String ?: "${vars["tenant"]}-$cname"), "hostname" to "host-$cname",
            "os" to "linux", "os_version" to "6.1", "product" to "scenario", "product_version" to "1.0",
        )
        val dir = Files.createTempDirectory(tmp.toPath(), "client-").toString()
        // Options by their schema names, checked by the core (unknown name or
        // out of range: invalid_argument naming it).
        val o = clientOptionsFromJson(Json.write((step["options"] ?: mapOf<String, Any?>()).obj() + mapOf("device" to dev, "data_dir" to dir)))
        val client = EdrlinkClient(o, transportOptions = NativeTransportOptions(noProxy = true))
        val hooks = Hooks()
        client.setLogSink(hooks, LogLevel.DEBUG)
        client.setEventSink(hooks)
        clients.remove(cname)?.first?.close()
        clients[cname] = client to hooks
    }
}

fun scenariosMain(url: String, adminKey: String, root: File): Pair<Int, Int> {
    val dir = File(root, "tests/scenarios")
    val files = (dir.listFiles { f -> f.name.endsWith(".json") } ?: arrayOf()).sortedBy { it.name }
    val tmp = Files.createTempDirectory("edrlink-kt-scn").toFile()
    val runner = ScenarioRunner(url.trimEnd('/'), adminKey, tmp)
    var ok = 0; var bad = 0
    for (f in files) {
        val t0 = System.nanoTime()
        try {
            runner.run(f); ok++
            println("ok   scenario ${f.name} (${(System.nanoTime() - t0) / 1_000_000} ms)")
        } catch (e: Throwable) {
            bad++
            println("FAIL scenario ${f.name}: ${if (e is StepFailed) e.message else e.toString()}")
        }
    }
    tmp.deleteRecursively()
    println("scenarios: $ok passed, $bad failed")
    return ok to (if (files.isEmpty()) 1 else bad)
}
