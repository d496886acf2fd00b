//! Secret writes: `stringData` is a write-only convenience; its entries are folded into
//! `data` (base64, overriding the same keys there) and never stored, as upstream does.

use base64::Engine as _;
use serde_json::{Map, Value};

pub fn fold_string_data(obj: &mut Value) {
    let Some(m) = obj.as_object_mut() else {
        return;
    };
    let Some(Value::Object(strings)) = m.remove("stringData") else {
        return;
    };
    if !m.get("data").is_some_and(Value::is_object) {
        m.insert("data".into(), Value::Object(Map::new()));
    }
    if let Some(data) = m.get_mut("data").and_then(Value::as_object_mut) {
        for (k, v) in strings {
            let text = match v {
                Value::String(s) => s,
                other => other.to_string(),
            };
            let encoded = base64::engine::general_purpose::STANDARD.encode(text);
            data.insert(k, Value::String(encoded));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn string_data_is_folded_into_data() {
        let mut s =
            json!({"data": {"a": "b2xk", "keep": "eA=="}, "stringData": {"a": "new", "c": "see"}});
        fold_string_data(&mut s);
        assert_eq!(
            s,
            json!({"data": {"a": "bmV3", "keep": "eA==", "c": "c2Vl"}})
        );
        let mut only = json!({"stringData": {"k": "v"}});
        fold_string_data(&mut only);
        assert_eq!(only, json!({"data": {"k": "dg=="}}));
    }
}
