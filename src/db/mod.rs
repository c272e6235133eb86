//! The database: connecting and the pool, then one module per resource
//! with its row types and queries (`users`, `articles`, `tags`...), the
//! declared SQL functions, and the migrations.

pub mod application_name;
pub mod articles;
pub mod comments;
mod connect;
mod constraints;
pub mod demo_account;
pub mod endpoint;
pub mod favorites;
mod functions;
pub mod identity_keys;
pub mod migrations;
pub mod pool;
pub mod presence;
pub mod profiles;
pub mod purge;
pub mod sessions;
pub mod settings;
pub mod tags;
pub mod throttle;
pub mod tls;
pub mod url;
pub mod users;

pub use connect::{connect, wait_for_database, AttemptFailed, ConnectError, DatabaseUnreachable};
pub use constraints::violated_unique_constraint;
pub use pool::{build_pool, warm_up, Db, DbError, Pool, PoolError};
