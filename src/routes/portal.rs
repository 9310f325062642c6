//! The portal, embedded in the binary: `static/index.html` at `/`, its scripts and styles under `/portal/`.

use actix_web::{get, web, HttpResponse};
use rust_embed::Embed;

#[derive(Embed)]
#[folder = "static/"]
struct Portal;

/// The content type of a portal file, by its extension (the portal ships only these kinds).
fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        _ => "application/octet-stream",
    }
}

fn serve(path: &str) -> HttpResponse {
    match Portal::get(path) {
        Some(file) => HttpResponse::Ok()
            .content_type(content_type(path))
            // The files change only with the binary; the page revalidates them on load.
            .insert_header(("cache-control", "no-cache"))
            .body(file.data.into_owned()),
        None => HttpResponse::NotFound().finish(),
    }
}

/// The portal's page: every view, switched by the URL's fragment (`/#records`).
#[get("/")]
pub async fn index() -> HttpResponse {
    serve("index.html")
}

/// The portal's scripts and styles (`/portal/app.js`, `/portal/style.css`).
#[get("/portal/{file}")]
pub async fn asset(file: web::Path<String>) -> HttpResponse {
    let file = file.into_inner();
    if file.contains("..") || file == "index.html" {
        return HttpResponse::NotFound().finish();
    }
    serve(&file)
}
