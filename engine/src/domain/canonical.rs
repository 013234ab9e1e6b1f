//! Canonical JSON: one byte string per JSON value, so that two requests with
//! the same content hash alike (idempotency) and an audit payload can be
//! re-hashed by an auditor with any JSON library that sorts keys.
//!
//! Form: object keys sorted by their UTF-8 bytes, no whitespace, strings
//! escaped as serde_json escapes them, numbers as serde_json prints them.
//! Money never reaches this as a float: amounts are fen integers or strings.

use std::fmt::Write as _;

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Serialises `value` in canonical form (sorted keys, no whitespace).
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

/// Canonical JSON of any serialisable value.
pub fn canonical_json_of<T: Serialize>(value: &T) -> Result<String, serde_json::Error> {
    Ok(canonical_json(&serde_json::to_value(value)?))
}

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(flag) => out.push_str(if *flag { "true" } else { "false" }),
        Value::Number(number) => {
            // Writing into a String cannot fail.
            let _ = write!(out, "{number}");
        }
        Value::String(text) => write_string(text, out),
        Value::Array(items) => {
            out.push('[');
            for (position, item) in items.iter().enumerate() {
                if position > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|(a, _), (b, _)| a.as_bytes().cmp(b.as_bytes()));
            out.push('{');
            for (position, (key, item)) in entries.into_iter().enumerate() {
                if position > 0 {
                    out.push(',');
                }
                write_string(key, out);
                out.push(':');
                write_canonical(item, out);
            }
            out.push('}');
        }
    }
}

fn write_string(text: &str, out: &mut String) {
    // `Value::String` serialisation is infallible; it only escapes.
    out.push_str(&Value::String(text.to_owned()).to_string());
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sorts_keys_recursively_and_drops_whitespace() {
        let value = json!({"b": 1, "a": {"z": [3, {"y": null, "x": true}], "m": "s"}});
        assert_eq!(
            canonical_json(&value),
            r#"{"a":{"m":"s","z":[3,{"x":true,"y":null}]},"b":1}"#
        );
    }

    #[test]
    fn key_order_of_the_input_does_not_matter() {
        let one: Value = serde_json::from_str(r#"{"x": 1, "y": [1, 2], "z": "w"}"#).unwrap();
        let two: Value = serde_json::from_str(r#"{"z":"w","y":[1,2],"x":1}"#).unwrap();
        assert_eq!(canonical_json(&one), canonical_json(&two));
        assert_eq!(
            sha256_hex(canonical_json(&one).as_bytes()),
            sha256_hex(canonical_json(&two).as_bytes())
        );
    }

    #[test]
    fn escapes_strings_and_keeps_unicode() {
        let value = json!({"名": "惠厦保 \"2026\"\n"});
        assert_eq!(canonical_json(&value), r#"{"名":"惠厦保 \"2026\"\n"}"#);
    }

    #[test]
    fn sha256_matches_a_known_vector() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
