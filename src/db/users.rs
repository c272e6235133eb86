//! Accounts.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::Text;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::domain::identity::{self, IDENTITY_KEYS_VERSION};
use crate::domain::Change;
use crate::schema::users;

diesel::define_sql_function!(fn lower(x: Text) -> Text);

/// A row of `users`.
#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = users, check_for_backend(diesel::pg::Pg))]
pub struct User {
    pub id: i64,
    pub username: String,
    pub email: String,
    pub password_hash: String,
    pub bio: Option<String>,
    pub image: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// An account to insert; [`insert`] adds its identity keys.
#[derive(Debug)]
pub struct NewUserRow<'a> {
    pub username: &'a str,
    pub email: &'a str,
    pub password_hash: &'a str,
}

/// The keys that decide whether two accounts would be one (migration 012),
/// as this server's rules compute them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityKeys {
    pub username_folded: String,
    pub username_skeleton: String,
    pub email_folded: String,
}

impl IdentityKeys {
    pub fn of(username: &str, email: &str) -> Self {
        Self {
            username_folded: identity::folded(username),
            username_skeleton: identity::skeleton(username),
            email_folded: identity::folded(email),
        }
    }
}

#[derive(Insertable)]
#[diesel(table_name = users)]
struct UserRow<'a> {
    username: &'a str,
    email: &'a str,
    password_hash: &'a str,
    username_folded: &'a str,
    username_skeleton: &'a str,
    email_folded: &'a str,
    identity_keys_version: i64,
}

/// A partial update: `None` (or `Change::Keep`) leaves a column alone.
#[derive(Debug, Default)]
pub struct UserChangeset {
    pub username: Option<String>,
    pub email: Option<String>,
    pub password_hash: Option<String>,
    pub bio: Change<String>,
    pub image: Change<String>,
}

impl UserChangeset {
    pub fn is_empty(&self) -> bool {
        self.username.is_none()
            && self.email.is_none()
            && self.password_hash.is_none()
            && self.bio.is_keep()
            && self.image.is_keep()
    }

    /// Diesel's form of the update: `None` skips a column, and for the
    /// nullable ones `Some(None)` sets NULL. A new username or email comes
    /// with its keys.
    fn changeset(&self) -> Changeset<'_> {
        fn nullable(change: &Change<String>) -> Option<Option<&str>> {
            match change {
                Change::Keep => None,
                Change::Clear => Some(None),
                Change::Set(value) => Some(Some(value)),
            }
        }
        Changeset {
            username: self.username.as_deref(),
            username_folded: self.username.as_deref().map(identity::folded),
            username_skeleton: self.username.as_deref().map(identity::skeleton),
            email: self.email.as_deref(),
            email_folded: self.email.as_deref().map(identity::folded),
            password_hash: self.password_hash.as_deref(),
            bio: nullable(&self.bio),
            image: nullable(&self.image),
        }
    }
}

#[derive(AsChangeset)]
#[diesel(table_name = users)]
struct Changeset<'a> {
    username: Option<&'a str>,
    username_folded: Option<String>,
    username_skeleton: Option<String>,
    email: Option<&'a str>,
    email_folded: Option<String>,
    password_hash: Option<&'a str>,
    bio: Option<Option<&'a str>>,
    image: Option<Option<&'a str>>,
}

/// The field a failed [`insert`] or [`update`] found taken by another
/// account, if that is why it failed.
pub fn taken_field(error: &diesel::result::Error) -> Option<&'static str> {
    match super::violated_unique_constraint(error)? {
        "users_username_key"
        | "users_username_lower_key"
        | "users_username_folded_key"
        | "users_username_skeleton_key" => Some("username"),
        "users_email_lower_key" | "users_email_folded_key" => Some("email"),
        _ => None,
    }
}

/// Which of `username` and `email` another account already has, if any,
/// by their keys ([`IdentityKeys`]): asked before a registration pays for
/// its password hash. (The unique indexes stay the rule: [`insert`] still
/// meets them in a race.)
pub async fn taken_by_another(
    conn: &mut AsyncPgConnection,
    username: &str,
    email: &str,
) -> QueryResult<Option<&'static str>> {
    let keys = IdentityKeys::of(username, email);
    let found: Option<(Option<String>, Option<String>)> = users::table
        .filter(
            users::username_folded
                .eq(&keys.username_folded)
                .or(users::username_skeleton.eq(&keys.username_skeleton))
                .or(users::email_folded.eq(&keys.email_folded)),
        )
        .select((users::username_folded, users::username_skeleton))
        .first(conn)
        .await
        .optional()?;
    Ok(found.map(|(folded, skeleton)| {
        if folded.as_ref() == Some(&keys.username_folded)
            || skeleton.as_ref() == Some(&keys.username_skeleton)
        {
            "username"
        } else {
            "email"
        }
    }))
}

/// Inserts an account with its keys; a taken username or email is a
/// unique violation ([`taken_field`] says which).
pub async fn insert(conn: &mut AsyncPgConnection, new: &NewUserRow<'_>) -> QueryResult<User> {
    let keys = IdentityKeys::of(new.username, new.email);
    diesel::insert_into(users::table)
        .values(UserRow {
            username: new.username,
            email: new.email,
            password_hash: new.password_hash,
            username_folded: &keys.username_folded,
            username_skeleton: &keys.username_skeleton,
            email_folded: &keys.email_folded,
            identity_keys_version: IDENTITY_KEYS_VERSION,
        })
        .returning(User::as_returning())
        .get_result(conn)
        .await
}

/// The account with this email, whatever its case, as uniqueness decides
/// it (its folded key, which the login throttle keys by too). An account
/// without a key (written by an older server since this boot, or one of
/// two that older rules let differ only in case) is found by `lower()`, as
/// before; an exact match first.
pub async fn find_by_email(conn: &mut AsyncPgConnection, email: &str) -> QueryResult<Option<User>> {
    let folded = identity::folded(email);
    users::table
        .filter(
            users::email_folded.eq(&folded).or(users::email_folded
                .is_null()
                .and(lower(users::email).eq(lower(email)))),
        )
        .order((
            users::email.eq(email).desc(),
            users::email_folded.is_not_distinct_from(&folded).desc(),
            users::id,
        ))
        .select(User::as_select())
        .first(conn)
        .await
        .optional()
}

/// The account of this name, as uniqueness decides it: `DEMO` and `ｄｅｍｏ`
/// find `demo` (the folded key); an exact match first, for an account no
/// server of these rules has keyed yet, or that older rules let share its
/// key with another.
pub async fn find_by_username(
    conn: &mut AsyncPgConnection,
    username: &str,
) -> QueryResult<Option<User>> {
    users::table
        .filter(
            users::username
                .eq(username)
                .or(users::username_folded.eq(identity::folded(username))),
        )
        .order((users::username.eq(username).desc(), users::id))
        .select(User::as_select())
        .first(conn)
        .await
        .optional()
}

/// Locks the account `id`'s row until the transaction ends (FOR NO KEY
/// UPDATE: account changes wait for each other, while the references
/// other writes take to the row, FOR KEY SHARE, do not); false when it is
/// gone. What a change to the account itself locks first, before its
/// session (`auth::AuthUser::write_account`), so that two changes racing
/// (the owner and a thief changing the password) take their locks in one
/// order.
pub async fn lock_for_change(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<bool> {
    users::table
        .find(id)
        .select(users::id)
        .for_no_key_update()
        .first::<i64>(conn)
        .await
        .optional()
        .map(|found| found.is_some())
}

/// Applies `changes` to the account `id` and returns it as stored.
pub async fn update(
    conn: &mut AsyncPgConnection,
    id: i64,
    changes: &UserChangeset,
) -> QueryResult<User> {
    if changes.is_empty() {
        return users::table
            .find(id)
            .select(User::as_select())
            .get_result(conn)
            .await;
    }
    diesel::update(users::table.find(id))
        .set(changes.changeset())
        .returning(User::as_returning())
        .get_result(conn)
        .await
}
