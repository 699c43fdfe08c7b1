//! Field paths and source locations.
//!
//! - [`deserialize`] runs `serde-saphyr` under `serde_path_to_error` and turns its error into a
//!   location, a field path and a message.
//! - [`locate`] finds the location of a field path in a document, for errors found after
//!   deserialising. It reads the document into a tree of [`serde_saphyr::Spanned`] nodes.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeOwned, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_saphyr::{Error as YamlError, MessageFormatter, Spanned, UserMessageFormatter};

/// The field named for errors that concern the whole document.
pub(crate) const DOCUMENT: &str = "<document>";

/// A 1-based line and column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Loc {
    pub line: usize,
    pub column: usize,
}

impl Loc {
    pub const START: Loc = Loc { line: 1, column: 1 };

    fn from_yaml(l: serde_saphyr::Location) -> Option<Loc> {
        let line = usize::try_from(l.line()).ok()?;
        let column = usize::try_from(l.column()).ok()?;
        (line > 0).then_some(Loc {
            line,
            column: column.max(1),
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Seg {
    Key(String),
    Index(usize),
}

/// A field path: `routes[2].via`. The empty path is the document.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct FieldPath(Vec<Seg>);

impl FieldPath {
    pub fn root() -> Self {
        FieldPath(Vec::new())
    }
    pub fn key(mut self, k: &str) -> Self {
        self.0.push(Seg::Key(k.to_string()));
        self
    }
    pub fn index(mut self, i: usize) -> Self {
        self.0.push(Seg::Index(i));
        self
    }

    fn from_p2e(p: &serde_path_to_error::Path) -> Self {
        use serde_path_to_error::Segment;
        let mut out = FieldPath::root();
        for seg in p.iter() {
            match seg {
                Segment::Seq { index } => out.0.push(Seg::Index(*index)),
                Segment::Map { key } => out.0.push(Seg::Key(key.clone())),
                Segment::Enum { variant } => out.0.push(Seg::Key(variant.clone())),
                Segment::Unknown => {}
            }
        }
        out
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str(DOCUMENT);
        }
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Key(k) if i == 0 => write!(f, "{}", one_line(k))?,
                Seg::Key(k) => write!(f, ".{}", one_line(k))?,
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// An error raised while deserialising.
pub(crate) struct DeError {
    pub at: Loc,
    pub field: String,
    pub message: String,
}

fn options() -> serde_saphyr::Options {
    let mut budget = serde_saphyr::Budget::default();
    // A configuration is one small document; keep hostile input cheap.
    budget.max_depth = 32;
    budget.max_events = 100_000;
    budget.max_nodes = 50_000;
    budget.max_aliases = 1_000;
    budget.max_anchors = 1_000;
    budget.max_total_scalar_bytes = super::MAX_CONFIG_BYTES;
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    options.alias_limits.max_total_replayed_events = 100_000;
    options.with_snippet = false;
    options
}

/// Control characters would garble a one-line diagnostic.
fn one_line(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect()
}

/// Deserialises `text` as `T`, with the field path and location of any error.
pub(crate) fn deserialize<T: DeserializeOwned>(text: &str) -> Result<T, DeError> {
    let mut path = None;
    let result = serde_saphyr::with_deserializer_from_str_with_options(text, options(), |de| {
        serde_path_to_error::deserialize::<_, T>(de).map_err(|e| {
            path = Some(FieldPath::from_p2e(e.path()));
            e.into_inner()
        })
    });
    let err = match result {
        Ok(v) => return Ok(v),
        Err(e) => e,
    };
    let mut path = path.unwrap_or_default();
    let mut at = err.location().and_then(Loc::from_yaml);
    // The message of the original error, without location suffixes or snippets.
    let mut inner = &err;
    while let YamlError::WithSnippet { error, .. } | YamlError::AliasError { error, .. } = inner {
        inner = error;
    }
    let mut message = one_line(&UserMessageFormatter.format_message(inner));
    if matches!(inner, YamlError::Eof { .. }) && path == FieldPath::root() {
        message = "the document is empty: expected a mapping with `node` and `ports`".into();
    } else if let YamlError::DuplicateMappingKey { key: Some(k), .. } = inner {
        path = path.key(k);
        message = format!("duplicate key `{k}`");
    } else if matches!(
        inner,
        YamlError::SerdeInvalidType { .. }
            | YamlError::SerdeInvalidValue { .. }
            | YamlError::SerdeInvalidLength { .. }
            | YamlError::SerdeUnknownVariant { .. }
    ) {
        // serde-saphyr places these at the mapping key when the value is a mapping's;
        // point at the value itself.
        if let Some((value_at, true)) = try_locate(text, &path) {
            at = Some(value_at);
        }
    } else if let Some(name) = missing_field(&message) {
        // Point at the mapping that lacks the field rather than at its last key.
        if let Some(map_at) = try_locate(text, &path).filter(|(_, exact)| *exact) {
            at = Some(map_at.0);
        }
        message = format!("missing required field `{name}`");
        path = path.key(&name);
    }
    Err(DeError {
        at: at.unwrap_or(Loc::START),
        field: path.to_string(),
        message,
    })
}

/// `missing field `x`` → `x`.
fn missing_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("missing field `")?;
    let name = rest.strip_suffix('`')?;
    Some(name.to_string())
}

/// The location of the first of `paths` present in `text`; when none is, the nearest present
/// ancestor of the first. Returns the path chosen as well.
pub(crate) fn locate_any(text: &str, paths: &[FieldPath]) -> (Loc, FieldPath) {
    let Some(tree) = tree(text) else {
        return (Loc::START, paths.first().cloned().unwrap_or_default());
    };
    for p in paths {
        let (at, exact) = tree.find(p);
        if exact {
            return (at, p.clone());
        }
    }
    match paths.first() {
        Some(p) => (tree.find(p).0, p.clone()),
        None => (tree.at, FieldPath::root()),
    }
}

/// The location of `path` in `text` (of its nearest present ancestor if it is absent).
#[cfg(test)]
pub(crate) fn locate(text: &str, path: &FieldPath) -> Loc {
    locate_any(text, std::slice::from_ref(path)).0
}

fn try_locate(text: &str, path: &FieldPath) -> Option<(Loc, bool)> {
    tree(text).map(|t| t.find(path))
}

fn tree(text: &str) -> Option<LocNode> {
    serde_saphyr::from_str_with_options::<LocNode>(text, options()).ok()
}

/// A YAML node with its location.
struct LocNode {
    at: Loc,
    kids: Kids,
}

enum Kids {
    Leaf,
    Map(Vec<(String, LocNode)>),
    Seq(Vec<LocNode>),
}

impl LocNode {
    /// The node at `path`, or its nearest ancestor (`false`).
    fn find(&self, path: &FieldPath) -> (Loc, bool) {
        let mut node = self;
        for seg in &path.0 {
            let next = match (seg, &node.kids) {
                (Seg::Key(k), Kids::Map(entries)) => entries
                    .iter()
                    .rev()
                    .find(|(name, _)| name == k)
                    .map(|e| &e.1),
                (Seg::Index(i), Kids::Seq(items)) => items.get(*i),
                _ => None,
            };
            match next {
                Some(n) => node = n,
                None => return (node.at, false),
            }
        }
        (node.at, true)
    }
}

impl<'de> Deserialize<'de> for LocNode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Spanned::<Kids>::deserialize(d)?;
        Ok(LocNode {
            at: Loc::from_yaml(s.referenced)
                .or_else(|| Loc::from_yaml(s.defined))
                .unwrap_or(Loc::START),
            kids: s.value,
        })
    }
}

impl<'de> Deserialize<'de> for Kids {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(KidsVisitor)
    }
}

struct KidsVisitor;

macro_rules! leaf {
    ($($f:ident: $t:ty),*) => {
        $(fn $f<E: de::Error>(self, _: $t) -> Result<Kids, E> { Ok(Kids::Leaf) })*
    };
}

impl<'de> Visitor<'de> for KidsVisitor {
    type Value = Kids;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML node")
    }
    leaf!(visit_bool: bool, visit_i64: i64, visit_u64: u64, visit_i128: i128,
          visit_u128: u128, visit_f64: f64, visit_str: &str, visit_bytes: &[u8]);
    fn visit_unit<E: de::Error>(self) -> Result<Kids, E> {
        Ok(Kids::Leaf)
    }
    fn visit_none<E: de::Error>(self) -> Result<Kids, E> {
        Ok(Kids::Leaf)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Kids, D::Error> {
        Kids::deserialize(d)
    }
    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Kids, D::Error> {
        Kids::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Kids, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<LocNode>()? {
            items.push(item);
        }
        Ok(Kids::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Kids, A::Error> {
        let mut entries = Vec::new();
        while let Some(KeyText(k)) = map.next_key::<KeyText>()? {
            let v = map.next_value::<LocNode>()?;
            entries.push((k.into_owned(), v));
        }
        Ok(Kids::Map(entries))
    }
}

/// A mapping key as text; keys that are collections become `?`.
struct KeyText(Cow<'static, str>);

impl<'de> Deserialize<'de> for KeyText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(KeyVisitor)
    }
}

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = KeyText;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a mapping key")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<KeyText, E> {
        Ok(KeyText(Cow::Owned(v.to_string())))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<KeyText, E> {
        Ok(KeyText(Cow::Owned(v.to_string())))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<KeyText, E> {
        Ok(KeyText(Cow::Owned(v.to_string())))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<KeyText, E> {
        Ok(KeyText(Cow::Owned(v.to_string())))
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<KeyText, E> {
        Ok(KeyText(Cow::Owned(v.to_string())))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<KeyText, E> {
        Ok(KeyText(Cow::Owned(v.to_string())))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<KeyText, E> {
        Ok(KeyText(Cow::Owned(v.to_string())))
    }
    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<KeyText, E> {
        Ok(KeyText(Cow::Borrowed("?")))
    }
    fn visit_unit<E: de::Error>(self) -> Result<KeyText, E> {
        Ok(KeyText(Cow::Borrowed("~")))
    }
    fn visit_none<E: de::Error>(self) -> Result<KeyText, E> {
        Ok(KeyText(Cow::Borrowed("~")))
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<KeyText, D::Error> {
        KeyText::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<KeyText, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(KeyText(Cow::Borrowed("?")))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<KeyText, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(KeyText(Cow::Borrowed("?")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_display() {
        assert_eq!(FieldPath::root().to_string(), DOCUMENT);
        let p = FieldPath::root().key("routes").index(2).key("via");
        assert_eq!(p.to_string(), "routes[2].via");
        let p = FieldPath::root().key("workers").key("cores").index(0);
        assert_eq!(p.to_string(), "workers.cores[0]");
    }

    #[test]
    fn locate_values_and_ancestors() {
        let text = "\
# comment
node:
  name: a
ports:
  - name: x
    addresses: [10.0.0.1/24, 10.0.1.1/24]
  - name: y
routes: []
";
        let p = |s: &[&str]| {
            s.iter()
                .fold(FieldPath::root(), |p, seg| match seg.parse() {
                    Ok(i) => p.index(i),
                    Err(_) => p.key(seg),
                })
        };
        assert_eq!(
            locate(text, &p(&["node", "name"])),
            Loc { line: 3, column: 9 }
        );
        assert_eq!(
            locate(text, &p(&["ports", "0", "addresses", "1"])),
            Loc {
                line: 6,
                column: 30
            }
        );
        assert_eq!(
            locate(text, &p(&["ports", "1", "name"])),
            Loc {
                line: 7,
                column: 11
            }
        );
        // Absent: the nearest ancestor (the second port's mapping).
        assert_eq!(
            locate(text, &p(&["ports", "1", "mtu"])),
            Loc { line: 7, column: 5 }
        );
        assert_eq!(locate(text, &p(&["routes"])), Loc { line: 8, column: 9 });
        // Not YAML at all: the start.
        assert_eq!(locate("[", &p(&["x"])), Loc::START);
    }
}
