//! Reading an envelope's `eventType` without decoding the rest.
//!
//! A consumer that handles a few event types of a topic (the pool reacts to 5 of the 14
//! `match-events` types) can skip the others without parsing them. [`peek_event_type`]
//! walks the top-level object once, skipping nested values without allocating, and
//! returns the `eventType` string as it appears in the bytes.
//!
//! ```
//! use schemas::peek_event_type;
//! let raw = br#"{"eventId":"e1","data":{"eventType":"nested"},"eventType":"vote.recorded"}"#;
//! assert_eq!(peek_event_type(raw), Some("vote.recorded"));
//! assert_eq!(peek_event_type(b"{not json"), None);
//! ```
//!
//! `None` means "decode it to find out": the bytes are not an object with a plain (escape-
//! free) string `eventType` at the top level, or they are malformed before it. The result
//! is only a hint for skipping; a record that is not skipped is decoded in full, so a
//! malformed record still gets its decode error there.

/// The top-level `eventType` of a JSON envelope, if it is a plain string. See the module
/// docs.
pub fn peek_event_type(bytes: &[u8]) -> Option<&str> {
    let mut s = Scanner { b: bytes, i: 0 };
    s.ws();
    s.eat(b'{')?;
    loop {
        s.ws();
        if s.peek()? == b'}' {
            return None;
        }
        let key = s.string()?;
        s.ws();
        s.eat(b':')?;
        s.ws();
        if key == b"eventType" {
            let value = s.string()?;
            return std::str::from_utf8(value).ok();
        }
        s.skip_value()?;
        s.ws();
        match s.next()? {
            b',' => continue,
            _ => return None,
        }
    }
}

struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Scanner<'a> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.i += 1;
        Some(c)
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        (self.next()? == c).then_some(())
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    /// A string without escapes (its raw bytes); `None` for one with escapes.
    fn string(&mut self) -> Option<&'a [u8]> {
        self.eat(b'"')?;
        let start = self.i;
        loop {
            match self.next()? {
                b'"' => return Some(&self.b[start..self.i - 1]),
                b'\\' => return None,
                _ => {}
            }
        }
    }

    /// Skips any string, with escapes.
    fn skip_string(&mut self) -> Option<()> {
        self.eat(b'"')?;
        loop {
            match self.next()? {
                b'"' => return Some(()),
                b'\\' => {
                    self.next()?;
                }
                _ => {}
            }
        }
    }

    /// Skips one value: strings with their escapes, objects and arrays by depth, scalars
    /// up to the next delimiter.
    fn skip_value(&mut self) -> Option<()> {
        match self.peek()? {
            b'"' => self.skip_string(),
            b'{' | b'[' => {
                let mut depth = 0usize;
                loop {
                    match self.peek()? {
                        b'"' => self.skip_string()?,
                        b'{' | b'[' => {
                            depth += 1;
                            self.i += 1;
                        }
                        b'}' | b']' => {
                            depth -= 1;
                            self.i += 1;
                            if depth == 0 {
                                return Some(());
                            }
                        }
                        _ => self.i += 1,
                    }
                }
            }
            _ => {
                while !matches!(
                    self.peek()?,
                    b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'
                ) {
                    self.i += 1;
                }
                Some(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::peek_event_type;
    use crate::{Envelope, Identity, MatchEvent, VoteTimedOut};

    #[test]
    fn finds_the_type_of_an_encoded_envelope() {
        let ev: MatchEvent = Envelope::new(
            "e1",
            "m1",
            5,
            "c1",
            "r1",
            VoteTimedOut {
                round: 1,
                voter: Identity::ALL[0],
            },
        );
        let bytes = ev.to_json_vec().unwrap();
        assert_eq!(peek_event_type(&bytes), Some("vote.timed_out"));
    }

    #[test]
    fn skips_nested_values_strings_with_escapes_and_scalars() {
        let raw = br#" { "a" : [1, {"eventType": "x"}, "q\"}"], "b": -1.5e3, "c": null,
            "d": {"e": "\\"}, "eventType" : "round.started" }"#;
        assert_eq!(peek_event_type(raw), Some("round.started"));
    }

    #[test]
    fn gives_up_on_anything_it_cannot_read_plainly() {
        for raw in [
            &br#"{"eventType":"a\u0062"}"#[..],
            br#"{"eventType":7}"#,
            br#"{"data":{}}"#,
            br#"["eventType","x"]"#,
            br#"{"data":{"#,
            br#"{"eventType""#,
            b"",
        ] {
            assert_eq!(
                peek_event_type(raw),
                None,
                "{}",
                String::from_utf8_lossy(raw)
            );
        }
    }
}
