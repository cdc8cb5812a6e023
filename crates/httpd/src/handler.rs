//! The simple form of an app: a function from a whole request (head and buffered body) to a
//! whole response.

use std::rc::Rc;

use codec_chain::Encoder;
use futures_io::{AsyncRead, AsyncWrite};

use crate::http::{Head, HttpEncoder, HttpError, Reader, Request, RequestReader, Writer};

/// A whole response: status, fields, body (`Content-Length` and `Date` are added).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Header fields, in order.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// A response with `status`, no fields and no body.
    pub fn new(status: u16) -> Response {
        Response {
            status,
            ..Response::default()
        }
    }

    /// A `text/plain` response.
    pub fn text(status: u16, body: impl Into<Vec<u8>>) -> Response {
        Response::new(status)
            .with_header("Content-Type", "text/plain")
            .with_body(body)
    }

    /// Adds a field.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) -> Response {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the body.
    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Response {
        self.body = body.into();
        self
    }
}

impl Encoder<&Response> for HttpEncoder {
    type Error = HttpError;

    fn encode(&mut self, resp: &Response, dst: &mut Vec<u8>) -> Result<(), HttpError> {
        let mut head = Head::new(resp.status);
        for (name, value) in &resp.headers {
            head.header(name, value.as_slice());
        }
        head.content_length(resp.body.len());
        self.encode(&head, dst)?;
        self.encode(resp.body.as_slice(), dst)
    }
}

/// Turns `Fn(&Request) -> Response` into an app: each request's body is read whole (up to
/// `Settings::max_body`, else 413) into [`RequestData::body`](crate::http::RequestData::body) before the function runs.
///
/// ```no_run
/// # async fn run(listener: uvlite::TcpListener) -> std::io::Result<()> {
/// use httpd::handler::{Handler, Response};
/// let hello = Handler::new(|req| Response::text(200, format!("hello, {}\n", req.path())));
/// let server = httpd::server::Server::new(httpd::http::Settings::default(), 10_000);
/// server.accept(&listener, move |r, w| hello.clone().serve(r, w)).await
/// # }
/// ```
pub struct Handler<H> {
    f: Rc<H>,
}

impl<H> Clone for Handler<H> {
    fn clone(&self) -> Self {
        Handler { f: self.f.clone() }
    }
}

impl<H: Fn(&Request) -> Response> Handler<H> {
    /// Wraps `f`.
    pub fn new(f: H) -> Handler<H> {
        Handler { f: Rc::new(f) }
    }

    /// Serves one connection with the function.
    ///
    /// # Errors
    /// The connection's errors (malformed requests are answered by the server).
    pub async fn serve<S>(self, mut read: Reader<S>, mut write: Writer<S>) -> Result<(), HttpError>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let limit = read.decoder().settings().max_body;
        while let Some(mut req) = read.next_request().await? {
            let mut body = std::mem::take(&mut req.body);
            body.clear();
            read.read_body(&mut body, limit).await?;
            req.body = body;
            req.trailers.clear();
            for (name, value) in read.decoder().trailers() {
                req.trailers.push((name.to_owned(), value.to_vec()));
            }
            let resp = (self.f)(&req);
            write.write(&resp).await?;
        }
        write.close().await?;
        Ok(())
    }
}
