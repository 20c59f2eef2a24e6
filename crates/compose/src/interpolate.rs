//! Variable substitution in Compose values, as docker's `cli/compose/template` does it:
//! `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?error}`, `${VAR?error}` and
//! `$$` for a literal `$`. Values are substituted, keys never are. An unset variable without a
//! default becomes "" with a warning. Where variables come from (the environment, `.env`) is
//! the caller's business: this module only gets a lookup.

use std::collections::{BTreeMap, BTreeSet};

use crate::yaml::{Node, Value};
use crate::Error;

/// Where variables are looked up, and which ones were missing.
pub struct Vars<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
    /// Variables used but not set, by name.
    pub missing: BTreeSet<String>,
}

impl<'a> Vars<'a> {
    pub fn new(lookup: &'a dyn Fn(&str) -> Option<String>) -> Self {
        Vars {
            lookup,
            missing: BTreeSet::new(),
        }
    }

    fn get(&self, name: &str) -> Option<String> {
        (self.lookup)(name)
    }
}

/// Why a template could not be substituted (without position; the caller adds it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateError {
    Invalid,
    Required { name: String, message: String },
}

/// Substitutes every variable in `template`.
pub fn substitute(template: &str, vars: &mut Vars<'_>) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(stripped) = after.strip_prefix('$') {
            out.push('$');
            rest = stripped;
        } else if let Some(body_and_rest) = after.strip_prefix('{') {
            let end = closing_brace(body_and_rest).ok_or(TemplateError::Invalid)?;
            let body = &body_and_rest[..end];
            out.push_str(&braced(body, vars)?);
            rest = &body_and_rest[end + 1..];
        } else {
            let len = name_len(after);
            if len == 0 {
                return Err(TemplateError::Invalid);
            }
            let name = &after[..len];
            out.push_str(&value_or_blank(name, vars));
            rest = &after[len..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Length of the variable name at the start of `s` (`[_a-zA-Z][_a-zA-Z0-9]*`).
fn name_len(s: &str) -> usize {
    let mut len = 0;
    for (i, c) in s.char_indices() {
        let ok = c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit());
        if !ok {
            break;
        }
        len = i + c.len_utf8();
    }
    len
}

/// The index of the `}` that closes a `${`, allowing nested `${…}` in defaults.
fn closing_brace(s: &str) -> Option<usize> {
    let mut depth = 0usize;
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'$' if bytes.get(i + 1) == Some(&b'{') => {
                depth += 1;
                i += 1;
            }
            b'}' => {
                if depth == 0 {
                    return Some(i);
                }
                depth -= 1;
            }
            _ => {}
        }
        i += 1;
    }
    None
}

fn value_or_blank(name: &str, vars: &mut Vars<'_>) -> String {
    match vars.get(name) {
        Some(v) => v,
        None => {
            vars.missing.insert(name.to_string());
            String::new()
        }
    }
}

fn braced(body: &str, vars: &mut Vars<'_>) -> Result<String, TemplateError> {
    let len = name_len(body);
    if len == 0 {
        return Err(TemplateError::Invalid);
    }
    let name = &body[..len];
    let op = &body[len..];
    if op.is_empty() {
        return Ok(value_or_blank(name, vars));
    }
    let value = vars.get(name);
    let (colon, op) = match op.strip_prefix(':') {
        Some(rest) => (true, rest),
        None => (false, op),
    };
    let unset = match &value {
        None => true,
        Some(v) => colon && v.is_empty(),
    };
    if let Some(default) = op.strip_prefix('-') {
        if unset {
            return substitute(default, vars);
        }
        return Ok(value.unwrap_or_default());
    }
    if let Some(message) = op.strip_prefix('?') {
        if unset {
            return Err(TemplateError::Required {
                name: name.to_string(),
                message: substitute(message, vars)?,
            });
        }
        return Ok(value.unwrap_or_default());
    }
    Err(TemplateError::Invalid)
}

/// Substitutes variables in every scalar value of a document, in place.
pub fn interpolate(node: &mut Node, vars: &mut Vars<'_>) -> Result<(), Error> {
    walk(node, &mut Vec::new(), vars)
}

fn walk(node: &mut Node, path: &mut Vec<String>, vars: &mut Vars<'_>) -> Result<(), Error> {
    match &mut node.value {
        Value::Scalar { text, .. } => {
            if text.contains('$') {
                *text = substitute(text, vars).map_err(|e| match e {
                    TemplateError::Invalid => Error::Invalid {
                        pos: node.pos.clone(),
                        msg: format!(
                            "invalid interpolation format for {}: {:?}; you may need to escape any $ with another $",
                            path.join("."),
                            text
                        ),
                    },
                    TemplateError::Required { name, message } => Error::Invalid {
                        pos: node.pos.clone(),
                        msg: format!("required variable {name} is missing a value: {message}"),
                    },
                })?;
            }
            Ok(())
        }
        Value::Seq(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                path.push(format!("[{i}]"));
                walk(item, path, vars)?;
                path.pop();
            }
            Ok(())
        }
        Value::Map(entries) => {
            for (k, v) in entries.iter_mut() {
                path.push(k.as_str().unwrap_or_default().to_string());
                walk(v, path, vars)?;
                path.pop();
            }
            Ok(())
        }
        Value::Null => Ok(()),
    }
}

/// Parses a `.env` file: `KEY=VALUE` lines, `#` comments, optional `export `, values
/// optionally in single or double quotes. Lines without `=` are ignored.
pub fn parse_env_file(text: &str) -> BTreeMap<String, String> {
    let mut vars = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let key = key.trim();
        if key.is_empty() {
            continue;
        }
        let value = value.trim();
        let value = if value.len() >= 2
            && ((value.starts_with('"') && value.ends_with('"'))
                || (value.starts_with('\'') && value.ends_with('\'')))
        {
            value[1..value.len() - 1].to_string()
        } else {
            // An unquoted value ends at a ` #` comment.
            match value.find(" #") {
                Some(i) => value[..i].trim_end().to_string(),
                None => value.to_string(),
            }
        };
        vars.insert(key.to_string(), value);
    }
    vars
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(template: &str) -> (Result<String, TemplateError>, Vec<String>) {
        let lookup = |name: &str| match name {
            "SET" => Some("value".to_string()),
            "EMPTY" => Some(String::new()),
            _ => None,
        };
        let mut vars = Vars::new(&lookup);
        let out = substitute(template, &mut vars);
        (out, vars.missing.into_iter().collect())
    }

    fn ok(template: &str) -> String {
        run(template).0.unwrap()
    }

    #[test]
    fn plain_and_braced_variables() {
        assert_eq!(ok("a $SET b"), "a value b");
        assert_eq!(ok("a${SET}b"), "avalueb");
        assert_eq!(ok("$SET.x"), "value.x");
    }

    #[test]
    fn defaults_with_and_without_colon() {
        assert_eq!(ok("${UNSET:-d}"), "d");
        assert_eq!(ok("${EMPTY:-d}"), "d");
        assert_eq!(ok("${UNSET-d}"), "d");
        assert_eq!(ok("${EMPTY-d}"), "");
        assert_eq!(ok("${SET:-d}"), "value");
        assert_eq!(ok("${UNSET:-${SET}}"), "value");
        assert_eq!(ok("${UNSET:-a:b}"), "a:b");
    }

    #[test]
    fn required_variables_fail_with_their_message() {
        assert_eq!(
            run("${UNSET:?set it}").0,
            Err(TemplateError::Required {
                name: "UNSET".into(),
                message: "set it".into()
            })
        );
        assert!(run("${EMPTY:?x}").0.is_err());
        assert_eq!(ok("${EMPTY?x}"), "");
        assert!(run("${UNSET?x}").0.is_err());
        assert_eq!(ok("${SET:?x}"), "value");
    }

    #[test]
    fn dollar_dollar_is_a_literal_dollar() {
        assert_eq!(ok("$$SET and $${SET}"), "$SET and ${SET}");
    }

    #[test]
    fn unset_variables_are_blank_and_reported() {
        let (out, missing) = run("x${NOPE}y$ALSO_NOPE");
        assert_eq!(out.unwrap(), "xy");
        assert_eq!(missing, ["ALSO_NOPE", "NOPE"]);
    }

    #[test]
    fn invalid_templates_are_errors() {
        for t in ["$", "${", "${}", "${SET", "$1", "${SET:x}", "a $ b"] {
            assert_eq!(run(t).0, Err(TemplateError::Invalid), "{t}");
        }
    }

    #[test]
    fn env_files_parse_like_dotenv() {
        let vars = parse_env_file("# c\nA=1\nexport B = \"two words\"\nC='x'\nD=y # note\nbad\n");
        assert_eq!(vars["A"], "1");
        assert_eq!(vars["B"], "two words");
        assert_eq!(vars["C"], "x");
        assert_eq!(vars["D"], "y");
        assert!(!vars.contains_key("bad"));
    }
}
