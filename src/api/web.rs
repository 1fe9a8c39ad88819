//! The web UI's files (`web/`, embedded with rust-embed): the entry page at `/` and the assets
//! under `/assets/`.
//!
//! There is no build step, so asset names carry no content hash. Instead the entry page names
//! them under a version folder, `/assets/<build id>/js/app.js`, where the build id is a hash of
//! every embedded file: those URLs change whenever any file does, so they are cached for a
//! year (`immutable`), while the entry page itself is `no-cache`. ES modules import each other
//! with relative paths, so they stay inside the same version folder. An asset asked for without
//! the version folder is still served, with `no-cache`; one under another build's id is a 404
//! (a stale page reloads the entry page and gets the new id).

use std::sync::OnceLock;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::{ApiError, AppState};

#[derive(rust_embed::Embed)]
#[folder = "web/"]
struct WebAssets;

/// Where the entry page writes the versioned asset folder (`__ASSETS__/js/app.js`).
const ASSETS_PLACEHOLDER: &str = "__ASSETS__";
const ENTRY_PAGE: &str = "index.html";
const LONG_CACHE: &str = "public, max-age=31536000, immutable";
const NO_CACHE: &str = "no-cache";

/// A hash of every embedded file's path and content: the asset version folder's name.
fn build_id() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| {
        let mut names: Vec<String> = WebAssets::iter().map(|name| name.into_owned()).collect();
        names.sort();
        let mut hasher = Sha256::new();
        for name in names {
            if let Some(file) = WebAssets::get(&name) {
                hasher.update(name.as_bytes());
                hasher.update(file.metadata.sha256_hash());
            }
        }
        let digest = hasher.finalize();
        digest[..6].iter().map(|b| format!("{b:02x}")).collect()
    })
}

/// `"<hex>"`: a strong validator for `If-None-Match`.
fn etag(hash: &[u8]) -> String {
    let hex: String = hash[..12].iter().map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

fn not_modified(request_headers: &HeaderMap, tag: &str) -> bool {
    request_headers
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.split(',').any(|candidate| candidate.trim() == tag))
}

/// A file's body with its type, cache policy and ETag (or a 304 when the client has it).
fn file_response(
    request_headers: &HeaderMap,
    body: Vec<u8>,
    content_type: &str,
    cache: &'static str,
    tag: String,
) -> Response {
    let mut response = if not_modified(request_headers, &tag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        body.into_response()
    };
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(content_type) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if let Ok(value) = HeaderValue::from_str(&tag) {
        headers.insert(header::ETAG, value);
    }
    response
}

/// The UI's entry page; Elasticsearch clients asking for JSON get the info document instead.
pub async fn index_page(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(info) = super::ingest::es_info(&headers, &state.config.node_name) {
        return Ok(info);
    }
    let page = WebAssets::get(ENTRY_PAGE)
        .ok_or_else(|| ApiError::Internal("index.html is not embedded".into()))?;
    let html = String::from_utf8_lossy(&page.data)
        .replace(ASSETS_PLACEHOLDER, &format!("/assets/{}", build_id()));
    // The page's text depends on the build id, which hashes every file.
    let tag = etag(&Sha256::digest(html.as_bytes()));
    Ok(file_response(
        &headers,
        html.into_bytes(),
        "text/html; charset=utf-8",
        NO_CACHE,
        tag,
    ))
}

/// `GET /assets/{*path}`: a file of `web/`, long-cached under the current build id.
pub async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Response {
    let (file_path, cache) = match path.split_once('/') {
        Some((version, rest)) if version == build_id() => (rest, LONG_CACHE),
        // Another build's folder: its files may differ from ours, so none of them is served.
        Some((version, _)) if looks_like_build_id(version) => return asset_not_found(&path),
        _ => (path.as_str(), NO_CACHE),
    };
    // The entry page is only served at `/`, filled in.
    if file_path == ENTRY_PAGE {
        return asset_not_found(&path);
    }
    let Some(file) = WebAssets::get(file_path) else {
        return asset_not_found(&path);
    };
    file_response(
        &headers,
        file.data.into_owned(),
        content_type(file_path),
        cache,
        etag(&file.metadata.sha256_hash()),
    )
}

fn looks_like_build_id(segment: &str) -> bool {
    segment.len() == build_id().len() && segment.bytes().all(|b| b.is_ascii_hexdigit())
}

fn asset_not_found(path: &str) -> Response {
    ApiError::NotFound(format!("no asset {path:?}")).into_response()
}

/// Content types of the files the UI is made of (JavaScript modules must be served as
/// JavaScript, or browsers refuse them under `nosniff`).
fn content_type(path: &str) -> &'static str {
    let extension = path.rsplit_once('.').map(|(_, ext)| ext).unwrap_or("");
    match extension.to_ascii_lowercase().as_str() {
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "html" => "text/html; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "json" => "application/json",
        "txt" | "md" => "text/plain; charset=utf-8",
        "woff2" => "font/woff2",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modules_and_styles_get_their_types() {
        assert_eq!(content_type("js/app.js"), "text/javascript; charset=utf-8");
        assert_eq!(content_type("css/app.css"), "text/css; charset=utf-8");
        assert_eq!(content_type("favicon.svg"), "image/svg+xml");
        assert_eq!(content_type("LICENSE"), "application/octet-stream");
    }

    #[test]
    fn the_build_id_is_stable_hex() {
        assert_eq!(build_id(), build_id());
        assert!(looks_like_build_id(build_id()));
        assert!(!looks_like_build_id("js"));
    }
}
