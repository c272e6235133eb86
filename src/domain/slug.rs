//! Slugs: the title in lowercase ASCII words, and a random suffix so that
//! equal titles get distinct slugs without a lookup.

use std::fmt;

const MAX_WORDS_LENGTH: usize = 80;

/// A new article's slug.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slug(String);

impl Slug {
    pub fn for_title(title: &str) -> Result<Self, getrandom::Error> {
        let mut suffix = [0u8; 4];
        getrandom::fill(&mut suffix)?;
        let suffix: String = suffix.iter().map(|b| format!("{b:02x}")).collect();
        Ok(Self(format!("{}-{suffix}", words(title))))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

impl fmt::Display for Slug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn words(title: &str) -> String {
    let mut slug = String::with_capacity(title.len());
    for c in title.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
        if slug.len() >= MAX_WORDS_LENGTH {
            break;
        }
    }
    let slug = slug.trim_end_matches('-');
    if slug.is_empty() {
        "article".to_owned()
    } else {
        slug.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_lowercase_words_with_a_random_suffix() {
        let a = Slug::for_title("Hello, World! 2026").unwrap().0;
        let b = Slug::for_title("Hello, World! 2026").unwrap().0;
        assert!(a.starts_with("hello-world-2026-"), "{a}");
        assert_eq!(a.len(), "hello-world-2026-".len() + 8);
        assert_ne!(a, b);
        assert!(Slug::for_title("日本語").unwrap().0.starts_with("article-"));
        assert!(words(&"long title ".repeat(40)).len() <= MAX_WORDS_LENGTH);
    }
}
