//! `l2l-host serve` in a real browser: headless Chromium (Debian's `chromium`) driven through
//! WebDriver (`chromedriver`). Each state is saved as a screenshot under
//! `target/serve-screenshots/` for a person to look at. The tests that drive the browser are
//! `#[ignore = "needs chromium …"]`: `make test` lists them as ignored where the browser is missing,
//! and `.ci/run` (which installs it) runs them with `--ignored`, where a missing browser fails.

use base64::Engine;
use l2l_system_tests::{build_template, cells_config, host_binary, target_dir, workspace_root, ApiVariant};
use npyz::WriterBuilder;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `l2l-host serve ARGS` on a free port, stopped when dropped.
struct Server {
    child: Child,
    url: String,
}

impl Server {
    fn start(args: &[&str]) -> Server {
        let mut child = Command::new(host_binary())
            .arg("serve")
            .args(["--port", "0", "--cameras", "configs/cameras"])
            .args(args)
            .current_dir(workspace_root())
            .env_remove("L2L_PLUGIN_PATH")
            .stdout(Stdio::piped())
            .spawn()
            .expect("starting l2l-host serve");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .expect("reading the server's URL");
        let url = line
            .trim()
            .strip_prefix("l2l workbench: ")
            .unwrap_or_else(|| panic!("no URL printed: {line:?}"))
            .to_string();
        Server { child, url }
    }
}

/// What the page is told at start (`/api/setup`).
fn setup_of(server: &Server) -> Value {
    ureq::get(&format!("{}api/setup", server.url))
        .call()
        .unwrap()
        .into_json()
        .unwrap()
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A headless Chromium session through chromedriver, ended when dropped.
struct Browser {
    driver: Child,
    session: String,
    screenshots: PathBuf,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn start(test: &str) -> Browser {
        let port = free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {CHROMEDRIVER}: {e} (apt-get install chromium chromium-driver)"));
        assert!(
            Path::new(CHROMIUM).is_file(),
            "{CHROMIUM} is missing (apt-get install chromium)"
        );
        let base = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        while ureq::get(&format!("{base}/status")).call().is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "chromedriver did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let profile = tempfile::tempdir().unwrap();
        // as root, without a sandbox; no background traffic (the network is closed here)
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1400,1000",
        ];
        let mut args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        let capabilities = json!({"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {"binary": CHROMIUM, "args": args}}}});
        let created: Value = ureq::post(&format!("{base}/session"))
            .send_json(capabilities)
            .expect("creating a browser session")
            .into_json()
            .unwrap();
        let session = format!(
            "{base}/session/{}",
            created["value"]["sessionId"].as_str().expect("a session id")
        );
        let screenshots = target_dir().join("serve-screenshots").join(test);
        std::fs::create_dir_all(&screenshots).unwrap();
        Browser {
            driver,
            session,
            screenshots,
            _profile: profile,
        }
    }

    fn post(&self, path: &str, body: Value) -> Value {
        let reply: Value = ureq::post(&format!("{}/{path}", self.session))
            .send_json(body)
            .unwrap_or_else(|e| panic!("WebDriver {path}: {e}"))
            .into_json()
            .unwrap();
        reply["value"].clone()
    }

    /// Opens the page at `url` and waits for its first answer.
    fn open_and_wait(&self, url: &str) {
        self.post("url", json!({ "url": url }));
        self.wait_for_answer(0, "when opened");
    }

    /// Runs `script` (a function body) in the page and returns what it returns.
    fn run(&self, script: &str) -> Value {
        self.post("execute/sync", json!({ "script": script, "args": [] }))
    }

    fn text(&self, script: &str) -> String {
        self.run(script).as_str().unwrap_or_default().to_string()
    }

    /// How many requests the page has finished.
    fn runs(&self) -> u64 {
        self.text("return document.body.dataset.runs;").parse().unwrap()
    }

    /// Waits until the page has finished more than `before` requests; `what` names the wait.
    fn wait_for_answer(&self, before: u64, what: &str) {
        let started = Instant::now();
        while self.runs() <= before {
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "the page did not answer {what}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Does `act` in the page, then waits until the page has finished a request after it.
    fn act_and_wait(&self, act: &str) {
        let before = self.runs();
        self.run(act);
        self.wait_for_answer(before, &format!("`{act}`"));
    }

    fn upload(&self, file: &Path) {
        let before = self.runs();
        let element = self.post("element", json!({"using": "css selector", "value": "#upload"}));
        let id = element[ELEMENT].as_str().unwrap().to_string();
        self.post(
            &format!("element/{id}/value"),
            json!({ "text": file.display().to_string() }),
        );
        self.wait_for_answer(before, "the upload");
    }

    fn screenshot(&self, name: &str) {
        let reply: Value = ureq::get(&format!("{}/screenshot", self.session))
            .call()
            .unwrap()
            .into_json()
            .unwrap();
        let png = base64::engine::general_purpose::STANDARD
            .decode(reply["value"].as_str().unwrap())
            .unwrap();
        std::fs::write(self.screenshots.join(format!("{name}.png")), png).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = ureq::delete(&self.session).call();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

const IMAGE_A: &str = "return document.getElementById('image-a').src;";

fn set_control(selector: &str, value: &str, event: &str) -> String {
    format!(
        "const c = document.querySelector('{selector}'); c.value = '{value}'; c.dispatchEvent(new Event('{event}'));"
    )
}

/// A trained model to answer on the page: ResNet-18, one epoch on 64 generated cells.
fn trained_run(dir: &Path) -> PathBuf {
    std::fs::write(dir.join("cells.toml"), cells_config("static", 1, "")).unwrap();
    let output = Command::new(host_binary())
        .args(["run", "cells.toml"])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("run finished: "))
        .expect("the run's directory");
    dir.join(line)
}

/// The pixels of a PNG (a file, or the bytes of a data URL).
fn pixels(png: &[u8]) -> (u32, u32, Vec<u8>) {
    let mut reader = png::Decoder::new(std::io::Cursor::new(png)).read_info().unwrap();
    let mut buffer = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buffer).unwrap();
    buffer.truncate(info.buffer_size());
    (info.width, info.height, buffer)
}

fn data_url_bytes(url: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(url.strip_prefix("data:image/png;base64,").expect("a PNG data URL"))
        .unwrap()
}

#[test]
#[ignore = "needs Debian's chromium and chromium-driver (.ci/run installs them)"]
fn the_workbench_in_a_real_browser() {
    let work = tempfile::tempdir().unwrap();
    let run = trained_run(work.path());
    let server = Server::start(&["--checkpoint", run.to_str().unwrap()]);
    let browser = Browser::start("workbench");
    browser.open_and_wait(&server.url);
    assert_eq!(browser.text("return document.getElementById('error').textContent;"), "");
    browser.screenshot("1-loaded");
    let first = browser.text(IMAGE_A);
    assert!(first.starts_with("data:image/png;base64,"), "{first:.80}");

    // another demosaicer: the image changes
    browser.act_and_wait(&set_control(
        "select[data-side=a][data-slot=demosaic]",
        "demosaic_menon2007",
        "change",
    ));
    let menon = browser.text(IMAGE_A);
    assert_ne!(menon, first, "switching the demosaicer changed nothing");
    browser.screenshot("2-menon2007");

    // the gamma slider: the image changes, and only the last stage is recomputed
    browser.act_and_wait(&set_control(
        "input[data-side=a][data-slot=gamma][data-key=gamma]",
        "1.2",
        "input",
    ));
    assert_ne!(browser.text(IMAGE_A), menon, "moving gamma changed nothing");
    let status = browser.text("return document.getElementById('status').textContent;");
    assert!(status.starts_with("A: 1 stage(s)"), "{status}");
    browser.screenshot("3-gamma");

    // a corrupt upload: one message on the page, and the server keeps serving
    let corrupt = work.path().join("corrupt.dng");
    std::fs::write(&corrupt, b"II*\0 this is not a raw file").unwrap();
    browser.upload(&corrupt);
    let error = browser.text("return document.getElementById('error').textContent;");
    assert!(error.contains("corrupt.dng"), "{error}");
    browser.screenshot("4-corrupt-upload");

    // A/B with the model: two probability sets and the difference image
    browser.act_and_wait("document.getElementById('ab').click();");
    browser.act_and_wait(&set_control(
        "select[data-side=b][data-slot=demosaic]",
        "demosaic_bilinear",
        "change",
    ));
    let rows = |side: &str| {
        browser
            .run(&format!(
                "return document.querySelectorAll('#probabilities-{side} .probability').length;"
            ))
            .as_u64()
            .unwrap()
    };
    assert_eq!(
        (rows("a"), rows("b")),
        (4, 4),
        "each side should show the four classes' probabilities"
    );
    assert!(browser
        .text("return document.getElementById('image-diff').src;")
        .starts_with("data:image/png"));
    browser.screenshot("5-ab-with-model");

    // the saved config reproduces the page's image with `l2l-host process` (an uploaded raw, a preset camera)
    let raw = work.path().join("raw.npy");
    let mosaic = tch::Tensor::rand([96, 128], (tch::Kind::Float, tch::Device::Cpu)) * 0.8 + 0.1;
    write_npy_2d(&raw, &Vec::<f32>::try_from(mosaic.flatten(0, -1)).unwrap(), 96, 128);
    browser.act_and_wait("document.getElementById('ab').click();");
    browser.upload(&raw);
    browser.act_and_wait(&set_control("#camera", "raw-drone", "change"));
    assert_eq!(browser.text("return document.getElementById('error').textContent;"), "");
    browser.screenshot("6-uploaded-raw-drone-camera");
    let slots = browser.text("return JSON.stringify(workbench.slots.a);");
    let config = ureq::post(&format!("{}api/config", server.url))
        .set("content-type", "application/json")
        .send_string(&slots)
        .unwrap()
        .into_string()
        .unwrap();
    std::fs::write(work.path().join("saved.toml"), &config).unwrap();
    let output = Command::new(host_binary())
        .args([
            "process",
            "saved.toml",
            "--input",
            "raw.npy",
            "--output",
            "processed.png",
        ])
        .current_dir(work.path())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{config}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let page = pixels(&data_url_bytes(&browser.text(IMAGE_A)));
    let processed = pixels(&std::fs::read(work.path().join("processed.png")).unwrap());
    assert!(
        page == processed,
        "the saved config gives another image than the page's:\n{config}"
    );
}

fn write_npy_2d(path: &Path, values: &[f32], height: u64, width: u64) {
    let mut out = npyz::WriteOptions::new()
        .default_dtype()
        .shape(&[height, width])
        .writer(std::fs::File::create(path).unwrap())
        .begin_nd()
        .unwrap();
    out.extend(values.iter().copied()).unwrap();
    out.finish().unwrap();
}

#[test]
#[ignore = "needs Debian's chromium and chromium-driver (.ci/run installs them)"]
fn a_stage_built_from_the_template_appears_on_the_page_and_works() {
    let work = tempfile::tempdir().unwrap();
    let plugin = build_template(work.path(), ApiVariant::Unchanged, &[], "exposure");
    let server = Server::start(&["--plugin-dir", plugin.parent().unwrap().to_str().unwrap()]);
    let browser = Browser::start("template");
    browser.open_and_wait(&server.url);
    let options = browser
        .run("return [...document.querySelector('select[data-side=a][data-slot=gamma]').options].map(o => o.value);");
    assert!(options.as_array().unwrap().iter().any(|o| o == "exposure"), "{options}");
    browser.act_and_wait(&set_control(
        "select[data-side=a][data-slot=gamma]",
        "exposure",
        "change",
    ));
    let before = browser.text(IMAGE_A);
    let slider = browser
        .run("const s = document.querySelector('input[data-slot=gamma][data-key=ev]'); return [s.type, s.min, s.max];");
    assert_eq!(slider, json!(["range", "-16", "16"]));
    browser.act_and_wait(&set_control(
        "input[data-side=a][data-slot=gamma][data-key=ev]",
        "1",
        "input",
    ));
    assert_eq!(browser.text("return document.getElementById('error').textContent;"), "");
    assert_ne!(
        browser.text(IMAGE_A),
        before,
        "moving the template's ev changed nothing"
    );
    browser.screenshot("exposure-stage");
}

#[test]
fn concurrent_requests_are_all_answered_and_agree() {
    let server = Server::start(&[]);
    let setup = setup_of(&server);
    let request = json!({ "input": 0, "a": setup["slots"] });
    let answers: Vec<Value> = std::thread::scope(|scope| {
        let calls: Vec<_> = (0..4)
            .map(|_| {
                scope.spawn(|| {
                    ureq::post(&format!("{}api/run", server.url))
                        .send_json(request.clone())
                        .unwrap()
                        .into_json::<Value>()
                        .unwrap()
                })
            })
            .collect();
        calls.into_iter().map(|call| call.join().unwrap()).collect()
    });
    assert!(
        answers.iter().all(|a| a["a"]["image"] == answers[0]["a"]["image"]),
        "concurrent requests gave different images"
    );
    let refused = ureq::post(&format!("{}api/run", server.url))
        .send_json(json!({ "input": 99, "a": setup["slots"] }))
        .unwrap_err();
    let ureq::Error::Status(400, reply) = refused else {
        panic!("expected a 400 answer")
    };
    assert_eq!(reply.into_json::<Value>().unwrap()["error"], "pipeline A: no input 99");
    // and the server still answers
    assert!(ureq::get(&format!("{}api/setup", server.url)).call().is_ok());
}

/// One HTTP/1.1 request with exactly the headers given (a browser's or an attacker's), over a plain
/// socket: ureq would set its own `Host`. Returns the status and the body.
fn raw_request(url: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, String) {
    use std::io::{Read, Write};
    let authority = url.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = std::net::TcpStream::connect(authority).unwrap();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).unwrap();
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {answer:?}"));
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

fn npy_bytes(height: u64, width: u64) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut out = npyz::WriteOptions::new()
        .default_dtype()
        .shape(&[height, width])
        .writer(&mut bytes)
        .begin_nd()
        .unwrap();
    out.extend((0..height * width).map(|i| (i % 7) as f32 / 7.0)).unwrap();
    out.finish().unwrap();
    bytes
}

#[test]
fn cross_site_and_rebinding_requests_are_refused() {
    let server = Server::start(&[]);
    let host = server
        .url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    // a "simple" cross-site upload any web page can send
    let (status, body) = raw_request(
        &server.url,
        "POST",
        "/api/upload?name=x.npy",
        &[
            ("Host", &host),
            ("Origin", "http://evil.example"),
            ("Content-Type", "text/plain"),
        ],
        &npy_bytes(4, 4),
    );
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("http://evil.example"), "{body}");
    // the same from the page's own origin, but as a form would send it
    let (status, body) = raw_request(
        &server.url,
        "POST",
        "/api/upload?name=x.npy",
        &[("Host", &host), ("Content-Type", "text/plain")],
        &npy_bytes(4, 4),
    );
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("application/octet-stream"), "{body}");
    // DNS rebinding: the page's answers read under another name
    let (status, body) = raw_request(&server.url, "GET", "/api/setup", &[("Host", "evil.example")], b"");
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("Host `evil.example`"), "{body}");
    // the workbench's own page passes
    let (status, body) = raw_request(
        &server.url,
        "GET",
        "/api/setup",
        &[("Host", &host), ("Origin", &format!("http://{host}"))],
        b"",
    );
    assert_eq!(status, 200, "{body}");
    let (status, body) = raw_request(
        &server.url,
        "POST",
        "/api/upload?name=x.npy",
        &[
            ("Host", &host),
            ("Origin", &format!("http://{host}")),
            ("Content-Type", "application/octet-stream"),
        ],
        &npy_bytes(4, 4),
    );
    assert_eq!(status, 200, "{body}");
}

#[test]
fn listening_beyond_loopback_warns() {
    let mut child = Command::new(host_binary())
        .args([
            "serve",
            "--port",
            "0",
            "--bind",
            "0.0.0.0",
            "--cameras",
            "configs/cameras",
        ])
        .current_dir(workspace_root())
        .env_remove("L2L_PLUGIN_PATH")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stderr.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(line.starts_with("warning: the workbench listens on 0.0.0.0"), "{line}");
}

#[test]
fn uploads_are_capped_in_pixels_and_the_oldest_are_dropped() {
    // at the default cap, a 200-byte file declaring 16000² float samples is refused from its header
    let server = Server::start(&[]);
    // numpy's layout: magic, version 1.0, the header's length, the header padded to 64 bytes
    let mut dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (16000, 16000), }".to_string();
    while !(10 + dict.len() + 1).is_multiple_of(64) {
        dict.push(' ');
    }
    dict.push('\n');
    let mut header = b"\x93NUMPY\x01\x00".to_vec();
    header.extend((dict.len() as u16).to_le_bytes());
    header.extend(dict.as_bytes());
    header.extend([0u8; 64]);
    let refused = ureq::post(&format!("{}api/upload?name=bomb.npy", server.url))
        .set("Content-Type", "application/octet-stream")
        .send_bytes(&header)
        .unwrap_err();
    let ureq::Error::Status(400, reply) = refused else {
        panic!("expected a 400 answer")
    };
    let message = reply.into_json::<Value>().unwrap()["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message.contains("declares 16000×16000 = 256000000 pixels, more than the 120000000"),
        "{message}"
    );
    drop(server);

    // with a cap of 2500 pixels, 5000 upload pixels are kept: the oldest of three 50² uploads goes
    let server = Server::start(&["--max-upload-pixels", "2500"]);
    // the status and the body of an upload
    let upload = |name: &str, height: u64| -> (u16, String) {
        let sent = ureq::post(&format!("{}api/upload?name={name}", server.url))
            .set("Content-Type", "application/octet-stream")
            .send_bytes(&npy_bytes(height, 50));
        match sent {
            Ok(reply) => (reply.status(), reply.into_string().unwrap()),
            Err(ureq::Error::Status(code, reply)) => (code, reply.into_string().unwrap()),
            Err(other) => panic!("upload {name}: {other}"),
        }
    };
    let (status, body) = upload("tall.npy", 51);
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("declares 51×50 = 2550 pixels, more than the 2500 taken here"),
        "{body}"
    );
    for name in ["first.npy", "second.npy", "third.npy"] {
        let (status, body) = upload(name, 50);
        assert_eq!(status, 200, "{body}");
    }
    let setup = setup_of(&server);
    let uploads: Vec<&str> = setup["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .filter(|l| l.starts_with("upload"))
        .collect();
    assert_eq!(uploads, ["upload: second.npy", "upload: third.npy"]);
    // an .npy carries no camera metadata: a pipeline that asks for none
    let slots = json!([{ "name": "demosaic", "kind": "demosaic_bilinear", "config": {} }]);
    let last = setup["inputs"].as_array().unwrap().len() - 1;
    let answer: Value = ureq::post(&format!("{}api/run", server.url))
        .send_json(json!({ "input": last, "a": slots }))
        .unwrap()
        .into_json()
        .unwrap();
    assert!(answer["a"]["image"].as_str().unwrap().starts_with("data:image/png"));
}

#[test]
fn page_values_name_no_files_stages_are_bounded_and_named_once() {
    let server = Server::start(&[]);
    let setup = setup_of(&server);
    let error_of = |path: &str, body: Value| -> String {
        let refused = ureq::post(&format!("{}{path}", server.url))
            .send_json(body)
            .unwrap_err();
        let ureq::Error::Status(400, reply) = refused else {
            panic!("expected a 400 answer")
        };
        reply.into_json::<Value>().unwrap()["error"]
            .as_str()
            .unwrap()
            .to_string()
    };
    // a file the server can read and one it cannot: the same refusal, nothing opened
    let mut answers = Vec::new();
    for weights in ["/etc/passwd.pth", "/nonexistent/x.pth", "/etc/passwd"] {
        let slots = json!([{ "name": "processor", "kind": "processor_nn", "config": { "weights": weights } }]);
        let message = error_of("api/run", json!({ "input": 0, "a": slots }));
        assert!(
            message.contains("stage `processor` key `weights`: expected no text from the page, found"),
            "{message}"
        );
        answers.push(message.replace(weights, "PATH"));
    }
    assert!(answers.iter().all(|a| *a == answers[0]), "{answers:?}");
    // a declared choice passes the check (cfa_pattern's words)
    let mut slots = setup["slots"].clone();
    slots[1]["config"] = json!({ "cfa_pattern": "GRBG" });
    let answer: Value = ureq::post(&format!("{}api/run", server.url))
        .send_json(json!({ "input": 0, "a": slots }))
        .unwrap()
        .into_json()
        .unwrap();
    assert!(answer["a"]["image"].as_str().is_some());
    // 2500 stages in one small request
    let many: Vec<Value> = (0..2500)
        .map(|i| json!({ "name": format!("g{i}"), "kind": "gamma", "config": {} }))
        .collect();
    assert_eq!(
        error_of("api/run", json!({ "input": 0, "a": many })),
        "pipeline A: 2500 stages: the workbench takes at most 32"
    );
    // one name twice: run and the saved config would disagree
    let twice = json!([
        { "name": "demosaic", "kind": "demosaic_bilinear", "config": {} },
        { "name": "g", "kind": "gamma", "config": { "gamma": 2.2 } },
        { "name": "g", "kind": "gamma", "config": { "gamma": 1.0 } }
    ]);
    assert!(error_of("api/run", json!({ "input": 0, "a": twice })).contains("stage name `g` is used twice"));
    assert!(error_of("api/config", twice).contains("stage name `g` is used twice"));
    let escaping = json!([{ "name": "../../x", "kind": "gamma", "config": {} }]);
    assert!(error_of("api/config", escaping).contains("expected a plain name"));
}
