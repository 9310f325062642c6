//! The portal, embedded in the binary: `static/index.html` at `/`, the API docs (`static/docs.html`,
//! Swagger UI vendored under `static/vendor/`) at `/docs`, their scripts and styles under `/portal/`.

use actix_web::{get, web, HttpResponse};
use rust_embed::Embed;

#[derive(Embed)]
#[folder = "static/"]
struct Portal;

/// The pages, each served at its own path rather than under `/portal/`.
const PAGES: [&str; 2] = ["index.html", "docs.html"];

/// The content type of a portal file, by its extension; None for a kind the portal does not
/// ship (answered 404, like a missing file).
fn content_type(path: &str) -> Option<&'static str> {
    let name = path.rsplit('/').next().unwrap_or(path);
    Some(match name.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json" | "map") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        // The vendored libraries' LICENSE files and their README.
        Some("md" | "txt") | None => "text/plain; charset=utf-8",
        Some(_) => return None,
    })
}

/// Whether `path` names a file below `static/`: relative segments of plain names only (no
/// `..`, no `.`, no empty segment, no backslash), so that nothing outside the folder is
/// reachable, also where rust-embed reads the folder from disk (debug builds).
fn is_plain_path(path: &str) -> bool {
    !path.is_empty()
        && !path.contains('\\')
        && path
            .split('/')
            .all(|segment| !segment.is_empty() && segment != "." && segment != "..")
}

fn serve(path: &str) -> HttpResponse {
    match (Portal::get(path), content_type(path)) {
        (Some(file), Some(content_type)) => HttpResponse::Ok()
            .content_type(content_type)
            // The files change only with the binary; the page revalidates them on load.
            .insert_header(("cache-control", "no-cache"))
            .body(file.data.into_owned()),
        _ => HttpResponse::NotFound().finish(),
    }
}

/// The portal's page: every view, switched by the URL's fragment (`/#records`).
#[utoipa::path(get, path = "/", tag = "portal",
    responses((status = 200, description = "The portal's page", body = String, content_type = "text/html")))]
#[get("/")]
pub async fn index() -> HttpResponse {
    serve("index.html")
}

/// Interactive API docs: Swagger UI (vendored, served from the binary) over `/openapi.json`,
/// with try-it-out against this gateway; nothing is loaded from elsewhere.
#[utoipa::path(get, path = "/docs", tag = "portal",
    responses((status = 200, description = "The API docs page", body = String, content_type = "text/html")))]
#[get("/docs")]
pub async fn docs() -> HttpResponse {
    serve("docs.html")
}

/// The portal's scripts, styles and vendored libraries (`/portal/app.js`,
/// `/portal/vendor/swagger-ui/swagger-ui-bundle.js`). `path` may span folders; a path that
/// leaves `static/` or names a page is 404.
#[utoipa::path(get, path = "/portal/{path}", tag = "portal",
    params(("path" = String, Path, description = "A file below the portal's folder, e.g. `app.js` or `vendor/swagger-ui/swagger-ui.css`")),
    responses(
        (status = 200, description = "The file, with its content type", content(
            (String = "text/javascript"), (String = "text/css"), (serde_json::Value = "application/json"),
            (String = "image/svg+xml"), (String = "image/png"), (String = "text/plain"))),
        (status = 404, description = "No such file"),
    ))]
#[get("/portal/{path:.*}")]
pub async fn asset(path: web::Path<String>) -> HttpResponse {
    let path = path.into_inner();
    if !is_plain_path(&path) || PAGES.contains(&path.as_str()) {
        return HttpResponse::NotFound().finish();
    }
    serve(&path)
}

#[cfg(test)]
mod tests {
    use super::{content_type, is_plain_path};

    #[test]
    fn only_plain_relative_paths_are_served() {
        for ok in [
            "app.js",
            "vendor/swagger-ui/swagger-ui.css",
            "vendor/README.md",
        ] {
            assert!(is_plain_path(ok), "{ok}");
        }
        for bad in [
            "",
            "..",
            "../Cargo.toml",
            "vendor/../../Cargo.toml",
            "./app.js",
            "vendor//x.js",
            "/etc/passwd",
            "vendor\\..\\x",
            "vendor/",
        ] {
            assert!(!is_plain_path(bad), "{bad}");
        }
    }

    #[test]
    fn each_shipped_kind_has_its_content_type() {
        assert_eq!(
            content_type("a/b.js"),
            Some("text/javascript; charset=utf-8")
        );
        assert_eq!(content_type("x.css.map"), Some("application/json"));
        assert_eq!(
            content_type("vendor/swagger-ui/LICENSE"),
            Some("text/plain; charset=utf-8")
        );
        assert_eq!(
            content_type("v.1/LICENSE"),
            Some("text/plain; charset=utf-8")
        );
        assert_eq!(content_type("x.exe"), None);
    }
}
