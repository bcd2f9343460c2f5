//! Delivers S3 events from the local queue to the process handler, and runs the cleanup handler on a
//! timer: the two things AWS does for the deployed functions.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::types::{Message, MessageSystemAttributeName};
use lambda_runtime::{Context, LambdaEvent};
use media_core::MediaService;
use serde_json::Value;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::stack::LocalStack;

/// Attempts per event before it is dropped, as Lambda's async invocation tries three times.
const MAX_ATTEMPTS: u32 = 3;

/// Events handled at once by default: Lambda runs one invocation per event concurrently, so the
/// local stack does too (bounded, on a laptop), and load and race tests see what AWS would do.
pub const DEFAULT_CONCURRENCY: usize = 4;

/// Polls the queue until `stop` flips, handing each event to the process handler, at most
/// `concurrency` at once. A failed event is left on the queue and comes back after the visibility
/// timeout, up to [`MAX_ATTEMPTS`] times.
pub async fn deliver_events(
    service: MediaService,
    stack: LocalStack,
    concurrency: usize,
    mut stop: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut running = JoinSet::new();
    loop {
        if *stop.borrow() {
            break;
        }
        // Take messages only when a slot is free: a received message's visibility timeout runs.
        let first = tokio::select! {
            p = Arc::clone(&slots).acquire_owned() => p,
            _ = stop.changed() => break,
        };
        let Ok(first) = first else { break };
        let free = 1 + slots.available_permits().min(9);
        let receive = stack
            .sqs
            .receive_message()
            .queue_url(&stack.queue_url)
            .max_number_of_messages(i32::try_from(free).unwrap_or(1))
            .wait_time_seconds(1)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send();
        let received = tokio::select! {
            r = receive => r,
            _ = stop.changed() => break,
        };
        let messages = match received {
            Ok(out) => out.messages.unwrap_or_default(),
            Err(e) => {
                tracing::warn!(error = %e, "could not poll the event queue");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let mut first = Some(first);
        for message in messages {
            let slot = match first.take() {
                Some(p) => p,
                None => match Arc::clone(&slots).acquire_owned().await {
                    Ok(p) => p,
                    Err(_) => break,
                },
            };
            let (service, stack) = (service.clone(), stack.clone());
            running.spawn(async move {
                handle_message(&service, &stack, message).await;
                drop(slot);
            });
        }
        // Reap finished tasks so the set does not grow.
        while running.try_join_next().is_some() {}
    }
    // Let the events in flight finish (bounded), as Lambda lets an invocation run to its end.
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        while running.join_next().await.is_some() {}
    })
    .await;
}

async fn handle_message(service: &MediaService, stack: &LocalStack, message: Message) {
    let attempts: u32 = message
        .attributes()
        .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
        .and_then(|n| n.parse().ok())
        .unwrap_or(1);
    let payload: Value =
        serde_json::from_str(message.body().unwrap_or("null")).unwrap_or(Value::Null);
    let event = LambdaEvent::new(payload, Context::default());
    let done = match process::handler::handle(service, event).await {
        Ok(report) => {
            tracing::debug!(%report, "event processed");
            true
        }
        Err(e) if attempts >= MAX_ATTEMPTS => {
            tracing::error!(error = %e.error_message, attempts, "event dropped after its last attempt");
            true
        }
        Err(e) => {
            tracing::warn!(error = %e.error_message, attempts, "event failed; it will be retried");
            false
        }
    };
    if done
        && let Some(handle) = message.receipt_handle()
        && let Err(e) = stack
            .sqs
            .delete_message()
            .queue_url(&stack.queue_url)
            .receipt_handle(handle)
            .send()
            .await
    {
        tracing::warn!(error = %e, "could not delete a handled event");
    }
}

/// Runs the cleanup handler every `interval` until `stop` flips.
pub async fn cleanup_timer(
    service: MediaService,
    interval: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.tick().await; // the first tick is immediate: wait a full interval first
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.changed() => return,
        }
        let event = LambdaEvent::new(Value::Null, Context::default());
        if let Err(e) = cleanup::handler::handle(&service, event).await {
            tracing::error!(error = %e.error_message, "scheduled cleanup failed");
        }
    }
}
