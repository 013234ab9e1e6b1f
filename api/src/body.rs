//! Request bodies: size limit, content type and JSON decoding, with the
//! documented error for each failure.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::HttpRequest;
use actix_web::dev;
use actix_web::error::PayloadError;
use actix_web::http::header;
use actix_web::rt::time::Sleep;
use actix_web::web::{Bytes, BytesMut, Payload};
use futures_util::{Stream, StreamExt};
use serde::de::{self, DeserializeOwned, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};

use crate::error::ApiError;

/// A request body that must arrive whole before its deadline: past it the
/// stream ends in a time-out error, so a client sending one byte a second
/// cannot hold a connection and a handler open. Every request's payload is
/// wrapped in one (see `server::body_deadline`).
pub struct DeadlinePayload {
    inner: UnreadBody,
    deadline: Pin<Box<Sleep>>,
    expired: bool,
}

/// The connection's end of a request body, shared so that the server can
/// hold it until the response is sent. While it is held, the HTTP layer
/// closes the connection after the response instead of draining a body
/// the handler never read (which a client could make last for ever).
#[derive(Clone)]
pub struct UnreadBody(Rc<RefCell<dev::Payload>>, Rc<std::cell::Cell<bool>>);

impl UnreadBody {
    /// Whether the body was read to its end.
    pub fn finished(&self) -> bool {
        self.1.get()
    }
}

impl DeadlinePayload {
    pub fn new(inner: dev::Payload, within: Duration) -> (Self, UnreadBody) {
        let shared = UnreadBody(
            Rc::new(RefCell::new(inner)),
            Rc::new(std::cell::Cell::new(false)),
        );
        let payload = DeadlinePayload {
            inner: shared.clone(),
            deadline: Box::pin(actix_web::rt::time::sleep(within)),
            expired: false,
        };
        (payload, shared)
    }
}

impl Stream for DeadlinePayload {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.expired {
            return Poll::Ready(None);
        }
        let polled = Pin::new(&mut *self.inner.0.borrow_mut()).poll_next(cx);
        if let Poll::Ready(item) = polled {
            if item.is_none() {
                self.inner.1.set(true);
            }
            return Poll::Ready(item);
        }
        match self.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => {
                self.expired = true;
                Poll::Ready(Some(Err(PayloadError::Io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    BODY_DEADLINE_PASSED,
                )))))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

const BODY_DEADLINE_PASSED: &str = "the request body did not arrive in time";

/// Reads the whole body, refusing more than `limit` bytes as soon as it is
/// exceeded (the rest is not buffered).
pub async fn read(mut payload: Payload, limit: usize) -> Result<Bytes, ApiError> {
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| match e {
            PayloadError::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => {
                ApiError::BodyTimeout
            }
            other => ApiError::Malformed(format!("could not read the body: {other}")),
        })?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// The media type of the request without parameters, lower-cased.
pub fn media_type(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
}

/// Reads a JSON body within `limit` bytes and decodes it: what every
/// handler that takes a JSON request does, with the errors in that order
/// (413 for size, then 415 for the content type, then 400).
pub async fn read_json<T: DeserializeOwned>(
    req: &HttpRequest,
    payload: Payload,
    limit: usize,
) -> Result<T, ApiError> {
    let bytes = read(payload, limit).await?;
    json(req, &bytes)
}

/// Decodes a JSON body. Wrong content type: 415; not JSON, or JSON of the
/// wrong shape (types, unknown fields): 400.
pub fn json<T: DeserializeOwned>(req: &HttpRequest, bytes: &[u8]) -> Result<T, ApiError> {
    match media_type(req).as_deref() {
        Some("application/json") => {}
        _ => return Err(ApiError::UnsupportedMediaType("application/json")),
    }
    let Strict(value) = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::Malformed(format!("invalid JSON body: {e}")))?;
    // serde would also read a struct from an array; the API takes objects only.
    if !value.is_object() {
        return Err(ApiError::Malformed("the body must be a JSON object".into()));
    }
    serde_path_to_error::deserialize(value).map_err(shape_error)
}

/// A JSON object of the wrong shape: a problem with one field (its type or
/// value, or a field missing) is a field-level 422 naming it, wherever it
/// is; anything else about the shape (an unknown field) is a 400.
fn shape_error(error: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let path = error.path().to_string();
    let message = error.inner().to_string();
    // serde names a missing or unknown field in its message, at the path of
    // the object that lacks or has it.
    let named = |prefix: &str| {
        message
            .strip_prefix(prefix)
            .and_then(|rest| rest.split('`').next())
            .map(str::to_owned)
    };
    let join = |name: String| {
        if path == "." {
            name
        } else {
            format!("{path}.{name}")
        }
    };
    let (field, code) = if let Some(name) = named("missing field `") {
        (join(name), "missing_field")
    } else if path != "." && named("unknown field `").is_none() {
        (path, "invalid_type")
    } else {
        return ApiError::Malformed(format!("invalid request: {message}"));
    };
    // serde_path_to_error writes array positions as `items[0]`, as the
    // domain's validation does.
    ApiError::Validation(engine::domain::ValidationErrors::single(
        field, code, message,
    ))
}

/// A JSON value that refuses an object with the same key twice, at any
/// depth. `serde_json::Value` would silently keep the last one, so a body
/// with `"member_id"` twice would mean one thing to a proxy or log reader
/// that takes the first and another to this server.
struct Strict(serde_json::Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = serde_json::Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(v.into())
    }

    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(v.into())
    }

    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(v.into())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        serde_json::Number::from_f64(v)
            .map(serde_json::Value::Number)
            .ok_or_else(|| E::custom("a number that is not finite"))
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(v.into())
    }

    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(v.into())
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(serde_json::Value::Null)
    }

    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(serde_json::Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Strict(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(serde_json::Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut object = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let Strict(value) = map.next_value()?;
            if object.contains_key(&key) {
                return Err(de::Error::custom(format!("duplicate key `{key}`")));
            }
            object.insert(key, value);
        }
        Ok(serde_json::Value::Object(object))
    }
}

/// The `Idempotency-Key` header as the OpenAPI document shows it, with the
/// bounds [`idempotency_key`] checks.
pub struct IdempotencyKeyHeader;

impl utoipa::IntoParams for IdempotencyKeyHeader {
    fn into_params(
        _: impl Fn() -> Option<utoipa::openapi::path::ParameterIn>,
    ) -> Vec<utoipa::openapi::path::Parameter> {
        use utoipa::openapi::Type;
        use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
        use utoipa::openapi::schema::ObjectBuilder;
        let max = engine::store::idempotency::MAX_KEY_LENGTH;
        let schema = ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1))
            .max_length(Some(max))
            .pattern(Some(format!("^[!-~]{{1,{max}}}$")));
        vec![
            ParameterBuilder::new()
                .name("Idempotency-Key")
                .parameter_in(ParameterIn::Header)
                .required(utoipa::openapi::Required::True)
                .description(Some(format!(
                    "Client-chosen key: 1 to {max} printable ASCII characters, no spaces. \
                     A retry with the same key and body gets the first answer again."
                )))
                .schema(Some(schema))
                .build(),
        ]
    }
}

/// The `Idempotency-Key` header, required on every mutating call.
pub fn idempotency_key(req: &HttpRequest) -> Result<String, ApiError> {
    let value = req
        .headers()
        .get("Idempotency-Key")
        .ok_or_else(|| ApiError::Malformed("the Idempotency-Key header is required".into()))?;
    let key = value
        .to_str()
        .map_err(|_| ApiError::Malformed("the Idempotency-Key header must be ASCII".into()))?;
    engine::store::idempotency::check_key(key).map_err(|e| ApiError::Malformed(e.into()))?;
    Ok(key.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strict(text: &str) -> Result<serde_json::Value, String> {
        serde_json::from_str::<Strict>(text)
            .map(|Strict(v)| v)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn strict_json_is_serde_json_without_duplicate_keys() {
        for text in [
            r#"{"a": 1, "b": [true, null, -2, 18446744073709551615, 1.5, "x"], "c": {"d": {}}}"#,
            "[]",
            r#""text""#,
            "0.1",
        ] {
            let plain: serde_json::Value = serde_json::from_str(text).unwrap();
            assert_eq!(strict(text), Ok(plain), "{text}");
        }
        assert!(
            strict(r#"{"a": 1, "a": 2}"#)
                .unwrap_err()
                .contains("duplicate key `a`")
        );
        assert!(strict(r#"{"items": [{"total": "1", "total": "2"}]}"#).is_err());
        assert!(strict(&format!("{}{}", "[".repeat(200), "]".repeat(200))).is_err());
    }
}
