//! The interactive API documentation, served from the binary alone: the
//! page and the Scalar API reference script it runs are embedded (see
//! `api/assets/README.md`), and the page reads `/openapi.json` from this
//! server. A content security policy keeps the browser from loading
//! anything from elsewhere.

use actix_web::http::header;
use actix_web::{HttpResponse, get};

const SCALAR_JS: &[u8] = include_bytes!("../../assets/scalar-api-reference.js");

const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Puhui API</title>
</head>
<body>
<div id="app"></div>
<script src="/docs/scalar-api-reference.js"></script>
<script>
Scalar.createApiReference('#app', {
  url: '/openapi.json',
  withDefaultFonts: false,
  telemetry: false,
  hideClientButton: true,
});
</script>
</body>
</html>
"#;

/// Only this server: scripts and styles are inline or from `/docs`, data
/// comes from `/openapi.json`.
const POLICY: &str = "default-src 'self'; script-src 'self' 'unsafe-inline'; \
    style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; \
    connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

#[get("/docs")]
pub async fn page() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CONTENT_SECURITY_POLICY, POLICY))
        .body(PAGE)
}

#[get("/docs/scalar-api-reference.js")]
pub async fn script() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=86400"))
        .body(SCALAR_JS)
}
