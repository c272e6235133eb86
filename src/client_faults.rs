//! What a client causes is never an ERROR in our log. actix-http logs at
//! ERROR whatever ends a connection badly: a malformed header, a reset, a
//! client that stops reading. Those are the client's doing and page no
//! one: the log layer below hears them as one INFO line each instead.

use std::any::TypeId;
use std::fmt;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

/// Where actix-http reads and writes a connection: every ERROR there is
/// about what the peer sent or did (our own failures surface as responses).
const CONNECTION_MODULES: [&str; 2] = ["actix_http::h1::dispatcher", "actix_http::h1::decoder"];

fn is_client_fault(metadata: &Metadata<'_>) -> bool {
    *metadata.level() == Level::ERROR
        && CONNECTION_MODULES
            .iter()
            .any(|module| metadata.target().starts_with(module))
}

/// Wraps the log output layer, so that it prints a client's fault as INFO.
pub struct DemoteClientFaults<L>(pub L);

#[derive(Default)]
struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

impl<S: Subscriber, L: Layer<S>> Layer<S> for DemoteClientFaults<L> {
    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        if !is_client_fault(event.metadata()) {
            return self.0.on_event(event, ctx);
        }
        let mut message = Message::default();
        event.record(&mut message);
        // Dispatched afresh: it comes back here as an ordinary event.
        tracing::info!(
            target: "conduit::connection",
            cause = %message.0,
            "a client connection ended on a protocol or network error"
        );
    }

    fn on_register_dispatch(&self, subscriber: &tracing::Dispatch) {
        self.0.on_register_dispatch(subscriber)
    }
    fn on_layer(&mut self, subscriber: &mut S) {
        self.0.on_layer(subscriber)
    }
    fn register_callsite(
        &self,
        metadata: &'static Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        self.0.register_callsite(metadata)
    }
    fn enabled(&self, metadata: &Metadata<'_>, ctx: Context<'_, S>) -> bool {
        self.0.enabled(metadata, ctx)
    }
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        self.0.on_new_span(attrs, id, ctx)
    }
    fn on_record(&self, span: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        self.0.on_record(span, values, ctx)
    }
    fn on_follows_from(&self, span: &Id, follows: &Id, ctx: Context<'_, S>) {
        self.0.on_follows_from(span, follows, ctx)
    }
    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        self.0.on_enter(id, ctx)
    }
    fn on_exit(&self, id: &Id, ctx: Context<'_, S>) {
        self.0.on_exit(id, ctx)
    }
    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        self.0.on_close(id, ctx)
    }
    fn on_id_change(&self, old: &Id, new: &Id, ctx: Context<'_, S>) {
        self.0.on_id_change(old, new, ctx)
    }
    unsafe fn downcast_raw(&self, id: TypeId) -> Option<*const ()> {
        if id == TypeId::of::<Self>() {
            Some(self as *const Self as *const ())
        } else {
            // SAFETY: the wrapped layer answers for its own types.
            unsafe { self.0.downcast_raw(id) }
        }
    }
}
