//! Integration tests: the real `procjonagent` binary against the real
//! `procjon` daemon, with mutual TLS and certificates from
//! `scripts/gen-certs.sh`, a stub `systemctl`, a fake Elasticsearch, real
//! Nagios plugins and real processes to watch; two daemons at once for the
//! agents that report to an HA pair.

mod support;

mod certificates;
mod config_errors;
mod elasticsearch;
mod endpoints;
mod exec;
mod ha;
mod ping;
mod process;
mod restart;
mod run;
mod silence;
mod systemd;
