//! Human-readable rendering of a decoded structure: the JSON form, laid out as an
//! indented tree. One serialization feeds both `--json` and the text output.

use std::fmt::Write;

use serde_json::Value;

/// Renders `value` as an indented tree.
pub fn tree(value: &Value) -> String {
    let mut out = String::new();
    node(&mut out, value, 0);
    out
}

fn node(out: &mut String, value: &Value, depth: usize) {
    let pad = "  ".repeat(depth);
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                if is_leaf(v) {
                    let _ = writeln!(out, "{pad}{k}: {}", leaf(v));
                } else if is_empty(v) {
                    let _ = writeln!(out, "{pad}{k}: (none)");
                } else {
                    let _ = writeln!(out, "{pad}{k}:");
                    node(out, v, depth + 1);
                }
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                if is_leaf(v) {
                    let _ = writeln!(out, "{pad}[{i}] {}", leaf(v));
                } else {
                    let _ = writeln!(out, "{pad}[{i}]");
                    node(out, v, depth + 1);
                }
            }
        }
        other => {
            let _ = writeln!(out, "{pad}{}", leaf(other));
        }
    }
}

fn is_leaf(v: &Value) -> bool {
    !matches!(v, Value::Object(_) | Value::Array(_))
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

fn leaf(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "(none)".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn nested_values_are_indented() {
        let v = serde_json::json!({"a": 1, "b": {"c": "x", "d": [1, {"e": true}]}, "f": []});
        assert_eq!(
            super::tree(&v),
            "a: 1\nb:\n  c: x\n  d:\n    [0] 1\n    [1]\n      e: true\nf: (none)\n"
        );
    }
}
