//! The protocol reference (`docs/protocol/`) is what outside scripts are
//! written from, so its examples must stay what the server does. Two
//! checks hold them to it:
//!
//! - every WebSocket frame the reference shows from the server is exactly
//!   what the protocol types write (field names, order, nothing missing or
//!   extra), and every frame it shows a client sending is one the server
//!   reads (unless the example is about a frame it refuses);
//! - every HTTP request the reference shows, with the answer right after
//!   it, is sent in order to a real server with the same join codes, and
//!   the answer must have the same status, the same error code and the
//!   same fields. Ids and tokens the server makes up are learnt from the
//!   answers and put into later requests in place of the reference's.
//!
//! Links between the pages are checked too (file and heading).

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use pitboss_core::protocol::{ClientMsg, ServerMsg};
use serde_json::Value;

fn docs_dir() -> PathBuf {
    pitboss_system_tests::workspace_root().join("docs/protocol")
}

/// The reference's pages, in reading order (the order the examples were
/// captured in).
const PAGES: &[&str] = &[
    "overview.md",
    "auth.md",
    "http.md",
    "websocket.md",
    "operations.md",
    "errors-and-limits.md",
];

/// A fenced block: where it starts (for messages) and what it holds.
struct Block {
    at: String,
    text: String,
    /// Why the example cannot be replayed in reading order, when the page
    /// says so right above it (`<!-- not replayed: … -->`): it was captured
    /// on a server in a state the pages before it do not make.
    not_replayed: Option<String>,
}

const NOT_REPLAYED: &str = "<!-- not replayed: ";

fn blocks(page: &str) -> Result<Vec<Block>> {
    let path = docs_dir().join(page);
    let text = std::fs::read_to_string(&path).with_context(|| format!("{}", path.display()))?;
    let mut out = Vec::new();
    let mut open: Option<(usize, String)> = None;
    let mut last_line = "";
    let mut note: Option<String> = None;
    for (i, line) in text.lines().enumerate() {
        if line.starts_with("```") {
            match open.take() {
                Some((start, body)) => out.push(Block {
                    at: format!("{page}:{}", start + 1),
                    text: body,
                    not_replayed: note.take(),
                }),
                None => {
                    note = last_line
                        .strip_prefix(NOT_REPLAYED)
                        .map(|r| r.trim_end_matches("-->").trim().to_string());
                    open = Some((i, String::new()));
                }
            }
        } else if let Some((_, body)) = open.as_mut() {
            body.push_str(line);
            body.push('\n');
        } else if !line.trim().is_empty() {
            last_line = line;
        }
    }
    Ok(out)
}

#[test]
fn every_websocket_frame_in_the_reference_is_what_the_types_write() -> Result<()> {
    let mut checked = 0;
    let mut wrong = Vec::new();
    for page in PAGES {
        for b in blocks(page)? {
            let lines: Vec<&str> = b.text.lines().collect();
            for (i, line) in lines.iter().enumerate() {
                if let Some(frame) = line.strip_prefix("← ") {
                    if frame.contains('…') || frame.starts_with("close ") {
                        continue; // shortened in the reference on purpose
                    }
                    match serde_json::from_str::<ServerMsg>(frame) {
                        Ok(msg) => {
                            let written = serde_json::to_string(&msg)?;
                            if written != frame {
                                wrong.push(format!(
                                    "{}: the server writes\n  {written}\nnot\n  {frame}",
                                    b.at
                                ));
                            }
                        }
                        Err(e) => {
                            wrong.push(format!("{}: not a server message ({e}): {frame}", b.at))
                        }
                    }
                    checked += 1;
                } else if let Some(frame) = line.strip_prefix("→ ") {
                    let refused = lines
                        .get(i + 1)
                        .is_some_and(|next| next.contains("cannot read this frame"));
                    if refused || !frame.starts_with('{') {
                        continue;
                    }
                    if let Err(e) = serde_json::from_str::<ClientMsg>(frame) {
                        wrong.push(format!("{}: the server cannot read ({e}): {frame}", b.at));
                    }
                    checked += 1;
                }
            }
        }
    }
    if !wrong.is_empty() {
        bail!(
            "{} of {checked} frames differ:\n{}",
            wrong.len(),
            wrong.join("\n")
        );
    }
    anyhow::ensure!(
        checked > 30,
        "only {checked} frames found: is the reference there?"
    );
    Ok(())
}

/// A request as the reference shows it.
struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: String,
}

fn request(text: &str) -> Option<Request> {
    let mut lines = text.lines();
    let (method, path) = lines.next()?.split_once(' ')?;
    // A remark after the path ("   (event at seq 16)") is for the reader.
    let path = path.split("  ").next()?;
    if !["GET", "POST", "PUT", "DELETE", "PATCH"].contains(&method) || !path.starts_with('/') {
        return None;
    }
    let mut headers = Vec::new();
    let mut body = String::new();
    let mut in_body = false;
    for l in lines {
        if in_body {
            body.push_str(l);
            body.push('\n');
        } else if l.is_empty() {
            in_body = true;
        } else if let Some((k, v)) = l.split_once(": ") {
            headers.push((k.to_string(), v.to_string()));
        }
    }
    Some(Request {
        method: method.to_string(),
        path: path.trim().to_string(),
        headers,
        body: body.trim().to_string(),
    })
}

/// An answer as the reference shows it: `200 OK` then the body.
fn answer(text: &str) -> Option<(u16, String)> {
    let (first, rest) = text.split_once('\n').unwrap_or((text, ""));
    let first = first.strip_prefix("HTTP/1.1 ").unwrap_or(first);
    let status: u16 = first.split(' ').next()?.parse().ok()?;
    // Headers (in the `HTTP/1.1` form) end at a blank line.
    let body = if text.starts_with("HTTP/1.1") {
        rest.split_once("\n\n").map_or("", |(_, b)| b)
    } else {
        rest
    };
    Some((status, body.trim().to_string()))
}

/// Ids and tokens the reference shows and the ones this server made.
#[derive(Default)]
struct Names(HashMap<String, String>);

impl Names {
    fn put_in(&self, s: &str) -> String {
        let mut out = s.to_string();
        for (doc, real) in &self.0 {
            out = out.replace(doc, real);
        }
        out
    }

    /// Walks the reference's answer and the real one side by side; a string
    /// that looks made up by the server (an id, a token) and differs is
    /// learnt. A shortened token (`c9ee4488…`) stands for the whole one.
    fn learn(&mut self, doc: &Value, real: &Value) {
        match (doc, real) {
            (Value::Object(d), Value::Object(r)) => {
                for (k, dv) in d {
                    if let Some(rv) = r.get(k) {
                        self.learn(dv, rv);
                    }
                }
            }
            (Value::Array(d), Value::Array(r)) => {
                for (dv, rv) in d.iter().zip(r) {
                    self.learn(dv, rv);
                }
            }
            (Value::String(d), Value::String(r)) if d != r && made_up(d) => {
                self.0.insert(d.clone(), r.clone());
            }
            _ => {}
        }
    }
}

fn made_up(s: &str) -> bool {
    s.ends_with('…')
        || ["ev-", "op-", "inc-"]
            .iter()
            .any(|p| s.starts_with(p) && s.len() > p.len() + 4)
}

/// The fields of an answer, as paths (`levels[].kind`), so that a field
/// added, renamed or dropped shows, whatever the values.
fn shape(v: &Value, at: &str, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                let p = format!("{at}.{k}");
                out.insert(p.clone());
                shape(v, &p, out);
            }
        }
        Value::Array(a) => {
            let p = format!("{at}[]");
            if !a.is_empty() {
                out.insert(p.clone());
            }
            for v in a {
                shape(v, &p, out);
            }
        }
        _ => {}
    }
}

fn shape_of(v: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    shape(v, "", &mut out);
    out
}

/// Fields in one shape and not the other, leaving out what lies inside a
/// list that is empty on one side only (the reference's event had
/// incidents, this one may not): the values differ there, not the fields.
fn differences(a: &BTreeSet<String>, b: &BTreeSet<String>) -> (Vec<String>, Vec<String>) {
    let one_sided: Vec<&String> = a
        .symmetric_difference(b)
        .filter(|p| p.ends_with("[]"))
        .collect();
    let keep = |p: &&String| !one_sided.iter().any(|l| p.starts_with(l.as_str()));
    (
        a.difference(b).filter(keep).cloned().collect(),
        b.difference(a).filter(keep).cloned().collect(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_examples_in_the_reference_replay_against_a_running_server() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut c = pitboss_server::Config::new("127.0.0.1:0".parse()?, dir.path().to_path_buf());
    c.coordinator_code = Some("COORD-1111".into());
    c.dealer_code = Some("DEAL-2222".into());
    c.display_code = Some("WALL-3333".into());
    c.demo = true;
    c.synchronous = pitboss_server::Synchronous::Normal;
    let srv = pitboss_server::start(c).await?;
    let base = srv.url();
    let http = pitboss_tls::Pin::to(srv.fingerprint()).http_client(reqwest::Client::builder())?;
    let mut names = Names::default();
    let (mut replayed, mut skipped, mut wrong) = (0, 0, Vec::new());
    for page in PAGES {
        let bs = blocks(page)?;
        for (b, next) in bs.iter().zip(bs.iter().skip(1)) {
            let (Some(req), Some((want_status, want_body))) =
                (request(&b.text), answer(&next.text))
            else {
                continue;
            };
            if let Some(why) = &b.not_replayed {
                anyhow::ensure!(!why.is_empty(), "{}: say why it is not replayed", b.at);
                skipped += 1;
                continue;
            }
            let url = format!("{base}{}", names.put_in(&req.path));
            let method = reqwest::Method::from_bytes(req.method.as_bytes())?;
            let mut r = http.request(method, &url);
            for (k, v) in &req.headers {
                r = r.header(k.as_str(), names.put_in(v));
            }
            if !req.body.is_empty() {
                r = r.body(names.put_in(&req.body));
            }
            let got = r.send().await.with_context(|| format!("{}: {url}", b.at))?;
            let status = got.status().as_u16();
            let text = got.text().await?;
            replayed += 1;
            let what = format!("{} ({} {})", b.at, req.method, req.path);
            if status != want_status {
                wrong.push(format!(
                    "{what}: {status} where the reference shows {want_status}: {text}"
                ));
                continue;
            }
            let (Ok(want), Ok(real)) = (
                serde_json::from_str::<Value>(&want_body),
                serde_json::from_str::<Value>(&text),
            ) else {
                continue; // a shortened or non-JSON body (CSV): the status is what is checked
            };
            names.learn(&want, &real);
            if want.get("error") != real.get("error") {
                wrong.push(format!(
                    "{what}: error {} where the reference shows {}",
                    real["error"], want["error"]
                ));
                continue;
            }
            let (missing, extra) = differences(&shape_of(&want), &shape_of(&real));
            if !missing.is_empty() || !extra.is_empty() {
                wrong.push(format!("{what}: fields the server no longer sends {missing:?}; fields the reference does not show {extra:?}"));
            }
        }
    }
    srv.shutdown().await;
    if !wrong.is_empty() {
        bail!(
            "{} of {replayed} examples differ:\n{}",
            wrong.len(),
            wrong.join("\n")
        );
    }
    anyhow::ensure!(
        replayed > 20,
        "only {replayed} examples found: is the reference there?"
    );
    // Most examples must stay replayable, or the check says little.
    anyhow::ensure!(
        skipped * 4 <= replayed,
        "{skipped} examples are marked not replayed against {replayed} replayed"
    );
    Ok(())
}

#[test]
fn links_between_the_reference_pages_lead_somewhere() -> Result<()> {
    let slug = |h: &str| -> String {
        h.trim()
            .to_lowercase()
            .chars()
            .filter(|c| c.is_alphanumeric() || *c == '-' || *c == ' ' || *c == '_')
            .map(|c| if c == ' ' { '-' } else { c })
            .collect()
    };
    let mut anchors: HashMap<String, BTreeSet<String>> = HashMap::new();
    for page in PAGES {
        let text = std::fs::read_to_string(docs_dir().join(page))?;
        let mut fenced = false;
        for l in text.lines() {
            if l.starts_with("```") {
                fenced = !fenced;
            } else if !fenced && l.starts_with('#') {
                anchors
                    .entry(page.to_string())
                    .or_default()
                    .insert(slug(l.trim_start_matches('#')));
            }
        }
    }
    let mut broken = Vec::new();
    for page in PAGES {
        let text = std::fs::read_to_string(docs_dir().join(page))?;
        for (_, rest) in text.match_indices("](").map(|(i, _)| ("", &text[i + 2..])) {
            let Some(end) = rest.find(')') else { continue };
            let target = &rest[..end];
            if target.starts_with("http") {
                continue;
            }
            let (file, anchor) = target.split_once('#').unwrap_or((target, ""));
            let file = if file.is_empty() { *page } else { file };
            if !anchors.contains_key(file) {
                if !Path::new(&docs_dir().join(file)).exists() {
                    broken.push(format!("{page}: {target} (no such file)"));
                }
                continue;
            }
            if !anchor.is_empty() && !anchors[file].contains(anchor) {
                broken.push(format!("{page}: {target} (no such heading)"));
            }
        }
    }
    anyhow::ensure!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
    Ok(())
}

#[test]
fn every_test_and_file_the_architecture_names_exists() -> Result<()> {
    let root = pitboss_system_tests::workspace_root();
    let page = std::fs::read_to_string(root.join("docs/architecture.md"))?;
    let mut sources = String::new();
    let mut names = BTreeSet::new();
    let mut stack = vec![
        root.join("crates"),
        root.join("tests"),
        root.join("src-tauri/src"),
    ];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir)? {
            let p = e?.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                sources.push_str(&std::fs::read_to_string(&p)?);
                if let Some(n) = p.file_name() {
                    names.insert(n.to_string_lossy().to_string());
                }
            }
        }
    }
    let mut missing = Vec::new();
    let mut named = 0;
    for quoted in page.split('`').skip(1).step_by(2) {
        if quoted.ends_with(".rs") && !quoted.contains('/') {
            named += 1;
            if !names.contains(quoted) {
                missing.push(format!("file {quoted}"));
            }
        } else if quoted.matches('_').count() >= 3
            && quoted
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            named += 1;
            if !sources.contains(&format!("fn {quoted}(")) {
                missing.push(format!("test {quoted}"));
            }
        }
    }
    anyhow::ensure!(
        named > 20,
        "only {named} tests and files named: is the page there?"
    );
    anyhow::ensure!(
        missing.is_empty(),
        "docs/architecture.md names what is not there:\n{}",
        missing.join("\n")
    );
    Ok(())
}
