//! The descriptive fields of a media item (alt text, title, description, tags, the entity it
//! belongs to), parsed once from a presign request or a JSON merge patch (RFC 7396) and trusted
//! after. Every refusal names the field.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::domain::ParseError;

/// Longest alt text, in characters.
pub const MAX_ALT: usize = 1000;
/// Longest title, in characters.
pub const MAX_TITLE: usize = 200;
/// Longest description, in characters.
pub const MAX_DESCRIPTION: usize = 5000;
/// Most tags on one media item (after normalising and removing duplicates).
pub const MAX_TAGS: usize = 20;
/// Longest tag, in characters (after trimming).
pub const MAX_TAG: usize = 50;
/// Longest entity id, in characters.
pub const MAX_ENTITY_ID: usize = 128;

/// The fields a merge patch may name; any other field is refused.
pub const FIELDS: [&str; 5] = ["alt", "title", "description", "tags", "entity"];

/// What the app says about a media item. Every field is optional; `tags` may be empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Descriptive {
    /// Alternative text for people who cannot see the image (`""` marks a decorative image).
    pub alt: Option<String>,
    /// A title.
    pub title: Option<String>,
    /// A longer description (may span lines).
    pub description: Option<String>,
    /// Normalised tags ([`Tag`]), first occurrence order kept.
    pub tags: Vec<Tag>,
    /// The thing the media belongs to.
    pub entity: Option<EntityLink>,
}

/// A tag: trimmed, lower-cased, 1-50 characters of Unicode letters, digits, space, `-` or `_`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Tag(String);

impl Tag {
    /// Normalises and checks one tag.
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let t = raw.trim().to_lowercase();
        let n = t.chars().count();
        if n == 0 || n > MAX_TAG {
            return Err(ParseError(format!(
                "a tag is 1-{MAX_TAG} characters after trimming"
            )));
        }
        if let Some(c) = t
            .chars()
            .find(|c| !(c.is_alphanumeric() || matches!(c, ' ' | '-' | '_')))
        {
            return Err(ParseError(format!(
                "a tag holds only letters, digits, space, '-' and '_', not {c:?}"
            )));
        }
        Ok(Self(t))
    }

    /// The tag as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Tag {
    type Error = ParseError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<Tag> for String {
    fn from(t: Tag) -> Self {
        t.0
    }
}

/// A link to the thing a media item belongs to: `{"type": "product", "id": "42"}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntityLink {
    /// `[a-z][a-z0-9_-]{0,31}`.
    #[serde(rename = "type")]
    pub entity_type: String,
    /// 1-128 characters, no control characters.
    pub id: String,
}

impl EntityLink {
    /// Checks both parts.
    pub fn parse(entity_type: &str, id: &str) -> Result<Self, ParseError> {
        Ok(Self {
            entity_type: parse_entity_type(entity_type)?,
            id: parse_entity_id(id)?,
        })
    }
}

/// An entity type: `[a-z][a-z0-9_-]{0,31}`.
pub fn parse_entity_type(s: &str) -> Result<String, ParseError> {
    let mut bytes = s.bytes();
    let first_ok = bytes.next().is_some_and(|b| b.is_ascii_lowercase());
    let rest_ok =
        bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if first_ok && rest_ok && s.len() <= 32 {
        Ok(s.to_owned())
    } else {
        Err(ParseError(
            "type must match [a-z][a-z0-9_-]{0,31}".to_owned(),
        ))
    }
}

/// An entity id: 1-128 characters, no control characters.
pub fn parse_entity_id(s: &str) -> Result<String, ParseError> {
    let n = s.chars().count();
    if n == 0 || n > MAX_ENTITY_ID || s.chars().any(char::is_control) {
        Err(ParseError(format!(
            "id must be 1-{MAX_ENTITY_ID} characters without control characters"
        )))
    } else {
        Ok(s.to_owned())
    }
}

/// Normalises a list of tags: each trimmed and lower-cased, duplicates removed (first occurrence
/// kept), at most [`MAX_TAGS`] left.
pub fn parse_tags<'a>(raw: impl IntoIterator<Item = &'a str>) -> Result<Vec<Tag>, ParseError> {
    let mut tags: Vec<Tag> = Vec::new();
    for (i, t) in raw.into_iter().enumerate() {
        let tag = Tag::parse(t).map_err(|e| ParseError(format!("[{i}]: {e}")))?;
        if !tags.contains(&tag) {
            tags.push(tag);
        }
    }
    if tags.len() > MAX_TAGS {
        return Err(ParseError(format!(
            "{} distinct tags; at most {MAX_TAGS}",
            tags.len()
        )));
    }
    Ok(tags)
}

/// A text field of at most `max` characters. Single-line fields refuse every control character;
/// multi-line ones allow line breaks and tabs.
fn parse_text(value: &str, max: usize, multiline: bool) -> Result<String, ParseError> {
    if value.chars().count() > max {
        return Err(ParseError(format!("at most {max} characters")));
    }
    let allowed = |c: char| multiline && matches!(c, '\n' | '\r' | '\t');
    if value.chars().any(|c| c.is_control() && !allowed(c)) {
        return Err(ParseError("control characters are not allowed".into()));
    }
    Ok(value.to_owned())
}

/// One field of a merge patch: left alone, removed (`null`), or set.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Change<T> {
    /// Not named in the patch.
    #[default]
    Keep,
    /// `null`: the field goes.
    Remove,
    /// A new value.
    Set(T),
}

impl<T> Change<T> {
    fn apply(self, field: &mut Option<T>) {
        match self {
            Self::Keep => {}
            Self::Remove => *field = None,
            Self::Set(v) => *field = Some(v),
        }
    }
}

/// A parsed JSON merge patch of the descriptive fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DescriptivePatch {
    /// `alt`.
    pub alt: Change<String>,
    /// `title`.
    pub title: Change<String>,
    /// `description`.
    pub description: Change<String>,
    /// `tags` (`null` and `[]` both leave none).
    pub tags: Change<Vec<Tag>>,
    /// `entity` (`null` unlinks).
    pub entity: Change<EntityLink>,
}

/// A refused field: its name and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct FieldError {
    /// The field's name as the client wrote it (`tags[3]` for an element).
    pub field: String,
    /// What is wrong.
    pub reason: String,
}

impl FieldError {
    fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl DescriptivePatch {
    /// Parses a merge patch document: a JSON object naming only [`FIELDS`].
    pub fn parse(doc: &Value) -> Result<Self, FieldError> {
        let Some(obj) = doc.as_object() else {
            return Err(FieldError::new(
                "body",
                "a merge patch is a JSON object of the fields to change",
            ));
        };
        if let Some(other) = obj.keys().find(|k| !FIELDS.contains(&k.as_str())) {
            return Err(FieldError::new(
                other.clone(),
                format!(
                    "cannot be changed; the descriptive fields are {}",
                    FIELDS.join(", ")
                ),
            ));
        }
        Ok(Self {
            alt: text_change(obj, "alt", MAX_ALT, false)?,
            title: text_change(obj, "title", MAX_TITLE, false)?,
            description: text_change(obj, "description", MAX_DESCRIPTION, true)?,
            tags: match obj.get("tags") {
                None => Change::Keep,
                Some(Value::Null) => Change::Remove,
                Some(v) => Change::Set(tags_value(v)?),
            },
            entity: match obj.get("entity") {
                None => Change::Keep,
                Some(Value::Null) => Change::Remove,
                Some(v) => Change::Set(entity_value(v)?),
            },
        })
    }

    /// True when the patch names no field.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// The fields after this patch.
    pub fn apply(self, current: &Descriptive) -> Descriptive {
        let mut next = current.clone();
        self.alt.apply(&mut next.alt);
        self.title.apply(&mut next.title);
        self.description.apply(&mut next.description);
        match self.tags {
            Change::Keep => {}
            Change::Remove => next.tags.clear(),
            Change::Set(t) => next.tags = t,
        }
        self.entity.apply(&mut next.entity);
        next
    }
}

impl Descriptive {
    /// The fields of a presign request (each optional; `null` is the same as absent).
    pub fn from_request(doc: &Map<String, Value>) -> Result<Self, FieldError> {
        let set = |c: Change<String>| match c {
            Change::Set(v) => Some(v),
            _ => None,
        };
        Ok(Self {
            alt: set(text_change(doc, "alt", MAX_ALT, false)?),
            title: set(text_change(doc, "title", MAX_TITLE, false)?),
            description: set(text_change(doc, "description", MAX_DESCRIPTION, true)?),
            tags: match doc.get("tags") {
                None | Some(Value::Null) => Vec::new(),
                Some(v) => tags_value(v)?,
            },
            entity: match doc.get("entity") {
                None | Some(Value::Null) => None,
                Some(v) => Some(entity_value(v)?),
            },
        })
    }
}

fn text_change(
    obj: &Map<String, Value>,
    field: &str,
    max: usize,
    multiline: bool,
) -> Result<Change<String>, FieldError> {
    match obj.get(field) {
        None => Ok(Change::Keep),
        Some(Value::Null) => Ok(Change::Remove),
        Some(Value::String(s)) => parse_text(s, max, multiline)
            .map(Change::Set)
            .map_err(|e| FieldError::new(field, e.0)),
        Some(_) => Err(FieldError::new(field, "must be a string or null")),
    }
}

fn tags_value(v: &Value) -> Result<Vec<Tag>, FieldError> {
    let Some(items) = v.as_array() else {
        return Err(FieldError::new(
            "tags",
            "must be an array of strings or null",
        ));
    };
    let mut texts = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        match item.as_str() {
            Some(s) => texts.push(s),
            None => return Err(FieldError::new(format!("tags[{i}]"), "must be a string")),
        }
    }
    parse_tags(texts).map_err(|e| FieldError::new("tags", e.0))
}

fn entity_value(v: &Value) -> Result<EntityLink, FieldError> {
    let Some(obj) = v.as_object() else {
        return Err(FieldError::new(
            "entity",
            "must be an object {\"type\", \"id\"} or null",
        ));
    };
    if let Some(other) = obj.keys().find(|k| !matches!(k.as_str(), "type" | "id")) {
        return Err(FieldError::new(
            format!("entity.{other}"),
            "unknown field; an entity has only type and id",
        ));
    }
    let part = |name: &str| {
        obj.get(name)
            .and_then(Value::as_str)
            .ok_or_else(|| FieldError::new(format!("entity.{name}"), "must be a string"))
    };
    let entity_type =
        parse_entity_type(part("type")?).map_err(|e| FieldError::new("entity.type", e.0))?;
    let id = parse_entity_id(part("id")?).map_err(|e| FieldError::new("entity.id", e.0))?;
    Ok(EntityLink { entity_type, id })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn patch(v: Value) -> Result<DescriptivePatch, FieldError> {
        DescriptivePatch::parse(&v)
    }

    #[test]
    fn tags_are_trimmed_lowercased_and_deduplicated_in_order() {
        let tags = parse_tags(["  Red ", "blue", "RED", "été 2026", "a_b-c"]).unwrap();
        let texts: Vec<&str> = tags.iter().map(Tag::as_str).collect();
        assert_eq!(texts, ["red", "blue", "été 2026", "a_b-c"]);
        // 25 tags that are 20 after removing duplicates are accepted; 21 distinct are not.
        let mut many: Vec<String> = (0..20).map(|i| format!("t{i}")).collect();
        many.extend((0..5).map(|i| format!("T{i}")));
        assert_eq!(
            parse_tags(many.iter().map(String::as_str)).unwrap().len(),
            20
        );
        many.push("t20".into());
        assert!(parse_tags(many.iter().map(String::as_str)).is_err());
        for bad in ["", "   ", "a/b", "a.b", "#tag", "\u{0}x", &"x".repeat(51)] {
            assert!(Tag::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Tag::parse(&format!("  {}  ", "é".repeat(50))).is_ok());
    }

    #[test]
    fn entities_are_checked_part_by_part() {
        assert!(EntityLink::parse("product", "42").is_ok());
        assert!(EntityLink::parse("a", &"x".repeat(128)).is_ok());
        assert!(EntityLink::parse(&format!("a{}", "b".repeat(31)), "1").is_ok());
        for (t, id) in [
            ("Product", "1"),
            ("1abc", "1"),
            ("", "1"),
            ("a.b", "1"),
            (&*format!("a{}", "b".repeat(32)), "1"),
            ("a", ""),
            ("a", "x\ny"),
            ("a", &*"x".repeat(129)),
        ] {
            assert!(EntityLink::parse(t, id).is_err(), "{t:?} {id:?}");
        }
    }

    #[test]
    fn a_merge_patch_sets_removes_and_keeps() {
        let current = Descriptive {
            alt: Some("old".into()),
            title: Some("t".into()),
            description: None,
            tags: parse_tags(["a"]).unwrap(),
            entity: Some(EntityLink::parse("product", "1").unwrap()),
        };
        let p = patch(
            json!({"alt": "new", "title": null, "tags": ["B", "b", " c "],
            "entity": {"type": "order", "id": "7"}}),
        )
        .unwrap();
        let next = p.apply(&current);
        assert_eq!(next.alt.as_deref(), Some("new"));
        assert_eq!(next.title, None);
        assert_eq!(next.description, None);
        assert_eq!(next.tags, parse_tags(["b", "c"]).unwrap());
        assert_eq!(next.entity, Some(EntityLink::parse("order", "7").unwrap()));
        // null removes tags and unlinks; an empty patch changes nothing.
        let cleared = patch(json!({"tags": null, "entity": null}))
            .unwrap()
            .apply(&next);
        assert!(cleared.tags.is_empty() && cleared.entity.is_none());
        assert_eq!(cleared.alt.as_deref(), Some("new"));
        assert!(patch(json!({})).unwrap().is_empty());
        assert_eq!(patch(json!({})).unwrap().apply(&current), current);
        // A decorative image's empty alt text is kept, not removed.
        assert_eq!(
            patch(json!({"alt": ""}))
                .unwrap()
                .apply(&current)
                .alt
                .as_deref(),
            Some("")
        );
    }

    #[test]
    fn refusals_name_the_field() {
        let field = |v: Value| patch(v).map(|_| ()).unwrap_err().field;
        assert_eq!(field(json!({"status": "ready"})), "status");
        assert_eq!(field(json!({"id": "x"})), "id");
        assert_eq!(field(json!({"alt": 5})), "alt");
        assert_eq!(field(json!({"alt": "x".repeat(1001)})), "alt");
        assert_eq!(field(json!({"title": "x".repeat(201)})), "title");
        assert_eq!(field(json!({"title": "a\nb"})), "title");
        assert_eq!(
            field(json!({"description": "x".repeat(5001)})),
            "description"
        );
        assert_eq!(field(json!({"tags": "a"})), "tags");
        assert_eq!(field(json!({"tags": ["a", 1]})), "tags[1]");
        assert_eq!(field(json!({"tags": ["a/b"]})), "tags");
        assert_eq!(field(json!({"entity": "product"})), "entity");
        assert_eq!(field(json!({"entity": {"type": "product"}})), "entity.id");
        assert_eq!(
            field(json!({"entity": {"type": "P", "id": "1"}})),
            "entity.type"
        );
        assert_eq!(
            field(json!({"entity": {"type": "p", "id": "1", "x": 1}})),
            "entity.x"
        );
        assert_eq!(field(json!([1])), "body");
        // Limits count characters, not bytes; multi-line text is a description's.
        assert!(patch(json!({"alt": "é".repeat(1000), "description": "a\nb\tc"})).is_ok());
    }

    #[test]
    fn presign_fields_are_optional_and_null_means_absent() {
        let obj = |v: Value| v.as_object().cloned().unwrap();
        let d = Descriptive::from_request(&obj(json!({"filename": "a.jpg", "alt": null,
            "tags": ["X"], "entity": {"type": "product", "id": "42"}})))
        .unwrap();
        assert_eq!(d.alt, None);
        assert_eq!(d.tags, parse_tags(["x"]).unwrap());
        assert_eq!(d.entity, Some(EntityLink::parse("product", "42").unwrap()));
        assert_eq!(
            Descriptive::from_request(&obj(json!({"title": 1})))
                .unwrap_err()
                .field,
            "title"
        );
    }
}
