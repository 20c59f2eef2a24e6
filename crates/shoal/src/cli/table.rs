//! How the client prints: docker-like tables (borderless, columns three spaces apart, at least
//! ten wide, headers in capitals), `--format json` lines, small Go-style `--format` templates,
//! `inspect`'s indented JSON, and the human renderings docker uses for times, durations and
//! sizes. It formats values it is given; it never talks to the daemon.

use anyhow::{bail, Context, Result};
use chrono::{DateTime, Utc};
use comfy_table::{presets::NOTHING, ContentArrangement, Table};
use serde_json::Value;

/// Docker's tabwriter pads every cell to at least this width (padding included).
const MIN_CELL_WIDTH: usize = 10;
/// Spaces between columns.
const PADDING: usize = 3;

/// Renders rows under headers the way docker's `table` formats do (Go's tabwriter: every cell
/// but a line's last is padded, the last is not). So a row whose last cells are empty ends in
/// the padding of the cells before them, as docker's does; the result ends with a newline.
pub fn render(headers: &[&str], rows: &[Vec<String>]) -> String {
    let columns = headers.len();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate().take(columns) {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }

    let mut table = Table::new();
    table
        .load_preset(NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(headers.to_vec());
    for row in rows {
        let mut cells = row.clone();
        cells.resize(columns, String::new());
        table.add_row(cells);
    }
    for (i, column) in table.column_iter_mut().enumerate() {
        let right = if i + 1 == columns {
            0
        } else {
            PADDING.max(MIN_CELL_WIDTH.saturating_sub(widths[i]))
        };
        column.set_padding((0, right as u16));
    }
    let padded: Vec<usize> = widths
        .iter()
        .map(|w| w + PADDING.max(MIN_CELL_WIDTH.saturating_sub(*w)))
        .collect();
    let text = table.trim_fmt();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let single_lines = rows.iter().flatten().all(|c| !c.contains('\n'));
    if single_lines && lines.len() == rows.len() + 1 {
        // comfy-table trims what follows the last non-empty cell: put back the padding of the
        // cells before the empty ones, as the tabwriter writes it.
        for (line, row) in lines.iter_mut().skip(1).zip(rows) {
            let last = row.get(columns - 1).map_or(0, |c| c.chars().count());
            let width = padded[..columns - 1].iter().sum::<usize>() + last;
            let now = line.chars().count();
            if now < width {
                line.push_str(&" ".repeat(width - now));
            }
        }
    }
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

/// What a list command prints: the default table, and one record per row for `--format json`,
/// templates and `-q` (which prints each record's `ID`).
#[derive(Debug, Default)]
pub struct Listing {
    pub headers: Vec<&'static str>,
    pub rows: Vec<Vec<String>>,
    pub records: Vec<Value>,
}

impl Listing {
    pub fn new(headers: &[&'static str]) -> Self {
        Self {
            headers: headers.to_vec(),
            ..Self::default()
        }
    }

    pub fn push(&mut self, row: Vec<String>, record: Value) {
        self.rows.push(row);
        self.records.push(record);
    }

    /// The text to print for `--format` (None = the default table) and `-q`.
    pub fn render(&self, format: Option<&str>, quiet: bool) -> Result<String> {
        let format = format.map(str::trim).filter(|f| !f.is_empty());
        match format {
            None | Some("table") if quiet => Ok(self
                .records
                .iter()
                .map(|r| format!("{}\n", display(r.get("ID").unwrap_or(&Value::Null))))
                .collect()),
            None | Some("table") => Ok(render(&self.headers, &self.rows)),
            Some("json") => Ok(self.records.iter().map(|r| format!("{r}\n")).collect()),
            Some(tpl) => {
                if let Some(tpl) = tpl.strip_prefix("table") {
                    let template = Template::parse(tpl.trim())?;
                    let headers = template.headers();
                    let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
                    let rows = self
                        .records
                        .iter()
                        .map(|r| template.cells(r))
                        .collect::<Result<Vec<_>>>()?;
                    Ok(render(&headers, &rows))
                } else {
                    let template = Template::parse(tpl)?;
                    self.records
                        .iter()
                        .map(|r| template.execute(r).map(|line| line + "\n"))
                        .collect()
                }
            }
        }
    }

    pub fn print(&self, format: Option<&str>, quiet: bool) -> Result<()> {
        out!("{}", self.render(format, quiet)?);
        Ok(())
    }
}

/// A small subset of Go's text/template, enough for docker-style `--format` strings:
/// `{{.Field.Sub}}`, `{{.}}`, `{{json .X}}`, `{{upper .X}}`, `{{lower .X}}`, `{{title .X}}`,
/// `{{index .Map "key"}}`, and the escapes `\t` and `\n`.
#[derive(Debug, Clone, PartialEq)]
pub struct Template(Vec<Piece>);

#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Text(String),
    Action {
        func: Option<String>,
        path: Vec<String>,
        key: Option<String>,
    },
}

impl Template {
    pub fn parse(source: &str) -> Result<Self> {
        let source = source.replace("\\t", "\t").replace("\\n", "\n");
        let mut pieces = Vec::new();
        let mut rest = source.as_str();
        while let Some(start) = rest.find("{{") {
            if start > 0 {
                pieces.push(Piece::Text(rest[..start].to_string()));
            }
            let end = rest[start..]
                .find("}}")
                .with_context(|| format!("template: unclosed action in {source:?}"))?
                + start;
            pieces.push(Self::parse_action(&rest[start + 2..end])?);
            rest = &rest[end + 2..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_string()));
        }
        Ok(Self(pieces))
    }

    fn parse_action(action: &str) -> Result<Piece> {
        let action = action.trim().trim_start_matches('-').trim_end_matches('-');
        let words: Vec<&str> = action.split_whitespace().collect();
        let (func, arg, key) = match words.as_slice() {
            [arg] => (None, *arg, None),
            [func @ ("json" | "upper" | "lower" | "title"), arg] => {
                (Some(func.to_string()), *arg, None)
            }
            ["index", arg, key] => (
                Some("index".to_string()),
                *arg,
                Some(key.trim_matches('"').to_string()),
            ),
            _ => bail!("template: unsupported action {{{{{action}}}}}: shoal understands {{{{.Field}}}}, json, upper, lower, title and index"),
        };
        let Some(path) = arg.strip_prefix('.') else {
            bail!("template: unsupported argument {arg:?} in {{{{{action}}}}}");
        };
        let path = if path.is_empty() {
            Vec::new()
        } else {
            path.split('.').map(str::to_string).collect()
        };
        Ok(Piece::Action { func, path, key })
    }

    pub fn execute(&self, data: &Value) -> Result<String> {
        let mut out = String::new();
        for piece in &self.0 {
            match piece {
                Piece::Text(text) => out.push_str(text),
                Piece::Action { func, path, key } => {
                    let mut value = data;
                    for part in path {
                        value = value.get(part).unwrap_or(&Value::Null);
                    }
                    let text = match (func.as_deref(), key) {
                        (Some("json"), _) => value.to_string(),
                        (Some("upper"), _) => display(value).to_uppercase(),
                        (Some("lower"), _) => display(value).to_lowercase(),
                        (Some("title"), _) => capitalize(&display(value)),
                        (Some("index"), Some(key)) => {
                            display(value.get(key).unwrap_or(&Value::Null))
                        }
                        _ => display(value),
                    };
                    out.push_str(&text);
                }
            }
        }
        Ok(out)
    }

    /// Splits a `table` template into one template per tab-separated column.
    fn columns(&self) -> Vec<Template> {
        let mut columns = vec![Vec::new()];
        for piece in &self.0 {
            match piece {
                Piece::Text(text) => {
                    let mut parts = text.split('\t');
                    if let Some(first) = parts.next() {
                        if !first.is_empty() {
                            columns
                                .last_mut()
                                .unwrap()
                                .push(Piece::Text(first.to_string()));
                        }
                    }
                    for part in parts {
                        columns.push(Vec::new());
                        if !part.is_empty() {
                            columns
                                .last_mut()
                                .unwrap()
                                .push(Piece::Text(part.to_string()));
                        }
                    }
                }
                action => columns.last_mut().unwrap().push(action.clone()),
            }
        }
        columns.into_iter().map(Template).collect()
    }

    fn headers(&self) -> Vec<String> {
        self.columns()
            .iter()
            .map(|column| {
                column
                    .0
                    .iter()
                    .map(|piece| match piece {
                        Piece::Text(text) => text.clone(),
                        Piece::Action { path, key, .. } => match (key, path.last()) {
                            (Some(key), _) => key.to_uppercase(),
                            (None, Some(field)) => header_for(field),
                            (None, None) => String::new(),
                        },
                    })
                    .collect::<String>()
            })
            .collect()
    }

    fn cells(&self, data: &Value) -> Result<Vec<String>> {
        self.columns().iter().map(|c| c.execute(data)).collect()
    }
}

/// `CurrentState` → `CURRENT STATE`, `ID` → `ID`.
fn header_for(field: &str) -> String {
    let mut out = String::new();
    let chars: Vec<char> = field.chars().collect();
    for (i, c) in chars.iter().enumerate() {
        let next_is_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
        let prev_is_lower = i > 0 && chars[i - 1].is_lowercase();
        if i > 0 && c.is_uppercase() && (prev_is_lower || next_is_lower) {
            out.push(' ');
        }
        out.extend(c.to_uppercase());
    }
    out
}

/// How a JSON value prints inside text: strings bare, `null` as Go's `<no value>`.
pub fn display(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "<no value>".to_string(),
        other => other.to_string(),
    }
}

/// The string at `path` in `value`, or "".
pub fn str_at<'a>(value: &'a Value, path: &[&str]) -> &'a str {
    let mut v = value;
    for part in path {
        v = match v.get(part) {
            Some(next) => next,
            None => return "",
        };
    }
    v.as_str().unwrap_or("")
}

/// Docker's `PrettyPrint`: first letter upper case, the rest lower case.
pub fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) if s.chars().count() > 1 => {
            first.to_uppercase().collect::<String>() + &chars.as_str().to_lowercase()
        }
        _ => s.to_lowercase(),
    }
}

/// `sortorder.NaturalLess`: digit runs compare as numbers, so `web.2` sorts before `web.10`.
pub fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        match (a.first(), b.first()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let da = a.iter().take_while(|c| c.is_ascii_digit()).count();
                let db = b.iter().take_while(|c| c.is_ascii_digit()).count();
                let na = std::str::from_utf8(&a[..da])
                    .unwrap_or("")
                    .trim_start_matches('0');
                let nb = std::str::from_utf8(&b[..db])
                    .unwrap_or("")
                    .trim_start_matches('0');
                let ord = na.len().cmp(&nb.len()).then_with(|| na.cmp(nb));
                if ord != Ordering::Equal {
                    return ord;
                }
                a = &a[da..];
                b = &b[db..];
            }
            (Some(x), Some(y)) => {
                if x != y {
                    return x.cmp(y);
                }
                a = &a[1..];
                b = &b[1..];
            }
        }
    }
}

/// The first 12 characters of an ID, like docker's `stringid.TruncateID`.
pub fn truncate_id(id: &str) -> String {
    id.chars().take(12).collect()
}

/// An image reference without its `@sha256:…` digest, as `docker service ls` shows it.
pub fn image_without_digest(image: &str) -> String {
    match image.split_once('@') {
        Some((name, _)) if !name.is_empty() => name.to_string(),
        _ => image.to_string(),
    }
}

/// Parses an API timestamp (RFC 3339); Go's zero time and garbage give None.
pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    let t = DateTime::parse_from_rfc3339(s).ok()?.with_timezone(&Utc);
    (t.timestamp() > 0).then_some(t)
}

/// go-units `HumanDuration`, e.g. "Less than a second", "5 minutes", "About an hour".
pub fn human_duration(d: chrono::Duration) -> String {
    let seconds = d.num_seconds();
    if seconds < 1 {
        return "Less than a second".to_string();
    }
    if seconds == 1 {
        return "1 second".to_string();
    }
    if seconds < 60 {
        return format!("{seconds} seconds");
    }
    let minutes = d.num_minutes();
    if minutes == 1 {
        return "About a minute".to_string();
    }
    if minutes < 60 {
        return format!("{minutes} minutes");
    }
    let hours = (d.num_seconds() as f64 / 3600.0 + 0.5) as i64;
    if hours == 1 {
        return "About an hour".to_string();
    }
    if hours < 48 {
        return format!("{hours} hours");
    }
    if hours < 24 * 7 * 2 {
        return format!("{} days", hours / 24);
    }
    if hours < 24 * 30 * 2 {
        return format!("{} weeks", hours / 24 / 7);
    }
    if hours < 24 * 365 * 2 {
        return format!("{} months", hours / 24 / 30);
    }
    format!("{} years", d.num_hours() / 24 / 365)
}

/// "5 minutes ago" for an API timestamp ("" when there is none).
pub fn ago(timestamp: &str, now: DateTime<Utc>) -> String {
    match parse_time(timestamp) {
        Some(t) => format!("{} ago", human_duration(now - t)),
        None => String::new(),
    }
}

/// Go's `time.Time.String()` in UTC, passed through docker's `PrettyPrint`:
/// `2017-03-24 08:15:09.735271783 +0000 utc`.
pub fn pretty_time(timestamp: &str) -> String {
    let Some(t) = parse_time(timestamp) else {
        return timestamp.to_string();
    };
    let mut out = t.format("%Y-%m-%d %H:%M:%S").to_string();
    let nanos = t.timestamp_subsec_nanos();
    if nanos > 0 {
        let frac = format!("{nanos:09}");
        out.push('.');
        out.push_str(frac.trim_end_matches('0'));
    }
    out.push_str(" +0000 utc");
    out
}

/// Go's `time.Duration.String()` for nanoseconds: `1m30s`, `500ms`, `0s`.
pub fn go_duration(nanos: i64) -> String {
    if nanos == 0 {
        return "0s".to_string();
    }
    let sign = if nanos < 0 { "-" } else { "" };
    let n = nanos.unsigned_abs();
    let frac = |value: u64, unit: u64| -> String {
        let whole = value / unit;
        let rest = value % unit;
        if rest == 0 {
            whole.to_string()
        } else {
            let digits = unit.to_string().len() - 1;
            let s = format!("{rest:0digits$}");
            format!("{whole}.{}", s.trim_end_matches('0'))
        }
    };
    if n < 1_000 {
        return format!("{sign}{n}ns");
    }
    if n < 1_000_000 {
        return format!("{sign}{}µs", frac(n, 1_000));
    }
    if n < 1_000_000_000 {
        return format!("{sign}{}ms", frac(n, 1_000_000));
    }
    let hours = n / 3_600_000_000_000;
    let minutes = (n / 60_000_000_000) % 60;
    let secs = n % 60_000_000_000;
    let mut out = sign.to_string();
    if hours > 0 {
        out.push_str(&format!("{hours}h"));
    }
    if hours > 0 || minutes > 0 {
        out.push_str(&format!("{minutes}m"));
    }
    out.push_str(&format!("{}s", frac(secs, 1_000_000_000)));
    out
}

/// go-units `BytesSize`: binary units, four significant digits (`100MiB`, `1.5GiB`).
pub fn bytes_size(bytes: f64) -> String {
    const UNITS: [&str; 9] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];
    let mut size = bytes;
    let mut unit = 0;
    while size >= 1024.0 && unit < UNITS.len() - 1 {
        size /= 1024.0;
        unit += 1;
    }
    format!("{}{}", significant4(size), UNITS[unit])
}

/// Go's `%.4g` for values below 10000.
fn significant4(v: f64) -> String {
    if v == 0.0 {
        return "0".to_string();
    }
    let magnitude = v.abs().log10().floor() as i32;
    let decimals = (3 - magnitude).max(0) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// Re-indents JSON text the way Go's `json.Indent(dst, src, prefix, "    ")` does, keeping the
/// daemon's key order and escapes: empty objects and arrays stay `{}` and `[]`.
pub fn indent_json(src: &str, prefix: &str) -> String {
    let mut out = String::with_capacity(src.len() * 2);
    let mut depth = 0usize;
    let mut chars = src.chars().peekable();
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        out.push_str(prefix);
        for _ in 0..depth {
            out.push_str("    ");
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                out.push('"');
                while let Some(c) = chars.next() {
                    out.push(c);
                    match c {
                        '\\' => {
                            if let Some(escaped) = chars.next() {
                                out.push(escaped);
                            }
                        }
                        '"' => break,
                        _ => {}
                    }
                }
            }
            '{' | '[' => {
                let close = if c == '{' { '}' } else { ']' };
                while chars.peek().is_some_and(|c| c.is_whitespace()) {
                    chars.next();
                }
                if chars.peek() == Some(&close) {
                    chars.next();
                    out.push(c);
                    out.push(close);
                } else {
                    out.push(c);
                    depth += 1;
                    newline(&mut out, depth);
                }
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(',');
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            c if c.is_whitespace() => {}
            c => out.push(c),
        }
    }
    out
}

/// `docker inspect`'s default output: the objects' JSON as an indented array.
pub fn inspect_array(raw_objects: &[String]) -> String {
    if raw_objects.is_empty() {
        return "[]\n".to_string();
    }
    let joined = format!("[{}]", raw_objects.join(","));
    indent_json(&joined, "") + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tables_pad_like_docker_tabwriter() {
        let out = render(
            &["NAME", "SERVICES"],
            &[
                vec!["todo".into(), "3".into()],
                vec!["a-long-stack-name".into(), "12".into()],
            ],
        );
        assert_eq!(
            out,
            "NAME                SERVICES\ntodo                3\na-long-stack-name   12\n"
        );
        let out = render(&["ID", "NAME"], &[vec!["x".into(), "y".into()]]);
        assert_eq!(out, "ID        NAME\nx         y\n");
    }

    #[test]
    fn empty_last_cells_end_in_the_padding_before_them_as_docker_prints_them() {
        // `docker service ls` of a service without published ports.
        let out = render(
            &["ID", "NAME", "IMAGE", "PORTS"],
            &[
                vec!["abc".into(), "web".into(), "nginx:1".into(), "".into()],
                vec!["def".into(), "db".into(), "".into(), "".into()],
                vec![
                    "ghi".into(),
                    "lb".into(),
                    "haproxy".into(),
                    "*:80->80/tcp".into(),
                ],
            ],
        );
        assert_eq!(
            out,
            "ID        NAME      IMAGE     PORTS\n\
             abc       web       nginx:1   \n\
             def       db                  \n\
             ghi       lb        haproxy   *:80->80/tcp\n"
        );
    }

    #[test]
    fn empty_listing_prints_header_only() {
        let out = render(&["ID", "NAME", "IMAGE"], &[]);
        assert_eq!(out, "ID        NAME      IMAGE\n");
    }

    #[test]
    fn listing_formats_quiet_json_and_templates() {
        let mut listing = Listing::new(&["ID", "NAME"]);
        listing.push(
            vec!["abc".into(), "web".into()],
            json!({"ID": "abc", "Name": "web", "Labels": {"a": "b"}}),
        );
        assert_eq!(listing.render(None, true).unwrap(), "abc\n");
        assert_eq!(
            listing.render(Some("json"), false).unwrap(),
            "{\"ID\":\"abc\",\"Labels\":{\"a\":\"b\"},\"Name\":\"web\"}\n"
        );
        assert_eq!(
            listing
                .render(Some("{{.Name}}: {{ index .Labels \"a\" }}"), false)
                .unwrap(),
            "web: b\n"
        );
        assert_eq!(
            listing
                .render(Some("table {{.ID}}\\t{{.Name}}"), false)
                .unwrap(),
            "ID        NAME\nabc       web\n"
        );
        assert!(listing.render(Some("{{range .}}"), false).is_err());
    }

    #[test]
    fn headers_split_camel_case() {
        assert_eq!(header_for("CurrentState"), "CURRENT STATE");
        assert_eq!(header_for("ID"), "ID");
        assert_eq!(header_for("EngineVersion"), "ENGINE VERSION");
    }

    #[test]
    fn human_renderings_match_docker() {
        assert_eq!(
            human_duration(chrono::Duration::seconds(0)),
            "Less than a second"
        );
        assert_eq!(human_duration(chrono::Duration::seconds(42)), "42 seconds");
        assert_eq!(
            human_duration(chrono::Duration::seconds(90)),
            "About a minute"
        );
        assert_eq!(human_duration(chrono::Duration::minutes(5)), "5 minutes");
        assert_eq!(human_duration(chrono::Duration::hours(3)), "3 hours");
        assert_eq!(human_duration(chrono::Duration::days(3)), "3 days");
        assert_eq!(go_duration(10_000_000_000), "10s");
        assert_eq!(go_duration(90_000_000_000), "1m30s");
        assert_eq!(go_duration(500_000_000), "500ms");
        assert_eq!(go_duration(1_500_000_000), "1.5s");
        assert_eq!(go_duration(3_600_000_000_000), "1h0m0s");
        assert_eq!(bytes_size(104_857_600.0), "100MiB");
        assert_eq!(bytes_size(1_610_612_736.0), "1.5GiB");
        assert_eq!(bytes_size(512.0), "512B");
        assert_eq!(capitalize("ready"), "Ready");
        assert_eq!(capitalize("RUNNING"), "Running");
        assert_eq!(
            pretty_time("2017-03-24T08:15:09.735271783Z"),
            "2017-03-24 08:15:09.735271783 +0000 utc"
        );
        assert_eq!(image_without_digest("nginx:1.25@sha256:abc"), "nginx:1.25");
        assert_eq!(natural_cmp("web.2", "web.10"), std::cmp::Ordering::Less);
        assert_eq!(natural_cmp("b", "a10"), std::cmp::Ordering::Greater);
    }

    #[test]
    fn inspect_output_keeps_key_order_and_indents_like_go() {
        let raw =
            vec![r#"{"ID":"x","Spec":{"Name":"a,b:c","Labels":{}},"List":[1,2]}"#.to_string()];
        assert_eq!(
            inspect_array(&raw),
            "[\n    {\n        \"ID\": \"x\",\n        \"Spec\": {\n            \"Name\": \"a,b:c\",\n            \"Labels\": {}\n        },\n        \"List\": [\n            1,\n            2\n        ]\n    }\n]\n"
        );
    }
}
