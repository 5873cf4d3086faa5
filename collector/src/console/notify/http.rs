//! A minimal HTTP/1.1 POST client for webhooks (hyper over TCP, or rustls with the
//! Mozilla roots for `https://`). One request per connection, bounded in time and size.

use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::{Request, Uri, header};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::super::error::ConsoleError;

/// Longest a delivery may take (connect + request + response).
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// Most response bytes read.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// Status and body of a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpReply {
    /// HTTP status code.
    pub status: u16,
    /// Body as text (lossy UTF-8).
    pub body: String,
}

/// POSTs `body` as JSON to `url` with extra `headers`.
pub async fn post_json(
    url: &str,
    body: String,
    headers: &[(&str, String)],
) -> Result<HttpReply, ConsoleError> {
    tokio::time::timeout(TIMEOUT, post(url, body, headers))
        .await
        .map_err(|_| ConsoleError::Delivery(format!("{url}: timed out")))?
}

async fn post(
    url: &str,
    body: String,
    headers: &[(&str, String)],
) -> Result<HttpReply, ConsoleError> {
    let fail =
        |what: &str, e: &dyn std::fmt::Display| ConsoleError::Delivery(format!("{what}: {e}"));
    let uri: Uri = url.parse().map_err(|e| fail("invalid URL", &e))?;
    let https = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => {
            return Err(ConsoleError::Delivery(format!(
                "{url}: only http:// and https:// URLs"
            )));
        }
    };
    let host = uri
        .host()
        .ok_or_else(|| ConsoleError::Delivery(format!("{url}: no host")))?
        .to_owned();
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let authority = uri
        .authority()
        .map(|a| a.as_str().to_owned())
        .unwrap_or_else(|| host.clone());
    let path = uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "/".to_owned());
    let tcp = TcpStream::connect((host.trim_matches(['[', ']']), port))
        .await
        .map_err(|e| fail("connect", &e))?;
    let mut builder = Request::post(path)
        .header(header::HOST, authority)
        .header(header::CONTENT_TYPE, "application/json; charset=utf-8")
        .header(header::USER_AGENT, "shaobing-console");
    for (name, value) in headers {
        builder = builder.header(*name, value);
    }
    let request = builder
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| fail("request", &e))?;
    if https {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let config = rustls::ClientConfig::builder_with_provider(shaobing_wire::tls::provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| fail("TLS", &e))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name =
            rustls::pki_types::ServerName::try_from(host.trim_matches(['[', ']']).to_owned())
                .map_err(|e| fail("TLS server name", &e))?;
        let tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
            .connect(name, tcp)
            .await
            .map_err(|e| fail("TLS handshake", &e))?;
        send(TokioIo::new(tls), request).await
    } else {
        send(TokioIo::new(tcp), request).await
    }
}

async fn send<IO>(io: IO, request: Request<Full<Bytes>>) -> Result<HttpReply, ConsoleError>
where
    IO: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let fail =
        |what: &str, e: &dyn std::fmt::Display| ConsoleError::Delivery(format!("{what}: {e}"));
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| fail("HTTP handshake", &e))?;
    let driver = tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!(%error, "webhook connection ended");
        }
    });
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| fail("HTTP", &e))?;
    let status = response.status().as_u16();
    let body = Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
        .collect()
        .await
        .map(|c| String::from_utf8_lossy(&c.to_bytes()).into_owned())
        .unwrap_or_default();
    driver.abort();
    Ok(HttpReply { status, body })
}
