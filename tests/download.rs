//! `l2l-host dataset download` against a local HTTP server that serves a fake Zenodo record in the
//! API's shape: archives of data sets written by `dataset write`, one transfer cut mid-file (the
//! download must continue from where it broke, not start over), a corrupted file, a missing record,
//! and no server at all.

use l2l_system_tests::{describe, run_host, write_config};
use md5::{Digest, Md5};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// What the server serves and what it saw.
#[derive(Default)]
struct Site {
    /// path → (status, body)
    pages: HashMap<String, (u16, Vec<u8>)>,
    /// paths whose first full (non-range) answer stops after this many bytes
    cut_after: HashMap<String, usize>,
    /// (path, Range header) of every request
    requests: Vec<(String, Option<String>)>,
    /// body bytes sent per path
    sent: HashMap<String, usize>,
    /// path → where it redirects (302)
    redirects: HashMap<String, String>,
    /// paths answered by an endless stream without a length (bounded at 1 GiB)
    endless: Vec<String>,
}

fn serve(site: Arc<Mutex<Site>>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let site = site.clone();
            std::thread::spawn(move || answer(stream, &site));
        }
    });
    port
}

fn answer(stream: TcpStream, site: &Mutex<Site>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    reader.read_line(&mut request_line).unwrap();
    let path = request_line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let mut range = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("range") {
                range = Some(value.trim().to_string());
            }
        }
    }
    let (redirect, endless) = {
        let mut site = site.lock().unwrap();
        site.requests.push((path.clone(), range.clone()));
        (site.redirects.get(&path).cloned(), site.endless.contains(&path))
    };
    let mut out = stream;
    if let Some(location) = redirect {
        let _ = out.write_all(
            format!("HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        );
        return;
    }
    if endless {
        let _ = out.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
        let chunk = vec![7u8; 64 * 1024];
        let mut sent = 0;
        while sent < 1 << 30 && out.write_all(&chunk).is_ok() {
            sent += chunk.len();
        }
        site.lock().unwrap().sent.insert(path, sent);
        return;
    }
    let mut site = site.lock().unwrap();
    let Some((status, body)) = site.pages.get(&path).cloned() else {
        let _ = out.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        return;
    };
    let start = range
        .as_deref()
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.trim_end_matches('-').parse::<usize>().ok());
    let (head, part) = match start {
        Some(start) => (
            format!(
                "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {start}-{}/{}\r\n",
                body.len() - 1,
                body.len()
            ),
            &body[start..],
        ),
        None => (format!("HTTP/1.1 {status} OK\r\n"), &body[..]),
    };
    let head = format!("{head}Content-Length: {}\r\nConnection: close\r\n\r\n", part.len());
    let _ = out.write_all(head.as_bytes());
    let send = match (start, site.cut_after.remove(&path)) {
        (None, Some(cut)) => &part[..cut],
        _ => part,
    };
    let _ = out.write_all(send);
    *site.sent.entry(path).or_default() += send.len();
}

fn md5_hex(bytes: &[u8]) -> String {
    Md5::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// A zip of the folder `dir`, every entry under `prefix/`.
fn zip_folder(dir: &Path, prefix: &str) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        for entry in std::fs::read_dir(&current).unwrap().flatten() {
            let path = entry.path();
            let name = format!("{prefix}/{}", path.strip_prefix(dir).unwrap().display());
            if path.is_dir() {
                zip.add_directory(name, options).unwrap();
                stack.push(path);
            } else {
                zip.start_file(name, options).unwrap();
                let mut bytes = Vec::new();
                std::fs::File::open(&path).unwrap().read_to_end(&mut bytes).unwrap();
                zip.write_all(&bytes).unwrap();
            }
        }
    }
    zip.finish().unwrap().into_inner()
}

/// A data set written by `dataset write` in a published layout, zipped under `prefix`.
fn archive(work: &Path, task: &str, layout: &str, prefix: &str) -> Vec<u8> {
    let config = write_config(
        work,
        &format!("{layout}.toml"),
        &format!("[dataset]\nkind = \"synthetic\"\ntask = \"{task}\"\ncount = 6\nsize = 32\n"),
    );
    let folder = work.join(layout);
    let output = run_host(
        &[
            "dataset",
            "write",
            config.to_str().unwrap(),
            "--layout",
            layout,
            "--output",
            folder.to_str().unwrap(),
            "--intensities",
            "100",
        ],
        None,
        work,
    );
    assert!(output.status.success(), "{}", describe(&output));
    zip_folder(&folder, prefix)
}

/// `l2l-host dataset download WHICH --to TO --record RECORD --mirror API EXTRA…`, run in `work`.
fn dataset_download(
    work: &Path,
    which: &str,
    record: &str,
    to: &Path,
    api: &str,
    extra: &[&str],
) -> std::process::Output {
    let mut args = vec![
        "dataset",
        "download",
        which,
        "--to",
        to.to_str().unwrap(),
        "--record",
        record,
        "--mirror",
        api,
    ];
    args.extend(extra);
    run_host(&args, None, work)
}

fn record(port: u16, files: &[(&str, &[u8], String)]) -> Vec<u8> {
    let entries: Vec<serde_json::Value> = files
        .iter()
        .map(|(key, bytes, md5)| {
            serde_json::json!({"key": key, "size": bytes.len(), "checksum": format!("md5:{md5}"),
                               "links": {"self": format!("http://127.0.0.1:{port}/files/{key}")}})
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({"id": 77, "files": entries})).unwrap()
}

#[test]
fn download_resumes_a_cut_transfer_verifies_and_arranges_both_data_sets() {
    let work = tempfile::tempdir().unwrap();
    let microscopy = archive(work.path(), "cells", "microscopy", "Raw-Microscopy-v1");
    let drone = archive(work.path(), "aerial_cars", "drone", "data/drone");
    let site = Arc::new(Mutex::new(Site::default()));
    let port = serve(site.clone());
    {
        let mut s = site.lock().unwrap();
        let files = [
            ("raw-microscopy.zip", &microscopy[..], md5_hex(&microscopy)),
            ("raw-drone.zip", &drone[..], md5_hex(&drone)),
        ];
        s.pages.insert("/api/records/77".into(), (200, record(port, &files)));
        let corrupted = [("raw-microscopy.zip", &microscopy[..], md5_hex(b"something else"))];
        s.pages
            .insert("/api/records/78".into(), (200, record(port, &corrupted)));
        s.pages
            .insert("/files/raw-microscopy.zip".into(), (200, microscopy.clone()));
        s.pages.insert("/files/raw-drone.zip".into(), (200, drone.clone()));
        s.cut_after
            .insert("/files/raw-microscopy.zip".into(), microscopy.len() / 2);
    }
    let api = format!("http://127.0.0.1:{port}/api");
    let to = work.path().join("data");
    let download =
        |which: &str, record: &str, to: &Path, api: &str| dataset_download(work.path(), which, record, to, api, &[]);

    let output = download("all", "77", &to, &api);
    assert!(output.status.success(), "{}", describe(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("kind = \"raw_microscopy\"") && stdout.contains("kind = \"raw_drone\""),
        "{stdout}"
    );
    assert!(stdout.contains("raw_scale100 (6)"), "{stdout}");
    // the cut transfer was continued from where it broke: one ranged request, every byte sent once
    let s = site.lock().unwrap();
    let ranges: Vec<&Option<String>> = s
        .requests
        .iter()
        .filter(|(p, _)| p == "/files/raw-microscopy.zip")
        .map(|(_, r)| r)
        .collect();
    assert_eq!(
        ranges,
        [&None, &Some(format!("bytes={}-", microscopy.len() / 2))],
        "{:?}",
        s.requests
    );
    assert_eq!(s.sent["/files/raw-microscopy.zip"], microscopy.len());
    drop(s);
    // arranged as the loaders read them, the download folder gone
    assert!(!to.join(".l2l-download").exists());
    for (kind, folder, extra) in [
        ("raw_microscopy", "raw-microscopy", "min_images_per_class = 1\n"),
        ("raw_drone", "raw-drone", "task = \"segmentation\"\ntile_size = 16\n"),
    ] {
        let root = to.join(folder);
        let config = write_config(
            work.path(),
            &format!("{folder}.toml"),
            &format!(
                "[dataset]\nkind = \"{kind}\"\nroot = {:?}\n{extra}",
                root.to_str().unwrap()
            ),
        );
        let info = run_host(&["dataset", "info", config.to_str().unwrap()], None, work.path());
        assert!(info.status.success(), "{}", describe(&info));
    }
    // what is there is not replaced
    let again = download("raw-drone", "77", &to, &api);
    assert!(
        !again.status.success() && String::from_utf8_lossy(&again.stderr).contains("raw-drone exists"),
        "{}",
        describe(&again)
    );

    // a corrupted file: named, and nothing half-written is left
    let other = work.path().join("other");
    let output = download("raw-microscopy", "78", &other, &api);
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success()
            && err.contains("raw-microscopy.zip: checksum mismatch")
            && err.contains("the download was removed"),
        "{}",
        describe(&output)
    );
    assert!(!other.join("raw-microscopy").exists() && !other.join(".l2l-download/partial/raw-microscopy.zip").exists());
    assert!(!other.join(".l2l-download/files/raw-microscopy.zip").exists());

    // the help names the record and the layout it produces
    let help =
        String::from_utf8_lossy(&run_host(&["dataset", "download", "--help"], None, work.path()).stdout).into_owned();
    assert!(
        help.contains("10.5281/zenodo.5235536")
            && help.contains("DIR/raw-drone/images_full/raw_scale")
            && help.contains("labels/*.dat"),
        "{help}"
    );

    // no such record, and no server at all: one clear line each
    let output = download("raw-drone", "404", &other, &api);
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("answered 404 (no such record"),
        "{}",
        describe(&output)
    );
    let closed = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let output = download("raw-drone", "77", &other, &format!("http://127.0.0.1:{closed}/api"));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("could not reach"),
        "{}",
        describe(&output)
    );
}

/// A zip with one entry per `(name, bytes)`, and a symbolic link per `(name, target)`.
fn zip_of(files: &[(&str, &[u8])], links: &[(&str, &str)]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (name, bytes) in files {
        zip.start_file(*name, options).unwrap();
        zip.write_all(bytes).unwrap();
    }
    for (name, target) in links {
        zip.add_symlink(*name, *target, options).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

/// Hostile servers and archives, each a regression test of issue 26: an endless stream, a redirect
/// to `file:`, links inside an archive, a zip bomb; and a record's awkward but legal names.
#[test]
fn hostile_records_and_archives_are_stopped_with_one_message() {
    let work = tempfile::tempdir().unwrap();
    let microscopy = archive(work.path(), "cells", "microscopy", "Raw-Microscopy-v1");
    let site = Arc::new(Mutex::new(Site::default()));
    let port = serve(site.clone());
    let links = zip_of(&[("a/readme.txt", b"x")], &[("a/loop", "."), ("a/up", "../..")]);
    let bomb = zip_of(&[("zeros.bin", &vec![0u8; 16 << 20])], &[]);
    {
        let mut s = site.lock().unwrap();
        let small = b"456 bytes of a record".to_vec();
        s.pages.insert(
            "/api/records/1".into(),
            (200, record(port, &[("raw-microscopy.zip", &small, md5_hex(&small))])),
        );
        s.endless.push("/files/raw-microscopy.zip".into());
        s.pages.insert(
            "/api/records/2".into(),
            (200, record(port, &[("raw-drone.zip", &small, md5_hex(&small))])),
        );
        s.redirects
            .insert("/files/raw-drone.zip".into(), "file:///etc/passwd".into());
        s.pages.insert(
            "/api/records/3".into(),
            (200, record(port, &[("links.zip", &links, md5_hex(&links))])),
        );
        s.pages.insert("/files/links.zip".into(), (200, links.clone()));
        s.pages.insert(
            "/api/records/4".into(),
            (200, record(port, &[("bomb.zip", &bomb, md5_hex(&bomb))])),
        );
        s.pages.insert("/files/bomb.zip".into(), (200, bomb.clone()));
        // a zero-byte file, a file named like the unpacking folder, and `X` beside `X.part`
        let notes = b"notes".to_vec();
        let files = [
            ("README.md", &b""[..], md5_hex(b"")),
            ("unpacked", &notes[..], md5_hex(&notes)),
            ("images.zip", &microscopy[..], md5_hex(&microscopy)),
            ("images.zip.part", &notes[..], md5_hex(&notes)),
        ];
        s.pages.insert("/api/records/5".into(), (200, record(port, &files)));
        for (key, bytes, _) in &files {
            s.pages.insert(format!("/files/{key}"), (200, bytes.to_vec()));
        }
    }
    let api = format!("http://127.0.0.1:{port}/api");
    let download = |which: &str, record: &str, to: &str, extra: &[&str]| {
        let to = work.path().join(to);
        let output = dataset_download(work.path(), which, record, &to, &api, extra);
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
            to,
        )
    };

    // bytes past the record's size stop the transfer at once
    let (ok, err, to) = download("raw-microscopy", "1", "endless", &[]);
    assert!(!ok && err.contains("sent more than the record's 21 bytes"), "{err}");
    assert!(!to.join(".l2l-download/partial/raw-microscopy.zip").exists());
    std::thread::sleep(std::time::Duration::from_millis(200));
    let sent = site.lock().unwrap().sent["/files/raw-microscopy.zip"];
    assert!(sent < 64 << 20, "the endless stream ran on for {sent} bytes");

    // a redirect to a local file: refused, no panic
    let (ok, err, _) = download("raw-drone", "2", "redirect", &[]);
    assert!(
        !ok && err.contains("refusing `file:///etc/passwd`: only http and https addresses are fetched"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");

    // links inside an archive are refused before anything follows them
    let (ok, err, _) = download("all", "3", "links", &[]);
    assert!(
        !ok && err.contains("links.zip: entry `a/loop` is a symbolic link"),
        "{err}"
    );

    // 16 MiB of zeros in a 16-KiB archive: stopped at 20× its size, and the limit can be raised
    let (ok, err, to) = download("all", "4", "bomb", &[]);
    assert!(
        !ok && err.contains("bomb.zip: unpacks to more than 20× its size") && err.contains("--max-unpack-ratio"),
        "{err}"
    );
    assert!(!to.join(".l2l-download/unpacked/bomb.zip.partial").exists());
    let (ok, err, _) = download("all", "4", "bomb", &["--max-unpack-ratio", "5000"]);
    assert!(!ok && err.contains("not found in the record's files"), "{err}");

    // awkward names are each their own file, and the data set is arranged
    let (ok, err, to) = download("raw-microscopy", "5", "names", &[]);
    assert!(ok, "{err}");
    assert!(to.join("raw-microscopy/images").is_dir());
}
