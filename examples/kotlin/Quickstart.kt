// edrlink quickstart (Kotlin/JVM or Android): enroll, EICAR test, health.
// Build like tests/kotlin/run.sh does (kotlinc + JNA + libedrlink_uniffi.so):
//   kotlinc-jvm -cp jna.jar:edrlink-bindings.jar examples/kotlin/Quickstart.kt -d quickstart.jar
//   java -Djna.library.path=target/uniffi/release -cp quickstart.jar:edrlink-bindings.jar:jna.jar:kotlin-stdlib.jar QuickstartKt <token>
import org.edrlink.*

fun main(args: Array<String>) {
    val token = args.firstOrNull() ?: error("usage: Quickstart <access-token>")
    val device = DeviceInfo(
        deviceId = java.util.UUID.randomUUID().toString(), hostname = java.net.InetAddress.getLocalHost().hostName,
        os = "linux", osVersion = System.getProperty("os.version"), product = "Acme AV", productVersion = "1.0.0",
    )
    // AutoCloseable: `use` releases the native client.
    EdrlinkClient(ClientOptions(device = device, dataDir = System.getProperty("user.home") + "/.acme-edrlink")).use { client ->
        // Diagnostics (never a secret) into the host's logging; Android: android.util.Log.
        client.setLogSink(object : LogSink {
            override fun log(level: LogLevel, message: String) = println("edrlink $level: $message")
        }, LogLevel.INFO)
        try {
            val health = client.enroll(token)
            println("enrolled as ${health.installationId}, flow ${health.flow}")
        } catch (e: EdrlinkException) {
            // every failure: code, number, httpStatus, retryAfter, detail
            if (e.code == "token_expired") println("token expired: generate a new one in the portal")
            else println("enrollment failed [${e.code}]: ${e.detail}")
            return
        }
        client.sendTestDetection()
        println("flush: ${client.flush(30uL)}")
        println(client.health())
    }
}
