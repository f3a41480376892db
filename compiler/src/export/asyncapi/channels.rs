//! One channel per event and command, keyed by its name and addressed as
//! the runtime names its topic on the broker.

use super::document::{Channel, Reference};
use super::{extensions, message_key, Context};
use indexmap::IndexMap;

/// The channels, in the spec's order of messages.
pub(crate) fn channels(cx: &Context) -> IndexMap<String, Channel> {
    let spec = cx.spec;
    spec.message_ids()
        .map(|id| {
            let message = spec.message(id);
            let key = message_key(spec, id);
            let topic = cx.topic(id);
            let channel = Channel {
                address: cx.options.broker.address(topic),
                description: extensions::docs(&message.docs),
                messages: IndexMap::from([(
                    key.clone(),
                    Reference::local(format!("/components/messages/{key}")),
                )]),
                extensions: extensions::channel(cx, message, topic),
            };
            (key, channel)
        })
        .collect()
}

/// A reference to the channel of the message named `key`.
pub(crate) fn reference(key: &str) -> Reference {
    Reference::local(format!("/channels/{key}"))
}

/// A reference to the one message of that channel.
pub(crate) fn message_reference(key: &str) -> Reference {
    Reference::local(format!("/channels/{key}/messages/{key}"))
}
