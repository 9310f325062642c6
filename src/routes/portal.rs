//! The portal, embedded in the binary.

use actix_web::{get, HttpResponse};
use rust_embed::Embed;

#[derive(Embed)]
#[folder = "static/"]
struct Portal;

/// The portal's start page.
#[get("/")]
pub async fn index() -> HttpResponse {
    match Portal::get("index.html") {
        Some(file) => HttpResponse::Ok()
            .content_type("text/html; charset=utf-8")
            .body(file.data.into_owned()),
        None => HttpResponse::NotFound().finish(),
    }
}
