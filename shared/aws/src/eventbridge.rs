//! [`EventBridgePublisher`]: the event publisher port on Amazon EventBridge.

use async_trait::async_trait;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use media_core::notify::{MediaEvent, SOURCE};
use media_core::ports::{EventPublisher, PublishError};

/// A `PutEvents` that EventBridge accepted as a call but refused an entry of.
#[derive(Debug, thiserror::Error)]
#[error("EventBridge refused the event: {code}: {message}")]
struct EntryRefused {
    code: String,
    message: String,
}

/// [`EventPublisher`] on an EventBridge bus (`None`: the account's default bus).
#[derive(Debug, Clone)]
pub struct EventBridgePublisher {
    client: aws_sdk_eventbridge::Client,
    bus: Option<String>,
}

impl EventBridgePublisher {
    /// The publisher to `bus` (the default bus when `None`).
    pub fn new(client: aws_sdk_eventbridge::Client, bus: Option<String>) -> Self {
        Self { client, bus }
    }
}

#[async_trait]
impl EventPublisher for EventBridgePublisher {
    async fn publish(&self, event: &MediaEvent) -> Result<(), PublishError> {
        let detail = serde_json::to_string(&event.detail).map_err(|e| PublishError {
            source: Box::new(e),
        })?;
        let entry = PutEventsRequestEntry::builder()
            .source(SOURCE)
            .detail_type(event.change.detail_type())
            .detail(detail)
            .resources(format!("media/{}", event.detail.fields.id))
            .set_event_bus_name(self.bus.clone())
            .build();
        let out = self
            .client
            .put_events()
            .entries(entry)
            .send()
            .await
            .map_err(|e| PublishError {
                source: Box::new(e),
            })?;
        // PutEvents answers 200 and reports refused entries in the body.
        if let Some(refused) = out.entries().iter().find(|e| e.error_code().is_some()) {
            return Err(PublishError {
                source: Box::new(EntryRefused {
                    code: refused.error_code().unwrap_or_default().to_owned(),
                    message: refused.error_message().unwrap_or_default().to_owned(),
                }),
            });
        }
        Ok(())
    }
}
