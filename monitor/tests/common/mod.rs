//! A small shop, and what its services would publish for one order, by
//! hand: for the tests that watch the monitor on a broker.

#![allow(dead_code, clippy::unwrap_used)]

use choreo_compiler::{check, CheckedSpec, SourceFile};
use choreo_monitor::Flow;
use choreo_runtime::broker::SharedBroker;
use choreo_runtime::progress::{Completion, CompletionOutcome, EmittedEvent, ProgressNotice};
use choreo_runtime::service::Topics;
use choreo_runtime::Envelope;

/// One command, one event, one terminal event, one participant.
pub const SPEC: &str = r#"
choreography Shop {
    key order_id: uuid
    command PlaceOrder { }
    event OrderPlaced { }
    @terminal event Completed { }
    participant Orders {
        on PlaceOrder -> OrderPlaced
        on OrderPlaced -> Completed
    }
}
"#;

/// The shop, checked.
pub fn spec() -> CheckedSpec {
    check(&SourceFile::new("shop.choreo", SPEC))
        .into_checked()
        .unwrap()
        .0
}

/// Publishes as the shop's services would, under `topics`.
pub struct Publisher {
    pub broker: SharedBroker,
    pub flow: Flow,
    pub topics: Topics,
}

impl Publisher {
    pub fn wire(&self, name: &str) -> String {
        self.flow
            .messages
            .values()
            .find(|m| m.name == name)
            .unwrap()
            .wire
            .clone()
    }

    pub async fn event(&self, key: &str, name: &str, id: &str, cause: Option<&str>) {
        let ty = self.wire(name);
        let mut b = Envelope::builder(ty.clone(), key.to_owned()).id(id.to_owned());
        if let Some(c) = cause {
            b = b.causation_id(c.to_owned());
        }
        self.broker
            .publish(&self.topics.for_type(&ty), b.build())
            .await
            .unwrap();
    }

    /// The progress notice of Orders: it handled `trigger` (id, name) and
    /// emitted `emitted` (id, name).
    pub async fn handled(&self, key: &str, trigger: (&str, &str), emitted: (&str, &str)) {
        let ty = self.wire(trigger.1);
        let reaction = self
            .flow
            .reactions
            .iter()
            .find(|r| r.triggers.contains(&ty))
            .unwrap()
            .name
            .clone();
        let notice = ProgressNotice {
            choreography: "Shop".into(),
            participant: "Orders".into(),
            completions: vec![Completion {
                reaction: reaction.into(),
                instance: key.to_owned().into(),
                event_id: trigger.0.to_owned().into(),
                event_type: ty.into(),
                outcome: CompletionOutcome::Handled,
                emitted: [EmittedEvent {
                    id: emitted.0.to_owned().into(),
                    ty: self.wire(emitted.1).into(),
                }]
                .into_iter()
                .collect(),
            }],
        };
        let env = Envelope::of("Shop".to_owned(), notice).build();
        self.broker
            .publish(&self.topics.progress("Shop"), env)
            .await
            .unwrap();
    }

    /// The start of order `key`: its command.
    pub async fn command(&self, key: &str) {
        self.event(key, "PlaceOrder", &format!("{key}-c"), None)
            .await;
    }

    /// The rest of order `key` after its command: to `Completed` (`done`)
    /// or stopped after `OrderPlaced`.
    pub async fn rest(&self, key: &str, done: bool) {
        let id = |s: &str| format!("{key}-{s}");
        self.handled(key, (&id("c"), "PlaceOrder"), (&id("p"), "OrderPlaced"))
            .await;
        self.event(key, "OrderPlaced", &id("p"), Some(&id("c")))
            .await;
        if done {
            self.handled(key, (&id("p"), "OrderPlaced"), (&id("d"), "Completed"))
                .await;
            self.event(key, "Completed", &id("d"), Some(&id("p"))).await;
        }
    }

    /// One order to `Completed` (`done`) or stopped after `OrderPlaced`.
    pub async fn order(&self, key: &str, done: bool) {
        self.command(key).await;
        self.rest(key, done).await;
    }
}
