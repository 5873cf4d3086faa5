//! Test helpers for the operator console: a small blocking HTTP/1.1 client with a
//! cookie jar (no TLS, loopback only), and a W3C WebDriver client that drives Debian's
//! headless Chromium through `chromedriver`. No extra dependencies: plain `std::net`.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

/// A response.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Headers (lower-case names, in order).
    pub headers: Vec<(String, String)>,
    /// Body as text.
    pub body: String,
}

impl HttpResponse {
    /// First header named `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Body as JSON.
    pub fn json(&self) -> anyhow::Result<Value> {
        serde_json::from_str(&self.body).with_context(|| format!("not JSON: {}", self.body))
    }
}

/// Splits `http://host:port/path?q` into (`host:port`, `/path?q`).
fn split_url(url: &str) -> anyhow::Result<(String, String)> {
    let rest = url
        .strip_prefix("http://")
        .context("only http:// URLs are supported")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    Ok((authority.to_owned(), path.to_owned()))
}

/// One HTTP/1.1 request (`Connection: close`), with a 30 s timeout.
pub fn http_request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> anyhow::Result<HttpResponse> {
    let (authority, path) = split_url(url)?;
    let mut stream =
        TcpStream::connect(&authority).with_context(|| format!("connect {authority}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    let raw = read_response(&mut stream)?;
    parse_response(&raw)
}

/// Reads one response: up to `Content-Length`, the last chunk, or the end of the stream
/// (some servers keep the connection open despite `Connection: close`).
fn read_response(stream: &mut TcpStream) -> anyhow::Result<Vec<u8>> {
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
            let body = &raw[end + 4..];
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok());
            let complete = match length {
                Some(n) => body.len() >= n,
                None if head.contains("transfer-encoding: chunked") => body.ends_with(b"0\r\n\r\n"),
                None => false,
            };
            if complete {
                return Ok(raw);
            }
        }
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok(raw);
        }
        raw.extend_from_slice(&buf[..n]);
    }
}

fn parse_response(raw: &[u8]) -> anyhow::Result<HttpResponse> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("no end of headers")?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let mut lines = head.lines();
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .context("bad status line")?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    if chunked {
        body = dechunk(&body)?;
    }
    Ok(HttpResponse {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

fn dechunk(mut data: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .context("bad chunk")?;
        let size_text = String::from_utf8_lossy(&data[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("0").trim(), 16)?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        out.extend_from_slice(data.get(..size).context("short chunk")?);
        data = data.get(size + 2..).context("short chunk")?;
    }
}

/// Percent-encodes a form value.
pub fn form_encode(pairs: &[(&str, &str)]) -> String {
    let enc = |s: &str| -> String {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                    (b as char).to_string()
                } else if b == b' ' {
                    "+".to_owned()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    };
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// A browser-like HTTP client: keeps cookies, sends `Origin` on POST.
#[derive(Debug, Clone)]
pub struct WebClient {
    /// `http://127.0.0.1:port`.
    pub base: String,
    /// Cookie name → value.
    pub cookies: BTreeMap<String, String>,
    /// `Origin` sent with POSTs (`None`: no Origin header).
    pub origin: Option<String>,
}

impl WebClient {
    /// A client for the console at `base`.
    pub fn new(base: &str) -> Self {
        WebClient {
            base: base.trim_end_matches('/').to_owned(),
            cookies: BTreeMap::new(),
            origin: Some(base.trim_end_matches('/').to_owned()),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn remember(&mut self, response: &HttpResponse) {
        for (k, v) in &response.headers {
            if k != "set-cookie" {
                continue;
            }
            let pair = v.split(';').next().unwrap_or_default();
            if let Some((name, value)) = pair.split_once('=') {
                let expired = v.contains("Max-Age=0");
                if value.is_empty() || expired {
                    self.cookies.remove(name);
                } else {
                    self.cookies.insert(name.to_owned(), value.to_owned());
                }
            }
        }
    }

    /// A request with the jar's cookies and extra headers; stores cookies set.
    pub fn send(
        &mut self,
        method: &str,
        path: &str,
        extra: &[(&str, &str)],
        body: &[u8],
    ) -> anyhow::Result<HttpResponse> {
        let cookie = self.cookie_header();
        let mut headers: Vec<(&str, &str)> = extra.to_vec();
        if !cookie.is_empty() {
            headers.push(("Cookie", &cookie));
        }
        let origin = self.origin.clone();
        if method != "GET"
            && let Some(origin) = &origin
            && !extra.iter().any(|(k, _)| k.eq_ignore_ascii_case("origin"))
        {
            headers.push(("Origin", origin));
        }
        let response = http_request(method, &format!("{}{path}", self.base), &headers, body)?;
        self.remember(&response);
        Ok(response)
    }

    /// GET.
    pub fn get(&mut self, path: &str) -> anyhow::Result<HttpResponse> {
        self.send("GET", path, &[], b"")
    }

    /// POST of a form.
    pub fn post_form(
        &mut self,
        path: &str,
        pairs: &[(&str, &str)],
    ) -> anyhow::Result<HttpResponse> {
        let body = form_encode(pairs);
        self.send(
            "POST",
            path,
            &[("Content-Type", "application/x-www-form-urlencoded")],
            body.as_bytes(),
        )
    }

    /// POST of JSON with a CSRF header.
    pub fn post_json(
        &mut self,
        path: &str,
        csrf: &str,
        body: &Value,
    ) -> anyhow::Result<HttpResponse> {
        let text = body.to_string();
        self.send(
            "POST",
            path,
            &[("Content-Type", "application/json"), ("X-CSRF-Token", csrf)],
            text.as_bytes(),
        )
    }

    /// Logs in through the form (TOTP code optional); returns the final response.
    pub fn login(
        &mut self,
        user: &str,
        password: &str,
        totp: &str,
    ) -> anyhow::Result<HttpResponse> {
        let page = self.get("/login")?;
        let csrf = hidden_csrf(&page.body).context("login form has no CSRF field")?;
        self.post_form(
            "/login",
            &[
                ("username", user),
                ("password", password),
                ("totp", totp),
                ("csrf", &csrf),
            ],
        )
    }

    /// The session's CSRF token (from `/api/v1/me`).
    pub fn csrf(&mut self) -> anyhow::Result<String> {
        let me = self.get("/api/v1/me")?;
        if me.status != 200 {
            bail!("/api/v1/me answered {}: {}", me.status, me.body);
        }
        Ok(me.json()?["csrf_token"]
            .as_str()
            .unwrap_or_default()
            .to_owned())
    }
}

/// The value of the first hidden `csrf` field in a page.
pub fn hidden_csrf(html: &str) -> Option<String> {
    let marker = r#"name="csrf" value=""#;
    let start = html.find(marker)? + marker.len();
    let end = html[start..].find('"')?;
    Some(html[start..start + end].to_owned())
}

/// Text of the element with `id` in a page (first occurrence, tags stripped).
pub fn element_text(html: &str, id: &str) -> Option<String> {
    let marker = format!(r#"id="{id}""#);
    let start = html.find(&marker)?;
    let open_end = html[start..].find('>')? + start + 1;
    let close = html[open_end..].find("</")? + open_end;
    Some(html[open_end..close].to_owned())
}

/// Directory for screenshots: `$CARGO_TARGET_DIR/console-screenshots` (or `target/`).
pub fn screenshot_dir() -> PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| crate::repo_root().join("target"));
    target.join("console-screenshots")
}

fn base64_decode(text: &str) -> anyhow::Result<Vec<u8>> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut buffer = 0u32;
    let mut bits = 0;
    for c in text
        .bytes()
        .filter(|c| !c.is_ascii_whitespace() && *c != b'=')
    {
        let value = ALPHABET
            .iter()
            .position(|&a| a == c)
            .context("invalid base64")? as u32;
        buffer = (buffer << 6) | value;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    Ok(out)
}

/// A chromedriver process and one headless Chromium session.
pub struct Browser {
    driver: Child,
    endpoint: String,
    session: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Whether chromium and chromedriver are installed.
    pub fn available() -> bool {
        Path::new("/usr/bin/chromium").exists() && Path::new("/usr/bin/chromedriver").exists()
    }

    /// Starts chromedriver on a free port and opens a headless Chromium session.
    pub fn start() -> anyhow::Result<Browser> {
        let port = crate::free_port();
        let driver = Command::new("/usr/bin/chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("start chromedriver")?;
        let endpoint = format!("http://127.0.0.1:{port}");
        let ready = crate::wait_for(Duration::from_secs(20), || {
            http_request("GET", &format!("{endpoint}/status"), &[], b"")
                .ok()
                .filter(|r| r.status == 200)
        });
        let profile = tempfile::tempdir()?;
        let mut browser = Browser {
            driver,
            endpoint,
            session: String::new(),
            _profile: profile,
        };
        if ready.is_none() {
            bail!("chromedriver did not start");
        }
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--lang=zh-CN",
            "--window-size=1366,900",
        ];
        let mut args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
        args.push(format!(
            "--user-data-dir={}",
            browser._profile.path().display()
        ));
        let caps = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": "/usr/bin/chromium", "args": args },
        } } });
        let created = browser.command("POST", "/session", &caps)?;
        browser.session = created["sessionId"]
            .as_str()
            .context("no session id")?
            .to_owned();
        Ok(browser)
    }

    fn command(&self, method: &str, path: &str, body: &Value) -> anyhow::Result<Value> {
        let text = if method == "GET" {
            String::new()
        } else {
            body.to_string()
        };
        let response = http_request(
            method,
            &format!("{}{path}", self.endpoint),
            &[("Content-Type", "application/json")],
            text.as_bytes(),
        )?;
        let value: Value = response.json()?;
        if response.status != 200 {
            bail!("WebDriver {method} {path}: {} {}", response.status, value);
        }
        Ok(value["value"].clone())
    }

    fn session_command(&self, method: &str, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.command(method, &format!("/session/{}{path}", self.session), body)
    }

    /// Navigates to `url`.
    pub fn goto(&self, url: &str) -> anyhow::Result<()> {
        self.session_command("POST", "/url", &json!({ "url": url }))?;
        Ok(())
    }

    /// Current URL.
    pub fn url(&self) -> anyhow::Result<String> {
        Ok(self
            .session_command("GET", "/url", &Value::Null)?
            .as_str()
            .unwrap_or_default()
            .to_owned())
    }

    /// Element id of the first match of a CSS selector, if any.
    pub fn find(&self, css: &str) -> anyhow::Result<Option<String>> {
        let found = self.session_command(
            "POST",
            "/elements",
            &json!({ "using": "css selector", "value": css }),
        )?;
        Ok(found.as_array().and_then(|a| a.first()).and_then(|e| {
            e.as_object()
                .and_then(|o| o.values().next())
                .and_then(Value::as_str)
                .map(str::to_owned)
        }))
    }

    /// Waits until a CSS selector matches.
    pub fn wait_for(&self, css: &str, timeout: Duration) -> anyhow::Result<String> {
        let start = Instant::now();
        loop {
            if let Some(id) = self.find(css)? {
                return Ok(id);
            }
            if start.elapsed() > timeout {
                bail!("{css} did not appear within {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Clicks an element.
    pub fn click(&self, element: &str) -> anyhow::Result<()> {
        self.session_command("POST", &format!("/element/{element}/click"), &json!({}))?;
        Ok(())
    }

    /// Types into an element.
    pub fn type_text(&self, element: &str, text: &str) -> anyhow::Result<()> {
        self.session_command(
            "POST",
            &format!("/element/{element}/value"),
            &json!({ "text": text }),
        )?;
        Ok(())
    }

    /// Visible text of an element.
    pub fn text(&self, element: &str) -> anyhow::Result<String> {
        Ok(self
            .session_command("GET", &format!("/element/{element}/text"), &Value::Null)?
            .as_str()
            .unwrap_or_default()
            .to_owned())
    }

    /// The page's HTML.
    pub fn source(&self) -> anyhow::Result<String> {
        Ok(self
            .session_command("GET", "/source", &Value::Null)?
            .as_str()
            .unwrap_or_default()
            .to_owned())
    }

    /// Runs a script and returns its result.
    pub fn execute(&self, script: &str) -> anyhow::Result<Value> {
        self.session_command(
            "POST",
            "/execute/sync",
            &json!({ "script": script, "args": [] }),
        )
    }

    /// Saves a PNG screenshot as `<screenshot_dir>/<name>.png`; returns its path.
    pub fn screenshot(&self, name: &str) -> anyhow::Result<PathBuf> {
        let data = self.session_command("GET", "/screenshot", &Value::Null)?;
        let png = base64_decode(data.as_str().context("no screenshot data")?)?;
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png)?;
        Ok(path)
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self.command("DELETE", &format!("/session/{}", self.session), &json!({}));
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_parse_with_chunked_bodies() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nSet-Cookie: a=b\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        let r = parse_response(raw).unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.body, "abcde");
        assert_eq!(r.header("set-cookie"), Some("a=b"));
    }

    #[test]
    fn helpers_find_form_fields_and_decode_base64() {
        let html =
            r#"<form><input type="hidden" name="csrf" value="tok123"></form><div id="x">hi</div>"#;
        assert_eq!(hidden_csrf(html).as_deref(), Some("tok123"));
        assert_eq!(element_text(html, "x").as_deref(), Some("hi"));
        assert_eq!(base64_decode("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(form_encode(&[("a b", "中")]), "a+b=%E4%B8%AD");
    }
}
