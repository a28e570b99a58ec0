//! The latest detail of each service that has one: what a ping said about
//! its status, for people (a plugin's first output line, `exit 3 after
//! 12m`) and the performance data that came with it. Held apart from the
//! registry's services because most services never send one, and updated
//! on the ping fast path (under the registry's read lock) behind small
//! locks of its own, split by service id so that connection threads rarely
//! meet. Lock order: registry, then one shard. Not persisted: after a
//! restart a service's detail comes back with its next ping.

use crate::frame::PerfValue;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

/// One service's detail.
#[derive(Debug, Clone, PartialEq)]
pub struct Detail {
    /// The text.
    pub text: Option<String>,
    /// The performance data.
    pub perfdata: Vec<PerfValue>,
}

/// Locks the details are split over.
const SHARDS: usize = 8;

/// Every service's latest detail.
#[derive(Debug, Default)]
pub struct Details {
    shards: [Mutex<HashMap<Box<str>, Detail>>; SHARDS],
    /// How many services have a detail: pings without one skip the locks
    /// while none has.
    count: AtomicUsize,
}

impl Details {
    fn shard(&self, service: &str) -> &Mutex<HashMap<Box<str>, Detail>> {
        // FNV-1a: cheap, and spreads ids that differ in their last bytes.
        let hash = service.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        &self.shards[(hash % SHARDS as u64) as usize]
    }

    /// Records what a ping of `service` said; no detail at all forgets the
    /// one it had. Allocates only when the detail changed.
    pub fn set(&self, service: &str, text: Option<&str>, perfdata: &[PerfValue]) {
        if text.is_none() && perfdata.is_empty() {
            if self.count.load(Ordering::Relaxed) > 0 {
                self.remove(service);
            }
            return;
        }
        let mut shard = self
            .shard(service)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match shard.get_mut(service) {
            Some(detail) if detail.text.as_deref() == text && detail.perfdata == perfdata => {}
            Some(detail) => {
                detail.text = text.map(String::from);
                detail.perfdata = perfdata.to_vec();
            }
            None => {
                shard.insert(
                    Box::from(service),
                    Detail {
                        text: text.map(String::from),
                        perfdata: perfdata.to_vec(),
                    },
                );
                self.count.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Forgets `service`'s detail.
    pub fn remove(&self, service: &str) {
        let removed = self
            .shard(service)
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(service);
        if removed.is_some() {
            self.count.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// `service`'s detail, if it has one.
    pub fn get(&self, service: &str) -> Option<Detail> {
        self.shard(service)
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(service)
            .cloned()
    }

    /// A copy of every detail, for a report about all services.
    pub fn all(&self) -> HashMap<Box<str>, Detail> {
        let mut all = HashMap::with_capacity(self.count.load(Ordering::Relaxed));
        for shard in &self.shards {
            let shard = shard.lock().unwrap_or_else(PoisonError::into_inner);
            all.extend(shard.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_latest_and_forgets_on_none() {
        let details = Details::default();
        details.set("a", None, &[]);
        assert_eq!(details.get("a"), None);
        details.set("a", Some("disk low"), &[]);
        details.set("b", Some("fine"), &[]);
        assert_eq!(details.get("a").unwrap().text.as_deref(), Some("disk low"));
        details.set("a", Some("disk full"), &[]);
        assert_eq!(details.all().len(), 2);
        assert_eq!(details.get("a").unwrap().text.as_deref(), Some("disk full"));
        details.set("a", None, &[]);
        assert_eq!(details.get("a"), None);
        details.remove("b");
        assert_eq!(details.count.load(Ordering::Relaxed), 0);
    }
}
