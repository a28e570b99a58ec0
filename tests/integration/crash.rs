//! Crash consistency: agents register services and trigger announcements
//! while procjon is killed with SIGKILL at random moments and restarted, over
//! and over. After every kill each registration answered `ok` is in the
//! state file; in the end every announcement the file ever held has reached
//! Slack, and one reached it twice only if it was still in the outbox at a
//! kill (at-least-once for what was in flight, nothing more).
//!
//! Every event text is unique by construction (services never time out and
//! each ping moves to a status never used before), so texts identify events.
//!
//! `PROCJON_TEST_CRASH_ITERATIONS` sets the number of kills (default 50);
//! `PROCJON_TEST_SEED` replays a run.

use crate::support::daemon::run;
use crate::support::slack::Mode;
use crate::support::{Daemon, FakeSlack, RawTls, Rng, TempDir, env_number, seed, wait_until};
use procjon::frame::{ClientFrame, Registration, ServerFrame};
use procjon::state_file::{Record, State, replay};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

const WORKERS: usize = 3;
/// Operations one worker tries per daemon life (the kill usually comes first).
const MAX_OPS: usize = 60;
/// Status names per service; each ping uses the next one.
const STATUSES: u64 = 64;
/// Far longer than the test: services never time out.
const BASE_TIMEOUT_S: f64 = 3600.0;

/// One service a worker owns.
struct Service {
    id: String,
    /// The timeout of the definition last answered `ok` (none: never).
    acked: Option<f64>,
    /// Definitions sent since then without an answer (procjon was killed).
    unanswered: Vec<f64>,
    /// The status index the next ping uses.
    next_status: u64,
}

/// An agent that survives the daemon's deaths: its services persist.
struct Worker {
    name: String,
    services: Vec<Service>,
    registered: u64,
    redefinitions: u64,
}

fn statuses() -> Vec<String> {
    (0..STATUSES).map(|i| format!("s{i}")).collect()
}

/// Sends one frame and reads its reply; `None` when procjon is gone.
fn request(conn: &mut RawTls, frame: &ClientFrame) -> Option<ServerFrame> {
    conn.send(&frame.encode()).ok()?;
    let line = conn.recv_line().ok()??;
    Some(
        ServerFrame::decode(&line)
            .unwrap_or_else(|e| panic!("bad reply {:?}: {e}", String::from_utf8_lossy(&line))),
    )
}

impl Worker {
    /// Registers, redefines and pings until procjon dies or `MAX_OPS`.
    fn run(&mut self, addr: SocketAddr, rng: &mut Rng) {
        let Ok(mut conn) = RawTls::try_connect(addr) else {
            return;
        };
        for _ in 0..MAX_OPS {
            let pingable: Vec<usize> = (0..self.services.len())
                .filter(|&i| {
                    self.services[i].acked.is_some() && self.services[i].next_status < STATUSES
                })
                .collect();
            let choice = rng.below(8);
            let alive = if pingable.is_empty() || choice == 0 {
                self.register_new(&mut conn)
            } else if choice == 2 {
                let i = pingable[rng.below(pingable.len() as u64) as usize];
                self.redefine(&mut conn, i)
            } else {
                let i = pingable[rng.below(pingable.len() as u64) as usize];
                self.ping(&mut conn, i)
            };
            if !alive {
                return;
            }
        }
    }

    fn register_new(&mut self, conn: &mut RawTls) -> bool {
        self.registered += 1;
        self.services.push(Service {
            id: format!("{}-{}", self.name, self.registered),
            acked: None,
            unanswered: Vec::new(),
            next_status: 0,
        });
        let i = self.services.len() - 1;
        self.send_definition(conn, i, BASE_TIMEOUT_S)
    }

    fn redefine(&mut self, conn: &mut RawTls, i: usize) -> bool {
        self.redefinitions += 1;
        let timeout = BASE_TIMEOUT_S + self.redefinitions as f64;
        self.send_definition(conn, i, timeout)
    }

    fn send_definition(&mut self, conn: &mut RawTls, i: usize, timeout_s: f64) -> bool {
        let service = &mut self.services[i];
        service.unanswered.push(timeout_s);
        let frame = ClientFrame::Register(Registration {
            service: service.id.clone(),
            timeout_s,
            statuses: statuses(),
            policy: Default::default(),
        });
        match request(conn, &frame) {
            Some(ServerFrame::Ok) => {
                service.acked = Some(timeout_s);
                service.unanswered.clear();
                true
            }
            Some(other) => panic!("registering {}: {other:?}", service.id),
            None => false,
        }
    }

    fn ping(&mut self, conn: &mut RawTls, i: usize) -> bool {
        let service = &mut self.services[i];
        let status = service.next_status;
        // Used once sent, whether or not an answer comes back.
        service.next_status += 1;
        let frame = ClientFrame::ping(service.id.clone(), status);
        match request(conn, &frame) {
            Some(ServerFrame::Ok) => true,
            Some(other) => panic!("pinging {} with {status}: {other:?}", service.id),
            None => false,
        }
    }
}

/// What the test learnt from the state file and the fake Slack.
#[derive(Default)]
struct Ledger {
    /// Every announcement text any state file held, with its `seq`.
    written: HashMap<String, u64>,
    /// How many times each text was in the outbox when procjon was killed.
    pending_at_kill: HashMap<String, u32>,
    /// How many times each text reached the fake Slack.
    delivered: HashMap<String, u32>,
    /// Whether a compaction may have dropped delivered announcements unseen.
    compacted: bool,
}

impl Ledger {
    fn take_posts(&mut self, slack: &FakeSlack) {
        while let Some(attempt) = slack.try_attempt(Duration::ZERO) {
            if attempt.status == 200 {
                for line in attempt.text.lines() {
                    *self.delivered.entry(line.to_string()).or_default() += 1;
                }
            }
        }
    }

    /// Reads the state file after a kill: every announcement in it, and the
    /// outbox. Returns the replayed state.
    #[track_caller]
    fn read_state_file(&mut self, path: &Path) -> State {
        let text = std::fs::read_to_string(path).unwrap();
        let mut lines = text.split_inclusive('\n').peekable();
        while let Some(line) = lines.next() {
            let record = match serde_json::from_str::<Record>(line.trim_end()) {
                Ok(record) => record,
                // Only the last line may be torn (killed mid-write).
                Err(err) if lines.peek().is_none() && !line.ends_with('\n') => {
                    eprintln!("torn last line ({err}): {line:?}");
                    break;
                }
                Err(err) => panic!("bad line in the state file: {err}: {line:?}"),
            };
            if let Record::Announce(a) = record {
                let seq = *self.written.entry(a.text.to_string()).or_insert(a.seq);
                assert_eq!(
                    seq, a.seq,
                    "the event {:?} was written twice, as seq {seq} and {}",
                    a.text, a.seq
                );
            }
        }
        let state = replay(path).unwrap().state;
        for a in state.outbox.values() {
            *self
                .pending_at_kill
                .entry(a.announcement.text.to_string())
                .or_default() += 1;
        }
        state
    }

    fn undelivered(&self) -> Vec<&String> {
        self.written
            .keys()
            .filter(|t| !self.delivered.contains_key(*t))
            .collect()
    }
}

/// Checks that every registration a worker got `ok` for is in the file with
/// that definition (or one sent later and not answered), owned by the agent.
#[track_caller]
fn check_registrations(workers: &[Worker], state: &State) -> usize {
    let mut checked = 0;
    for service in workers.iter().flat_map(|w| &w.services) {
        let Some(acked) = service.acked else {
            continue;
        };
        let saved = state.services.get(service.id.as_str()).unwrap_or_else(|| {
            panic!(
                "{} was registered (answered ok) but is not in the state file",
                service.id
            )
        });
        let timeout = saved.definition.timeout_s;
        assert!(
            timeout == acked || service.unanswered.contains(&timeout),
            "{}: the file has timeout {timeout}, the last acknowledged was {acked}",
            service.id
        );
        assert_eq!(saved.definition.owner.as_deref(), Some("procjonagent"));
        checked += 1;
    }
    checked
}

#[test]
fn sigkill_at_random_moments_loses_no_registration_and_no_announcement() {
    let iterations = env_number("PROCJON_TEST_CRASH_ITERATIONS", 50);
    let mut rng = Rng::new(seed("crash", 0x5eed_c0de));
    let slack = FakeSlack::start();
    let dir = TempDir::new();
    let state_path = dir.join("state.jsonl");
    let mut workers: Vec<Worker> = (0..WORKERS)
        .map(|i| Worker {
            name: format!("w{i}"),
            services: Vec::new(),
            registered: 0,
            redefinitions: 0,
        })
        .collect();
    let mut ledger = Ledger::default();
    let started = Instant::now();
    let start = |slack: &FakeSlack| {
        // The workers change statuses on every ping: the flapping policy
        // would hold most of their events, and this test is about the
        // events themselves surviving kills.
        Daemon::builder(dir.path())
            .webhook(&slack.url)
            .pacing(0.0, 0.02)
            .args(["--flap-changes", "0"])
            .start()
    };

    for iteration in 0..iterations {
        // Now and then Slack is down for a whole life, so the outbox fills.
        slack.set(if rng.below(4) == 0 {
            Mode::Status(503)
        } else {
            Mode::Ok
        });
        let daemon = start(&slack);
        let addr = daemon.addr;
        let kill_after = Duration::from_millis(rng.below(120));
        let mut seeds: Vec<Rng> = (0..WORKERS).map(|_| Rng::new(rng.next_u64())).collect();
        let log = std::thread::scope(|scope| {
            for (worker, rng) in workers.iter_mut().zip(&mut seeds) {
                scope.spawn(move || worker.run(addr, rng));
            }
            // The random moment of the crash.
            std::thread::sleep(kill_after);
            daemon.kill()
        });
        ledger.compacted |= log.contains("compacted state file");
        ledger.take_posts(&slack);
        let state = ledger.read_state_file(&state_path);
        check_registrations(&workers, &state);
        // The replay above is check-state's; the command itself now and then.
        if iteration % 10 == 0 {
            let (status, stdout, stderr) =
                run(&["check-state", state_path.to_str().unwrap()], dir.path());
            assert!(status.success(), "check-state: {stdout}{stderr}");
        }
    }

    // A last life with Slack up: the outbox drains.
    slack.set(Mode::Ok);
    let daemon = start(&slack);
    wait_until(
        Duration::from_secs(30),
        "every announcement to be delivered",
        || {
            ledger.take_posts(&slack);
            ledger.undelivered().is_empty()
        },
    );
    wait_until(Duration::from_secs(10), "the outbox to be empty", || {
        replay(&state_path).unwrap().state.outbox.is_empty()
    });
    ledger.compacted |= daemon.kill().contains("compacted state file");
    ledger.take_posts(&slack);
    let registrations = check_registrations(&workers, &replay(&state_path).unwrap().state);

    let mut redelivered = 0;
    for (text, &count) in &ledger.delivered {
        if !ledger.compacted {
            assert!(
                ledger.written.contains_key(text),
                "{text:?} reached Slack but was never in the state file"
            );
        }
        let allowed = 1 + ledger.pending_at_kill.get(text).copied().unwrap_or(0);
        assert!(
            count <= allowed,
            "{text:?} was delivered {count} times but pending at only {} kills",
            allowed - 1
        );
        redelivered += count - 1;
    }
    eprintln!(
        "{iterations} kills in {:?}: {registrations} registrations kept, {} announcements \
         written and delivered, {redelivered} delivered again after a kill (at-least-once)",
        started.elapsed(),
        ledger.written.len()
    );
    assert!(registrations > 0 && !ledger.written.is_empty());
}
