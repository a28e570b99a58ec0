//! Integration tests: the real `procjonagent` binary against the real
//! `procjon` daemon, with mutual TLS and certificates from
//! `scripts/gen-certs.sh`, a stub `systemctl` and a fake Elasticsearch.

mod support;

mod certificates;
mod config_errors;
mod elasticsearch;
mod exec;
mod ping;
mod restart;
mod systemd;
