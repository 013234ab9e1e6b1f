//! Request bodies: size limit, content type and JSON decoding, with the
//! documented error for each failure.

use actix_web::HttpRequest;
use actix_web::http::header;
use actix_web::web::{Bytes, BytesMut, Payload};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// Reads the whole body, refusing more than `limit` bytes as soon as it is
/// exceeded (the rest is not buffered).
pub async fn read(mut payload: Payload, limit: usize) -> Result<Bytes, ApiError> {
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::Malformed(format!("could not read the body: {e}")))?;
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

/// Decodes a JSON body. Wrong content type: 415; not JSON, or JSON of the
/// wrong shape (types, unknown fields): 400.
pub fn json<T: DeserializeOwned>(req: &HttpRequest, bytes: &[u8]) -> Result<T, ApiError> {
    match media_type(req).as_deref() {
        Some("application/json") => {}
        _ => return Err(ApiError::UnsupportedMediaType("application/json")),
    }
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::Malformed(format!("invalid JSON body: {e}")))?;
    // serde would also read a struct from an array; the API takes objects only.
    if !value.is_object() {
        return Err(ApiError::Malformed("the body must be a JSON object".into()));
    }
    serde_json::from_value(value).map_err(|e| ApiError::Malformed(format!("invalid request: {e}")))
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
