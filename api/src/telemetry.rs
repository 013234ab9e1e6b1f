//! Structured logs through tracing: readable text by default, JSON with
//! `--log-format json`. Logs carry ids and amounts, never names, resident
//! IDs, diagnoses or request bodies.

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt as _};
use tracing_subscriber::util::SubscriberInitExt as _;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Where actix-web's HTTP/1 layer logs a connection it dropped.
const HTTP_DISPATCHER: &str = "actix_http::h1::dispatcher";

/// actix-http logs at ERROR a connection it closed because of the client (a
/// request it could not parse, a NUL in a header, a head too large, a read
/// that timed out) as "stream error: ...". Those are not server errors:
/// they are taken out of the log here and said again by [`HttpLayerErrors`].
fn is_http_layer_error(metadata: &Metadata<'_>) -> bool {
    metadata.target() == HTTP_DISPATCHER && *metadata.level() == Level::ERROR
}

/// Says the HTTP layer's errors again under `puhui::http`: a client's
/// fault as a WARN, anything else as the ERROR it was. tracing drops an
/// event sent from inside another one, so the line is written here, in the
/// format of the rest of the log.
struct HttpLayerErrors<W> {
    format: LogFormat,
    writer: W,
}

struct Message<'a>(&'a mut String);

impl Visit for Message<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            use std::fmt::Write as _;
            let _ = write!(self.0, "{value:?}");
        }
    }
}

impl<S, W> Layer<S> for HttpLayerErrors<W>
where
    S: Subscriber,
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + 'static,
{
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        if !is_http_layer_error(event.metadata()) {
            return;
        }
        let mut error = String::new();
        event.record(&mut Message(&mut error));
        let (level, message) =
            if error.starts_with("stream error") || error.starts_with("write zero") {
                (
                    "WARN",
                    "connection closed: the client's request could not be read",
                )
            } else {
                ("ERROR", "HTTP layer error")
            };
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        let line = match self.format {
            LogFormat::Text => format!("{now} {level:>5} puhui::http: {message} error={error}\n"),
            LogFormat::Json => format!(
                "{}\n",
                serde_json::json!({
                    "timestamp": now, "level": level, "target": "puhui::http",
                    "message": message, "error": error,
                })
            ),
        };
        use std::io::Write as _;
        let _ = self.writer.make_writer().write_all(line.as_bytes());
    }
}

fn layers<S>(format: LogFormat) -> impl Layer<S>
where
    S: Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    let output = match format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_writer(std::io::stderr)
            .boxed(),
    };
    output.with_filter(filter_fn(|metadata| !is_http_layer_error(metadata)))
}

/// Installs the global subscriber, writing to stderr. `RUST_LOG` overrides
/// the default level (`info`).
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // A second init (e.g. in tests) keeps the first subscriber.
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(layers(format))
        .with(HttpLayerErrors {
            format,
            writer: std::io::stderr,
        })
        .try_init();
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_clients_unreadable_request_is_a_warning_not_an_error() {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::registry()
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(false)
                    .with_writer(move || writer.clone())
                    .with_filter(filter_fn(|metadata| !is_http_layer_error(metadata))),
            )
            .with(HttpLayerErrors {
                format: LogFormat::Text,
                writer: {
                    let writer = buffer.clone();
                    move || writer.clone()
                },
            });
        tracing::subscriber::with_default(subscriber, || {
            tracing::error!(target: "actix_http::h1::dispatcher", "stream error: {}", "request parse error: invalid Header provided");
            tracing::error!(target: "actix_http::h1::dispatcher", "Upgrade handler error: {}", "boom");
            tracing::error!(target: "puhui::error", "internal error");
        });
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(
            lines[0].contains("WARN") && lines[0].contains("invalid Header"),
            "{text}"
        );
        assert!(!lines[0].contains("ERROR"), "{text}");
        assert!(
            lines[1].contains("ERROR") && lines[1].contains("Upgrade handler"),
            "{text}"
        );
        assert!(
            lines[2].contains("ERROR") && lines[2].contains("internal error"),
            "{text}"
        );
        assert!(!text.contains("actix_http"), "{text}");
    }
}
