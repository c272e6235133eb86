//! Accounts: registration, login and profile changes.

mod fields;

pub use fields::{Email, Password, Username, BIO_MAX, EMAIL_MAX, URL_MAX, USERNAME_MAX};

use fields::{has_space_or_invisible, nfc};

use super::text::{self, BLANK, INVISIBLE};
use super::{field_errors, Change, FieldErrors, Invalid, Patch};

/// A registration.
#[derive(Debug)]
pub struct NewUser {
    pub username: Username,
    pub email: Email,
    pub password: Password,
}

impl NewUser {
    pub fn parse(
        username: Option<String>,
        email: Option<String>,
        password: Option<String>,
    ) -> Result<Self, FieldErrors> {
        match (
            Username::parse(username),
            Email::parse(email),
            Password::parse(password),
        ) {
            (Ok(username), Ok(email), Ok(password)) => Ok(Self {
                username,
                email,
                password,
            }),
            (username, email, password) => Err(field_errors([
                ("username", username.err()),
                ("email", email.err()),
                ("password", password.err()),
            ])),
        }
    }
}

/// A login attempt. Only presence is checked: the rules for new passwords
/// must not lock out an account made under older ones.
pub struct Credentials {
    pub email: String,
    pub password: String,
}

impl Credentials {
    pub fn parse(email: Option<String>, password: Option<String>) -> Result<Self, FieldErrors> {
        let email = text::required(nfc(email), EMAIL_MAX);
        let password = password
            .filter(|p| !p.is_empty())
            .ok_or_else(|| Invalid::from(BLANK));
        match (email, password) {
            (Ok(email), Ok(password)) => Ok(Self { email, password }),
            (email, password) => Err(field_errors([
                ("email", email.err()),
                ("password", password.err()),
            ])),
        }
    }
}

/// A profile image: an absolute http or https URL (a frontend puts it in
/// an `<img src>` or a link: never `javascript:` or `data:`), or nothing.
fn image_url(value: String) -> Result<Option<String>, Invalid> {
    let Some(value) = text::optional(Some(value), URL_MAX)? else {
        return Ok(None);
    };
    if has_space_or_invisible(&value) {
        return Err(INVISIBLE.into());
    }
    match url::Url::parse(&value) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {
            Ok(Some(value))
        }
        _ => Err("must be an http or https URL".into()),
    }
}

/// A change to one's account: `None` leaves a field alone; `bio` and
/// `image` may also be cleared, the others may not.
#[derive(Debug)]
pub struct UserChanges {
    pub username: Option<Username>,
    pub email: Option<Email>,
    pub password: Option<Password>,
    pub bio: Change<String>,
    pub image: Change<String>,
}

impl UserChanges {
    pub fn parse(
        username: Patch<String>,
        email: Patch<String>,
        password: Patch<String>,
        bio: Patch<String>,
        image: Patch<String>,
    ) -> Result<Self, FieldErrors> {
        match (
            username.non_null(|v| Username::parse(Some(v))),
            email.non_null(|v| Email::parse(Some(v))),
            password.non_null(|v| Password::parse(Some(v))),
            bio.nullable(|v| text::optional(Some(v), BIO_MAX)),
            image.nullable(image_url),
        ) {
            (Ok(username), Ok(email), Ok(password), Ok(bio), Ok(image)) => Ok(Self {
                username,
                email,
                password,
                bio,
                image,
            }),
            (username, email, password, bio, image) => Err(field_errors([
                ("username", username.err()),
                ("email", email.err()),
                ("password", password.err()),
                ("bio", bio.err()),
                ("image", image.err()),
            ])),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_refuse_spaces_and_slashes_but_take_unicode_letters() {
        assert_eq!(
            Username::parse(Some("jörg_1".into())).map(Username::into_inner),
            Ok("jörg_1".to_owned())
        );
        assert!(Username::parse(Some("a b".into())).is_err());
        assert!(Username::parse(Some("a/b".into())).is_err());
        for hostile in [".", "..", "...", "-", "_."] {
            assert!(Username::parse(Some(hostile.into())).is_err(), "{hostile}");
        }
        assert_eq!(
            Username::parse(Some("Zoe\u{301}".into())).map(Username::into_inner),
            Ok("Zo\u{e9}".to_owned()),
            "NFC"
        );
        assert!(Username::parse(Some("x".repeat(65))).is_err());
    }

    #[test]
    fn usernames_and_emails_refuse_invisible_characters() {
        for hostile in [
            "\u{3164}",
            "\u{FFA0}\u{FFA0}",
            "demo\u{3164}",
            "de\u{200B}mo",
        ] {
            assert_eq!(
                Username::parse(Some(hostile.into())),
                Err(INVISIBLE.into()),
                "{hostile:?}"
            );
        }
        assert!(Email::parse(Some("demo\u{200B}@x.org".into())).is_err());
        assert!(Email::parse(Some("demo@x\u{202E}.org".into())).is_err());
    }

    #[test]
    fn an_image_is_an_http_or_https_url() {
        assert_eq!(
            image_url("https://example.org/a.png".into()),
            Ok(Some("https://example.org/a.png".into()))
        );
        assert_eq!(image_url("".into()), Ok(None));
        for hostile in [
            "javascript:alert(1)",
            "JavaScript:alert(1)",
            "data:image/png;base64,AAAA",
            "//example.org/a.png",
            "photo.jpg",
            "https://exam\u{200B}ple.org/a.png",
            "https://example.org/\u{202E}gnp.exe",
            "https://example.org/a\nb.png",
        ] {
            assert!(image_url(hostile.into()).is_err(), "{hostile}");
        }
    }

    #[test]
    fn a_registration_reports_every_bad_field_at_once() {
        let errors = NewUser::parse(Some("a b".into()), None, Some("short".into())).unwrap_err();
        assert_eq!(
            serde_json::to_value(&errors).unwrap(),
            serde_json::json!({
                "username": ["may contain only letters, digits, '_', '-' and '.'"],
                "email": ["can't be blank"],
                "password": ["is too short (minimum is 8 characters)"]
            })
        );
    }
}
