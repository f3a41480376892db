//! Topic names: one topic per wire type, under an optional prefix.

use std::collections::HashMap;
use std::sync::RwLock;

use crate::envelope::SharedStr;
use crate::sync::RecoverRw;

/// Where a choreography's messages travel. Every participant, client and
/// tracker of one deployment must use the same prefix.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Topics {
    prefix: String,
}

impl Topics {
    /// Topics under `prefix` (put in front of every name as is).
    pub fn new(prefix: impl Into<String>) -> Self {
        Topics {
            prefix: prefix.into(),
        }
    }
    /// The prefix in front of every topic.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }
    /// The topic of the events or commands of wire type `ty`.
    pub fn for_type(&self, ty: &str) -> String {
        format!("{}{ty}", self.prefix)
    }
    /// Whether topics are the type names themselves.
    pub(crate) fn is_unprefixed(&self) -> bool {
        self.prefix.is_empty()
    }
    /// [`Topics::for_type`], without a copy when there is no prefix.
    pub(crate) fn topic_of<'a>(&self, ty: &'a str) -> std::borrow::Cow<'a, str> {
        if self.is_unprefixed() {
            std::borrow::Cow::Borrowed(ty)
        } else {
            std::borrow::Cow::Owned(self.for_type(ty))
        }
    }
    /// The topic of the progress notices of `choreography`.
    pub fn progress(&self, choreography: &str) -> String {
        format!("{}choreo-progress.{choreography}", self.prefix)
    }
}

/// The topics of emitted types, worked out once per type.
pub(super) struct TopicCache {
    topics: Topics,
    cache: RwLock<HashMap<SharedStr, SharedStr, foldhash::fast::RandomState>>,
}

impl TopicCache {
    /// A cache of the topics `topics` gives.
    pub(super) fn new(topics: Topics) -> Self {
        TopicCache {
            topics,
            cache: RwLock::new(HashMap::default()),
        }
    }

    /// The topic of emitted type `ty`.
    pub(super) fn topic_for(&self, ty: &SharedStr) -> SharedStr {
        if self.topics.is_unprefixed() {
            return ty.clone();
        }
        if let Some(t) = self.cache.read_locked().get(ty) {
            return t.clone();
        }
        let topic = SharedStr::from(self.topics.for_type(ty));
        self.cache.write_locked().insert(ty.clone(), topic.clone());
        topic
    }
}
