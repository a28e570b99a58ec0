//! The registry: every registered service, who owns it, and its announced
//! state. Shared by the connection threads (register, ping), the timer thread
//! (expiry) and, read only, by status reporting. Its one lock is a read-write
//! lock: reports and pings that change nothing but a last ping time (nearly
//! all of them) take the read side, every change takes the write side. It is
//! held only for in-memory work; records and announcements are handed to the
//! store writer through a channel while the write lock is held, so the file
//! and the channel see events in exactly the order they happened. Never any
//! I/O under the lock.

use crate::frame::{ErrorCode, FrameError, Registration};
use crate::message;
use crate::store::{self, Announcement, Definition, Record, State, StoreCmd};
use crate::timer::{Deadline, TimerHandle};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
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
    pub registration: Arc<Registration>,
    /// The certificate identity that owns it (none: not adopted yet).
    pub owner: Option<Arc<str>>,
    /// Announced availability.
    pub availability: Availability,
    /// Announced status index.
    pub status: u64,
    /// Time since the last ping this process saw (none: not since start-up).
    pub last_ping_age: Option<Duration>,
    /// When the announced state last changed (RFC 3339), if ever.
    pub last_change: Option<String>,
}

/// Limits on what agents may make procjon hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most services that may be registered; new ones past it get `busy`.
    pub max_services: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_services: 100_000,
        }
    }
}

struct Service {
    registration: Arc<Registration>,
    owner: Option<Arc<str>>,
    timeout: Duration,
    availability: Availability,
    /// Announced status index.
    status: u64,
    /// When it was last pinged, as a [`stamp`]. Atomic so that a ping that
    /// changes nothing else needs only the read lock.
    last_ping: AtomicU64,
    /// Generation of this service's live timer entry; 0 when none.
    timer_generation: u64,
    last_change: Option<String>,
}

impl Service {
    fn new(registration: Arc<Registration>, owner: Option<Arc<str>>) -> Service {
        Service {
            timeout: registration.timeout(),
            registration,
            owner,
            availability: Availability::Unknown,
            status: 0,
            last_ping: AtomicU64::new(NEVER),
            timer_generation: 0,
            last_change: None,
        }
    }

    fn view(&self, epoch: Instant, now: Instant) -> ServiceView {
        ServiceView {
            registration: self.registration.clone(),
            owner: self.owner.clone(),
            availability: self.availability,
            status: self.status,
            last_ping_age: self
                .last_ping(epoch)
                .map(|t| now.saturating_duration_since(t)),
            last_change: self.last_change.clone(),
        }
    }

    /// When it was last pinged, if ever.
    fn last_ping(&self, epoch: Instant) -> Option<Instant> {
        unstamp(epoch, self.last_ping.load(Ordering::Relaxed))
    }

    /// Records a ping at `stamp`. Never moves the time back: two connections
    /// may ping one service with batches read in either order.
    fn pinged(&self, stamp: u64) {
        self.last_ping.fetch_max(stamp, Ordering::Relaxed);
    }

    /// The stored form of this service's definition.
    fn record(&self) -> Record {
        Record::Register(Definition {
            registration: (*self.registration).clone(),
            owner: self.owner.as_deref().map(String::from),
        })
    }

    /// Refuses a frame from an identity that doesn't own the service, and
    /// adopts the service for `identity` when it has no owner yet. Returns
    /// whether it was adopted (the new owner must be written down).
    fn authorize(&mut self, identity: &str) -> Result<bool, FrameError> {
        match &self.owner {
            Some(owner) if **owner == *identity => Ok(false),
            Some(owner) => Err(FrameError::new(
                ErrorCode::Forbidden,
                format!(
                    "service {} belongs to certificate identity {owner:?}, not {identity:?}; \
                     use that agent's certificate or another service id",
                    self.registration.service
                ),
            )),
            None => {
                self.owner = Some(Arc::from(identity));
                Ok(true)
            }
        }
    }
}

/// [`Service::last_ping`] of a service never pinged.
const NEVER: u64 = 0;

/// A ping time as stored in [`Service::last_ping`]: nanoseconds after the
/// registry's epoch, plus one so that [`NEVER`] is no time.
fn stamp(epoch: Instant, at: Instant) -> u64 {
    let nanos = at.saturating_duration_since(epoch).as_nanos();
    u64::try_from(nanos).unwrap_or(u64::MAX - 1) + 1
}

/// The time a [`stamp`] stands for; `None` for [`NEVER`].
fn unstamp(epoch: Instant, stamp: u64) -> Option<Instant> {
    stamp
        .checked_sub(1)
        .map(|nanos| epoch + Duration::from_nanos(nanos))
}

struct Inner {
    /// What ping times are measured from (start-up).
    epoch: Instant,
    services: HashMap<String, Service>,
    next_seq: u64,
    next_generation: u64,
    store: Sender<StoreCmd>,
}

impl Inner {
    fn arm(&mut self, timer: &TimerHandle, service_id: &str, at: Instant) -> u64 {
        let generation = self.next_generation;
        self.next_generation += 1;
        timer.arm(Deadline {
            at,
            service: service_id.to_string(),
            generation,
        });
        generation
    }

    fn take_seq(&mut self) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        seq
    }

    /// Records a ping that changes nothing but the time of the last ping
    /// (the service is available, owned by `identity`, and keeps its status),
    /// the common case, under the read lock. `false`: anything else, which
    /// [`Inner::ping`] applies under the write lock.
    fn ping_unchanged(&self, service_id: &str, status: u64, identity: &str, now: Instant) -> bool {
        match self.services.get(service_id) {
            Some(service)
                if service.availability == Availability::Available
                    && service.status == status
                    && service.owner.as_deref() == Some(identity) =>
            {
                service.pinged(stamp(self.epoch, now));
                true
            }
            _ => false,
        }
    }

    /// Applies a ping from `identity` received at `now`; announcements are
    /// also pushed to `announced`, for logging once the lock is released.
    fn ping(
        &mut self,
        timer: &TimerHandle,
        service_id: &str,
        status: u64,
        identity: &str,
        now: Instant,
        announced: &mut Vec<Record>,
    ) -> Result<(), FrameError> {
        let inner = self;
        let epoch = inner.epoch;
        let Some(service) = inner.services.get_mut(service_id) else {
            return Err(FrameError::new(
                ErrorCode::NotRegistered,
                format!("service {service_id} is not registered; send a register frame first"),
            ));
        };
        let adopted = service.authorize(identity)?;
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
        service.pinged(stamp(epoch, now));
        if service.availability == Availability::Available && service.status == status && !adopted {
            return Ok(());
        }
        let mut records = Vec::with_capacity(3);
        if adopted {
            records.push(service.record());
        }
        let mut texts = Vec::with_capacity(2);
        let mut arm_at = None;
        if service.availability != Availability::Available {
            service.availability = Availability::Available;
            texts.push((message::available(service_id), service.status));
            arm_at = Some(now + service.timeout);
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
        if !texts.is_empty() {
            service.last_change = Some(store::now_rfc3339());
        }
        let at = service.last_change.clone().unwrap_or_default();
        if let Some(deadline) = arm_at {
            let generation = inner.arm(timer, service_id, deadline);
            if let Some(service) = inner.services.get_mut(service_id) {
                service.timer_generation = generation;
            }
        }
        for (text, status) in texts {
            let seq = inner.take_seq();
            records.push(Record::Announce(Announcement {
                seq,
                service: service_id.to_string(),
                available: true,
                status,
                text,
                at: at.clone(),
            }));
        }
        announced.extend(
            records
                .iter()
                .filter(|r| matches!(r, Record::Announce(_)))
                .cloned(),
        );
        send(inner, records)
    }
}

/// All registered services. See the module docs for the locking rules.
pub struct Registry {
    inner: RwLock<Inner>,
    timer: TimerHandle,
    limits: Limits,
    /// Largest registered timeout, in milliseconds (for the idle deadline).
    longest_timeout_ms: AtomicU64,
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
        limits: Limits,
    ) -> Registry {
        let mut inner = Inner {
            epoch: started,
            services: HashMap::with_capacity(state.services.len()),
            next_seq: state.next_seq.max(1),
            next_generation: 1,
            store,
        };
        let mut longest = Duration::ZERO;
        for (id, saved) in &state.services {
            let mut service = Service::new(
                Arc::new(saved.registration.clone()),
                saved.owner.as_deref().map(Arc::from),
            );
            longest = longest.max(service.timeout);
            if let Some(last) = &saved.last {
                service.status = last.status;
                service.last_change = Some(last.at.clone()).filter(|at| !at.is_empty());
                if last.available {
                    // No ping since start-up: its timeout runs from the
                    // epoch (start-up), and the API shows no last ping.
                    service.availability = Availability::Available;
                    service.timer_generation = inner.arm(&timer, id, started + service.timeout);
                } else {
                    service.availability = Availability::NotAvailable;
                }
            }
            inner.services.insert(id.clone(), service);
        }
        Registry {
            inner: RwLock::new(inner),
            timer,
            limits,
            longest_timeout_ms: AtomicU64::new(longest.as_millis() as u64),
        }
    }

    /// The write lock, for anything that changes the registry. A panicking
    /// connection thread must not wedge the daemon; the state under the lock
    /// is updated field by field and stays consistent.
    fn lock(&self) -> RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// The read lock: for reports, and for pings that change nothing but
    /// their service's last ping time.
    fn read(&self) -> RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers or redefines a service for `identity`; returns once it is on disk.
    pub fn register(&self, registration: Registration, identity: &str) -> Result<(), FrameError> {
        let (ack, durable) = mpsc::channel();
        let timeout = registration.timeout();
        let sent = {
            let mut guard = self.lock();
            let inner = &mut *guard;
            let cmd = match inner.services.get_mut(&registration.service) {
                Some(service) => {
                    let adopted = service.authorize(identity)?;
                    if *service.registration == registration && !adopted {
                        StoreCmd::Barrier(ack)
                    } else {
                        let timeout_changed = timeout != service.timeout;
                        if service.status >= registration.statuses.len() as u64 {
                            service.status = 0;
                        }
                        service.registration = Arc::new(registration);
                        service.timeout = timeout;
                        let record = service.record();
                        if timeout_changed && service.availability == Availability::Available {
                            let at =
                                service.last_ping(inner.epoch).unwrap_or(inner.epoch) + timeout;
                            let id = service.registration.service.clone();
                            let generation = inner.arm(&self.timer, &id, at);
                            if let Some(service) = inner.services.get_mut(&id) {
                                service.timer_generation = generation;
                            }
                        }
                        StoreCmd::Append {
                            records: vec![record],
                            ack: Some(ack),
                        }
                    }
                }
                None => {
                    if inner.services.len() >= self.limits.max_services {
                        return Err(FrameError::new(
                            ErrorCode::Busy,
                            format!(
                                "procjon holds its maximum of {} services (--max-services); try again later",
                                self.limits.max_services
                            ),
                        ));
                    }
                    let service = Service::new(Arc::new(registration), Some(Arc::from(identity)));
                    let record = service.record();
                    inner
                        .services
                        .insert(service.registration.service.clone(), service);
                    StoreCmd::Append {
                        records: vec![record],
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
        self.longest_timeout_ms
            .fetch_max(timeout.as_millis() as u64, Ordering::Relaxed);
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

    /// Records a ping from `identity`. Announces availability and status changes.
    pub fn ping(&self, service_id: &str, status: u64, identity: &str) -> Result<(), FrameError> {
        self.ping_batch(Instant::now())
            .ping(service_id, status, identity)
    }

    /// Starts a batch of pings received at `now`, applied under one hold of
    /// the lock (taken at the first ping).
    pub fn ping_batch(&self, now: Instant) -> PingBatch<'_> {
        PingBatch {
            registry: self,
            shared: None,
            now,
            announced: Vec::new(),
        }
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
        // Available without a ping since start-up: restored from the state
        // file, its full timeout counts from start-up.
        let last_ping = service.last_ping(inner.epoch).unwrap_or(inner.epoch);
        let deadline = last_ping + service.timeout;
        if now < deadline {
            return Some(deadline);
        }
        service.availability = Availability::NotAvailable;
        service.timer_generation = 0;
        let at = store::now_rfc3339();
        service.last_change = Some(at.clone());
        let status = service.status;
        let seq = inner.take_seq();
        let record = Record::Announce(Announcement {
            seq,
            service: service_id.to_string(),
            available: false,
            status,
            text: message::not_available(service_id, now - last_ping),
            at,
        });
        let logged = [record.clone()];
        let result = send(inner, vec![record]);
        drop(guard);
        log_announcements(&logged);
        if let Err(err) = result {
            log::error!("{service_id}: {err}");
        }
        None
    }

    /// A copy of every service's state, sorted by id. The lock is held only
    /// to copy reference-counted definitions.
    pub fn snapshot(&self) -> Vec<ServiceView> {
        let now = Instant::now();
        let mut views: Vec<ServiceView> = {
            let inner = self.read();
            inner
                .services
                .values()
                .map(|s| s.view(inner.epoch, now))
                .collect()
        };
        views.sort_by(|a, b| a.registration.service.cmp(&b.registration.service));
        views
    }

    /// A copy of one service's state.
    pub fn get(&self, service_id: &str) -> Option<ServiceView> {
        let now = Instant::now();
        let inner = self.read();
        inner
            .services
            .get(service_id)
            .map(|s| s.view(inner.epoch, now))
    }

    /// How many services are registered.
    pub fn len(&self) -> usize {
        self.read().services.len()
    }

    /// Whether no service is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The largest timeout any service has registered (since start-up).
    pub fn longest_timeout(&self) -> Duration {
        Duration::from_millis(self.longest_timeout_ms.load(Ordering::Relaxed))
    }
}

/// Pings applied under one hold of the registry's read lock. A connection
/// applies all the pings of one read through one batch: one lock per read
/// instead of one per ping, which under load was most of a ping's own cost
/// (the lock's cache line moving between cores). A ping that changes nothing
/// but its service's last ping time, nearly all of them, is done under the
/// read lock, so connection threads don't wait for each other; any other
/// ping lets go of it and takes the write lock for itself. The read lock is
/// taken at the first ping and held until the batch is dropped;
/// announcements are logged then, never under a lock.
pub struct PingBatch<'a> {
    registry: &'a Registry,
    shared: Option<RwLockReadGuard<'a, Inner>>,
    now: Instant,
    announced: Vec<Record>,
}

impl PingBatch<'_> {
    /// Records a ping from `identity`, as [`Registry::ping`] does.
    pub fn ping(
        &mut self,
        service_id: &str,
        status: u64,
        identity: &str,
    ) -> Result<(), FrameError> {
        let registry = self.registry;
        let shared = self.shared.get_or_insert_with(|| registry.read());
        if shared.ping_unchanged(service_id, status, identity, self.now) {
            return Ok(());
        }
        self.shared = None;
        registry.lock().ping(
            &registry.timer,
            service_id,
            status,
            identity,
            self.now,
            &mut self.announced,
        )
    }
}

impl Drop for PingBatch<'_> {
    /// Releases the read lock, if held, then logs what was announced.
    fn drop(&mut self) {
        self.shared = None;
        log_announcements(&self.announced);
    }
}

/// Queues records for the store; called with the lock held so the store
/// sees them in the order they happened.
fn send(inner: &mut Inner, records: Vec<Record>) -> Result<(), FrameError> {
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
