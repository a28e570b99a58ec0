//! The registry: every registered service's definition, owner and announced
//! state, the one copy of it procjon holds at run time. Shared by the
//! connection threads (register, ping), the timer thread (expiry), the store
//! writer (which asks for a copy when it compacts the file) and, read only,
//! status reporting.
//!
//! # Locking
//!
//! One read-write lock. Reports, copies for compaction and pings that change
//! nothing but a last ping time (nearly all of them) take the read side;
//! every change takes the write side. It is held only for in-memory work,
//! never across I/O. Records and announcements are handed to the store
//! writer through a channel while the write lock is held, so the file and
//! the channel see events in exactly the order they happened, and a copy
//! taken under the read lock is exactly what the records sent before it
//! make.
//!
//! Lock order: registry → timer inbox. Under the registry's lock a write
//! path may arm the timer, which takes the timer's inbox mutex for a push;
//! the timer thread calls [`Registry::expire`] with its own mutex released.

use crate::details::{Detail, Details};
use crate::frame::{ErrorCode, FrameError, PerfValue, Registration};
use crate::message;
use crate::store::{
    Announcement, Definition, Durable, Interner, Kind, LiveState, Record, ServiceState, Silence,
    StoreCmd, Timestamp,
};
use crate::timer::{Deadline, Due, TimerHandle};
pub use policy::PolicyConfig;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

mod policy;

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
    /// The availability a service's last announcement gives it.
    pub fn of(state: &ServiceState) -> Availability {
        match &state.last {
            None => Availability::Unknown,
            Some(last) if last.available => Availability::Available,
            Some(_) => Availability::NotAvailable,
        }
    }

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
    /// Its definition and owner (none: not adopted yet).
    pub definition: Definition,
    /// Announced availability.
    pub availability: Availability,
    /// Announced status index.
    pub status: u64,
    /// Time since the last ping this process saw (none: not since start-up).
    pub last_ping_age: Option<Duration>,
    /// When the announced state last changed (RFC 3339), if ever.
    pub last_change: Option<String>,
    /// What its latest ping said about the status, if anything.
    pub detail: Option<Detail>,
    /// Its silence, while one lasts.
    pub silence: Option<Silence>,
    /// A service it depends on that is not available now, if any: its own
    /// events are held meanwhile.
    pub suppressed_by: Option<Arc<str>>,
    /// Whether it is flapping (its changes are held).
    pub flapping: bool,
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

/// What the registry starts from: the services of the replayed state file.
pub struct Restored {
    /// Services by id, as the state file left them.
    pub services: HashMap<Arc<str>, ServiceState>,
    /// The shared status lists and owners of their definitions.
    pub interner: Interner,
    /// The `seq` the next announcement gets.
    pub next_seq: u64,
}

/// One service.
struct Service {
    /// Its definition and last announcement: what the state file says.
    saved: ServiceState,
    /// When it was last pinged, as a [`stamp`]. Atomic so that a ping that
    /// changes nothing else needs only the read lock.
    last_ping: AtomicU64,
    /// Generation of this service's live timer entry; 0 when none.
    timer_generation: u64,
}

impl Service {
    fn new(saved: ServiceState) -> Service {
        Service {
            saved,
            last_ping: AtomicU64::new(NEVER),
            timer_generation: 0,
        }
    }

    fn id(&self) -> &Arc<str> {
        &self.saved.definition.service
    }

    fn availability(&self) -> Availability {
        Availability::of(&self.saved)
    }

    /// The announced status index.
    fn status(&self) -> u64 {
        self.saved.last.as_ref().map_or(0, |last| last.status)
    }

    fn timeout(&self) -> Duration {
        self.saved.definition.timeout()
    }

    /// Its announced (available, status).
    fn state(&self) -> (bool, u64) {
        self.saved
            .last
            .as_ref()
            .map_or((false, 0), |last| (last.available, last.status))
    }

    /// Its silence, if one lasts at `now_unix`.
    fn silence(&self, now_unix: u64) -> Option<&Silence> {
        self.saved
            .policy
            .as_ref()?
            .silence
            .as_ref()
            .filter(|s| s.until > now_unix)
    }

    /// Whether a ping from `identity` with `status` would change nothing
    /// but the last ping time (and no change waits for confirmation).
    fn ping_changes_nothing(&self, status: u64, identity: &str) -> bool {
        self.saved
            .last
            .as_ref()
            .is_some_and(|last| last.available && last.status == status)
            && self.saved.definition.owner.as_deref() == Some(identity)
            && self
                .saved
                .policy
                .as_ref()
                .is_none_or(|p| p.candidate.is_none())
    }

    fn view(&self, epoch: Instant, now: Instant) -> ServiceView {
        ServiceView {
            definition: self.saved.definition.clone(),
            availability: self.availability(),
            status: self.status(),
            last_ping_age: self
                .last_ping(epoch)
                .map(|t| now.saturating_duration_since(t)),
            last_change: self
                .saved
                .last
                .as_ref()
                .filter(|last| !last.at.is_empty())
                .map(|last| last.at.to_string()),
            detail: None,
            silence: self.silence(policy::unix_now()).cloned(),
            suppressed_by: None,
            flapping: self
                .saved
                .policy
                .as_ref()
                .is_some_and(|p| p.flapping.is_some()),
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
        Record::Register(self.saved.definition.clone())
    }

    /// Counts a ping towards a change of state that needs `confirm`
    /// consecutive pings (`unchanged`: the ping confirms the state there
    /// is). True when the ping's state is to be announced now.
    fn confirmed(&mut self, unchanged: bool, status: u64) -> bool {
        let confirm = self.saved.definition.policy().confirm.unwrap_or(1);
        if unchanged || confirm <= 1 {
            if let Some(policy) = &mut self.saved.policy {
                policy.candidate = None;
            }
            self.saved.tidy();
            return true;
        }
        let policy = self.saved.policy();
        let count = match policy.candidate {
            Some((true, candidate, n)) if candidate == status => n + 1,
            _ => 1,
        };
        if count >= confirm {
            policy.candidate = None;
            self.saved.tidy();
            true
        } else {
            policy.candidate = Some((true, status, count));
            false
        }
    }

    /// Refuses a frame from an identity that doesn't own the service, and
    /// adopts the service for `identity` when it has no owner yet. Returns
    /// whether it was adopted (the new owner must be written down).
    fn authorize(&mut self, identity: &str, interner: &mut Interner) -> Result<bool, FrameError> {
        match &self.saved.definition.owner {
            Some(owner) if **owner == *identity => Ok(false),
            Some(owner) => Err(FrameError::new(
                ErrorCode::Forbidden,
                format!(
                    "service {} belongs to certificate identity {owner:?}, not {identity:?}; \
                     use that agent's certificate or another service id",
                    self.id()
                ),
            )),
            None => {
                self.saved.definition.owner = Some(interner.owner(identity));
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

/// The expiry timer as the registry uses it: each arming gets a new
/// generation, so that the entries a re-arming leaves behind are ignored.
struct Timers {
    handle: TimerHandle,
    next_generation: u64,
}

impl Timers {
    /// A deadline for `service` at `at`, with a new generation.
    fn deadline(&mut self, service: &Arc<str>, at: Instant, due: Due) -> Deadline {
        Deadline {
            at,
            service: service.clone(),
            generation: take(&mut self.next_generation),
            due,
        }
    }

    /// Asks the timer to look at `service` at `at`; returns the generation
    /// to keep in the service.
    fn arm(&mut self, service: &Arc<str>, at: Instant, due: Due) -> u64 {
        let deadline = self.deadline(service, at, due);
        let generation = deadline.generation;
        self.handle.arm(deadline);
        generation
    }
}

/// What the lock guards.
struct Inner {
    /// What ping times are measured from (start-up).
    epoch: Instant,
    services: HashMap<Arc<str>, Service>,
    next_seq: u64,
    timers: Timers,
    interner: Interner,
    store: Sender<StoreCmd>,
    /// The services' latest details (behind locks of their own, so that
    /// the read side of the registry's lock can update them).
    details: Details,
    /// The notification policy's defaults.
    policy: PolicyConfig,
    /// For each service id, the registered services that name it in
    /// `depends_on` (the id itself may not be registered).
    dependents: HashMap<Arc<str>, Vec<Arc<str>>>,
}

/// The error of a write path whose records can't reach the store writer.
fn writer_stopped() -> FrameError {
    FrameError::new(ErrorCode::Internal, "the state file writer has stopped")
}

/// Takes the next value of a counter (an announcement `seq`).
fn take(counter: &mut u64) -> u64 {
    let value = *counter;
    *counter += 1;
    value
}

impl Inner {
    /// Queues a command for the store writer. Called with the write lock
    /// held, so the store sees commands in the order things happened.
    fn send(&self, cmd: StoreCmd) -> Result<(), FrameError> {
        self.store.send(cmd).map_err(|_| writer_stopped())
    }

    /// Records a ping that changes nothing but the time of the last ping
    /// (the common case), under the read lock. `false`: anything else,
    /// which [`Inner::ping`] applies under the write lock.
    fn ping_unchanged(&self, ping: &Ping<'_>, identity: &str, now: Instant) -> bool {
        match self.services.get(ping.service) {
            Some(service) if service.ping_changes_nothing(ping.status, identity) => {
                service.pinged(stamp(self.epoch, now));
                self.details.set(ping.service, ping.detail, ping.perfdata);
                true
            }
            _ => false,
        }
    }

    /// Registers or redefines a service for `identity`: authorize, redefine
    /// or insert, arm the timer. Returns what the store must make durable
    /// before the agent hears `ok`.
    fn register(
        &mut self,
        registration: Registration,
        identity: &str,
        limits: Limits,
        ack: Sender<Durable>,
    ) -> Result<StoreCmd, FrameError> {
        self.check_cycle(&registration)?;
        let Some(service) = self.services.get_mut(registration.service.as_str()) else {
            let record = self.insert(registration, identity, limits)?;
            return Ok(StoreCmd::Append {
                records: vec![record],
                ack: Some(ack),
            });
        };
        let adopted = service.authorize(identity, &mut self.interner)?;
        let old = &service.saved.definition;
        if !adopted
            && old.timeout_s == registration.timeout_s
            && *old.statuses == *registration.statuses
            && *old.policy() == registration.policy
        {
            // Nothing changes; the agent still hears `ok` only once the
            // earlier registration is on disk.
            return Ok(StoreCmd::Barrier(ack));
        }
        let old_timeout = service.timeout();
        let old_parents = old.policy().depends_on.clone();
        let definition = Definition {
            service: service.id().clone(),
            timeout_s: registration.timeout_s,
            statuses: self.interner.statuses(&registration.statuses),
            owner: old.owner.clone(),
            policy: self.interner.policy(&registration.policy),
        };
        service.saved.redefine(definition);
        if service.timeout() != old_timeout && service.availability() == Availability::Available {
            let at = service.last_ping(self.epoch).unwrap_or(self.epoch) + service.timeout();
            service.timer_generation = self.timers.arm(service.id(), at, Due::Expiry);
        }
        let (id, record) = (service.id().clone(), service.record());
        self.unlink(&id, &old_parents);
        self.link(&id, &registration.policy.depends_on);
        Ok(StoreCmd::Append {
            records: vec![record],
            ack: Some(ack),
        })
    }

    /// Refuses a registration whose `depends_on` would make a cycle
    /// (`bad_frame`, naming it).
    fn check_cycle(&self, registration: &Registration) -> Result<(), FrameError> {
        let me = registration.service.as_str();
        // Depth first from each parent, along the registered definitions.
        let mut stack: Vec<Vec<&str>> = registration
            .policy
            .depends_on
            .iter()
            .map(|p| vec![me, p.as_str()])
            .collect();
        let mut seen = std::collections::HashSet::new();
        while let Some(path) = stack.pop() {
            let Some(&at) = path.last() else { continue };
            if at == me {
                return Err(FrameError::new(
                    ErrorCode::BadFrame,
                    format!("depends_on makes a cycle: {}", path.join(" → ")),
                ));
            }
            if !seen.insert(at) {
                continue;
            }
            if let Some(service) = self.services.get(at) {
                for parent in &service.saved.definition.policy().depends_on {
                    let mut next = path.clone();
                    next.push(parent.as_str());
                    stack.push(next);
                }
            }
        }
        Ok(())
    }

    /// Notes that `id` depends on `parents`.
    fn link(&mut self, id: &Arc<str>, parents: &[String]) {
        for parent in parents {
            let children = self
                .dependents
                .entry(Arc::from(parent.as_str()))
                .or_default();
            if !children.contains(id) {
                children.push(id.clone());
            }
        }
    }

    /// Forgets that `id` depends on `parents`.
    fn unlink(&mut self, id: &str, parents: &[String]) {
        for parent in parents {
            if let Some(children) = self.dependents.get_mut(parent.as_str()) {
                children.retain(|child| &**child != id);
                if children.is_empty() {
                    self.dependents.remove(parent.as_str());
                }
            }
        }
    }

    /// Adds a new service owned by `identity`; returns its record.
    fn insert(
        &mut self,
        registration: Registration,
        identity: &str,
        limits: Limits,
    ) -> Result<Record, FrameError> {
        if self.services.len() >= limits.max_services {
            return Err(FrameError::new(
                ErrorCode::Busy,
                format!(
                    "procjon holds its maximum of {} services (--max-services); try again later",
                    limits.max_services
                ),
            ));
        }
        let id: Arc<str> = Arc::from(registration.service);
        let service = Service::new(ServiceState {
            definition: Definition {
                service: id.clone(),
                timeout_s: registration.timeout_s,
                statuses: self.interner.statuses(&registration.statuses),
                owner: Some(self.interner.owner(identity)),
                policy: self.interner.policy(&registration.policy),
            },
            last: None,
            policy: None,
        });
        let record = service.record();
        self.link(&id, &registration.policy.depends_on);
        self.services.insert(id, service);
        Ok(record)
    }

    /// Applies a ping from `identity` received at `now`: authorize, check
    /// the status, announce availability and a status change, arm the
    /// timer, hand the records to the store. Announcements are also pushed
    /// to `announced`, for logging once the lock is released.
    fn ping(
        &mut self,
        ping: &Ping<'_>,
        identity: &str,
        now: Instant,
        announced: &mut Vec<Arc<Announcement>>,
    ) -> Result<(), FrameError> {
        let (service_id, status) = (ping.service, ping.status);
        let Some(service) = self.services.get_mut(service_id) else {
            return Err(FrameError::new(
                ErrorCode::NotRegistered,
                format!("service {service_id} is not registered; send a register frame first"),
            ));
        };
        let adopted = service.authorize(identity, &mut self.interner)?;
        let count = service.saved.definition.status_count();
        if status >= count {
            return Err(FrameError::new(
                ErrorCode::BadStatus,
                format!(
                    "status {status} is out of range: {service_id} has {count} statuses (0 to {})",
                    count - 1
                ),
            ));
        }
        service.pinged(stamp(self.epoch, now));
        self.details.set(service_id, ping.detail, ping.perfdata);
        let was_available = service.availability() == Availability::Available;
        let old_status = service.status();
        let mut records = Vec::with_capacity(3);
        if adopted {
            records.push(service.record());
        }
        if !service.confirmed(was_available && old_status == status, status) {
            // A change that waits for more pings: nothing to say yet.
            return self.send_records(records, announced);
        }
        let id = service.id().clone();
        if !was_available {
            let deadline = now + service.timeout();
            service.timer_generation = self.timers.arm(&id, deadline, Due::Expiry);
            let text = message::available(service_id);
            self.emit(
                service_id,
                Kind::Available,
                (true, old_status),
                text,
                true,
                &mut records,
            );
        }
        if old_status != status {
            let definition = &self
                .services
                .get(service_id)
                .map(|s| s.saved.definition.clone());
            if let Some(definition) = definition {
                let text = message::status_changed(
                    service_id,
                    &definition.status_name(status),
                    &definition.status_name(old_status),
                    ping.detail,
                );
                self.emit(
                    service_id,
                    Kind::StatusChanged,
                    (true, status),
                    text,
                    true,
                    &mut records,
                );
            }
        }
        if !was_available {
            self.release_dependents(&id, now, &mut records);
        }
        self.send_records(records, announced)
    }

    /// Hands `records` to the store, and their announcements to `announced`
    /// for logging.
    fn send_records(
        &self,
        records: Vec<Record>,
        announced: &mut Vec<Arc<Announcement>>,
    ) -> Result<(), FrameError> {
        if records.is_empty() {
            return Ok(());
        }
        announced.extend(records.iter().filter_map(|r| match r {
            Record::Announce(a) => Some(a.clone()),
            _ => None,
        }));
        self.send(StoreCmd::Append { records, ack: None })
    }
}

/// All registered services. See the module docs for the locking rules.
pub struct Registry {
    inner: RwLock<Inner>,
    limits: Limits,
    /// Largest registered timeout, in milliseconds (for the idle deadline).
    longest_timeout_ms: AtomicU64,
    /// When reminders were last looked for (Unix seconds): each sweep
    /// sends those that came due since.
    last_sweep: AtomicU64,
}

/// How long a register waits for the state file before answering `internal`.
const DURABLE_WAIT: Duration = Duration::from_secs(30);

impl Registry {
    /// Builds the registry from the replayed state file. Services announced
    /// available get their full timeout from `started`.
    pub fn new(
        restored: Restored,
        store: Sender<StoreCmd>,
        timer: TimerHandle,
        started: Instant,
        limits: Limits,
        policy: PolicyConfig,
    ) -> Registry {
        let mut timers = Timers {
            handle: timer,
            next_generation: 1,
        };
        let mut services = HashMap::with_capacity(restored.services.len());
        let available = restored
            .services
            .values()
            .filter(|s| Availability::of(s) == Availability::Available)
            .count();
        let mut deadlines = Vec::with_capacity(available);
        let mut longest = Duration::ZERO;
        for (id, saved) in restored.services {
            let mut service = Service::new(saved);
            longest = longest.max(service.timeout());
            if service.availability() == Availability::Available {
                // No ping since start-up: its timeout runs from the epoch
                // (start-up), and the API shows no last ping.
                let deadline = timers.deadline(&id, started + service.timeout(), Due::Expiry);
                service.timer_generation = deadline.generation;
                deadlines.push(deadline);
            }
            services.insert(id, service);
        }
        timers.handle.arm_all(deadlines);
        let mut inner = Inner {
            epoch: started,
            services,
            next_seq: restored.next_seq.max(1),
            timers,
            interner: restored.interner,
            store,
            details: Details::default(),
            policy,
            dependents: HashMap::new(),
        };
        let mut links = Vec::new();
        let mut waiting = Vec::new();
        for (id, service) in &inner.services {
            let parents = &service.saved.definition.policy().depends_on;
            if !parents.is_empty() {
                links.push((id.clone(), parents.clone()));
            }
            if service.saved.policy.is_some() {
                waiting.push(id.clone());
            }
        }
        for (id, parents) in links {
            inner.link(&id, &parents);
        }
        // Silences (ended ones too: they are told now) and flapping.
        for id in waiting {
            inner.arm_policy(&id, started);
        }
        let sweep = inner.sweep_every();
        inner
            .timers
            .arm(&Arc::from(""), started + sweep, Due::Reminders);
        Registry {
            inner: RwLock::new(inner),
            limits,
            longest_timeout_ms: AtomicU64::new(longest.as_millis() as u64),
            last_sweep: AtomicU64::new(policy::unix_now()),
        }
    }

    /// The write lock, for anything that changes the registry. A panicking
    /// connection thread must not wedge the daemon; the state under the lock
    /// is updated field by field and stays consistent.
    fn lock(&self) -> RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// The read lock: for reports, copies and pings that change nothing but
    /// their service's last ping time.
    fn read(&self) -> RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers or redefines a service for `identity`; returns once it is
    /// on disk.
    pub fn register(&self, registration: Registration, identity: &str) -> Result<(), FrameError> {
        let timeout = registration.timeout();
        let (ack, durable) = mpsc::channel();
        {
            let mut inner = self.lock();
            let cmd = inner.register(registration, identity, self.limits, ack)?;
            inner.send(cmd)?;
        }
        self.longest_timeout_ms
            .fetch_max(timeout.as_millis() as u64, Ordering::Relaxed);
        wait_durable(&durable, "registration")
    }

    /// Records a ping from `identity`. Announces availability and status changes.
    pub fn ping(&self, ping: &Ping<'_>, identity: &str) -> Result<(), FrameError> {
        self.ping_batch(Instant::now()).ping(ping, identity)
    }

    /// Retires a service for `identity`, its owner: announces it, forgets
    /// it, and returns once that is on disk.
    pub fn unregister(
        &self,
        service_id: &str,
        reason: Option<&str>,
        identity: &str,
    ) -> Result<(), FrameError> {
        let (ack, durable) = mpsc::channel();
        let text = {
            let mut guard = self.lock();
            let inner = &mut *guard;
            let Some(service) = inner.services.get_mut(service_id) else {
                return Err(FrameError::new(
                    ErrorCode::NotRegistered,
                    format!("service {service_id} is not registered; nothing to unregister"),
                ));
            };
            service.authorize(identity, &mut inner.interner)?;
            let text = message::unregistered(service_id, identity, reason);
            let state = (false, service.status());
            let parents = service.saved.definition.policy().depends_on.clone();
            let mut records = Vec::with_capacity(2);
            inner.emit(
                service_id,
                Kind::Unregistered,
                state,
                text.clone(),
                false,
                &mut records,
            );
            inner.services.remove(service_id);
            inner.details.remove(service_id);
            inner.unlink(service_id, &parents);
            records.push(Record::Remove {
                service: service_id.to_string(),
            });
            inner.send(StoreCmd::Append {
                records,
                ack: Some(ack),
            })?;
            text
        };
        log::info!("{text}");
        wait_durable(&durable, "unregistration")
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
        let mut announced = Vec::new();
        let next = self.expire_inner(service_id, generation, now, &mut announced);
        log_announcements(&announced);
        next
    }

    fn expire_inner(
        &self,
        service_id: &str,
        generation: u64,
        now: Instant,
        announced: &mut Vec<Arc<Announcement>>,
    ) -> Option<Instant> {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let epoch = inner.epoch;
        let service = inner.services.get_mut(service_id)?;
        if service.timer_generation != generation
            || service.availability() != Availability::Available
        {
            return None;
        }
        // Available without a ping since start-up: restored from the state
        // file, its full timeout counts from start-up.
        let last_ping = service.last_ping(epoch).unwrap_or(epoch);
        let deadline = last_ping + service.timeout();
        if now < deadline {
            return Some(deadline);
        }
        service.timer_generation = 0;
        let state = (false, service.status());
        let dependents = inner.dependents_of(service_id).len();
        let text = message::not_available_with_dependents(service_id, now - last_ping, dependents);
        let mut records = Vec::with_capacity(2);
        inner.emit(
            service_id,
            Kind::NotAvailable,
            state,
            text,
            true,
            &mut records,
        );
        if let Err(err) = inner.send_records(records, announced) {
            log::error!("{service_id}: {err}");
        }
        None
    }

    /// Called by the timer when `service_id`'s policy needs looking at (a
    /// silence ends, flapping may be over); returns when to look again.
    pub fn policy_due(&self, service_id: &str, generation: u64, now: Instant) -> Option<Instant> {
        let mut announced = Vec::new();
        let next = {
            let mut inner = self.lock();
            let current = inner
                .services
                .get(service_id)?
                .saved
                .policy
                .as_ref()?
                .timer_generation;
            if current != generation {
                return None;
            }
            let mut records = Vec::new();
            let next = inner.policy_due(service_id, now, &mut records);
            if let Err(err) = inner.send_records(records, &mut announced) {
                log::error!("{service_id}: {err}");
            }
            next
        };
        log_announcements(&announced);
        next
    }

    /// Called by the timer for the reminder sweep: sends the reminders that
    /// came due since the last one; returns when to sweep again.
    pub fn remind(&self, now: Instant) -> Option<Instant> {
        let now_unix = policy::unix_now();
        let since = self.last_sweep.swap(now_unix, Ordering::Relaxed);
        let (due, every) = {
            let inner = self.read();
            (inner.due_reminders(since, now_unix), inner.sweep_every())
        };
        if !due.is_empty() {
            let mut announced = Vec::new();
            {
                let mut inner = self.lock();
                let mut records = Vec::new();
                for (id, state, text) in due {
                    inner.emit(&id, Kind::Reminder, state, text, false, &mut records);
                }
                if let Err(err) = inner.send_records(records, &mut announced) {
                    log::error!("reminders: {err}");
                }
            }
            log_announcements(&announced);
        }
        Some(now + every)
    }

    /// Silences `target` (a service id, or `*`: every service `identity`
    /// owns) for `length`, for `identity` (`None`: the local HTTP API, which
    /// may silence any service, as `by`). Returns once it is on disk.
    pub fn silence(
        &self,
        target: &str,
        length: Duration,
        reason: Option<&str>,
        identity: Option<&str>,
        by: &str,
    ) -> Result<(), FrameError> {
        self.for_targets(target, identity, "silence", |inner, id, records| {
            // Whole seconds, as the state file writes times.
            let until = policy::unix_now() + (length.as_secs_f64().round() as u64).max(1);
            let by = inner.interner.owner(by);
            inner.silence(id, until, &by, reason, records);
        })
    }

    /// Ends the silence of `target` (an id or `*`) now, for `identity`
    /// (`None`: the local HTTP API). Returns once it is on disk.
    pub fn unsilence(&self, target: &str, identity: Option<&str>) -> Result<(), FrameError> {
        self.for_targets(target, identity, "unsilence", |inner, id, records| {
            inner.end_silence(id, Instant::now(), records);
        })
    }

    /// Applies `change` to each service `target` names that `identity` may
    /// change, and waits until the records are on disk.
    fn for_targets(
        &self,
        target: &str,
        identity: Option<&str>,
        what: &str,
        mut change: impl FnMut(&mut Inner, &str, &mut Vec<Record>),
    ) -> Result<(), FrameError> {
        let (ack, durable) = mpsc::channel();
        let mut announced = Vec::new();
        {
            let mut guard = self.lock();
            let inner = &mut *guard;
            let ids: Vec<Arc<str>> = if target == "*" {
                let mine: Vec<Arc<str>> = inner
                    .services
                    .values()
                    .filter(|s| {
                        identity.is_none_or(|me| s.saved.definition.owner.as_deref() == Some(me))
                    })
                    .map(|s| s.id().clone())
                    .collect();
                if mine.is_empty() {
                    return Err(FrameError::new(
                        ErrorCode::NotRegistered,
                        format!(
                            "{} owns no services; nothing to {what}",
                            identity.unwrap_or("nobody")
                        ),
                    ));
                }
                mine
            } else {
                let Some(service) = inner.services.get_mut(target) else {
                    return Err(FrameError::new(
                        ErrorCode::NotRegistered,
                        format!("service {target} is not registered; nothing to {what}"),
                    ));
                };
                if let Some(identity) = identity {
                    service.authorize(identity, &mut inner.interner)?;
                }
                vec![service.id().clone()]
            };
            let mut records = Vec::new();
            for id in &ids {
                change(inner, id, &mut records);
            }
            announced.extend(records.iter().filter_map(|r| match r {
                Record::Announce(a) => Some(a.clone()),
                _ => None,
            }));
            inner.send(StoreCmd::Append {
                records,
                ack: Some(ack),
            })?;
        }
        log_announcements(&announced);
        wait_durable(&durable, what)
    }

    /// A copy of every service's state, sorted by id. The lock is held only
    /// to copy reference-counted definitions.
    pub fn snapshot(&self) -> Vec<ServiceView> {
        let now = Instant::now();
        let mut views: Vec<ServiceView> = {
            let inner = self.read();
            let mut details = inner.details.all();
            inner
                .services
                .values()
                .map(|s| {
                    let mut view = s.view(inner.epoch, now);
                    view.detail = details.remove(&**s.id());
                    view.suppressed_by = inner.suppressed_by(s);
                    view
                })
                .collect()
        };
        views.sort_by(|a, b| a.definition.service.cmp(&b.definition.service));
        views
    }

    /// A copy of one service's state.
    pub fn get(&self, service_id: &str) -> Option<ServiceView> {
        let now = Instant::now();
        let inner = self.read();
        inner.services.get(service_id).map(|s| {
            let mut view = s.view(inner.epoch, now);
            view.detail = inner.details.get(service_id);
            view.suppressed_by = inner.suppressed_by(s);
            view
        })
    }

    /// Announces something about procjon itself (it is back after being
    /// down, its certificate expires): an announcement with the empty
    /// service id, which no service can have.
    pub fn announce_self(&self, text: String) {
        let mut inner = self.lock();
        let announcement = Arc::new(Announcement {
            seq: take(&mut inner.next_seq),
            service: Arc::from(""),
            available: true,
            status: 0,
            text: text.into_boxed_str(),
            at: Timestamp::now(),
            kind: Kind::Procjon,
            held: None,
            subject: None,
        });
        let sent = inner.send(StoreCmd::Append {
            records: vec![Record::Announce(announcement)],
            ack: None,
        });
        drop(inner);
        if let Err(err) = sent {
            log::error!("announcing: {err}");
        }
    }

    /// What the channel last saw of each service (its last posted
    /// announcement that says its state), oldest first.
    pub fn channel_seen(&self) -> Vec<Arc<Announcement>> {
        let inner = self.read();
        let mut seen: Vec<Arc<Announcement>> = inner
            .services
            .values()
            .filter_map(|s| {
                let held = s.saved.policy.as_ref().and_then(|p| p.seen.as_ref());
                held.or(s.saved.last.as_ref()).cloned()
            })
            .filter(|a| a.is_posted())
            .collect();
        seen.sort_by_key(|a| a.seq);
        seen
    }

    /// How many services are registered, and how many of them are not
    /// available.
    pub fn summary(&self) -> (usize, usize) {
        let inner = self.read();
        let down = inner
            .services
            .values()
            .filter(|s| s.availability() == Availability::NotAvailable)
            .count();
        (inner.services.len(), down)
    }

    /// The largest timeout any service has registered (since start-up).
    pub fn longest_timeout(&self) -> Duration {
        Duration::from_millis(self.longest_timeout_ms.load(Ordering::Relaxed))
    }
}

impl LiveState for Registry {
    fn live_lines(&self) -> u64 {
        let inner = self.read();
        inner
            .services
            .values()
            .map(|s| if s.saved.last.is_some() { 3 } else { 1 })
            .sum()
    }

    fn send_states(&self) {
        // The read lock keeps every write path out: no record can be sent
        // between the copy and the command.
        let inner = self.read();
        let states = inner.services.values().map(|s| s.saved.clone()).collect();
        let _ = inner.store.send(StoreCmd::Compact(states));
    }
}

/// Waits for the store writer to say `what` (a registration) is on disk.
fn wait_durable(durable: &Receiver<Durable>, what: &str) -> Result<(), FrameError> {
    match durable.recv_timeout(DURABLE_WAIT) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(err)) => Err(FrameError::new(
            ErrorCode::Internal,
            format!("{what} not saved: {err}; try again later"),
        )),
        Err(_) => Err(FrameError::new(
            ErrorCode::Internal,
            format!("{what} not saved: the state file did not answer in time; try again later"),
        )),
    }
}

/// Pings applied under one hold of the registry's read lock. A connection
/// applies all the pings of one read through one batch: one lock per read
/// instead of one per ping (the lock's cache line moving between cores was
/// most of a ping's cost). A ping that changes nothing but its service's
/// last ping time, nearly all of them, is done under the read lock, so
/// connection threads don't wait for each other; any other ping lets go of
/// it and takes the write lock for itself. The read lock is taken at the
/// first ping and held until the batch is dropped; announcements are logged
/// then, never under a lock.
pub struct PingBatch<'a> {
    registry: &'a Registry,
    shared: Option<RwLockReadGuard<'a, Inner>>,
    now: Instant,
    announced: Vec<Arc<Announcement>>,
}

impl PingBatch<'_> {
    /// Records a ping from `identity`, as [`Registry::ping`] does.
    pub fn ping(&mut self, ping: &Ping<'_>, identity: &str) -> Result<(), FrameError> {
        let registry = self.registry;
        let shared = self.shared.get_or_insert_with(|| registry.read());
        if shared.ping_unchanged(ping, identity, self.now) {
            return Ok(());
        }
        self.shared = None;
        registry
            .lock()
            .ping(ping, identity, self.now, &mut self.announced)
    }
}

/// A ping as the registry applies it, borrowed from the frame.
#[derive(Debug, Clone, Copy)]
pub struct Ping<'a> {
    /// The service id.
    pub service: &'a str,
    /// The status index.
    pub status: u64,
    /// What the agent says about the status.
    pub detail: Option<&'a str>,
    /// Performance data that came with it.
    pub perfdata: &'a [PerfValue],
}

impl Drop for PingBatch<'_> {
    /// Releases the read lock, if held, then logs what was announced.
    fn drop(&mut self) {
        self.shared = None;
        log_announcements(&self.announced);
    }
}

/// Logs announcements at info level, once no lock is held; a held one says
/// why it was not posted.
fn log_announcements(announced: &[Arc<Announcement>]) {
    for announcement in announced {
        match announcement.held {
            None => log::info!("{}", announcement.text),
            Some(held) => log::info!("{} (held: {held:?})", announcement.text),
        }
    }
}
