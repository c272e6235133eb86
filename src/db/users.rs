//! Accounts.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::Text;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

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

#[derive(Debug, Insertable)]
#[diesel(table_name = users)]
pub struct NewUser<'a> {
    pub username: &'a str,
    pub email: &'a str,
    pub password_hash: &'a str,
}

/// A partial update: `None` (or `Change::Keep`) leaves a column alone.
#[derive(Debug, Default)]
pub struct UserChanges {
    pub username: Option<String>,
    pub email: Option<String>,
    pub password_hash: Option<String>,
    pub bio: Change<String>,
    pub image: Change<String>,
}

impl UserChanges {
    pub fn is_empty(&self) -> bool {
        self.username.is_none()
            && self.email.is_none()
            && self.password_hash.is_none()
            && self.bio.is_keep()
            && self.image.is_keep()
    }

    /// Diesel's form of the update: `None` skips a column, and for the
    /// nullable ones `Some(None)` sets NULL.
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
            email: self.email.as_deref(),
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
    email: Option<&'a str>,
    password_hash: Option<&'a str>,
    bio: Option<Option<&'a str>>,
    image: Option<Option<&'a str>>,
}

/// The field a failed [`insert`] or [`update`] found taken by another
/// account, if that is why it failed.
pub fn taken_field(error: &diesel::result::Error) -> Option<&'static str> {
    match super::violated_unique_constraint(error)? {
        "users_username_key" | "users_username_lower_key" => Some("username"),
        "users_email_lower_key" => Some("email"),
        _ => None,
    }
}

/// Which of `username` and `email` another account already has, if any:
/// asked before a registration pays for its password hash. (The unique
/// indexes stay the rule: [`insert`] still meets them in a race.)
pub async fn taken_by_another(
    conn: &mut AsyncPgConnection,
    username: &str,
    email: &str,
) -> QueryResult<Option<&'static str>> {
    let found: Option<(String, String)> = users::table
        .filter(
            lower(users::username)
                .eq(lower(username))
                .or(lower(users::email).eq(lower(email))),
        )
        .select((users::username, users::email))
        .first(conn)
        .await
        .optional()?;
    Ok(found.map(|(taken, _)| {
        if taken.to_lowercase() == username.to_lowercase() {
            "username"
        } else {
            "email"
        }
    }))
}

/// Inserts an account; a taken username or email is a unique violation
/// ([`taken_field`] says which).
pub async fn insert(conn: &mut AsyncPgConnection, new: &NewUser<'_>) -> QueryResult<User> {
    diesel::insert_into(users::table)
        .values(new)
        .returning(User::as_returning())
        .get_result(conn)
        .await
}

/// `email` as [`find_by_email`] compares it: PostgreSQL's `lower()`, which
/// folds some letters unlike Rust's `to_lowercase` (`İ` to `i`). What the
/// login throttle keys an email by, so that every spelling that finds an
/// account, and every spelling of an unknown one, share one budget.
pub async fn fold_case(conn: &mut AsyncPgConnection, email: &str) -> QueryResult<String> {
    diesel::select(lower(email)).get_result(conn).await
}

/// The account with this email, whatever its case.
pub async fn find_by_email(conn: &mut AsyncPgConnection, email: &str) -> QueryResult<Option<User>> {
    users::table
        .filter(lower(users::email).eq(lower(email)))
        .select(User::as_select())
        .first(conn)
        .await
        .optional()
}

pub async fn find_by_username(
    conn: &mut AsyncPgConnection,
    username: &str,
) -> QueryResult<Option<User>> {
    users::table
        .filter(users::username.eq(username))
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
    changes: &UserChanges,
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
