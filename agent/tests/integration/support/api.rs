//! The daemon's `/api/services/ID`, read with ureq (with timeouts) into
//! procjon's own `ServiceStatus`, for tests that check what an agent's
//! pings left there (a detail, perfdata, how long ago the last came).

use super::WAIT;
use procjon::api::ServiceStatus;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// `GET /api/services/ID`: the service, or `None` while it isn't registered.
pub fn service(http: SocketAddr, id: &str) -> Option<ServiceStatus> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .http_status_as_error(false)
        .build()
        .into();
    let mut response = agent
        .get(format!("http://{http}/api/services/{id}"))
        .call()
        .unwrap_or_else(|err| panic!("GET /api/services/{id}: {err}"));
    let body = response
        .body_mut()
        .read_to_string()
        .expect("reading /api/services");
    match response.status().as_u16() {
        200 => Some(
            serde_json::from_str(&body)
                .unwrap_or_else(|err| panic!("/api/services/{id}: {err}: {body}")),
        ),
        404 => None,
        status => panic!("/api/services/{id}: HTTP {status}: {body}"),
    }
}

/// Polls `/api/services/ID` until `ready` holds for the service (at most
/// [`WAIT`]); panics with the last answer if it never does.
#[track_caller]
pub fn wait_for_service(
    http: SocketAddr,
    id: &str,
    ready: impl Fn(&ServiceStatus) -> bool,
) -> ServiceStatus {
    let start = Instant::now();
    loop {
        let last = service(http, id);
        if let Some(status) = last.as_ref().filter(|s| ready(s)) {
            return status.clone();
        }
        assert!(
            start.elapsed() < WAIT,
            "/api/services/{id} not as expected within {WAIT:?}; last: {last:#?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
