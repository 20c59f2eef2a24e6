//! YAML → a tree of nodes that each know their `file:line:col`. Built on saphyr-parser's
//! event stream, so that every later error (a wrong type, an unknown key, a bad duration) can
//! name the spot in the file. Duplicate keys are refused naming both lines; anchors, aliases
//! and `<<` merge keys are resolved here, with a cap on alias expansion and nesting so that no
//! input can make the loader blow up. This module knows nothing about Compose.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};

use crate::Error;

/// Deepest nesting accepted (a Compose file needs a handful of levels).
const MAX_DEPTH: usize = 200;
/// Most nodes that alias expansion may add ("billion laughs" stops here).
const MAX_ALIAS_NODES: usize = 100_000;

/// A position in a source file; `line` and `col` count from 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pos {
    pub file: Arc<str>,
    pub line: usize,
    pub col: usize,
}

impl Pos {
    pub fn new(file: &Arc<str>, line: usize, col: usize) -> Pos {
        Pos {
            file: file.clone(),
            line,
            col,
        }
    }
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.col)
    }
}

/// What a node holds. Scalars keep their text: the Compose layer decides what type it wants
/// (after interpolation, as docker does).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Scalar { text: String, quoted: bool },
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub pos: Pos,
    pub value: Value,
}

impl Node {
    pub fn new(pos: Pos, value: Value) -> Node {
        Node { pos, value }
    }

    pub fn scalar(pos: Pos, text: impl Into<String>) -> Node {
        Node::new(
            pos,
            Value::Scalar {
                text: text.into(),
                quoted: true,
            },
        )
    }

    /// The text of a scalar (also a key).
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    /// A scalar written as a boolean in YAML 1.2's core schema (`true`, `True`, `TRUE` and the
    /// same for false); Compose's `yes`/`no` are strings.
    pub fn as_bool(&self) -> Option<bool> {
        match self.as_str()? {
            "true" | "True" | "TRUE" => Some(true),
            "false" | "False" | "FALSE" => Some(false),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self.value, Value::Null)
    }

    pub fn as_map(&self) -> Option<&[(Node, Node)]> {
        match &self.value {
            Value::Map(entries) => Some(entries),
            _ => None,
        }
    }

    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.value {
            Value::Seq(items) => Some(items),
            _ => None,
        }
    }

    /// The value under `key` in a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map()?
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    }

    /// A word for the kind of node, for "expected a mapping, got a sequence".
    pub fn kind(&self) -> &'static str {
        match &self.value {
            Value::Null => "null",
            Value::Scalar { .. } => "a scalar",
            Value::Seq(_) => "a sequence",
            Value::Map(_) => "a mapping",
        }
    }
}

/// Parses the first document of `text`; `file` names it in positions. An empty document is
/// `Value::Null`.
pub fn parse(file: &str, text: &str) -> Result<Node, Error> {
    let file: Arc<str> = Arc::from(file);
    let mut builder = Builder {
        file: file.clone(),
        anchors: HashMap::new(),
        stack: Vec::new(),
        alias_nodes: 0,
        root: None,
    };
    let mut parser = Parser::new_from_str(text);
    // Reading goes on to the end of the first document, so that a syntax error right after
    // its last node is still reported.
    while let Some(next) = parser.next_event() {
        let (event, span) = next.map_err(|e| Error::Syntax {
            pos: Pos::new(&file, e.marker().line(), e.marker().col() + 1),
            msg: e.info().to_string(),
        })?;
        match event {
            Event::StreamEnd => break,
            // Only the first document counts, as with docker's loader.
            Event::DocumentEnd if builder.root.is_some() => break,
            _ => builder.event(event, span)?,
        }
    }
    Ok(builder
        .root
        .unwrap_or_else(|| Node::new(Pos::new(&file, 1, 1), Value::Null)))
}

enum Frame {
    Seq {
        pos: Pos,
        anchor: usize,
        items: Vec<Node>,
    },
    Map {
        pos: Pos,
        anchor: usize,
        entries: Vec<(Node, Node)>,
        pending_key: Option<Node>,
        /// Entries brought in by `<<` merge keys, added where no explicit key exists.
        merged: Vec<(Node, Node)>,
    },
}

struct Builder {
    file: Arc<str>,
    anchors: HashMap<usize, Node>,
    stack: Vec<Frame>,
    alias_nodes: usize,
    root: Option<Node>,
}

fn node_count(node: &Node) -> usize {
    match &node.value {
        Value::Seq(items) => 1 + items.iter().map(node_count).sum::<usize>(),
        Value::Map(entries) => {
            1 + entries
                .iter()
                .map(|(k, v)| node_count(k) + node_count(v))
                .sum::<usize>()
        }
        _ => 1,
    }
}

impl Builder {
    fn pos(&self, span: &Span) -> Pos {
        Pos::new(&self.file, span.start.line(), span.start.col() + 1)
    }

    fn event(&mut self, event: Event<'_>, span: Span) -> Result<(), Error> {
        let pos = self.pos(&span);
        match event {
            Event::Scalar(text, style, anchor, tag) => {
                let quoted = !matches!(style, ScalarStyle::Plain);
                let is_str_tag = tag
                    .as_ref()
                    .is_some_and(|t| t.handle == "tag:yaml.org,2002:" && t.suffix == "str");
                let value = if !quoted && !is_str_tag && is_null(&text) {
                    Value::Null
                } else {
                    Value::Scalar {
                        text: text.into_owned(),
                        quoted,
                    }
                };
                let node = Node::new(pos, value);
                if anchor > 0 {
                    self.anchors.insert(anchor, node.clone());
                }
                self.push(node)
            }
            Event::Alias(id) => {
                let Some(node) = self.anchors.get(&id).cloned() else {
                    return Err(Error::Syntax {
                        pos,
                        msg: "unknown anchor".into(),
                    });
                };
                self.alias_nodes += node_count(&node);
                if self.alias_nodes > MAX_ALIAS_NODES {
                    return Err(Error::Syntax {
                        pos,
                        msg: "too many alias expansions".into(),
                    });
                }
                self.push(node)
            }
            Event::SequenceStart(anchor, _) => {
                self.check_depth(&pos)?;
                self.stack.push(Frame::Seq {
                    pos,
                    anchor,
                    items: Vec::new(),
                });
                Ok(())
            }
            Event::MappingStart(anchor, _) => {
                self.check_depth(&pos)?;
                self.stack.push(Frame::Map {
                    pos,
                    anchor,
                    entries: Vec::new(),
                    pending_key: None,
                    merged: Vec::new(),
                });
                Ok(())
            }
            Event::SequenceEnd => match self.stack.pop() {
                Some(Frame::Seq { pos, anchor, items }) => {
                    self.finish(Node::new(pos, Value::Seq(items)), anchor)
                }
                _ => Err(Error::Syntax {
                    pos,
                    msg: "unexpected end of sequence".into(),
                }),
            },
            Event::MappingEnd => match self.stack.pop() {
                Some(Frame::Map {
                    pos,
                    anchor,
                    mut entries,
                    merged,
                    ..
                }) => {
                    for (k, v) in merged {
                        if !entries.iter().any(|(e, _)| e.as_str() == k.as_str()) {
                            entries.push((k, v));
                        }
                    }
                    self.finish(Node::new(pos, Value::Map(entries)), anchor)
                }
                _ => Err(Error::Syntax {
                    pos,
                    msg: "unexpected end of mapping".into(),
                }),
            },
            _ => Ok(()),
        }
    }

    fn check_depth(&self, pos: &Pos) -> Result<(), Error> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(Error::Syntax {
                pos: pos.clone(),
                msg: format!("nesting deeper than {MAX_DEPTH} levels"),
            });
        }
        Ok(())
    }

    fn finish(&mut self, node: Node, anchor: usize) -> Result<(), Error> {
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
        self.push(node)
    }

    /// Hands a finished node to its parent (or makes it the root).
    fn push(&mut self, node: Node) -> Result<(), Error> {
        match self.stack.last_mut() {
            None => {
                if self.root.is_none() {
                    self.root = Some(node);
                }
                Ok(())
            }
            Some(Frame::Seq { items, .. }) => {
                items.push(node);
                Ok(())
            }
            Some(Frame::Map {
                entries,
                pending_key,
                merged,
                ..
            }) => match pending_key.take() {
                None => {
                    if !matches!(node.value, Value::Scalar { .. } | Value::Null) {
                        let msg = format!("a mapping key must be a scalar, not {}", node.kind());
                        return Err(Error::Syntax { pos: node.pos, msg });
                    }
                    let key = match node.value {
                        // `~:` or an empty key: the key is the text "null", as Go's YAML has it.
                        Value::Null => Node::scalar(node.pos, "null"),
                        _ => node,
                    };
                    if let Some((first, _)) =
                        entries.iter().find(|(k, _)| k.as_str() == key.as_str())
                    {
                        return Err(Error::DuplicateKey {
                            pos: key.pos.clone(),
                            key: key.as_str().unwrap_or_default().to_string(),
                            first: first.pos.clone(),
                        });
                    }
                    *pending_key = Some(key);
                    Ok(())
                }
                Some(key) => {
                    let is_merge =
                        matches!(&key.value, Value::Scalar { text, quoted: false } if text == "<<");
                    if is_merge {
                        let sources: Vec<Node> = match node.value {
                            Value::Map(_) => vec![node],
                            Value::Seq(items) => items,
                            _ => {
                                return Err(Error::Syntax {
                                    pos: node.pos,
                                    msg: "a merge key (<<) needs a mapping or a list of mappings"
                                        .into(),
                                })
                            }
                        };
                        for source in sources {
                            let Value::Map(source_entries) = source.value else {
                                return Err(Error::Syntax {
                                    pos: source.pos,
                                    msg: "a merge key (<<) needs a mapping or a list of mappings"
                                        .into(),
                                });
                            };
                            for (k, v) in source_entries {
                                if !merged.iter().any(|(m, _)| m.as_str() == k.as_str()) {
                                    merged.push((k, v));
                                }
                            }
                        }
                    } else {
                        entries.push((key, node));
                    }
                    Ok(())
                }
            },
        }
    }
}

/// YAML 1.2 core-schema nulls.
fn is_null(text: &str) -> bool {
    matches!(text, "" | "~" | "null" | "Null" | "NULL")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_know_their_line_and_column() {
        let doc = parse("a.yml", "services:\n  web:\n    image: nginx\n").unwrap();
        let image = doc
            .get("services")
            .unwrap()
            .get("web")
            .unwrap()
            .get("image")
            .unwrap();
        assert_eq!(image.as_str(), Some("nginx"));
        assert_eq!(image.pos.to_string(), "a.yml:3:12");
    }

    #[test]
    fn duplicate_keys_name_both_lines() {
        let err = parse("a.yml", "services:\n  web:\n    image: a\n    image: b\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "a.yml:4:5: duplicate key \"image\" (first defined at a.yml:3:5)"
        );
    }

    #[test]
    fn anchors_aliases_and_merge_keys_resolve() {
        let doc = parse(
            "a.yml",
            "x: &base\n  a: 1\n  b: 2\ny:\n  <<: *base\n  b: 3\nz: *base\n",
        )
        .unwrap();
        let y = doc.get("y").unwrap();
        assert_eq!(y.get("a").and_then(Node::as_str), Some("1"));
        assert_eq!(y.get("b").and_then(Node::as_str), Some("3"));
        assert_eq!(
            doc.get("z").unwrap().get("b").and_then(Node::as_str),
            Some("2")
        );
    }

    #[test]
    fn syntax_errors_have_positions() {
        let err = parse("a.yml", "a: [1, 2\nb: c\n").unwrap_err();
        assert!(err.to_string().starts_with("a.yml:"), "{err}");
    }

    #[test]
    fn alias_bombs_are_refused() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let prev = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}]\n"
            ));
        }
        let err = parse("bomb.yml", &text).unwrap_err();
        assert!(
            err.to_string().contains("too many alias expansions"),
            "{err}"
        );
    }

    #[test]
    fn deep_nesting_is_refused() {
        let text = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
        assert!(parse("deep.yml", &text).is_err());
    }
}
