//! Go's `fmt` renderings that clients see in upstream messages and table cells: `%v` of
//! a float64 (`1e+06`), and `fmt.Sprint` of decoded JSON (`map[a:1]`, `[x y]`).

use serde_json::Value;

/// `fmt.Sprintf("%v", f)` for a float64: shortest digits, exponent form when the
/// exponent is below -4 or at least 6 (as `strconv.FormatFloat(f, 'g', -1, 64)`).
pub(crate) fn float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0" } else { "0" }.into();
    }
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exp.abs());
    }
    format!("{f}")
}

/// `fmt.Sprintf("%v", n)` for a JSON number as upstream decodes it (int64 or float64).
pub(crate) fn number(n: &serde_json::Number) -> String {
    match n.as_i64() {
        Some(i) => i.to_string(),
        None => n
            .as_u64()
            .map(|u| u.to_string())
            .unwrap_or_else(|| float(n.as_f64().unwrap_or(0.0))),
    }
}

/// `fmt.Sprint(v)` of a decoded JSON value.
pub(crate) fn sprint(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => number(n),
        Value::String(s) => s.clone(),
        Value::Array(a) => {
            let parts: Vec<String> = a.iter().map(sprint).collect();
            format!("[{}]", parts.join(" "))
        }
        Value::Object(o) => {
            let mut keys: Vec<&String> = o.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .iter()
                .map(|k| format!("{k}:{}", sprint(&o[k.as_str()])))
                .collect();
            format!("map[{}]", parts.join(" "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn floats_as_go_prints_them() {
        assert_eq!(float(1.0), "1");
        assert_eq!(float(0.5), "0.5");
        assert_eq!(float(100000.0), "100000");
        assert_eq!(float(1000000.0), "1e+06");
        assert_eq!(float(1234567.0), "1.234567e+06");
        assert_eq!(float(0.0001), "0.0001");
        assert_eq!(float(0.00001), "1e-05");
    }

    #[test]
    fn sprint_of_json() {
        assert_eq!(sprint(&json!({"b": 1, "a": [1, "x"]})), "map[a:[1 x] b:1]");
        assert_eq!(sprint(&json!(1.5)), "1.5");
        assert_eq!(sprint(&json!(true)), "true");
    }
}
