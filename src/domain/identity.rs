//! When two names (or emails) are the same account's, and which characters
//! no name or tag may hold. Computed here, in Rust, not by the database:
//! PostgreSQL's `lower()` follows the database's LC_CTYPE, which folds
//! only ASCII under `C`. The keys are stored beside the rows (migration
//! 012) with unique indexes; `db::identity_keys` fills rows written before.

use caseless::Caseless;
use unicode_normalization::UnicodeNormalization;
use unicode_properties::{EmojiStatus, GeneralCategory, UnicodeEmoji, UnicodeGeneralCategory};
use unicode_security::general_security_profile::IdentifierType;
use unicode_security::GeneralSecurityProfile;

/// The version of the rules below. A row whose keys were computed by
/// older rules (or by none: 0) is computed again by the backfill, so raise
/// this whenever a key function changes, the Unicode crates' data included.
pub const IDENTITY_KEYS_VERSION: i64 = 1;

/// Unicode's compatibility caseless form (NFKD of the case fold of the
/// NFKD of the case fold; The Unicode Standard, D146), in NFC: `ＤＥＭＯ`,
/// `Demo` and `demo` have one key, in any database.
pub fn folded(value: &str) -> String {
    value
        .chars()
        .nfd()
        .default_case_fold()
        .nfkd()
        .default_case_fold()
        .nfkc()
        .collect()
}

/// What a name looks like, whatever its case: the Unicode TR39 skeleton
/// (`dеmo` with a Cyrillic `е`, `dem0` and `demo` share one), case
/// folded. The skeleton first, since it tells `I` from `i` (`I` looks like
/// `l`), then the fold, so that every case of a look-alike meets; twice,
/// so that a letter whose other case is the look-alike meets it too.
pub fn skeleton(value: &str) -> String {
    let once = folded(&unicode_security::skeleton(value).collect::<String>());
    folded(&unicode_security::skeleton(&once).collect::<String>())
}

/// A character that shows nothing or changes how the text around it shows:
/// a control (newline, BEL), a format character (right-to-left override,
/// zero-width space and joiner), a line or paragraph separator, a
/// default-ignorable code point (the Hangul fillers, which are letters),
/// or one of the symbols drawn blank (the braille blank, the musical null
/// notehead).
pub fn is_invisible(c: char) -> bool {
    if matches!(c, '\u{2800}' | '\u{1D159}') {
        return true;
    }
    matches!(
        c.general_category(),
        GeneralCategory::Control
            | GeneralCategory::Format
            | GeneralCategory::LineSeparator
            | GeneralCategory::ParagraphSeparator
            | GeneralCategory::PrivateUse
            | GeneralCategory::Surrogate
            | GeneralCategory::Unassigned
    ) || (c.identifier_type() == Some(IdentifierType::Default_Ignorable)
        && !is_variation_selector(c))
}

/// Whether `value` holds a variation selector or a combining mark that no
/// character of it takes, each a way to write a text that looks like
/// another: a selector anywhere but the emoji one after an emoji drawn as
/// text by default (`❤️`, the keycap `1️⃣`); a mark at the start, after an
/// ASCII character (NFC has composed every accent a Latin letter takes),
/// or after two others.
pub fn has_stray_modifier(value: &str) -> bool {
    let chars: Vec<char> = value.chars().collect();
    let mut marks_in_a_row = 0;
    for (i, &c) in chars.iter().enumerate() {
        let before = i.checked_sub(1).map(|j| chars[j]);
        if is_variation_selector(c) {
            let keycap = chars.get(i + 1) == Some(&'\u{20E3}');
            if !(c == '\u{FE0F}' && before.is_some_and(|b| takes_emoji_selector(b, keycap))) {
                return true;
            }
            marks_in_a_row = 0;
        } else if is_mark(c) {
            marks_in_a_row += 1;
            if marks_in_a_row > 2 || before.is_none_or(|b| b.is_ascii()) {
                return true;
            }
        } else {
            marks_in_a_row = 0;
        }
    }
    false
}

/// Whether the emoji selector changes how `c` shows: `c` is an emoji
/// drawn as text by default (`❤`, `☝`), or a keycap's digit, `#` or `*`.
/// After an emoji drawn as one anyway (`😀`) it only makes a second
/// spelling of the same picture.
fn takes_emoji_selector(c: char, keycap: bool) -> bool {
    match c.emoji_status() {
        EmojiStatus::EmojiOther | EmojiStatus::EmojiModifierBase => true,
        EmojiStatus::EmojiOtherAndEmojiComponent => keycap,
        _ => false,
    }
}

/// Whether `value` shows anything: a character that is not white space,
/// invisible, a mark or a selector.
pub fn shows_something(value: &str) -> bool {
    value
        .chars()
        .any(|c| !(c.is_whitespace() || is_invisible(c) || is_mark(c) || is_variation_selector(c)))
}

fn is_mark(c: char) -> bool {
    matches!(
        c.general_category(),
        GeneralCategory::NonspacingMark
            | GeneralCategory::SpacingMark
            | GeneralCategory::EnclosingMark
    )
}

/// Emoji and text presentation selectors: default-ignorable, yet part of
/// how an emoji such as `❤️` is written.
fn is_variation_selector(c: char) -> bool {
    matches!(c, '\u{FE00}'..='\u{FE0F}' | '\u{E0100}'..='\u{E01EF}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn width_and_case_fold_to_one_key() {
        assert_eq!(folded("ＤＥＭＯ"), "demo");
        assert_eq!(folded("Demo"), "demo");
        assert_eq!(folded("Émile"), folded("émile"));
        assert_eq!(folded("E\u{301}mile"), folded("émile"));
        assert_eq!(folded("ÖZIL@x.org"), "özil@x.org");
        assert_eq!(folded("Straße"), folded("STRASSE"));
        assert_ne!(
            folded("dеmo"),
            folded("demo"),
            "Cyrillic е is its own letter"
        );
    }

    #[test]
    fn the_keys_are_stable_when_computed_again() {
        for name in ["ＤＥＭＯ", "İstanbul", "ǅemo", "ﬁle", "Σίσυφος", "dеmo"] {
            assert_eq!(folded(&folded(name)), folded(name), "{name}");
        }
    }

    #[test]
    fn look_alikes_share_a_skeleton() {
        let demo = skeleton("demo");
        for alike in ["dеmo", "DЕMO", "dem0", "ｄｅｍｏ", "Demo"] {
            assert_eq!(skeleton(alike), demo, "{alike}");
        }
        assert_eq!(skeleton("paypaI"), skeleton("paypal"));
        assert_ne!(skeleton("alice"), skeleton("bob"));
    }

    #[test]
    fn modifiers_must_belong_to_the_character_before_them() {
        for fine in ["❤️", "☝️", "1️⃣", "😀", "café", "नमस्ते", "ไม่", "a-b"]
        {
            assert!(!has_stray_modifier(fine), "{fine:?}");
        }
        for stray in [
            "a\u{FE0F}",
            "1\u{FE0F}",
            "\u{FE0F}",
            "\u{301}a",
            "a\u{336}",
            "न\u{94d}\u{94d}\u{94d}\u{94d}",
            "é\u{301}\u{301}\u{301}",
            "😀\u{FE0F}",
            "😀\u{FE0E}",
            "❤\u{FE0E}",
        ] {
            assert!(has_stray_modifier(stray), "{stray:?}");
        }
    }

    #[test]
    fn text_of_selectors_marks_and_invisibles_shows_nothing() {
        assert!(shows_something("a\u{200B}"));
        assert!(shows_something("❤️"));
        for nothing in [
            "\u{200B}",
            "\u{3164}\u{3164}",
            "\u{301}\u{301}",
            "\u{FE0F} ",
            "\u{2800}\u{2800}",
            "\u{1D159}",
        ] {
            assert!(!shows_something(nothing), "{nothing:?}");
        }
    }

    #[test]
    fn invisible_characters_are_named() {
        for c in [
            '\u{3164}', '\u{FFA0}', '\u{115F}', '\u{200B}', '\u{200D}', '\u{202E}', '\u{7}', '\n',
            '\u{2028}', '\u{AD}', '\u{FEFF}',
        ] {
            assert!(is_invisible(c), "U+{:04X}", c as u32);
        }
        for c in ['a', 'é', 'ж', '日', '1', '-', ' ', '\u{FE0F}', '❤'] {
            assert!(!is_invisible(c), "U+{:04X}", c as u32);
        }
    }
}
