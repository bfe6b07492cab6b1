//! Canonical CBOR: deterministic encoding of plain data (RFC 8949 §4.2 core deterministic encoding).
//!
//! Maps are sorted by the bytes of their encoded keys and may not repeat a key; floats and tags are refused, so
//! a value has exactly one encoding. ciborium already writes the shortest heads and definite lengths.

use ciborium::Value;

/// A value that has no canonical encoding.
#[derive(Debug, thiserror::Error)]
pub enum CanonicalError {
    #[error("floating-point numbers are not allowed in derivations")]
    Float,
    #[error("CBOR tags are not allowed in derivations")]
    Tag,
    #[error("a map repeats a key")]
    DuplicateKey,
    #[error("cannot encode parameters: {0}")]
    Serialize(String),
}

/// Serialises `v` and brings the result into canonical form.
pub fn to_canonical_value<T: serde::Serialize + ?Sized>(v: &T) -> Result<Value, CanonicalError> {
    let value = Value::serialized(v).map_err(|e| CanonicalError::Serialize(e.to_string()))?;
    canonicalize(value)
}

/// The canonical CBOR bytes of `value`.
pub fn to_canonical_cbor(value: &Value) -> Result<Vec<u8>, CanonicalError> {
    let value = canonicalize(value.clone())?;
    Ok(encode(&value))
}

/// Encodes a value that is canonical already.
pub(crate) fn encode(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing into a Vec cannot fail, and every value reaching here is plain data.
    ciborium::into_writer(value, &mut out).expect("encoding plain CBOR into memory cannot fail");
    out
}

fn canonicalize(value: Value) -> Result<Value, CanonicalError> {
    Ok(match value {
        Value::Float(_) => return Err(CanonicalError::Float),
        Value::Tag(..) => return Err(CanonicalError::Tag),
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(canonicalize)
                .collect::<Result<_, _>>()?,
        ),
        // Text keys (every struct's fields): the encoded order is length first, then bytes; no need to encode.
        Value::Map(entries) if entries.iter().all(|(k, _)| k.is_text()) => {
            let mut entries = entries
                .into_iter()
                .map(|(k, v)| Ok((k, canonicalize(v)?)))
                .collect::<Result<Vec<_>, CanonicalError>>()?;
            let key = |k: &Value| k.as_text().map(|t| (t.len(), t.as_bytes().to_vec()));
            entries.sort_by_cached_key(|(k, _)| key(k));
            if entries.windows(2).any(|w| w[0].0 == w[1].0) {
                return Err(CanonicalError::DuplicateKey);
            }
            Value::Map(entries)
        }
        Value::Map(entries) => {
            let mut keyed = entries
                .into_iter()
                .map(|(k, v)| {
                    let k = canonicalize(k)?;
                    Ok((encode(&k), k, canonicalize(v)?))
                })
                .collect::<Result<Vec<_>, CanonicalError>>()?;
            keyed.sort_by(|a, b| a.0.cmp(&b.0));
            if keyed.windows(2).any(|w| w[0].0 == w[1].0) {
                return Err(CanonicalError::DuplicateKey);
            }
            Value::Map(keyed.into_iter().map(|(_, k, v)| (k, v)).collect())
        }
        other => other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_sort_by_encoded_key_shorter_first() {
        let v = Value::Map(vec![
            (Value::Text("bb".into()), Value::Integer(1.into())),
            (Value::Text("c".into()), Value::Integer(2.into())),
            (Value::Text("a".into()), Value::Integer(3.into())),
        ]);
        let bytes = to_canonical_cbor(&v).expect("canonical");
        // {"a": 3, "c": 2, "bb": 1}
        assert_eq!(
            bytes,
            [
                0xa3, 0x61, b'a', 0x03, 0x61, b'c', 0x02, 0x62, b'b', b'b', 0x01
            ]
        );
    }

    #[test]
    fn shortest_integer_heads() {
        let bytes = to_canonical_cbor(&Value::Integer(500.into())).expect("canonical");
        assert_eq!(bytes, [0x19, 0x01, 0xf4]);
        let bytes = to_canonical_cbor(&Value::Integer(23.into())).expect("canonical");
        assert_eq!(bytes, [0x17]);
    }

    #[test]
    fn refuses_floats_and_duplicates() {
        assert!(matches!(
            to_canonical_value(&1.5f64),
            Err(CanonicalError::Float)
        ));
        let dup = Value::Map(vec![
            (Value::Text("a".into()), Value::Null),
            (Value::Text("a".into()), Value::Bool(true)),
        ]);
        assert!(matches!(
            to_canonical_cbor(&dup),
            Err(CanonicalError::DuplicateKey)
        ));
    }
}
