//! LVM2's metadata text: the libdm-config grammar (`key = value`,
//! `name { ... }`, lists `[a, b]`, "strings", '...' strings, integers,
//! floats, `#` comments), parsed into an ordered tree, and a writer that
//! lays text out the way lvm2 writes it on disk (no indentation, blank lines
//! and comments where lvm2 puts them; the model decides where).

use std::fmt::{self, Write as _};

/// A scalar or list value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// An integer (decimal, or 0x hex and 0 octal as libdm-config reads them).
    Int(i64),
    /// A float (lvm2 metadata has none, lvm.conf may).
    Float(f64),
    /// A string, unescaped.
    Str(String),
    /// `[a, b, ...]`.
    List(Vec<Value>),
}

/// The right-hand side of an entry: a value or a nested section.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// `key = value`.
    Value(Value),
    /// `name { ... }`.
    Section(Section),
}

/// An ordered list of entries (duplicate keys are kept; lookups take the first).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Section {
    /// Keys and their nodes, in text order.
    pub entries: Vec<(String, Node)>,
}

/// Where and why the text could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct ParseError {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in bytes.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

/// Deeper nesting than this is refused (lvm2 metadata uses four levels).
const MAX_DEPTH: usize = 32;

impl Section {
    /// The first node under `key`.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, n)| n)
    }

    /// The first node under `key`, if it is a section.
    pub fn section(&self, key: &str) -> Option<&Section> {
        match self.get(key) {
            Some(Node::Section(s)) => Some(s),
            _ => None,
        }
    }

    /// The first node under `key`, if it is a value.
    pub fn value(&self, key: &str) -> Option<&Value> {
        match self.get(key) {
            Some(Node::Value(v)) => Some(v),
            _ => None,
        }
    }

    /// The first node under `key`, if it is a string.
    pub fn str(&self, key: &str) -> Option<&str> {
        match self.value(key) {
            Some(Value::Str(s)) => Some(s),
            _ => None,
        }
    }

    /// The first node under `key`, if it is an integer.
    pub fn int(&self, key: &str) -> Option<i64> {
        match self.value(key) {
            Some(Value::Int(i)) => Some(*i),
            _ => None,
        }
    }

    /// Sub-sections in order, with their names.
    pub fn sections(&self) -> impl Iterator<Item = (&str, &Section)> {
        self.entries.iter().filter_map(|(k, n)| match n {
            Node::Section(s) => Some((k.as_str(), s)),
            Node::Value(_) => None,
        })
    }

    /// Appends `key = value`.
    pub fn push_value(&mut self, key: impl Into<String>, value: Value) {
        self.entries.push((key.into(), Node::Value(value)));
    }

    /// Appends `key { ... }`.
    pub fn push_section(&mut self, key: impl Into<String>, section: Section) {
        self.entries.push((key.into(), Node::Section(section)));
    }
}

impl Value {
    /// A string value.
    pub fn str(s: impl Into<String>) -> Value {
        Value::Str(s.into())
    }

    /// A list of strings, as lvm2 writes `status` and `tags`.
    pub fn str_list<S: AsRef<str>>(items: &[S]) -> Value {
        Value::List(
            items
                .iter()
                .map(|s| Value::Str(s.as_ref().to_owned()))
                .collect(),
        )
    }

    /// The string, if it is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
}

impl fmt::Display for Value {
    /// lvm2's rendering: `"a \"quoted\" \\ string"`, `42`, `["a", "b"]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => {
                // Keep a decimal point so the value reads back as a float.
                if x.is_finite() && x.fract() == 0.0 {
                    write!(f, "{x:.1}")
                } else {
                    write!(f, "{x}")
                }
            }
            Value::Str(s) => {
                f.write_char('"')?;
                for c in s.chars() {
                    if c == '"' || c == '\\' {
                        f.write_char('\\')?;
                    }
                    f.write_char(c)?;
                }
                f.write_char('"')
            }
            Value::List(items) => {
                f.write_char('[')?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_char(']')
            }
        }
    }
}

/// Whether `key` can be written bare (lvm2 names: letters, digits, `_+.-`).
pub fn is_plain_key(key: &str) -> bool {
    !key.is_empty() && key.bytes().all(is_key_byte) && !key.starts_with(['-', '+'])
}

fn is_key_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'+' | b'.' | b'/' | b'@' | b'%')
}

// ---- parsing -------------------------------------------------------------

/// Parses a whole text (metadata or lvm.conf) into its top-level section.
pub fn parse(text: &str) -> Result<Section, ParseError> {
    let mut p = Parser {
        s: text.as_bytes(),
        pos: 0,
        line: 1,
        line_start: 0,
    };
    let section = p.entries(0)?;
    p.skip_blank();
    if p.pos < p.s.len() {
        return Err(p.error("unexpected '}' at top level"));
    }
    Ok(section)
}

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
    line: usize,
    line_start: usize,
}

impl Parser<'_> {
    fn error(&self, message: impl Into<String>) -> ParseError {
        ParseError {
            line: self.line,
            column: self.pos - self.line_start + 1,
            message: message.into(),
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn bump(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.pos += 1;
        if b == b'\n' {
            self.line += 1;
            self.line_start = self.pos;
        }
        Some(b)
    }

    /// Skips whitespace and comments.
    fn skip_blank(&mut self) {
        while let Some(b) = self.peek() {
            if b.is_ascii_whitespace() {
                self.bump();
            } else if b == b'#' {
                while let Some(c) = self.bump() {
                    if c == b'\n' {
                        break;
                    }
                }
            } else {
                break;
            }
        }
    }

    /// Entries until '}' (depth > 0) or end of input (depth 0).
    fn entries(&mut self, depth: usize) -> Result<Section, ParseError> {
        if depth > MAX_DEPTH {
            return Err(self.error(format!("sections nested deeper than {MAX_DEPTH}")));
        }
        let mut section = Section::default();
        loop {
            self.skip_blank();
            match self.peek() {
                None if depth == 0 => return Ok(section),
                None => return Err(self.error("missing '}' at end of text")),
                Some(b'}') => return Ok(section),
                Some(_) => {}
            }
            let key = self.key()?;
            self.skip_blank();
            match self.bump() {
                Some(b'=') => {
                    self.skip_blank();
                    let value = self.value()?;
                    section.push_value(key, value);
                }
                Some(b'{') => {
                    let inner = self.entries(depth + 1)?;
                    if self.bump() != Some(b'}') {
                        return Err(self.error(format!("missing '}}' closing section {key}")));
                    }
                    section.push_section(key, inner);
                }
                Some(c) => {
                    return Err(self.error(format!(
                        "expected '=' or '{{' after {key}, found {:?}",
                        c as char
                    )))
                }
                None => return Err(self.error(format!("text ends after key {key}"))),
            }
        }
    }

    fn key(&mut self) -> Result<String, ParseError> {
        if self.peek() == Some(b'"') {
            return self.quoted(b'"');
        }
        let start = self.pos;
        while self.peek().is_some_and(is_key_byte) {
            self.bump();
        }
        if start == self.pos {
            let found = self
                .peek()
                .map(|c| format!("{:?}", c as char))
                .unwrap_or_else(|| "end".into());
            return Err(self.error(format!("expected a key, found {found}")));
        }
        Ok(String::from_utf8_lossy(&self.s[start..self.pos]).into_owned())
    }

    fn value(&mut self) -> Result<Value, ParseError> {
        match self.peek() {
            Some(b'[') => {
                self.bump();
                let mut items = Vec::new();
                loop {
                    self.skip_blank();
                    if self.peek() == Some(b']') {
                        self.bump();
                        return Ok(Value::List(items));
                    }
                    if !items.is_empty() {
                        if self.bump() != Some(b',') {
                            return Err(self.error("expected ',' or ']' in a list"));
                        }
                        self.skip_blank();
                    }
                    match self.peek() {
                        Some(b'[') => return Err(self.error("lists cannot be nested")),
                        None => return Err(self.error("list not closed with ']'")),
                        _ => items.push(self.value()?),
                    }
                }
            }
            Some(q @ (b'"' | b'\'')) => Ok(Value::Str(self.quoted(q)?)),
            Some(c) if c.is_ascii_digit() || c == b'-' || c == b'+' || c == b'.' => self.number(),
            Some(c) => Err(self.error(format!("expected a value, found {:?}", c as char))),
            None => Err(self.error("text ends where a value should be")),
        }
    }

    /// A quoted string; double quotes take `\"` and `\\` escapes as lvm2 writes them.
    fn quoted(&mut self, quote: u8) -> Result<String, ParseError> {
        let (line, column) = (self.line, self.pos - self.line_start + 1);
        self.bump();
        let mut bytes = Vec::new();
        loop {
            match self.bump() {
                None => {
                    return Err(ParseError {
                        line,
                        column,
                        message: "string not closed".into(),
                    })
                }
                Some(c) if c == quote => break,
                Some(b'\\') if quote == b'"' => match self.bump() {
                    Some(c) => bytes.push(c),
                    None => {
                        return Err(ParseError {
                            line,
                            column,
                            message: "string not closed".into(),
                        })
                    }
                },
                Some(c) => bytes.push(c),
            }
        }
        String::from_utf8(bytes).map_err(|_| ParseError {
            line,
            column,
            message: "string is not UTF-8".into(),
        })
    }

    /// An integer (decimal, 0x hex or 0 octal, as strtoll base 0 reads it) or a float.
    fn number(&mut self) -> Result<Value, ParseError> {
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'+'))
        {
            self.bump();
        }
        let word = std::str::from_utf8(&self.s[start..self.pos]).unwrap_or_default();
        let bad = || ParseError {
            line: self.line,
            column: start - self.line_start + 1,
            message: format!("bad number {word:?}"),
        };
        if word.contains('.') || (word.contains(['e', 'E']) && !word.contains(['x', 'X'])) {
            // Out of range ("1e999") would be infinity, which no text can say.
            return match word.parse::<f64>() {
                Ok(x) if x.is_finite() => Ok(Value::Float(x)),
                _ => Err(bad()),
            };
        }
        let (negative, digits) = match word.as_bytes().first() {
            Some(b'-') => (true, &word[1..]),
            Some(b'+') => (false, &word[1..]),
            _ => (false, word),
        };
        let magnitude = if let Some(hex) = digits
            .strip_prefix("0x")
            .or_else(|| digits.strip_prefix("0X"))
        {
            i128::from_str_radix(hex, 16)
        } else if digits.len() > 1 && digits.starts_with('0') {
            i128::from_str_radix(&digits[1..], 8)
        } else {
            digits.parse::<i128>()
        }
        .map_err(|_| bad())?;
        let value = if negative { -magnitude } else { magnitude };
        i64::try_from(value).map(Value::Int).map_err(|_| bad())
    }
}

// ---- writing ---------------------------------------------------------------

/// Builds text laid out as lvm2 writes metadata: one entry per line, no
/// indentation; blank lines and comments wherever the caller puts them.
#[derive(Debug, Default)]
pub struct Writer {
    out: String,
}

impl Writer {
    /// An empty text.
    pub fn new() -> Writer {
        Writer::default()
    }

    fn key(&mut self, key: &str) {
        if is_plain_key(key) {
            self.out.push_str(key);
        } else {
            let _ = write!(self.out, "{}", Value::str(key));
        }
    }

    /// `key = value`
    pub fn value(&mut self, key: &str, value: &Value) -> &mut Self {
        self.key(key);
        let _ = writeln!(self.out, " = {value}");
        self
    }

    /// `key = value\t# comment` (lvm2's creation_host/creation_time lines).
    pub fn value_with_comment(&mut self, key: &str, value: &Value, comment: &str) -> &mut Self {
        self.key(key);
        let _ = writeln!(self.out, " = {value}\t# {comment}");
        self
    }

    /// A list with `per_line` items on each line, as lvm2 writes `stripes`:
    /// `stripes = [\n"pv0", 0,\n"pv1", 0\n]`.
    pub fn list_by_lines(&mut self, key: &str, items: &[Value], per_line: usize) -> &mut Self {
        self.key(key);
        self.out.push_str(" = [\n");
        let rows: Vec<&[Value]> = items.chunks(per_line.max(1)).collect();
        for (i, row) in rows.iter().enumerate() {
            let line: Vec<String> = row.iter().map(Value::to_string).collect();
            self.out.push_str(&line.join(", "));
            self.out
                .push_str(if i + 1 < rows.len() { ",\n" } else { "\n" });
        }
        self.out.push_str("]\n");
        self
    }

    /// `name {`: opens a section.
    pub fn begin(&mut self, name: &str) -> &mut Self {
        self.key(name);
        self.out.push_str(" {\n");
        self
    }

    /// `}`: closes the innermost section.
    pub fn end(&mut self) -> &mut Self {
        self.out.push_str("}\n");
        self
    }

    /// An empty line.
    pub fn blank(&mut self) -> &mut Self {
        self.out.push('\n');
        self
    }

    /// `# text`.
    pub fn comment(&mut self, text: &str) -> &mut Self {
        let _ = writeln!(self.out, "# {text}");
        self
    }

    /// Writes a whole section tree with no blank lines (for entries cairn
    /// carries without interpreting them).
    pub fn section_entries(&mut self, section: &Section) -> &mut Self {
        for (key, node) in &section.entries {
            match node {
                Node::Value(v) => {
                    self.value(key, v);
                }
                Node::Section(s) => {
                    self.begin(key).section_entries(s).end();
                }
            }
        }
        self
    }

    /// The text written.
    pub fn finish(self) -> String {
        self.out
    }
}

/// The plain layout of a tree (no blank lines, no comments).
pub fn to_text(section: &Section) -> String {
    let mut w = Writer::new();
    w.section_entries(section);
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_lvm2_metadata_shapes() {
        let text = r#"vgall {
id = "MJPU2T-zvjl-MR84-5Znu-Bwop-kHJf-zlic1p"
seqno = 24
status = ["RESIZEABLE", "READ", "WRITE"]
flags = []

logical_volumes {

cdata_cpool {
segment1 {
type = "cache-pool+METADATA_FORMAT"
stripes = [
"pv0", 10,
"pv1", 0
]
}
}
}
}
# Generated by LVM2 version 2.03.16(2) (2022-05-18): Tue Nov 24 05:43:32 2026

contents = "Text Format Volume Group"
creation_host = "cairn-a"	# Linux cairn-a 6.1.0-56-amd64 #1 SMP
"#;
        let root = parse(text).unwrap();
        let vg = root.section("vgall").unwrap();
        assert_eq!(vg.int("seqno"), Some(24));
        assert_eq!(
            vg.value("status"),
            Some(&Value::str_list(&["RESIZEABLE", "READ", "WRITE"]))
        );
        assert_eq!(vg.value("flags"), Some(&Value::List(vec![])));
        let seg = vg
            .section("logical_volumes")
            .unwrap()
            .section("cdata_cpool")
            .unwrap()
            .section("segment1")
            .unwrap();
        assert_eq!(seg.str("type"), Some("cache-pool+METADATA_FORMAT"));
        assert_eq!(
            seg.value("stripes"),
            Some(&Value::List(vec![
                Value::str("pv0"),
                Value::Int(10),
                Value::str("pv1"),
                Value::Int(0)
            ]))
        );
        assert_eq!(root.str("contents"), Some("Text Format Volume Group"));
        assert_eq!(root.str("creation_host"), Some("cairn-a"));
    }

    #[test]
    fn numbers_read_as_strtoll_base_0_does() {
        let root = parse("a = 10\nb = 0x1F\nc = 010\nd = -5\ne = 1.5\nf = 0\n").unwrap();
        let ints: Vec<Option<i64>> = ["a", "b", "c", "d", "f"]
            .iter()
            .map(|k| root.int(k))
            .collect();
        assert_eq!(ints, [Some(10), Some(31), Some(8), Some(-5), Some(0)]);
        assert_eq!(root.value("e"), Some(&Value::Float(1.5)));
    }

    #[test]
    fn escapes_and_single_quotes() {
        let root = parse(
            r#"a = "say \"hi\" \\ there"
b = 'single # not a comment'
"#,
        )
        .unwrap();
        assert_eq!(root.str("a"), Some(r#"say "hi" \ there"#));
        assert_eq!(root.str("b"), Some("single # not a comment"));
        assert_eq!(
            Value::str(r#"say "hi" \ there"#).to_string(),
            r#""say \"hi\" \\ there""#
        );
    }

    #[test]
    fn errors_say_where() {
        let cases = [
            ("a = \n", "value"),
            ("vg {\na = 1\n", "missing '}'"),
            ("a = \"open\n", "not closed"),
            ("a = [1, 2\n", "expected ','"),
            ("a 1\n", "expected '=' or '{'"),
            ("}\n", "unexpected '}'"),
            ("a = 99999999999999999999\n", "bad number"),
            // Found by fuzz/fuzz_targets/text.rs: read as infinity, written "inf".
            ("a = 1e999\n", "bad number"),
            ("a = -1.0e309\n", "bad number"),
            ("a = [[1]]\n", "nested"),
        ];
        for (text, what) in cases {
            let e = parse(text).unwrap_err();
            assert!(e.to_string().contains(what), "{text:?}: {e}");
        }
        let e = parse("vg {\nid = \"x\"\nseqno = =\n}").unwrap_err();
        assert_eq!((e.line, e.column), (3, 9), "{e}");
        let deep = "a {".repeat(100);
        assert!(parse(&deep).unwrap_err().message.contains("nested deeper"));
    }

    #[test]
    fn writer_lays_out_as_lvm2() {
        let mut w = Writer::new();
        w.begin("vg")
            .value("seqno", &Value::Int(3))
            .blank()
            .list_by_lines(
                "stripes",
                &[
                    Value::str("pv0"),
                    Value::Int(10),
                    Value::str("pv1"),
                    Value::Int(0),
                ],
                2,
            )
            .end()
            .value_with_comment("creation_time", &Value::Int(5), "Tue");
        assert_eq!(
            w.finish(),
            "vg {\nseqno = 3\n\nstripes = [\n\"pv0\", 10,\n\"pv1\", 0\n]\n}\ncreation_time = 5\t# Tue\n"
        );
    }

    fn scalar() -> impl Strategy<Value = Value> {
        prop_oneof![
            any::<i64>().prop_map(Value::Int),
            (-1.0e6f64..1.0e6).prop_map(|x| Value::Float((x * 16.0).round() / 16.0)),
            "\\PC{0,20}".prop_map(Value::Str),
        ]
    }

    fn value() -> impl Strategy<Value = Value> {
        prop_oneof![
            scalar(),
            prop::collection::vec(scalar(), 0..5).prop_map(Value::List)
        ]
    }

    fn key() -> impl Strategy<Value = String> {
        prop_oneof!["[a-zA-Z_][a-zA-Z0-9_+.-]{0,12}", "\\PC{1,8}"]
    }

    fn section() -> impl Strategy<Value = Section> {
        let leaf = prop::collection::vec((key(), value().prop_map(Node::Value)), 0..6)
            .prop_map(|entries| Section { entries });
        leaf.prop_recursive(4, 64, 6, |inner| {
            prop::collection::vec(
                (
                    key(),
                    prop_oneof![value().prop_map(Node::Value), inner.prop_map(Node::Section)],
                ),
                0..6,
            )
            .prop_map(|entries| Section { entries })
        })
    }

    proptest! {
        #[test]
        fn text_round_trips(tree in section()) {
            let text = to_text(&tree);
            prop_assert_eq!(parse(&text).unwrap(), tree, "text:\n{}", text);
        }

        #[test]
        fn arbitrary_input_never_panics(text in "\\PC{0,200}") {
            let _ = parse(&text);
        }
    }
}
