//! Articles and comments as clients write them.

use unicode_normalization::UnicodeNormalization;

use super::text::{self, INVISIBLE, STRAY_MODIFIER};
use super::{field_errors, identity, FieldErrors, Invalid, Patch};

pub const TITLE_MAX: usize = 200;
pub const DESCRIPTION_MAX: usize = 1_000;
pub const ARTICLE_BODY_MAX: usize = 50_000;
pub const COMMENT_BODY_MAX: usize = 10_000;
pub const TAG_MAX: usize = 64;
pub const TAGS_PER_ARTICLE_MAX: usize = 20;

/// A tag as it is stored and looked up: NFC (`café` typed with a
/// combining accent is the same tag), trimmed.
pub fn normalized_tag(value: &str) -> String {
    value.nfc().collect::<String>().trim().to_owned()
}

/// An article's tags: normalized ([`normalized_tag`]), none blank or too
/// long, none with an invisible or control character or a stray mark or
/// selector (refused, not stripped: a stripped tag would not be the one
/// the author typed), no
/// duplicates, sorted, at most [`TAGS_PER_ARTICLE_MAX`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TagList(Vec<String>);

impl TagList {
    /// Every problem of the list at once.
    pub fn parse(values: Vec<String>) -> Result<Self, Invalid> {
        let mut problems = Vec::new();
        let mut tags: Vec<String> = Vec::with_capacity(values.len());
        for value in values {
            let tag = normalized_tag(&value);
            if tag.is_empty() {
                problems.push("can't contain blank tags".to_owned());
            } else if tag.chars().count() > TAG_MAX {
                problems.push(format!("tags are at most {TAG_MAX} characters"));
            } else if tag.chars().any(identity::is_invisible) {
                problems.push(format!("tags {INVISIBLE}"));
            } else if identity::has_stray_modifier(&tag) {
                problems.push(format!("tags {STRAY_MODIFIER}"));
            } else {
                tags.push(tag);
            }
        }
        tags.sort();
        tags.dedup();
        if tags.len() > TAGS_PER_ARTICLE_MAX {
            problems.push(format!("at most {TAGS_PER_ARTICLE_MAX} tags"));
        }
        if problems.is_empty() {
            Ok(Self(tags))
        } else {
            Err(Invalid(problems))
        }
    }

    pub fn as_slice(&self) -> &[String] {
        &self.0
    }
}

/// A new article.
#[derive(Debug)]
pub struct NewArticle {
    pub title: String,
    pub description: String,
    pub body: String,
    pub tags: TagList,
}

impl NewArticle {
    pub fn parse(
        title: Option<String>,
        description: Option<String>,
        body: Option<String>,
        tags: Option<Vec<String>>,
    ) -> Result<Self, FieldErrors> {
        match (
            text::required(title, TITLE_MAX),
            text::required(description, DESCRIPTION_MAX),
            text::required(body, ARTICLE_BODY_MAX),
            TagList::parse(tags.unwrap_or_default()),
        ) {
            (Ok(title), Ok(description), Ok(body), Ok(tags)) => Ok(Self {
                title,
                description,
                body,
                tags,
            }),
            (title, description, body, tags) => Err(field_errors([
                ("title", title.err()),
                ("description", description.err()),
                ("body", body.err()),
                ("tagList", tags.err()),
            ])),
        }
    }
}

/// A change to an article: `None` leaves a field alone; no field may be
/// cleared, and an empty tag list removes every tag.
#[derive(Debug)]
pub struct ArticleChanges {
    pub title: Option<String>,
    pub description: Option<String>,
    pub body: Option<String>,
    pub tags: Option<TagList>,
}

impl ArticleChanges {
    pub fn parse(
        title: Patch<String>,
        description: Patch<String>,
        body: Patch<String>,
        tags: Patch<Vec<String>>,
    ) -> Result<Self, FieldErrors> {
        match (
            title.non_null(|v| text::required(Some(v), TITLE_MAX)),
            description.non_null(|v| text::required(Some(v), DESCRIPTION_MAX)),
            body.non_null(|v| text::required(Some(v), ARTICLE_BODY_MAX)),
            tags.non_null(TagList::parse),
        ) {
            (Ok(title), Ok(description), Ok(body), Ok(tags)) => Ok(Self {
                title,
                description,
                body,
                tags,
            }),
            (title, description, body, tags) => Err(field_errors([
                ("title", title.err()),
                ("description", description.err()),
                ("body", body.err()),
                ("tagList", tags.err()),
            ])),
        }
    }
}

/// A new comment's text.
#[derive(Debug)]
pub struct NewComment {
    pub body: String,
}

impl NewComment {
    pub fn parse(body: Option<String>) -> Result<Self, FieldErrors> {
        text::required(body, COMMENT_BODY_MAX)
            .map(|body| Self { body })
            .map_err(|refusal| field_errors([("body", Some(refusal))]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_trimmed_deduplicated_and_sorted() {
        let tags = TagList::parse(vec![" rust ".into(), "actix".into(), "rust".into()]).unwrap();
        assert_eq!(tags.as_slice(), ["actix", "rust"]);
    }

    #[test]
    fn tags_are_stored_in_nfc() {
        let tags = TagList::parse(vec!["cafe\u{301}".into(), "caf\u{e9}".into()]).unwrap();
        assert_eq!(tags.as_slice(), ["caf\u{e9}"]);
    }

    #[test]
    fn tags_refuse_invisible_and_control_characters() {
        for hostile in [
            "a\nb",
            "bell\u{7}",
            "\u{202E}txt",
            "zero\u{200B}width",
            "x\u{200D}y",
        ] {
            assert_eq!(
                TagList::parse(vec![hostile.into()]),
                Err(Invalid(vec![format!("tags {INVISIBLE}")])),
                "{hostile:?}"
            );
        }
        assert!(TagList::parse(vec!["❤\u{FE0F}".into(), "machine learning".into()]).is_ok());
    }

    #[test]
    fn every_bad_tag_is_reported() {
        let refusal = TagList::parse(vec![" ".into(), "x".repeat(65)]).unwrap_err();
        assert_eq!(
            refusal,
            Invalid(vec![
                "can't contain blank tags".to_owned(),
                "tags are at most 64 characters".to_owned()
            ])
        );
    }
}
