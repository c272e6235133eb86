//! Which constraint a failed statement violated.

/// The name of the unique constraint `error` violates, if it is a unique
/// violation: how a query's caller tells "taken" from a failure.
pub fn violated_unique_constraint(error: &diesel::result::Error) -> Option<&str> {
    match error {
        diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            info,
        ) => info.constraint_name(),
        _ => None,
    }
}
