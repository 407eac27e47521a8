//! The web page (issue 15 item 1): a lobby, a match you play, the history — plain
//! HTML/CSS/JS embedded in the binary (no build step, no CDN), served at `/`.
//!
//! | route | answer |
//! |---|---|
//! | `GET /` | the page (`index.html`; views by hash: `#/`, `#/match/{id}`, `#/history`, `#/history/{id}`) |
//! | `GET /web/app.js`, `GET /web/style.css` | its script and style |
//! | `GET /web/templates` | the match templates as JSON: `[{name, seats, humans, robots}]` |
//!
//! The page uses only the public API: `POST /matches` (with the player as a human, and
//! optional `responseWindowMs`/`votingWindowMs`), `POST /matches/{id}/players` (the
//! `playerToken` is kept in `localStorage` per match), `GET /matches/{id}/view` with the
//! token, the WebSocket `GET /matches/{id}/live?after=<sequence>` (no polling: the view is
//! fetched again when an event arrives; a dropped socket reconnects with backoff from the
//! last sequence seen), answers, votes, and `GET /matches/history[/{id}]`.
//!
//! ```no_run
//! # async fn example(state: std::sync::Arc<orchestra::api::ApiState>) -> anyhow::Result<()> {
//! let (addr, _server) = orchestra::api::serve("127.0.0.1:0".parse()?, state).await?;
//! println!("play: http://{addr}/");
//! # Ok(()) }
//! ```

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use processors::game::templates::TEMPLATES;
use serde_json::{json, Value};

const INDEX_HTML: &str = include_str!("web/index.html");
const APP_JS: &str = include_str!("web/app.js");
const STYLE_CSS: &str = include_str!("web/style.css");

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        body,
    )
        .into_response()
}

/// `GET /`: the page.
pub(super) async fn index() -> Response {
    asset("text/html; charset=utf-8", INDEX_HTML)
}

/// `GET /web/app.js`.
pub(super) async fn app_js() -> Response {
    asset("text/javascript; charset=utf-8", APP_JS)
}

/// `GET /web/style.css`.
pub(super) async fn style_css() -> Response {
    asset("text/css; charset=utf-8", STYLE_CSS)
}

/// The templates the lobby offers.
pub fn templates() -> Value {
    Value::Array(
        TEMPLATES
            .iter()
            .map(|t| {
                json!({
                    "name": t.name,
                    "seats": t.humans + t.robots,
                    "humans": t.humans,
                    "robots": t.robots,
                })
            })
            .collect(),
    )
}

/// `GET /web/templates`.
pub(super) async fn list_templates() -> Json<Value> {
    Json(templates())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_names_its_assets_and_every_template_is_listed() {
        assert!(INDEX_HTML.contains("/web/app.js"));
        assert!(INDEX_HTML.contains("/web/style.css"));
        let t = templates();
        let names: Vec<&str> = t
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|t| t["name"].as_str())
            .collect();
        assert!(names.contains(&"classic_1v3") && names.contains(&"duo_2v2"));
    }
}
