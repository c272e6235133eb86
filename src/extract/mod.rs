//! What handlers take from a request, with errors in the API's shape: the
//! body, path and query (`body`), who is asking (`auth_user`) and from
//! where (`client_address`), with the
//! one way an authenticated request writes (`session_write`).

mod auth_user;
mod body;
mod client_address;
mod session_write;

pub use auth_user::{AuthUser, MaybeAuthUser};
pub use body::{
    path_config, query_config, refusal_before_body, BodyDeadline, JsonBody, MAX_BODY_BYTES,
};
pub use client_address::ClientAddress;
