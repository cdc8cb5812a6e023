//! httpd's built-in apps. `path` is the seed's app, line for line.

use futures_io::{AsyncRead, AsyncWrite};

use crate::http::{Head, HttpError, Item, Reader, Writer};

/// The seed's app (Luvit's `bench/http-cluster/app.lua`): answers every request with its path
/// and a newline, as `text/plain`, keeping the connection alive when the client does.
///
/// ```lua
/// for req in read do
///   repeat local chunk = read() until not chunk or chunk == ""
///   local body = req.path .. "\n"
///   write({ code = 200, {"Server","Luvit"}, {"Content-Type","text/plain"},
///           {"Content-Length", #body}, req.keepAlive and {"Connection","Keep-Alive"} or nil })
///   write(body)
///   if not req.keepAlive then break end
/// end
/// write()
/// ```
pub async fn path<S>(mut read: Reader<S>, mut write: Writer<S>) -> Result<(), HttpError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut body = Vec::new(); // reused: no allocation per request
    while let Some(Item::Head(req)) = read.read().await? {
        while let Some(Item::Body(_)) = read.read().await? {} // drain the body up to its End
        body.clear();
        body.extend_from_slice(req.target());
        body.push(b'\n'); // local body = req.path .. "\n"
        let mut head = Head::new(200);
        head.header("Server", "http-cluster");
        head.header("Content-Type", "text/plain");
        head.header("Content-Length", body.len());
        if req.keep_alive() {
            head.header("Connection", "keep-alive");
        }
        write.write(&head).await?;
        write.write(&body).await?;
        if !req.keep_alive() {
            break;
        }
    }
    write.close().await?; // write(): flush and shut the connection down
    Ok(())
}

/// TechEmpower's plaintext test: `Hello, World!` for every request.
pub async fn hello<S>(mut read: Reader<S>, mut write: Writer<S>) -> Result<(), HttpError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    const BODY: &[u8] = b"Hello, World!";
    while let Some(Item::Head(req)) = read.read().await? {
        while let Some(Item::Body(_)) = read.read().await? {}
        let mut head = Head::new(200);
        head.header("Server", "http-cluster");
        head.header("Content-Type", "text/plain");
        head.header("Content-Length", BODY.len());
        write.write(&head).await?;
        write.write(BODY).await?;
        if !req.keep_alive() {
            break;
        }
    }
    write.close().await?;
    Ok(())
}
