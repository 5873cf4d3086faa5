//! A minimal SMTP client (RFC 5321) for alert e-mail: EHLO, STARTTLS when the server
//! offers it (rustls, Mozilla roots), AUTH PLAIN only over TLS, one message as UTF-8
//! text in base64 (RFC 2045/2047).

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::super::error::ConsoleError;

/// Longest a whole SMTP conversation may take.
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// One message to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    /// Server `host:port`.
    pub server: String,
    /// `user:password` for AUTH PLAIN (empty: no authentication).
    pub credentials: String,
    /// Envelope and header sender.
    pub from: String,
    /// Recipients.
    pub to: Vec<String>,
    /// Subject (any Unicode).
    pub subject: String,
    /// Plain-text body (any Unicode).
    pub body: String,
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// Sends `mail`; returns the server's reply to the end of DATA.
pub async fn send(mail: &Mail) -> Result<String, ConsoleError> {
    tokio::time::timeout(TIMEOUT, conversation(mail))
        .await
        .map_err(|_| ConsoleError::Delivery(format!("SMTP {}: timed out", mail.server)))?
}

fn smtp_error(text: impl Into<String>) -> ConsoleError {
    ConsoleError::Delivery(format!("SMTP: {}", text.into()))
}

async fn conversation(mail: &Mail) -> Result<String, ConsoleError> {
    if mail.to.is_empty() {
        return Err(smtp_error("no recipient"));
    }
    for address in mail.to.iter().chain([&mail.from]) {
        if address.contains(['\r', '\n', '<', '>']) || !address.contains('@') {
            return Err(smtp_error(format!("invalid address {address:?}")));
        }
    }
    let host = mail
        .server
        .rsplit_once(':')
        .map(|(h, _)| h)
        .unwrap_or(&mail.server)
        .to_owned();
    let tcp = TcpStream::connect(&mail.server)
        .await
        .map_err(|e| smtp_error(format!("connect {}: {e}", mail.server)))?;
    let mut conn: BufReader<Box<dyn Stream>> = BufReader::new(Box::new(tcp));
    expect(&mut conn, 220).await?;
    let mut ehlo = command(&mut conn, "EHLO shaobing", 250).await?;
    let mut tls = false;
    if ehlo.to_ascii_uppercase().contains("STARTTLS") {
        command(&mut conn, "STARTTLS", 220).await?;
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let config = rustls::ClientConfig::builder_with_provider(shaobing_wire::tls::provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| smtp_error(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = rustls::pki_types::ServerName::try_from(host.clone())
            .map_err(|e| smtp_error(e.to_string()))?;
        let plain = conn.into_inner();
        let secured = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
            .connect(name, plain)
            .await
            .map_err(|e| smtp_error(format!("STARTTLS: {e}")))?;
        conn = BufReader::new(Box::new(secured));
        ehlo = command(&mut conn, "EHLO shaobing", 250).await?;
        tls = true;
    }
    if !mail.credentials.is_empty() {
        if !tls {
            return Err(smtp_error(
                "refusing to send credentials without TLS (server offers no STARTTLS)",
            ));
        }
        if !ehlo.to_ascii_uppercase().contains("AUTH") {
            return Err(smtp_error("server offers no AUTH"));
        }
        let (user, password) = mail
            .credentials
            .split_once(':')
            .unwrap_or((&mail.credentials, ""));
        let token = B64.encode(format!("\0{user}\0{password}"));
        command(&mut conn, &format!("AUTH PLAIN {token}"), 235).await?;
    }
    command(&mut conn, &format!("MAIL FROM:<{}>", mail.from), 250).await?;
    for rcpt in &mail.to {
        let reply = command_any(&mut conn, &format!("RCPT TO:<{rcpt}>")).await?;
        if !(reply.starts_with("250") || reply.starts_with("251")) {
            return Err(smtp_error(format!("RCPT {rcpt}: {reply}")));
        }
    }
    command(&mut conn, "DATA", 354).await?;
    conn.get_mut()
        .write_all(render(mail).as_bytes())
        .await
        .map_err(|e| smtp_error(e.to_string()))?;
    let accepted = command(&mut conn, ".", 250).await?;
    let _ = command_any(&mut conn, "QUIT").await;
    Ok(accepted.trim().to_owned())
}

/// The message text after DATA (headers, base64 body), dot-stuffing not needed for base64.
pub fn render(mail: &Mail) -> String {
    let date = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc2822)
        .unwrap_or_default();
    let encoded = B64.encode(mail.body.as_bytes());
    let mut body = String::new();
    for chunk in encoded.as_bytes().chunks(76) {
        body.push_str(&String::from_utf8_lossy(chunk));
        body.push_str("\r\n");
    }
    format!(
        "From: <{from}>\r\nTo: {to}\r\nSubject: =?UTF-8?B?{subject}?=\r\nDate: {date}\r\n\
         Message-ID: <{id}@shaobing>\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: base64\r\n\r\n{body}",
        from = mail.from,
        to = mail
            .to
            .iter()
            .map(|t| format!("<{t}>"))
            .collect::<Vec<_>>()
            .join(", "),
        subject = B64.encode(mail.subject.as_bytes()),
        id = super::super::password::random_token(12),
    )
}

async fn command(
    conn: &mut BufReader<Box<dyn Stream>>,
    line: &str,
    want: u16,
) -> Result<String, ConsoleError> {
    let reply = command_any(conn, line).await?;
    if !reply.starts_with(&want.to_string()) {
        let shown = if line.starts_with("AUTH") {
            "AUTH"
        } else {
            line
        };
        return Err(smtp_error(format!("{shown}: {}", reply.trim())));
    }
    Ok(reply)
}

async fn command_any(
    conn: &mut BufReader<Box<dyn Stream>>,
    line: &str,
) -> Result<String, ConsoleError> {
    conn.get_mut()
        .write_all(format!("{line}\r\n").as_bytes())
        .await
        .map_err(|e| smtp_error(e.to_string()))?;
    conn.get_mut()
        .flush()
        .await
        .map_err(|e| smtp_error(e.to_string()))?;
    read_reply(conn).await
}

async fn expect(conn: &mut BufReader<Box<dyn Stream>>, want: u16) -> Result<String, ConsoleError> {
    let reply = read_reply(conn).await?;
    if !reply.starts_with(&want.to_string()) {
        return Err(smtp_error(format!("greeting: {}", reply.trim())));
    }
    Ok(reply)
}

/// Reads one (possibly multi-line) reply.
async fn read_reply(conn: &mut BufReader<Box<dyn Stream>>) -> Result<String, ConsoleError> {
    let mut all = String::new();
    loop {
        let mut line = String::new();
        let n = conn
            .read_line(&mut line)
            .await
            .map_err(|e| smtp_error(e.to_string()))?;
        if n == 0 {
            return Err(smtp_error("connection closed"));
        }
        all.push_str(&line);
        if all.len() > 16 * 1024 {
            return Err(smtp_error("reply too long"));
        }
        if line.len() < 4 || line.as_bytes()[3] != b'-' {
            return Ok(all);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_encodes_chinese_subject_and_body() {
        let mail = Mail {
            server: "127.0.0.1:25".into(),
            credentials: String::new(),
            from: "shaobing@example.org".into(),
            to: vec!["soc@example.org".into()],
            subject: "【哨兵告警】高".into(),
            body: "主机 web-1".into(),
        };
        let text = render(&mail);
        assert!(text.contains(&format!(
            "Subject: =?UTF-8?B?{}?=",
            B64.encode("【哨兵告警】高")
        )));
        assert!(text.contains(&B64.encode("主机 web-1")));
        assert!(text.contains("To: <soc@example.org>"));
    }
}
