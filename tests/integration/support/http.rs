//! Plain-HTTP requests to the daemon's status endpoint, and the external
//! checkers (promtool, Chromium) the HTTP tests run.

use std::fs::File;
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// An answer from the status endpoint.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub allow: Option<String>,
    /// `/healthz`'s `Procjon-Certificate-Expires`.
    pub certificate_expires: Option<String>,
    pub body: String,
}

impl Reply {
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into()
}

fn reply(mut response: ureq::http::Response<ureq::Body>) -> Reply {
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(String::from)
    };
    let (content_type, allow) = (header("content-type").unwrap_or_default(), header("allow"));
    let certificate_expires = header("procjon-certificate-expires");
    Reply {
        status: response.status().as_u16(),
        content_type,
        allow,
        certificate_expires,
        body: response.body_mut().read_to_string().unwrap(),
    }
}

/// `GET http://addr/path`.
#[track_caller]
pub fn get(addr: SocketAddr, path: &str) -> Reply {
    reply(agent().get(format!("http://{addr}{path}")).call().unwrap())
}

/// `POST http://addr/path` with an empty body.
#[track_caller]
pub fn post(addr: SocketAddr, path: &str) -> Reply {
    reply(
        agent()
            .post(format!("http://{addr}{path}"))
            .send("")
            .unwrap(),
    )
}

/// `DELETE http://addr/path`.
#[track_caller]
pub fn delete(addr: SocketAddr, path: &str) -> Reply {
    reply(
        agent()
            .delete(format!("http://{addr}{path}"))
            .call()
            .unwrap(),
    )
}

/// Whether `CI` is set: then a missing checker fails the test instead of
/// skipping it.
fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// The first of `names` found on `PATH`. When none is: under CI a panic,
/// otherwise `None` and a printed note that the test is skipped.
#[track_caller]
pub fn tool(names: &[&str], package: &str) -> Option<String> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in names {
        if std::env::split_paths(&path).any(|dir| dir.join(name).is_file()) {
            return Some(name.to_string());
        }
    }
    assert!(
        !in_ci(),
        "{} is not installed and CI is set: install the Debian package {package} \
         (.ci/install-test-deps.sh does)",
        names[0]
    );
    eprintln!(
        "SKIPPED: {} is not installed (Debian package {package}; .ci/install-test-deps.sh installs it)",
        names[0]
    );
    None
}

/// Runs `command` with `stdin`, killing it after `limit`. Its output goes
/// through files in `dir` rather than pipes, so that helper processes it
/// leaves behind (Chromium has several) can't keep the test waiting.
#[track_caller]
pub fn run_with_limit(mut command: Command, stdin: &[u8], dir: &Path, limit: Duration) -> Output {
    let (out_path, err_path) = (dir.join("tool.stdout"), dir.join("tool.stderr"));
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(File::create(&out_path).unwrap())
        .stderr(File::create(&err_path).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {command:?}: {e}"));
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin).unwrap();
    drop(input);
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{command:?} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: std::fs::read(&out_path).unwrap(),
        stderr: std::fs::read(&err_path).unwrap(),
    }
}
