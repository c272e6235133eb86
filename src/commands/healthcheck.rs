//! `conduit healthcheck`: container images have no curl, so the binary asks
//! itself whether the server is ready.

use std::process::ExitCode;
use std::time::Duration;

/// Exits 0 when the server at `listen` is ready, 1 otherwise.
pub async fn run(listen: &str) -> ExitCode {
    if is_ready(listen).await {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The URL of `/ready` for a listen address; a wildcard address is asked on
/// loopback.
fn ready_url(listen: &str) -> String {
    let address = listen
        .replacen("0.0.0.0:", "127.0.0.1:", 1)
        .replacen("[::]:", "[::1]:", 1);
    format!("http://{address}/ready")
}

/// True when `/ready` answers 200 within a few seconds.
async fn is_ready(listen: &str) -> bool {
    let url = ready_url(listen);
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .build()
    {
        Ok(client) => client,
        Err(error) => {
            eprintln!("healthcheck: {error}");
            return false;
        }
    };
    match client.get(&url).send().await {
        Ok(response) if response.status().is_success() => true,
        Ok(response) => {
            eprintln!("healthcheck: {url} answered {}", response.status());
            false
        }
        Err(error) => {
            eprintln!("healthcheck: {url}: {error}");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ready_url;

    #[test]
    fn wildcard_addresses_are_asked_on_loopback() {
        assert_eq!(ready_url("0.0.0.0:8080"), "http://127.0.0.1:8080/ready");
        assert_eq!(ready_url("[::]:8080"), "http://[::1]:8080/ready");
        assert_eq!(ready_url("10.1.2.3:9000"), "http://10.1.2.3:9000/ready");
    }
}
