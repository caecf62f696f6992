// A minimal JSON reader for the test program (no libraries on the classpath
// besides JNA): objects -> Map, arrays -> List, numbers -> Long, strings, booleans, null.
package edrlinktest

class Json(private val s: String) {
    private var i = 0

    companion object {
        fun parse(text: String): Any? = Json(text).run { val v = value(); ws(); require(i == s.length) { "trailing data" }; v }
        fun quote(v: String): String = buildString {
            append('"')
            for (c in v) when (c) {
                '"' -> append("\\\""); '\\' -> append("\\\\"); '\n' -> append("\\n"); '\r' -> append("\\r"); '\t' -> append("\\t")
                else -> if (c < ' ') append(String.format("\\u%04x", c.code)) else append(c)
            }
            append('"')
        }
        fun write(v: Any?): String = when (v) {
            null -> "null"
            is String -> quote(v)
            is Boolean, is Long, is Int, is Double -> v.toString()
            is Map<*, *> -> v.entries.joinToString(",", "{", "}") { quote(it.key as String) + ":" + write(it.value) }
            is List<*> -> v.joinToString(",", "[", "]") { write(it) }
            else -> error("cannot write ${v::class}")
        }
    }

    private fun ws() { while (i < s.length && s[i].isWhitespace()) i++ }

    private fun value(): Any? {
        ws()
        return when (val c = s[i]) {
            '{' -> obj()
            '[' -> arr()
            '"' -> str()
            't' -> { expect("true"); true }
            'f' -> { expect("false"); false }
            'n' -> { expect("null"); null }
            else -> if (c == '-' || c.isDigit()) num() else error("unexpected '$c' at $i")
        }
    }

    private fun expect(w: String) { require(s.startsWith(w, i)) { "expected $w at $i" }; i += w.length }

    private fun obj(): Map<String, Any?> {
        val m = LinkedHashMap<String, Any?>(); i++; ws()
        if (s[i] == '}') { i++; return m }
        while (true) {
            ws(); val k = str(); ws(); expect(":"); m[k] = value(); ws()
            if (s[i] == ',') { i++; continue }
            expect("}"); return m
        }
    }

    private fun arr(): List<Any?> {
        val l = ArrayList<Any?>(); i++; ws()
        if (s[i] == ']') { i++; return l }
        while (true) {
            l.add(value()); ws()
            if (s[i] == ',') { i++; continue }
            expect("]"); return l
        }
    }

    private fun str(): String {
        expect("\"")
        val b = StringBuilder()
        while (true) {
            val c = s[i++]
            when (c) {
                '"' -> return b.toString()
                '\\' -> when (val e = s[i++]) {
                    'n' -> b.append('\n'); 't' -> b.append('\t'); 'r' -> b.append('\r'); 'b' -> b.append('\b'); 'f' -> b.append('\u000c')
                    'u' -> { b.append(s.substring(i, i + 4).toInt(16).toChar()); i += 4 }
                    else -> b.append(e)
                }
                else -> b.append(c)
            }
        }
    }

    private fun num(): Any {
        val start = i
        while (i < s.length && (s[i] == '-' || s[i] == '+' || s[i] == '.' || s[i] == 'e' || s[i] == 'E' || s[i].isDigit())) i++
        val t = s.substring(start, i)
        return t.toLongOrNull() ?: t.toDouble()
    }
}

@Suppress("UNCHECKED_CAST")
fun Any?.obj(): Map<String, Any?> = this as Map<String, Any?>
@Suppress("UNCHECKED_CAST")
fun Any?.list(): List<Any?> = this as List<Any?>
fun Any?.str(): String = this as String
fun Any?.long(): Long = this as Long
