//! `l2l-host serve`: the pipeline workbench in the browser. A local web server (axum) hands one page
//! (plain HTML and JavaScript, embedded) and a small JSON API over the [`workbench::Workbench`]:
//! pick a raw, swap stages, move parameters, see every stage's output, two pipelines side by side and
//! a trained model's answer under both, and save the pipeline as a config `l2l-host` runs.
//!
//! Safety: binds 127.0.0.1 unless told otherwise (and warns when told); only requests that name this
//! machine and come from its own page are served ([`guard`]); an upload is at most [`MAX_UPLOAD`]
//! bytes and `--max-upload-pixels` pixels, decoded in memory (its file name only picks
//! the format), and the kept uploads are bounded; the page's text values are limited to declared
//! choices and the command line's config, so none becomes a path; a pipeline has at most
//! [`workbench::MAX_STAGES`] stages; a failed request answers one message and the server keeps
//! serving; requests compute one at a time.

pub mod catalogue;
pub mod guard;
pub mod setup;
pub mod workbench;

use anyhow::{Context, Result};
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use workbench::{Slot, Workbench};

/// The largest upload accepted: a 50-MP 16-bit raw with room to spare.
pub const MAX_UPLOAD: usize = 200 * 1024 * 1024;

const PAGE: &str = include_str!("page.html");

/// What the page is told once: components, the starting slots, camera presets, whether a model
/// answers.
struct Shared {
    workbench: Mutex<Workbench>,
    setup: serde_json::Value,
}

type Reply = Result<Response, (StatusCode, Json<serde_json::Value>)>;

fn refuse(err: anyhow::Error) -> (StatusCode, Json<serde_json::Value>) {
    (
        StatusCode::BAD_REQUEST,
        Json(serde_json::json!({ "error": format!("{err:#}") })),
    )
}

/// Runs `work` on the workbench off the async threads; a panic or error is one message.
async fn with_workbench<T: Send + 'static>(
    shared: Arc<Shared>,
    work: impl FnOnce(&mut Workbench) -> Result<T> + Send + 'static,
) -> Result<T, (StatusCode, Json<serde_json::Value>)> {
    let joined = tokio::task::spawn_blocking(move || {
        let mut workbench = shared.workbench.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        work(&mut workbench)
    })
    .await;
    joined
        .map_err(|e| refuse(anyhow::anyhow!("the computation failed: {e}")))?
        .map_err(refuse)
}

async fn page() -> Html<&'static str> {
    Html(PAGE)
}

async fn setup_json(State(shared): State<Arc<Shared>>) -> Reply {
    let inputs = with_workbench(shared.clone(), |w| {
        Ok(w.inputs.iter().map(|i| i.label.clone()).collect::<Vec<_>>())
    })
    .await?;
    let mut setup = shared.setup.clone();
    setup["inputs"] = serde_json::json!(inputs);
    Ok(Json(setup).into_response())
}

#[derive(Deserialize)]
struct RunRequest {
    input: usize,
    a: Vec<Slot>,
    b: Option<Vec<Slot>>,
}

async fn run(State(shared): State<Arc<Shared>>, Json(request): Json<RunRequest>) -> Reply {
    let answer = with_workbench(shared, move |w| {
        let (a, image_a) = w.run(0, request.input, &request.a).context("pipeline A")?;
        let Some(slots_b) = &request.b else {
            return Ok(serde_json::json!({ "a": a }));
        };
        let (b, image_b) = w.run(1, request.input, slots_b).context("pipeline B")?;
        let difference = Workbench::difference(&image_a, &image_b)?;
        Ok(serde_json::json!({ "a": a, "b": b, "difference": difference }))
    })
    .await?;
    Ok(Json(answer).into_response())
}

#[derive(Deserialize)]
struct UploadQuery {
    name: String,
}

async fn upload(State(shared): State<Arc<Shared>>, Query(query): Query<UploadQuery>, body: axum::body::Bytes) -> Reply {
    let answer = with_workbench(shared, move |w| {
        // the name is a label: only its last component, never opened
        let name = Path::new(&query.name)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let raw = crate::imageio::decode_raw_input(&body, Path::new(&name), w.max_upload_pixels)
            .with_context(|| format!("upload `{name}`"))?;
        let input = w.add_upload(format!("upload: {name}"), raw);
        Ok(serde_json::json!({ "input": input }))
    })
    .await?;
    Ok(Json(answer).into_response())
}

async fn config(State(shared): State<Arc<Shared>>, Json(slots): Json<Vec<Slot>>) -> Reply {
    let text = with_workbench(shared, move |w| w.config_text(&slots)).await?;
    Ok(([(header::CONTENT_TYPE, "application/toml; charset=utf-8")], text).into_response())
}

/// Starts the workbench for `options` and serves until the process ends.
pub fn serve(options: setup::ServeOptions) -> Result<()> {
    let (workbench, setup) = setup::prepare(&options)?;
    let shared = Arc::new(Shared {
        workbench: Mutex::new(workbench),
        setup,
    });
    let allowed = Arc::new(guard::AllowedHosts::new(options.bind, &options.allowed_hosts));
    if !options.bind.is_loopback() {
        eprintln!(
            "warning: the workbench listens on {} — beyond this machine: anyone who can reach this address can run pipelines and upload files",
            options.bind
        );
    }
    let app = Router::new()
        .route("/", get(page))
        .route("/api/setup", get(setup_json))
        .route("/api/run", post(run))
        .route("/api/config", post(config))
        .route("/api/upload", post(upload).layer(DefaultBodyLimit::max(MAX_UPLOAD)))
        .with_state(shared)
        .layer(axum::middleware::from_fn_with_state(allowed, guard::check));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_io()
        .build()?;
    runtime.block_on(async move {
        let address = SocketAddr::new(options.bind, options.port);
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .with_context(|| format!("binding {address}"))?;
        println!("l2l workbench: http://{}/", listener.local_addr()?);
        use std::io::Write;
        std::io::stdout().flush()?;
        axum::serve(listener, app).await.context("serving")
    })
}
