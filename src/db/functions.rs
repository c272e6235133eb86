//! The SQL functions the typed queries call, declared once.

use diesel::sql_types::{BigInt, Nullable, Numeric, Text, Timestamptz};

diesel::define_sql_function! {
    /// `int8(numeric)`, PostgreSQL's cast of a numeric to a bigint.
    fn int8(value: Nullable<Numeric>) -> Nullable<BigInt>;
}

diesel::define_sql_function! {
    fn coalesce(value: Nullable<BigInt>, otherwise: BigInt) -> BigInt;
}

diesel::define_sql_function! {
    /// `array_agg(value)`: a group's values as one array, NULL over no rows.
    #[aggregate]
    fn array_agg(value: Text) -> Nullable<Array<Text>>;
}

diesel::define_sql_function! {
    /// `pg_try_advisory_lock(key)`: takes the session advisory lock `key`
    /// if nobody holds it, without waiting.
    fn pg_try_advisory_lock(key: BigInt) -> Bool;
}

diesel::define_sql_function! {
    /// `pg_advisory_unlock(key)`: false when this session did not hold it.
    fn pg_advisory_unlock(key: BigInt) -> Bool;
}

diesel::define_sql_function! {
    /// `hashtextextended(text, seed)`: a stable 64-bit hash of a text.
    fn hashtextextended(value: Text, seed: BigInt) -> BigInt;
}

diesel::define_sql_function! {
    fn current_database() -> Text;
}

diesel::define_sql_function! {
    /// `to_regclass(name)`: the table's oid (a `regclass`), NULL when no
    /// such table exists; only ever compared with NULL here.
    fn to_regclass(name: Text) -> Nullable<Oid>;
}

diesel::define_sql_function! {
    /// `least(a, b)` of two timestamps.
    #[sql_name = "least"]
    fn least_timestamp(a: Timestamptz, b: Timestamptz) -> Timestamptz;
}
