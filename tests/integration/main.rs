//! Integration tests: the real `procjon` binary, real mTLS with certificates
//! from `scripts/gen-certs.sh`, a real HTTP receiver standing in for Slack.

mod support;

mod attack;
mod config_errors;
mod crash;
mod delivery;
mod deploy;
mod detail;
mod faults;
mod http;
mod mutation;
mod ownership;
mod policy;
mod protocol;
mod restart;
mod sinks;
mod state_file;
mod tls;
mod watcher;
