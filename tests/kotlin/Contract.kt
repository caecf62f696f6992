// The shared contract as seen from Kotlin: the error table equals
// tests/vectors/errors.json, every option of tests/options-schema.json exists
// (camelCase) with the schema default and is checked by the core, token
// inspection has the one shape, health().lastError is an error record.
package edrlinktest

import org.edrlink.*
import java.io.File

fun camel(snake: String): String =
    snake.split("_").mapIndexed { i, p -> if (i == 0) p else p.replaceFirstChar { it.uppercase() } }.joinToString("")

/** A record field by its Kotlin name, as a plain value (ULong/UInt fields are
 * stored as long/int on the JVM; options are small enough for that). */
fun field(obj: Any, name: String): Any? {
    val f = obj.javaClass.getDeclaredField(name)
    f.isAccessible = true
    return when (val v = f.get(obj)) {
        is Int -> v.toLong()
        else -> v
    }
}

fun contractTests(admin: Admin, root: File) {
    test("error table equals tests/vectors/errors.json") {
        val want = Json.parse(File(root, "tests/vectors/errors.json").readText()).obj()["cases"].list().map { it.obj() }
            .associate { it["input"].obj()["name"].str() to Pair(it["expect"].obj()["number"].long(), it["expect"].obj()["http_status"].long()) }
        val got = errorCodes().associate { it.name to Pair(it.number.toLong(), it.httpStatus.toLong()) }
        check(got == want) { "table differs: ${got.entries - want.entries} / ${want.entries - got.entries}" }
    }

    test("error fields on the base type (no casts)") {
        try {
            inspectToken("not-a-token")
            throw AssertionError("no error")
        } catch (e: EdrlinkException) {
            check(e.code == "malformed" && e.number == 100u && e.httpStatus == 400.toUShort() && e.retryAfter == null) { "$e" }
            check(e.detail.isNotEmpty()) { "empty detail" }
        }
    }

    test("every schema option exists with its default") {
        val schema = Json.parse(File(root, "tests/options-schema.json").readText()).obj()["options"].list().map { it.obj() }
        val client = ClientOptions(device = device())
        val transport = NativeTransportOptions()
        var n = 0
        for (spec in schema) {
            val name = spec["name"].str()
            if (name == "device") continue
            val target: Any = if (spec["scope"] == "transport") transport else client
            val got = try { field(target, camel(name)) } catch (e: NoSuchFieldException) { throw AssertionError("option ${camel(name)} missing") }
            check(got == spec["default"]) { "$name: $got != schema default ${spec["default"]}" }
            n++
        }
        check(n == schema.size - 1 && n >= 19) { "$n options" }
    }

    test("out-of-range options are refused by the core, naming the option") {
        val base = ClientOptions(device = device())
        val bad = listOf(
            "max_queue_events" to base.copy(maxQueueEvents = 0uL),
            "max_queue_bytes" to base.copy(maxQueueBytes = 10uL),
            "max_queue_age_secs" to base.copy(maxQueueAgeSecs = 1uL),
            "blocked_recheck_secs" to base.copy(blockedRecheckSecs = 0uL),
            "max_batches_per_second" to base.copy(maxBatchesPerSecond = 1uL shl 40),
            "op_timeout_secs" to base.copy(opTimeoutSecs = 1_000_000_000uL),
            "signer_timeout_secs" to base.copy(signerTimeoutSecs = 0uL),
            "when_full" to base.copy(whenFull = "drop_newest"),
        )
        for ((name, o) in bad) {
            val e = expectErr("invalid_argument") { EdrlinkClient(o).close() }
            check(e.detail.contains(name)) { "$name not named in ${e.detail}" }
        }
        val e = expectErr("invalid_argument") { nativeTransport(NativeTransportOptions(requestTimeoutSecs = 0uL)) }
        check(e.detail.contains("request_timeout_secs")) { e.detail }
        expectErr("malformed") { EdrlinkClient(base.copy(pinnedKeys = "{nope")).close() }
        expectErr("invalid_argument") { EdrlinkClient(base.copy(serviceUrl = "http://example.com")).close() }
        EdrlinkClient(base.copy(whenFull = "drop_oldest", gzip = true, opTimeoutSecs = 0uL), transportOptions = NativeTransportOptions(noProxy = true)).use { c ->
            check(!c.health().onboarded)
        }
    }

    test("token inspection: the one shape") {
        val t = Tenant(admin)
        val now = System.currentTimeMillis() / 1000
        val i = inspectToken(t.token(), now)
        check(i.checkedAt == now && !i.verified && i.expiryWarningSecs == 3600L)
        check(i.secondsLeft == i.claims.exp - now && i.expiresAt == rfc3339Time(i.claims.exp))
        check(inspectToken(t.token(), i.claims.exp + 1).status == TokenStatus.EXPIRED)
    }

    test("health().lastError is an error record") {
        val t = Tenant(admin)
        EdrlinkClient(options()).use { c ->
            c.enroll(t.token())
            check(c.health().lastError == null)
            t.setEnabled(false)
            c.sendTestDetection()
            expectErr("flow_blocked") { c.flush(5uL) }
            val e = c.health().lastError!!
            check(e.code == "flow_blocked" && e.number == 500u && e.httpStatus == 403.toUShort() && e.retryAfter == null) { "$e" }
        }
    }
}

/** Log records into a list (an Android host would call android.util.Log). */
class ListHooks : LogSink, EventSink {
    val logs: MutableList<Pair<LogLevel, String>> = java.util.Collections.synchronizedList(mutableListOf())
    val events: MutableList<Map<String, Any?>> = java.util.Collections.synchronizedList(mutableListOf())
    override fun log(level: LogLevel, message: String) { logs.add(level to message) }
    override fun onEvent(event: ClientEvent) { events.add(Json.parse(clientEventToJson(event)).obj()) }
    fun types() = synchronized(events) { events.map { it["type"] } }
}

fun hookTests(admin: Admin) {
    test("log hook: records in a list, filtered by level, never a secret") {
        val t = Tenant(admin)
        val tok = t.token()
        val h = ListHooks()
        EdrlinkClient(options()).use { c ->
            c.setLogSink(h, LogLevel.DEBUG)
            c.enroll(tok)
            c.sendTestDetection()
            c.flush(10uL)
            check(h.logs.isNotEmpty() && h.logs.any { it.first == LogLevel.DEBUG }) { "${h.logs}" }
            check(h.logs.none { it.second.contains(tok) || it.second.contains(tok.split(".")[2]) })
            val warn = ListHooks()
            c.setLogSink(warn, LogLevel.WARN)
            c.handshake()
            check(warn.logs.all { it.first == LogLevel.WARN || it.first == LogLevel.ERROR }) { "${warn.logs}" }
            val tok2 = t.token(); t.setEnabled(false)
            expectErr("integration_disabled") { c.enroll(tok2) }  // a refusal by the service is worth a warning
            check(warn.logs.isNotEmpty()) { "no warn record for a refused enroll" }
            t.setEnabled(true)
            val all = ListHooks()
            c.setLogSink(all, LogLevel.TRACE)
            c.setLogSink(null, LogLevel.TRACE)
            c.enroll(t.token())
            check(all.logs.isEmpty()) { "a removed sink still logs: ${all.logs}" }
        }
    }

    test("events: state changes with their fields; rotate") {
        val t = Tenant(admin)
        val h = ListHooks()
        EdrlinkClient(options()).use { c ->
            c.setEventSink(h)
            expectErr("invalid_state") { c.rotate() }
            val iid = c.enroll(t.token()).installationId
            check("credential_changed" in h.types() && mapOf("type" to "flow_changed", "flow" to "open") in h.events) { "${h.events}" }
            c.sendTestDetection(); c.flush(10uL)
            check(h.events.any { it["type"] == "delivered" && (it["count"] as Long) >= 1 }) { "${h.events}" }
            t.setEnabled(false)
            check(c.handshake() == FlowState.BLOCKED)
            check(mapOf("type" to "flow_changed", "flow" to "blocked") in h.events) { "${h.events}" }
            t.setEnabled(true)
            c.enroll(t.token())
            h.events.clear()
            c.rotate()
            check("credential_rotated" in h.types()) { "${h.events}" }
            check(c.health().installationId == iid)
        }
        check(clientEventToJson(ClientEvent.EventsDropped("expired", 3uL)) == """{"type":"events_dropped","reason":"expired","count":3}""")
    }

    test("a throwing hook does not break the client") {
        val t = Tenant(admin)
        var calls = 0
        val bad = object : LogSink, EventSink {
            override fun log(level: LogLevel, message: String) { calls++; throw IllegalStateException("host bug") }
            override fun onEvent(event: ClientEvent) { calls++; throw IllegalStateException("host bug") }
        }
        EdrlinkClient(options()).use { c ->
            c.setLogSink(bad, LogLevel.TRACE); c.setEventSink(bad)
            check(c.enroll(t.token()).onboarded)
            c.sendTestDetection()
            check(c.flush(10uL).queued == 0uL)
        }
        check(calls > 0)
    }
}
