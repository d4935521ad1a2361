//! What natter asks a Redis before using it: whether a message anyone
//! received survives `kill -9` of Redis (PROTOCOL-2 section 6: natter warns
//! unless `appendonly yes` and `appendfsync always`).

use crate::proto::resp::{encode_command, Value};

/// Appends `CONFIG GET appendonly` and `CONFIG GET appendfsync` to `out`:
/// two replies come back, in that order.
pub fn encode_durability_query(out: &mut Vec<u8>) {
    encode_command(out, &["CONFIG", "GET", "appendonly"]);
    encode_command(out, &["CONFIG", "GET", "appendfsync"]);
}

/// The warning to log for the two replies, or `None` when Redis keeps
/// every write before answering. A Redis that refuses `CONFIG` (a managed
/// one, or an ACL) cannot be checked: that is a warning too.
pub fn durability_warning(appendonly: &Value, appendfsync: &Value) -> Option<String> {
    let get = |v: &Value| -> Option<String> {
        match v {
            Value::Array(Some(items)) => match items.as_slice() {
                [_, value] => value
                    .as_bytes()
                    .map(|b| String::from_utf8_lossy(b).to_ascii_lowercase()),
                _ => None,
            },
            _ => None,
        }
    };
    match (get(appendonly), get(appendfsync)) {
        (Some(a), Some(f)) if a == "yes" && f == "always" => None,
        (Some(a), Some(f)) => Some(format!(
            "Redis has appendonly {a} and appendfsync {f}: a message clients received may be \
             lost if Redis dies (set appendonly yes and appendfsync always to keep every one)"
        )),
        _ => Some(
            "Redis did not say how it keeps its data (CONFIG GET refused?): messages clients \
             received may be lost if Redis dies unless it has appendonly yes and appendfsync always"
                .to_string(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn pair(k: &str, v: &str) -> Value {
        Value::Array(Some(vec![
            Value::Bulk(Some(Bytes::copy_from_slice(k.as_bytes()))),
            Value::Bulk(Some(Bytes::copy_from_slice(v.as_bytes()))),
        ]))
    }

    #[test]
    fn only_yes_and_always_are_quiet() {
        assert_eq!(
            durability_warning(&pair("appendonly", "yes"), &pair("appendfsync", "always")),
            None
        );
        let w = durability_warning(&pair("appendonly", "no"), &pair("appendfsync", "everysec"))
            .unwrap();
        assert!(w.contains("appendonly no and appendfsync everysec"), "{w}");
        let w = durability_warning(&pair("appendonly", "yes"), &pair("appendfsync", "everysec"))
            .unwrap();
        assert!(w.contains("appendfsync everysec"), "{w}");
        let refused = Value::Error(Bytes::from_static(b"NOPERM this user has no permissions"));
        assert!(durability_warning(&refused, &refused)
            .unwrap()
            .contains("did not say"));
    }
}
