//! The SQL functions the typed queries call, declared once.

use diesel::sql_types::{BigInt, Nullable, Numeric, Text};

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
