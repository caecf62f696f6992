//! A small reader for the fixed JSON shapes a partner checks offline: the JWS
//! header, access-token claims, the service keyset (JWKS) and the DSSE envelope.
//!
//! Why not serde_json: those four are all the WebAssembly `lite` module parses,
//! and serde_json's deserializer with its error messages (which format floats
//! when an error is *created*) was the largest part of that module. This reader
//! accepts exactly the documents `serde_json::from_slice` accepts for the same
//! `#[derive(Deserialize)]` structs, with one deliberate exception: serde also
//! takes a struct spelled as a JSON array of its fields, which no edrlink
//! message uses; this reader wants an object. The `tests` module below checks
//! the equivalence against serde_json on valid messages and thousands of
//! mutations of them.
//!
//! What "exactly" covers: whitespace (space, tab, LF, CR), string escapes
//! (`\uXXXX` with paired surrogates, UTF-8 checked in every string that is
//! kept and in every key, but not in skipped string values, as serde_json),
//! duplicate known fields rejected, unknown fields skipped (any valid JSON) or
//! refused where the struct denies them, `null` only for optional fields,
//! integers as serde_json reads them (no fraction or exponent, no `-0`, range
//! checked), nothing after the value but whitespace.
//!
//! Failures are `()`: callers map them to one static `malformed` message, so
//! no `core::fmt` runs on attacker input.

use std::borrow::Cow;

/// Parse failure; the caller names what was being parsed.
pub(crate) type Res<T> = core::result::Result<T, ()>;

/// A cursor over one JSON document.
pub(crate) struct Reader<'a> {
    b: &'a [u8],
    i: usize,
}

/// Stores a field's value, refusing a second occurrence (serde's `duplicate field`).
pub(crate) fn put<T>(slot: &mut Option<T>, v: T) -> Res<()> {
    if slot.is_some() {
        return Err(());
    }
    *slot = Some(v);
    Ok(())
}

impl<'a> Reader<'a> {
    pub(crate) fn new(b: &'a [u8]) -> Self {
        Reader { b, i: 0 }
    }

    /// The next non-whitespace byte, not consumed.
    fn peek(&mut self) -> Option<u8> {
        while let Some(&c) = self.b.get(self.i) {
            if !matches!(c, b' ' | b'\n' | b'\t' | b'\r') {
                return Some(c);
            }
            self.i += 1;
        }
        None
    }

    fn eat(&mut self, c: u8) -> Res<()> {
        if self.peek() != Some(c) {
            return Err(());
        }
        self.i += 1;
        Ok(())
    }

    /// Only whitespace may follow the document.
    pub(crate) fn end(mut self) -> Res<()> {
        match self.peek() {
            None => Ok(()),
            Some(_) => Err(()),
        }
    }

    fn ident(&mut self, word: &[u8]) -> Res<()> {
        if self.b[self.i..].starts_with(word) {
            self.i += word.len();
            Ok(())
        } else {
            Err(())
        }
    }

    /// `null` (consumed) or not (nothing consumed): for `Option` fields.
    pub(crate) fn null(&mut self) -> Res<bool> {
        if self.peek() == Some(b'n') {
            self.ident(b"null")?;
            return Ok(true);
        }
        Ok(false)
    }

    fn hex4(&mut self) -> Res<u32> {
        let d = self.b.get(self.i..self.i + 4).ok_or(())?;
        self.i += 4;
        let mut n = 0u32;
        for &c in d {
            let v = match c {
                b'0'..=b'9' => c - b'0',
                b'a'..=b'f' => c - b'a' + 10,
                b'A'..=b'F' => c - b'A' + 10,
                _ => return Err(()),
            };
            n = n << 4 | u32::from(v);
        }
        Ok(n)
    }

    /// A string value: escapes decoded, surrogates paired, UTF-8 checked.
    pub(crate) fn string(&mut self) -> Res<String> {
        self.str_cow().map(Cow::into_owned)
    }

    /// A string value borrowed from the input when it holds no escape.
    pub(crate) fn str_cow(&mut self) -> Res<Cow<'a, str>> {
        self.eat(b'"')?;
        let start = self.i;
        let rest = &self.b[start..];
        if let Some(n) = rest
            .iter()
            .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
        {
            if rest[n] == b'"' {
                self.i += n + 1;
                return core::str::from_utf8(&rest[..n])
                    .map(Cow::Borrowed)
                    .map_err(|_| ());
            }
        }
        let mut out = Vec::new();
        loop {
            let c = *self.b.get(self.i).ok_or(())?;
            self.i += 1;
            match c {
                b'"' => break,
                b'\\' => {
                    let e = *self.b.get(self.i).ok_or(())?;
                    self.i += 1;
                    let ch = match e {
                        b'"' | b'\\' | b'/' => e,
                        b'b' => 8,
                        b'f' => 12,
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'u' => {
                            let mut n = self.hex4()?;
                            if (0xDC00..=0xDFFF).contains(&n) {
                                return Err(());
                            }
                            if (0xD800..=0xDBFF).contains(&n) {
                                self.ident(b"\\u")?;
                                let lo = self.hex4()?;
                                if !(0xDC00..=0xDFFF).contains(&lo) {
                                    return Err(());
                                }
                                n = (((n - 0xD800) << 10) | (lo - 0xDC00)) + 0x1_0000;
                            }
                            let ch = char::from_u32(n).ok_or(())?;
                            out.extend_from_slice(ch.encode_utf8(&mut [0; 4]).as_bytes());
                            continue;
                        }
                        _ => return Err(()),
                    };
                    out.push(ch);
                }
                0..=0x1F => return Err(()),
                _ => out.push(c),
            }
        }
        String::from_utf8(out).map(Cow::Owned).map_err(|_| ())
    }

    /// `null` or a string.
    pub(crate) fn opt_string(&mut self) -> Res<Option<String>> {
        if self.null()? {
            return Ok(None);
        }
        self.string().map(Some)
    }

    /// An integer as serde_json reads one: `-?(0|[1-9][0-9]*)` and nothing of
    /// a fraction or exponent; `-0` and values outside `i64`/`u64` are floats
    /// to serde_json, so refused. Returns (negative, magnitude).
    fn integer(&mut self) -> Res<(bool, u64)> {
        let neg = self.peek() == Some(b'-');
        if neg {
            self.i += 1;
        }
        let first = *self.b.get(self.i).ok_or(())?;
        if !first.is_ascii_digit() {
            return Err(());
        }
        self.i += 1;
        let mut v = u64::from(first - b'0');
        while let Some(&c @ b'0'..=b'9') = self.b.get(self.i) {
            if first == b'0' {
                return Err(());
            }
            v = v.checked_mul(10).ok_or(())?;
            v = v.checked_add(u64::from(c - b'0')).ok_or(())?;
            self.i += 1;
        }
        if matches!(self.b.get(self.i), Some(b'.' | b'e' | b'E')) {
            return Err(());
        }
        if neg && (v == 0 || v > 1 << 63) {
            return Err(());
        }
        Ok((neg, v))
    }

    pub(crate) fn i64(&mut self) -> Res<i64> {
        match self.integer()? {
            (true, m) => Ok((m as i64).wrapping_neg()),
            (false, m) => i64::try_from(m).map_err(|_| ()),
        }
    }

    pub(crate) fn opt_i64(&mut self) -> Res<Option<i64>> {
        if self.null()? {
            return Ok(None);
        }
        self.i64().map(Some)
    }

    pub(crate) fn u64(&mut self) -> Res<u64> {
        match self.integer()? {
            (true, _) => Err(()),
            (false, m) => Ok(m),
        }
    }

    pub(crate) fn u32(&mut self) -> Res<u32> {
        u32::try_from(self.u64()?).map_err(|_| ())
    }

    /// An object: `field` is called with each key (decoded) and reads its
    /// value, returning `false` for a key it does not know, whose value is
    /// then skipped (`deny_unknown: false`) or refused.
    pub(crate) fn object(
        &mut self,
        deny_unknown: bool,
        mut field: impl FnMut(&mut Self, &str) -> Res<bool>,
    ) -> Res<()> {
        self.eat(b'{')?;
        if self.peek() == Some(b'}') {
            self.i += 1;
            return Ok(());
        }
        loop {
            let key = self.string()?;
            self.eat(b':')?;
            if !field(self, &key)? {
                if deny_unknown {
                    return Err(());
                }
                self.skip()?;
            }
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    return Ok(());
                }
                _ => return Err(()),
            }
        }
    }

    /// An array, `item` reading each element.
    pub(crate) fn array(&mut self, mut item: impl FnMut(&mut Self) -> Res<()>) -> Res<()> {
        self.eat(b'[')?;
        if self.peek() == Some(b']') {
            self.i += 1;
            return Ok(());
        }
        loop {
            item(self)?;
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b']') => {
                    self.i += 1;
                    return Ok(());
                }
                _ => return Err(()),
            }
        }
    }

    /// A skipped string (serde_json's `ignore_str`): escapes are checked for
    /// form only and the bytes are not checked as UTF-8.
    fn skip_string(&mut self) -> Res<()> {
        self.eat(b'"')?;
        loop {
            let c = *self.b.get(self.i).ok_or(())?;
            self.i += 1;
            match c {
                b'"' => return Ok(()),
                b'\\' => {
                    let e = *self.b.get(self.i).ok_or(())?;
                    self.i += 1;
                    match e {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {}
                        b'u' => {
                            self.hex4()?;
                        }
                        _ => return Err(()),
                    }
                }
                0..=0x1F => return Err(()),
                _ => {}
            }
        }
    }

    /// A skipped number: the JSON grammar only (serde_json's `ignore_integer`).
    fn skip_number(&mut self) -> Res<()> {
        let digits = |r: &mut Self| {
            let start = r.i;
            while matches!(r.b.get(r.i), Some(b'0'..=b'9')) {
                r.i += 1;
            }
            r.i - start
        };
        if self.b.get(self.i) == Some(&b'-') {
            self.i += 1;
        }
        let lead = self.b.get(self.i).copied();
        let n = digits(self);
        if n == 0 || (lead == Some(b'0') && n > 1) {
            return Err(());
        }
        if self.b.get(self.i) == Some(&b'.') {
            self.i += 1;
            if digits(self) == 0 {
                return Err(());
            }
        }
        if matches!(self.b.get(self.i), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.b.get(self.i), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if digits(self) == 0 {
                return Err(());
            }
        }
        Ok(())
    }

    /// Skips any one value without recursion (serde_json's `ignore_value` has no
    /// depth limit either): the open brackets are kept on a stack.
    pub(crate) fn skip(&mut self) -> Res<()> {
        let mut open: Vec<u8> = Vec::new();
        loop {
            // A value.
            match self.peek().ok_or(())? {
                b'n' => self.ident(b"null")?,
                b't' => self.ident(b"true")?,
                b'f' => self.ident(b"false")?,
                b'"' => self.skip_string()?,
                b'-' | b'0'..=b'9' => self.skip_number()?,
                c @ (b'[' | b'{') => {
                    self.i += 1;
                    let close = if c == b'[' { b']' } else { b'}' };
                    if self.peek() == Some(close) {
                        self.i += 1;
                    } else {
                        open.push(close);
                        if close == b'}' {
                            self.skip_string()?;
                            self.eat(b':')?;
                        }
                        continue;
                    }
                }
                _ => return Err(()),
            }
            // After a value: a comma (then the next member) or closing brackets.
            loop {
                let Some(&close) = open.last() else {
                    return Ok(());
                };
                match self.peek().ok_or(())? {
                    b',' => {
                        self.i += 1;
                        if close == b'}' {
                            self.skip_string()?;
                            self.eat(b':')?;
                        }
                        break;
                    }
                    c if c == close => {
                        self.i += 1;
                        open.pop();
                    }
                    _ => return Err(()),
                }
            }
        }
    }
}

/// Parses one document with `f`, requiring only whitespace after it.
pub(crate) fn parse<'a, T>(bytes: &'a [u8], f: impl FnOnce(&mut Reader<'a>) -> Res<T>) -> Res<T> {
    let mut r = Reader::new(bytes);
    let v = f(&mut r)?;
    r.end()?;
    Ok(v)
}

/// The reader against serde_json itself, on valid messages and thousands of
/// mutations of them: the same documents accepted, with the same values.
#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::hostile_tests::XorShift;
    use serde_json::Value;

    /// Values spliced in: every JSON type, integer edges and string escapes.
    const VALUES: &[&str] = &[
        "null",
        "true",
        "false",
        "0",
        "-0",
        "1",
        "-1",
        "01",
        "1.0",
        "1e3",
        "1E+2",
        "-",
        "1.",
        ".5",
        "4294967295",
        "4294967296",
        "9223372036854775807",
        "9223372036854775808",
        "-9223372036854775808",
        "-9223372036854775809",
        "18446744073709551615",
        "18446744073709551616",
        "\"\"",
        "\"x\"",
        "\"\\u00e9\\n\\/\"",
        "\"\\ud83d\\ude00\"",
        "\"\\ud800\"",
        "\"\\udc00\"",
        "\"\\ud800\\u0041\"",
        "\"\\x\"",
        "\"\\u12g4\"",
        "\"\u{e9}\"",
        "\"\t\"",
        "[]",
        "{}",
        "[1,]",
        "{\"a\":1,}",
        "[[[{\"a\":[{}]}]]]",
        "{\"a\" 1}",
        "nul",
        "\"kid\"",
        "\"alg\"",
        "\"\\u006bid\"",
        "\"x\":1,\"x\"",
    ];
    /// Single bytes inserted or written over others.
    const BYTES: &[u8] = b"{}[]\",:\\ \t\n\r0123456789-+.eEnultrfasx/\x00\x1f\x7f\x80\xc3\xff";

    /// `n` mutants of `doc` (1..=3 edits each), the same for every run.
    pub(crate) fn mutants(doc: &[u8], n: usize, seed: u64) -> Vec<Vec<u8>> {
        let mut rng = XorShift(seed | 1);
        (0..n)
            .map(|_| {
                let mut d = doc.to_vec();
                for _ in 0..1 + rng.below(3) {
                    let at = rng.below(d.len() + 1);
                    match rng.below(6) {
                        0 if !d.is_empty() => {
                            d.remove(at.min(d.len() - 1));
                        }
                        1 => d.insert(at, BYTES[rng.below(BYTES.len())]),
                        2 if at < d.len() => d[at] = BYTES[rng.below(BYTES.len())],
                        3 => {
                            // Duplicate a span (repeats members, brackets, quotes).
                            let len = 1 + rng.below(40);
                            let end = (at + len).min(d.len());
                            let span = d[at..end].to_vec();
                            d.splice(end..end, span);
                        }
                        4 => {
                            // Replace the value after a colon.
                            let colons: Vec<usize> =
                                (0..d.len()).filter(|&i| d[i] == b':').collect();
                            if let Some(&c) = colons.get(rng.below(colons.len())) {
                                let end = (c + 1..d.len())
                                    .find(|&i| matches!(d[i], b',' | b'}' | b']'))
                                    .unwrap_or(d.len());
                                let v = VALUES[rng.below(VALUES.len())].as_bytes().to_vec();
                                d.splice(c + 1..end, v);
                            }
                        }
                        _ => {
                            // An unknown member after an opening brace.
                            let braces: Vec<usize> =
                                (0..d.len()).filter(|&i| d[i] == b'{').collect();
                            if let Some(&b) = braces.get(rng.below(braces.len())) {
                                let v = VALUES[rng.below(VALUES.len())];
                                let m = format!("\"zz\":{v},");
                                d.splice(b + 1..b + 1, m.into_bytes());
                            }
                        }
                    }
                }
                d
            })
            .collect()
    }

    /// serde accepted a document this reader refused: allowed only where a
    /// struct is spelled as an array (serde's sequence form), which the reader
    /// refuses on purpose. `lists` are the members that really are arrays.
    pub(crate) fn struct_as_array(doc: &[u8], lists: &[&str]) -> bool {
        fn walk(v: &Value, lists: &[&str]) -> bool {
            match v {
                Value::Array(_) => true,
                Value::Object(m) => m.iter().any(|(k, v)| match v {
                    Value::Array(items) if lists.contains(&k.as_str()) => {
                        items.iter().any(|i| walk(i, lists))
                    }
                    Value::Object(_) => walk(v, lists),
                    _ => false,
                }),
                _ => false,
            }
        }
        serde_json::from_slice::<Value>(doc).is_ok_and(|v| walk(&v, lists))
    }

    /// Runs `strict` and `serde` on `docs` and their mutants and compares.
    /// Returns how many documents each accepted (the mutants must hit both).
    pub(crate) fn differential<T: PartialEq + core::fmt::Debug>(
        docs: &[&[u8]],
        lists: &[&str],
        strict: impl Fn(&[u8]) -> Option<T>,
        serde: impl Fn(&[u8]) -> Option<T>,
    ) -> (usize, usize) {
        let (mut ok, mut bad) = (0, 0);
        for (i, doc) in docs.iter().enumerate() {
            assert!(strict(doc).is_some(), "seed {i} refused");
            for m in mutants(doc, 4000, 0x9E37_79B9 + i as u64) {
                match (strict(&m), serde(&m)) {
                    (Some(a), Some(b)) => {
                        assert_eq!(a, b, "{}", String::from_utf8_lossy(&m));
                        ok += 1;
                    }
                    (None, None) => bad += 1,
                    (Some(_), None) => {
                        panic!(
                            "accepted what serde refuses: {}",
                            String::from_utf8_lossy(&m)
                        )
                    }
                    (None, Some(_)) => assert!(
                        struct_as_array(&m, lists),
                        "refused what serde accepts: {}",
                        String::from_utf8_lossy(&m)
                    ),
                }
            }
        }
        (ok, bad)
    }

    #[test]
    fn skip_accepts_any_json_serde_accepts() {
        let seeds: &[&[u8]] = &[
            br#"{"a":[1,-2.5e-3,{"b":null,"c":[true,false,"\u00e9\"\\"]}],"d":{}}"#,
            b"[[], {}, [[]], 0, -0, 1E9, \"\\ud800\"]",
        ];
        let strict = |d: &[u8]| {
            parse(d, |r| r.skip()).ok()?;
            serde_json::from_slice::<serde::de::IgnoredAny>(d)
                .ok()
                .map(|_| ())
        };
        let serde = |d: &[u8]| {
            serde_json::from_slice::<serde::de::IgnoredAny>(d)
                .ok()
                .map(|_| ())
        };
        for (i, doc) in seeds.iter().enumerate() {
            for m in mutants(doc, 6000, 7 + i as u64) {
                assert_eq!(
                    parse(&m, |r| r.skip()).is_ok(),
                    serde(&m).is_some(),
                    "{}",
                    String::from_utf8_lossy(&m)
                );
            }
            assert!(strict(doc).is_some());
        }
        // Deep nesting is skipped without recursion, as serde_json does.
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(parse(deep.as_bytes(), |r| r.skip()).is_ok());
    }

    #[test]
    fn integers_follow_serde_json() {
        for text in VALUES
            .iter()
            .chain(&["-1", "00", "1x", " 7 ", "-9223372036854775807"])
        {
            let b = text.as_bytes();
            assert_eq!(
                parse(b, |r| r.i64()).ok(),
                serde_json::from_slice::<i64>(b).ok(),
                "{text}"
            );
            assert_eq!(
                parse(b, |r| r.u64()).ok(),
                serde_json::from_slice::<u64>(b).ok(),
                "{text}"
            );
            assert_eq!(
                parse(b, |r| r.u32()).ok(),
                serde_json::from_slice::<u32>(b).ok(),
                "{text}"
            );
            assert_eq!(
                parse(b, |r| r.string()).ok(),
                serde_json::from_slice::<String>(b).ok(),
                "{text}"
            );
        }
    }

    #[test]
    fn header_matches_serde() {
        let docs: &[&[u8]] = &[
            br#"{"alg":"EdDSA","typ":"edrlink-access+jwt","kid":"abc"}"#,
            br#"{"alg":"ES256","typ":"x+jwt","jwk":{"kty":"EC","crv":"P-256","x":"AA","y":"BB","zz":[1]}}"#,
            br#" { "typ" : "t" , "alg" : "EdDSA" , "kid" : null , "jwk" : null } "#,
        ];
        let (ok, bad) = differential(
            docs,
            &[],
            |d| crate::jws::Header::from_json(d).ok(),
            |d| serde_json::from_slice::<crate::jws::Header>(d).ok(),
        );
        assert!(ok > 300 && bad > 3000, "{ok} accepted, {bad} refused");
    }

    #[test]
    fn token_claims_match_serde() {
        let docs: &[&[u8]] = &[
            br#"{"iss":"https://edr.example","aud":"edrlink-partner-api","jti":"j1","iat":1700000000,"nbf":1700000000,"exp":1700086400,"partner_id":"p","tenant_id":"t","region":"eu","service_url":"https://x","epoch":3,"max_uses":10000}"#,
            br#"{"max_uses":0,"epoch":18446744073709551615,"service_url":"\u0068ttp://x","region":"\ud83d\ude00","tenant_id":"t","partner_id":"p","exp":-1,"nbf":-9223372036854775808,"iat":9223372036854775807,"jti":"j","aud":"a","iss":"i","extra":{"a":[1.5]}}"#,
        ];
        let (ok, bad) = differential(
            docs,
            &[],
            |d| crate::token::AccessTokenClaims::from_json(d).ok(),
            |d| serde_json::from_slice::<crate::token::AccessTokenClaims>(d).ok(),
        );
        assert!(ok > 300 && bad > 3000, "{ok} accepted, {bad} refused");
    }

    #[test]
    fn keyset_matches_serde() {
        let docs: &[&[u8]] = &[
            br#"{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"k1","alg":"EdDSA","not_after":1700000000}]}"#,
            br#"{"keys":[],"other":"x"}"#,
            br#"{"keys":[{"kty":"OKP","crv":"Ed25519","x":"a","y":null,"kid":null,"alg":null,"not_after":null},{"kty":"EC","crv":"P-256","x":"a","y":"b"}]}"#,
        ];
        let (ok, bad) = differential(
            docs,
            &["keys"],
            |d| crate::keys::Keyset::read_json(d).ok(),
            |d| serde_json::from_slice::<crate::keys::Keyset>(d).ok(),
        );
        assert!(ok > 300 && bad > 3000, "{ok} accepted, {bad} refused");
    }

    #[test]
    fn array_spelled_structs_are_refused() {
        // serde_json accepts these (a struct as the sequence of its fields);
        // no edrlink message is written so and the reader refuses them.
        let header = br#"["EdDSA","x+jwt"]"#;
        assert!(serde_json::from_slice::<crate::jws::Header>(header).is_ok());
        assert!(crate::jws::Header::from_json(header).is_err());
        let keyset = br#"{"keys":[["OKP","Ed25519","x"]]}"#;
        assert!(serde_json::from_slice::<crate::keys::Keyset>(keyset).is_ok());
        assert!(crate::keys::Keyset::read_json(keyset).is_err());
    }
}
