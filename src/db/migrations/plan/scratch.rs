//! The scratch database a plan measures on: created beside the live one,
//! always dropped (also after an error or an interrupt; the caller drops
//! it on every path).

use diesel::result::{DatabaseErrorKind, Error};
use diesel_async::{AsyncPgConnection, SimpleAsyncConnection};

use super::PlanError;

/// SQLSTATE 42501, insufficient_privilege, as diesel reports it.
fn is_permission_denied(error: &Error) -> bool {
    match error {
        Error::DatabaseError(DatabaseErrorKind::Unknown, info) => {
            info.message().starts_with("permission denied")
        }
        _ => false,
    }
}

/// A scratch database that exists until [`Scratch::drop_with`].
#[derive(Debug)]
pub struct Scratch {
    pub name: String,
}

impl Scratch {
    /// Creates `conduit_plan_<random>` with `admin`.
    pub async fn create(admin: &mut AsyncPgConnection) -> Result<Self, PlanError> {
        let name = format!(
            "conduit_plan_{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        match admin
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .await
        {
            Ok(()) => Ok(Self { name }),
            Err(error) if is_permission_denied(&error) => Err(PlanError::MayNotCreateDatabase),
            Err(error) => Err(PlanError::CreateScratch(name, error)),
        }
    }

    /// Drops it, ending any session still connected to it.
    pub async fn drop_with(self, admin: &mut AsyncPgConnection) -> Result<(), Error> {
        admin
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                self.name
            ))
            .await
    }
}
