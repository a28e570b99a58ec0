//! One shared copy of equal status lists, owners, policies and
//! announcement subjects. Most services of a
//! deployment register the same few status lists (every agent of a kind has
//! the same) under the same few certificate identities; the replay and the
//! registry hand each definition the shared copy instead of its own.
//!
//! Copies nobody else holds any more are dropped now and then, so a peer
//! that keeps registering new status lists can't grow the sets for ever.

use super::{Definition, Subject};
use crate::frame::Policy;
use std::collections::HashSet;
use std::sync::Arc;

/// The shared copies. Owned by the replay, then by the registry (under its
/// write lock).
#[derive(Debug, Default)]
pub struct Interner {
    statuses: HashSet<Arc<[String]>>,
    owners: HashSet<Arc<str>>,
    policies: HashSet<Arc<Policy>>,
    subjects: HashSet<Arc<Subject>>,
    /// The subjects handed out last, looked at before anything is
    /// allocated: a replay asks for one per announcement, and a deployment
    /// has few.
    recent: Vec<Arc<Subject>>,
    /// Set sizes at which unused copies are dropped next.
    prune_at: usize,
}

/// How many recent subjects are looked at before the set.
const RECENT: usize = 8;

/// Least set size before unused copies are looked for.
const PRUNE_FLOOR: usize = 64;

impl Interner {
    /// The shared copy of `statuses`.
    pub fn statuses(&mut self, statuses: &[String]) -> Arc<[String]> {
        if let Some(shared) = self.statuses.get(statuses) {
            return shared.clone();
        }
        self.prune();
        let shared: Arc<[String]> = Arc::from(statuses);
        self.statuses.insert(shared.clone());
        shared
    }

    /// The shared copy of owner `identity`.
    pub fn owner(&mut self, identity: &str) -> Arc<str> {
        if let Some(shared) = self.owners.get(identity) {
            return shared.clone();
        }
        self.prune();
        let shared: Arc<str> = Arc::from(identity);
        self.owners.insert(shared.clone());
        shared
    }

    /// The shared copy of `policy`, or none for the default one.
    pub fn policy(&mut self, policy: &Policy) -> Option<Arc<Policy>> {
        if policy.is_default() {
            return None;
        }
        if let Some(shared) = self.policies.get(policy) {
            return Some(shared.clone());
        }
        self.prune();
        let shared = Arc::new(policy.clone());
        self.policies.insert(shared.clone());
        Some(shared)
    }

    /// The shared copy of `subject`.
    pub fn subject(&mut self, subject: Subject) -> Arc<Subject> {
        if let Some(shared) = self.subjects.get(&subject) {
            return shared.clone();
        }
        self.prune();
        let shared = Arc::new(subject);
        self.subjects.insert(shared.clone());
        shared
    }

    /// The subject of an announcement about a service owned by `owner`
    /// whose status `status` is called so, and that changed it from
    /// `previous` when given: the shared copy.
    pub fn subject_of(
        &mut self,
        owner: Option<&Arc<str>>,
        status: &str,
        previous: Option<&str>,
    ) -> Arc<Subject> {
        let same = |s: &Subject| {
            s.owner.as_deref() == owner.map(|o| &**o)
                && s.status.as_deref() == Some(status)
                && s.previous_status.as_deref() == previous
        };
        if let Some(hit) = self.recent.iter().find(|s| same(s)) {
            return hit.clone();
        }
        let subject = self.subject(Subject {
            owner: owner.cloned(),
            status: Some(Arc::from(status)),
            previous_status: previous.map(Arc::from),
        });
        if self.recent.len() == RECENT {
            self.recent.remove(0);
        }
        self.recent.push(subject.clone());
        subject
    }

    /// Replaces `definition`'s status list, owner and policy with the
    /// shared copies.
    pub fn share(&mut self, definition: &mut Definition) {
        definition.statuses = self.statuses(&definition.statuses);
        if let Some(owner) = &definition.owner {
            definition.owner = Some(self.owner(owner));
        }
        if let Some(policy) = &definition.policy {
            definition.policy = self.policy(policy);
        }
    }

    /// Drops the copies only the sets hold, once the sets have doubled
    /// since the last time: amortized constant work per insert.
    fn prune(&mut self) {
        if self.len() < self.prune_at.max(PRUNE_FLOOR) {
            return;
        }
        self.statuses.retain(|s| Arc::strong_count(s) > 1);
        self.owners.retain(|o| Arc::strong_count(o) > 1);
        self.policies.retain(|p| Arc::strong_count(p) > 1);
        self.subjects.retain(|s| Arc::strong_count(s) > 1);
        self.prune_at = 2 * self.len();
    }

    /// How many copies the sets hold.
    fn len(&self) -> usize {
        self.statuses.len() + self.owners.len() + self.policies.len() + self.subjects.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_lists_share_one_copy_and_unused_ones_go() {
        let mut interner = Interner::default();
        let a = interner.statuses(&["ok".into(), "bad".into()]);
        let b = interner.statuses(&["ok".into(), "bad".into()]);
        assert!(Arc::ptr_eq(&a, &b));
        assert!(Arc::ptr_eq(
            &interner.owner("team"),
            &interner.owner("team")
        ));
        // Many lists nobody keeps: the set stays small.
        for i in 0..10_000 {
            drop(interner.statuses(&[format!("s{i}")]));
        }
        assert!(
            interner.statuses.len() < 2 * PRUNE_FLOOR,
            "{}",
            interner.statuses.len()
        );
        // The one still held survives every pruning.
        assert!(interner.statuses.contains(&a));
    }
}
