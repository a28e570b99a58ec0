//! The registry: every registered service and its announced state. Shared by
//! the connection threads (register, ping), the timer thread (expiry) and, read
//! only, by status reporting. Its one lock is held only for in-memory work;
//! records and announcements are handed to the store writer through a
//! channel while the lock is held, so the file and the channel see events in
//! exactly the order they happened. Never any I/O under the lock.

use crate::frame::{ErrorCode, FrameError, Registration};
use crate::message;
use crate::store::{self, Announcement, Record, State, StoreCmd};
use crate::timer::{Deadline, TimerHandle};
use std::collections::HashMap;
use std::sync::mpsc::{self, Sender};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// Whether a service is known to be up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Availability {
    /// Registered but never pinged.
    Unknown,
    /// Pinged within its timeout.
    Available,
    /// Silent past its timeout (announced once).
    NotAvailable,
}

impl Availability {
    /// The name used in APIs: `unknown`, `available`, `not_available`.
    pub fn as_str(self) -> &'static str {
        match self {
            Availability::Unknown => "unknown",
            Availability::Available => "available",
            Availability::NotAvailable => "not_available",
        }
    }
}

/// A copy of one service's state, for status reporting.
#[derive(Debug, Clone)]
pub struct ServiceView {
    /// Its definition.
    pub registration: Registration,
    /// Announced availability.
    pub availability: Availability,
    /// Announced status index.
    pub status: u64,
    /// Time since the last ping this process saw (none: not since start-up).
    pub last_ping_age: Option<Duration>,
    /// When the announced state last changed (RFC 3339), if ever.
    pub last_change: Option<String>,
}

struct Service {
    registration: Registration,
    timeout: Duration,
    availability: Availability,
    /// Announced status index.
    status: u64,
    last_ping: Option<Instant>,
    /// Generation of this service's live timer entry; 0 when none.
    timer_generation: u64,
    last_change: Option<String>,
}

struct Inner {
    services: HashMap<String, Service>,
    next_seq: u64,
    next_generation: u64,
    store: Sender<StoreCmd>,
}

/// All registered services. See the module docs for the locking rules.
pub struct Registry {
    inner: Mutex<Inner>,
    timer: TimerHandle,
}

/// How long a register waits for the state file before answering `internal`.
const DURABLE_WAIT: Duration = Duration::from_secs(30);

impl Registry {
    /// Builds the registry from the replayed state file. Services announced
    /// available get their full timeout from `started`.
    pub fn new(
        state: &State,
        store: Sender<StoreCmd>,
        timer: TimerHandle,
        started: Instant,
    ) -> Registry {
        let mut inner = Inner {
            services: HashMap::with_capacity(state.services.len()),
            next_seq: state.next_seq.max(1),
            next_generation: 1,
            store,
        };
        for (id, saved) in &state.services {
            let registration = saved.registration.clone();
            let mut service = Service {
                timeout: registration.timeout(),
                registration,
                availability: Availability::Unknown,
                status: 0,
                last_ping: None,
                timer_generation: 0,
                last_change: None,
            };
            if let Some(last) = &saved.last {
                service.status = last.status;
                service.last_change = Some(last.at.clone()).filter(|at| !at.is_empty());
                if last.available {
                    service.availability = Availability::Available;
                    service.last_ping = Some(started);
                    service.timer_generation = inner.next_generation;
                    inner.next_generation += 1;
                    timer.arm(Deadline {
                        at: started + service.timeout,
                        service: id.clone(),
                        generation: service.timer_generation,
                    });
                } else {
                    service.availability = Availability::NotAvailable;
                }
            }
            inner.services.insert(id.clone(), service);
        }
        Registry {
            inner: Mutex::new(inner),
            timer,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panicking connection thread must not wedge the daemon; the state
        // under the lock is updated field by field and stays consistent.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers or redefines a service; returns once it is on disk.
    pub fn register(&self, registration: Registration) -> Result<(), FrameError> {
        let (ack, durable) = mpsc::channel();
        let sent = {
            let mut guard = self.lock();
            let inner = &mut *guard;
            let cmd = match inner.services.get_mut(&registration.service) {
                Some(service) if service.registration == registration => StoreCmd::Barrier(ack),
                Some(service) => {
                    let timeout = registration.timeout();
                    let timeout_changed = timeout != service.timeout;
                    if service.status >= registration.statuses.len() as u64 {
                        service.status = 0;
                    }
                    service.registration = registration.clone();
                    service.timeout = timeout;
                    if timeout_changed && service.availability == Availability::Available {
                        let last_ping = service.last_ping.unwrap_or_else(Instant::now);
                        service.timer_generation = inner.next_generation;
                        inner.next_generation += 1;
                        self.timer.arm(Deadline {
                            at: last_ping + timeout,
                            service: registration.service.clone(),
                            generation: service.timer_generation,
                        });
                    }
                    StoreCmd::Append {
                        records: vec![Record::Register(registration)],
                        ack: Some(ack),
                    }
                }
                None => {
                    inner.services.insert(
                        registration.service.clone(),
                        Service {
                            timeout: registration.timeout(),
                            registration: registration.clone(),
                            availability: Availability::Unknown,
                            status: 0,
                            last_ping: None,
                            timer_generation: 0,
                            last_change: None,
                        },
                    );
                    StoreCmd::Append {
                        records: vec![Record::Register(registration)],
                        ack: Some(ack),
                    }
                }
            };
            inner.store.send(cmd).is_ok()
        };
        if !sent {
            return Err(FrameError::new(
                ErrorCode::Internal,
                "the state file writer has stopped",
            ));
        }
        match durable.recv_timeout(DURABLE_WAIT) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(reason)) => Err(FrameError::new(
                ErrorCode::Internal,
                format!("registration not saved: {reason}; try again later"),
            )),
            Err(_) => Err(FrameError::new(
                ErrorCode::Internal,
                "registration not saved: the state file did not answer in time; try again later",
            )),
        }
    }

    /// Records a ping. Announces availability and status changes.
    pub fn ping(&self, service_id: &str, status: u64) -> Result<(), FrameError> {
        let now = Instant::now();
        let mut guard = self.lock();
        let inner = &mut *guard;
        let Some(service) = inner.services.get_mut(service_id) else {
            return Err(FrameError::new(
                ErrorCode::NotRegistered,
                format!("service {service_id} is not registered; send a register frame first"),
            ));
        };
        let count = service.registration.statuses.len() as u64;
        if status >= count {
            return Err(FrameError::new(
                ErrorCode::BadStatus,
                format!(
                    "status {status} is out of range: {service_id} has {count} statuses (0 to {})",
                    count - 1
                ),
            ));
        }
        service.last_ping = Some(now);
        if service.availability == Availability::Available && service.status == status {
            return Ok(());
        }
        let mut texts = Vec::with_capacity(2);
        if service.availability != Availability::Available {
            service.availability = Availability::Available;
            texts.push((message::available(service_id), service.status));
            service.timer_generation = inner.next_generation;
            inner.next_generation += 1;
            self.timer.arm(Deadline {
                at: now + service.timeout,
                service: service_id.to_string(),
                generation: service.timer_generation,
            });
        }
        if service.status != status {
            let names = &service.registration.statuses;
            let old = names
                .get(service.status as usize)
                .map_or_else(|| format!("status {}", service.status), Clone::clone);
            let new = &names[status as usize];
            texts.push((message::status_changed(service_id, new, &old), status));
            service.status = status;
        }
        let at = store::now_rfc3339();
        service.last_change = Some(at.clone());
        let records: Vec<Record> = texts
            .into_iter()
            .map(|(text, status)| {
                let seq = inner.next_seq;
                inner.next_seq += 1;
                Record::Announce(Announcement {
                    seq,
                    service: service_id.to_string(),
                    available: true,
                    status,
                    text,
                    at: at.clone(),
                })
            })
            .collect();
        let logged = records.clone();
        let result = announce(inner, records);
        drop(guard);
        log_announcements(&logged);
        result
    }

    /// Called by the timer when `service_id`'s deadline comes due. Announces
    /// the outage if it really went silent; otherwise returns the new deadline.
    pub fn expire(&self, service_id: &str, generation: u64, now: Instant) -> Option<Instant> {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let service = inner.services.get_mut(service_id)?;
        if service.timer_generation != generation || service.availability != Availability::Available
        {
            return None;
        }
        let last_ping = service.last_ping.unwrap_or(now);
        let deadline = last_ping + service.timeout;
        if now < deadline {
            return Some(deadline);
        }
        service.availability = Availability::NotAvailable;
        service.timer_generation = 0;
        let at = store::now_rfc3339();
        service.last_change = Some(at.clone());
        let seq = inner.next_seq;
        inner.next_seq += 1;
        let record = Record::Announce(Announcement {
            seq,
            service: service_id.to_string(),
            available: false,
            status: service.status,
            text: message::not_available(service_id, now - last_ping),
            at,
        });
        let logged = [record.clone()];
        let result = announce(inner, vec![record]);
        drop(guard);
        log_announcements(&logged);
        if let Err(err) = result {
            log::error!("{service_id}: {err}");
        }
        None
    }

    /// A copy of every service's state, sorted by id.
    pub fn snapshot(&self) -> Vec<ServiceView> {
        let now = Instant::now();
        let inner = self.lock();
        let mut views: Vec<ServiceView> = inner
            .services
            .values()
            .map(|s| ServiceView {
                registration: s.registration.clone(),
                availability: s.availability,
                status: s.status,
                last_ping_age: s.last_ping.map(|t| now.saturating_duration_since(t)),
                last_change: s.last_change.clone(),
            })
            .collect();
        drop(inner);
        views.sort_by(|a, b| a.registration.service.cmp(&b.registration.service));
        views
    }

    /// How many services are registered.
    pub fn len(&self) -> usize {
        self.lock().services.len()
    }

    /// Whether no service is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Queues announcements for the store; called with the lock held so the
/// store sees them in the order they happened.
fn announce(inner: &mut Inner, records: Vec<Record>) -> Result<(), FrameError> {
    inner
        .store
        .send(StoreCmd::Append { records, ack: None })
        .map_err(|_| FrameError::new(ErrorCode::Internal, "the state file writer has stopped"))
}

/// Logs announcements at info level (after the lock is released).
fn log_announcements(records: &[Record]) {
    for record in records {
        if let Record::Announce(a) = record {
            log::info!("{}", a.text);
        }
    }
}
