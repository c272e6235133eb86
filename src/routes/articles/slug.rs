//! Slugs: the title in lowercase ASCII words, and a random suffix so that
//! equal titles get distinct slugs without a lookup.

use crate::error::{AppError, AppResult};

const MAX_WORDS_LENGTH: usize = 80;

pub fn for_title(title: &str) -> AppResult<String> {
    let mut suffix = [0u8; 4];
    getrandom::fill(&mut suffix).map_err(|e| AppError::Internal(e.to_string()))?;
    let suffix: String = suffix.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("{}-{suffix}", words(title)))
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
        let a = for_title("Hello, World! 2026").unwrap();
        let b = for_title("Hello, World! 2026").unwrap();
        assert!(a.starts_with("hello-world-2026-"), "{a}");
        assert_eq!(a.len(), "hello-world-2026-".len() + 8);
        assert_ne!(a, b);
        assert!(for_title("日本語").unwrap().starts_with("article-"));
        assert!(words(&"long title ".repeat(40)).len() <= MAX_WORDS_LENGTH);
    }
}
