use super::*;

fn parse(raw: &str) -> Result<(PgUrl, TlsParameters), UrlError> {
    PgUrl::parse(raw)
}

#[test]
fn a_password_with_a_raw_slash_question_mark_hash_or_at_is_refused_unquoted() {
    for raw in [
        "postgres://conduit:2024/Winter-s3cret@db.example/conduit",
        "postgres://conduit:Winter?s3cret@db.example/conduit",
        "postgres://conduit:Winter#s3cret@db.example/conduit",
        "postgres://conduit:Winter@s3cret@db.example/conduit",
        "postgres://db.example/conduit?user=me@Winter-s3cret",
    ] {
        let error = parse(raw).err().expect(raw);
        assert!(matches!(error, UrlError::Ambiguous), "{raw}: {error}");
        let message = error.to_string();
        assert!(message.contains("percent-encode"), "{message}");
        assert!(!message.contains("s3cret"), "{message}");
    }
    let (url, _) =
        parse("postgres://conduit:2024%2FWinter-s3cret@db.example/conduit").expect("encoded");
    assert_eq!(url.target(), "db.example:5432/conduit");
    assert_eq!(url.config.get_password(), Some(&b"2024/Winter-s3cret"[..]));
}

#[test]
fn sockets_several_hosts_and_hostaddr_are_read_as_tokio_postgres_reads_them() {
    let (url, _) = parse("postgres:///conduit?host=/run/postgresql&user=conduit").unwrap();
    assert_eq!(url.target(), "/run/postgresql:5432/conduit");
    let (url, _) = parse("postgresql://u@%2Fvar%2Frun%2Fpostgresql:5433/db").unwrap();
    assert_eq!(url.target(), "/var/run/postgresql:5433/db");
    let (url, _) =
        parse("postgres://u@h1:5432,h2:5433/db?target_session_attrs=read-write").unwrap();
    assert_eq!(url.target(), "h1:5432,h2:5433/db");
    let (url, _) = parse("postgres:///db?hostaddr=10.0.0.5&port=6432").unwrap();
    assert_eq!(url.target(), "10.0.0.5:6432/db");
}

#[test]
fn tls_parameters_are_taken_out_and_the_rest_kept() {
    let (url, tls) =
        parse("postgres://u:p@h/db?connect_timeout=3&sslmode=verify-full&sslrootcert=%2Fca.pem")
            .unwrap();
    assert_eq!(tls.sslmode.as_deref(), Some("verify-full"));
    assert_eq!(tls.sslrootcert.as_deref(), Some("/ca.pem"));
    assert_eq!(
        url.with_application_name("conduit migrate"),
        "postgres://u:p@h/db?connect_timeout=3&application_name=conduit+migrate"
    );
    // Ours wins: contract migrations tell releases apart by it.
    let (url, _) = parse("postgres://u@h/db?application_name=mine&connect_timeout=3").unwrap();
    assert_eq!(
        url.with_application_name("conduit@012"),
        "postgres://u@h/db?connect_timeout=3&application_name=conduit%40012"
    );
}

#[test]
fn channel_binding_is_tokio_postgres_own_parameter() {
    use tokio_postgres::config::ChannelBinding;
    let (url, _) = parse("postgres://u@h/db?sslmode=require&channel_binding=require").unwrap();
    assert_eq!(url.config.get_channel_binding(), ChannelBinding::Require);
    assert_eq!(
        url.with_application_name("x"),
        "postgres://u@h/db?channel_binding=require&application_name=x"
    );
    let (url, _) = parse("postgres://u@h/db").unwrap();
    assert_eq!(url.config.get_channel_binding(), ChannelBinding::Prefer);
    let error = parse("postgres://u@h/db?channel_binding=always")
        .err()
        .unwrap();
    assert!(matches!(error, UrlError::Driver(_)), "{error}");
}

#[test]
fn what_tokio_postgres_cannot_do_is_named() {
    let message = |raw: &str| parse(raw).err().expect(raw).to_string();
    assert!(message("host=db user=u").contains("key=value"));
    assert!(message("postgres://u@h/db?sslcert=/c.pem").contains("`sslcert` is a libpq"));
    assert!(message("postgres://u@h/db?target_session_attrs=primary")
        .contains("target_session_attrs=primary is not supported"));
    assert!(message("postgres:///db").contains("names no host"));
    assert!(
        message("postgres:///db?host=h1&host=h2&host=h3&port=1,2").contains("3 hosts but 2 ports")
    );
}
