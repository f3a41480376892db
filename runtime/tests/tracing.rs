//! Every handling runs in a span carrying the instance key and trace id.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use choreo_runtime::broker::IntoSharedBroker;
use choreo_runtime::service::{Emit, Reaction, ServiceDefinition, Trigger};
use choreo_runtime::{Envelope, MemoryBroker, Message, SharedBroker};
use common::*;

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn handler_logs_carry_the_span_with_correlation_and_trace() {
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    // A current-thread test runtime: the service task runs on this thread.
    let _guard = tracing::subscriber::set_default(subscriber);
    let broker: SharedBroker = MemoryBroker::new().into_shared();
    let service = start(
        &broker,
        ServiceDefinition::new("Shop", "Payment").reaction(Reaction::new(
            "charge",
            Trigger::any([OrderPlaced::TYPE]),
            |_ctx, _input| async {
                tracing::info!("charging the card");
                Ok(Emit::none())
            },
        )),
    )
    .await;
    let order = Envelope::of("order-77", OrderPlaced { amount: 1 }).build();
    client(&broker).send_envelope(order.clone()).await.unwrap();
    eventually("handled", || service.stats().handled == 1).await;
    service.shutdown().await.unwrap();
    let out = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    let line = out
        .lines()
        .find(|l| l.contains("charging the card"))
        .expect("the handler's log line");
    assert!(line.contains("choreo.handle"), "{line}");
    assert!(line.contains("correlation_id=order-77"), "{line}");
    assert!(line.contains("reaction=charge"), "{line}");
    let trace = order.traceparent().unwrap().trace_id_hex();
    assert!(line.contains(&format!("trace_id={trace}")), "{line}");
}
