//! Reason phrases of the registered status codes (IANA HTTP Status Code Registry).

/// The status line (`HTTP/1.1 200 OK\r\n`) of a registered status, ready to copy.
pub(crate) fn status_line(status: u16) -> Option<&'static [u8]> {
    Some(match status {
        100 => b"HTTP/1.1 100 Continue\r\n",
        101 => b"HTTP/1.1 101 Switching Protocols\r\n",
        102 => b"HTTP/1.1 102 Processing\r\n",
        103 => b"HTTP/1.1 103 Early Hints\r\n",
        200 => b"HTTP/1.1 200 OK\r\n",
        201 => b"HTTP/1.1 201 Created\r\n",
        202 => b"HTTP/1.1 202 Accepted\r\n",
        203 => b"HTTP/1.1 203 Non-Authoritative Information\r\n",
        204 => b"HTTP/1.1 204 No Content\r\n",
        205 => b"HTTP/1.1 205 Reset Content\r\n",
        206 => b"HTTP/1.1 206 Partial Content\r\n",
        207 => b"HTTP/1.1 207 Multi-Status\r\n",
        208 => b"HTTP/1.1 208 Already Reported\r\n",
        226 => b"HTTP/1.1 226 IM Used\r\n",
        300 => b"HTTP/1.1 300 Multiple Choices\r\n",
        301 => b"HTTP/1.1 301 Moved Permanently\r\n",
        302 => b"HTTP/1.1 302 Found\r\n",
        303 => b"HTTP/1.1 303 See Other\r\n",
        304 => b"HTTP/1.1 304 Not Modified\r\n",
        305 => b"HTTP/1.1 305 Use Proxy\r\n",
        307 => b"HTTP/1.1 307 Temporary Redirect\r\n",
        308 => b"HTTP/1.1 308 Permanent Redirect\r\n",
        400 => b"HTTP/1.1 400 Bad Request\r\n",
        401 => b"HTTP/1.1 401 Unauthorized\r\n",
        402 => b"HTTP/1.1 402 Payment Required\r\n",
        403 => b"HTTP/1.1 403 Forbidden\r\n",
        404 => b"HTTP/1.1 404 Not Found\r\n",
        405 => b"HTTP/1.1 405 Method Not Allowed\r\n",
        406 => b"HTTP/1.1 406 Not Acceptable\r\n",
        407 => b"HTTP/1.1 407 Proxy Authentication Required\r\n",
        408 => b"HTTP/1.1 408 Request Timeout\r\n",
        409 => b"HTTP/1.1 409 Conflict\r\n",
        410 => b"HTTP/1.1 410 Gone\r\n",
        411 => b"HTTP/1.1 411 Length Required\r\n",
        412 => b"HTTP/1.1 412 Precondition Failed\r\n",
        413 => b"HTTP/1.1 413 Content Too Large\r\n",
        414 => b"HTTP/1.1 414 URI Too Long\r\n",
        415 => b"HTTP/1.1 415 Unsupported Media Type\r\n",
        416 => b"HTTP/1.1 416 Range Not Satisfiable\r\n",
        417 => b"HTTP/1.1 417 Expectation Failed\r\n",
        421 => b"HTTP/1.1 421 Misdirected Request\r\n",
        422 => b"HTTP/1.1 422 Unprocessable Content\r\n",
        423 => b"HTTP/1.1 423 Locked\r\n",
        424 => b"HTTP/1.1 424 Failed Dependency\r\n",
        425 => b"HTTP/1.1 425 Too Early\r\n",
        426 => b"HTTP/1.1 426 Upgrade Required\r\n",
        428 => b"HTTP/1.1 428 Precondition Required\r\n",
        429 => b"HTTP/1.1 429 Too Many Requests\r\n",
        431 => b"HTTP/1.1 431 Request Header Fields Too Large\r\n",
        451 => b"HTTP/1.1 451 Unavailable For Legal Reasons\r\n",
        500 => b"HTTP/1.1 500 Internal Server Error\r\n",
        501 => b"HTTP/1.1 501 Not Implemented\r\n",
        502 => b"HTTP/1.1 502 Bad Gateway\r\n",
        503 => b"HTTP/1.1 503 Service Unavailable\r\n",
        504 => b"HTTP/1.1 504 Gateway Timeout\r\n",
        505 => b"HTTP/1.1 505 HTTP Version Not Supported\r\n",
        506 => b"HTTP/1.1 506 Variant Also Negotiates\r\n",
        507 => b"HTTP/1.1 507 Insufficient Storage\r\n",
        508 => b"HTTP/1.1 508 Loop Detected\r\n",
        510 => b"HTTP/1.1 510 Not Extended\r\n",
        511 => b"HTTP/1.1 511 Network Authentication Required\r\n",
        _ => return None,
    })
}

/// The reason phrase for `status`, if it is registered.
///
/// ```
/// assert_eq!(codec_http::reason(404), Some("Not Found"));
/// assert_eq!(codec_http::reason(599), None);
/// ```
pub fn reason(status: u16) -> Option<&'static str> {
    Some(match status {
        100 => "Continue",
        101 => "Switching Protocols",
        102 => "Processing",
        103 => "Early Hints",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        203 => "Non-Authoritative Information",
        204 => "No Content",
        205 => "Reset Content",
        206 => "Partial Content",
        207 => "Multi-Status",
        208 => "Already Reported",
        226 => "IM Used",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        305 => "Use Proxy",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        421 => "Misdirected Request",
        422 => "Unprocessable Content",
        423 => "Locked",
        424 => "Failed Dependency",
        425 => "Too Early",
        426 => "Upgrade Required",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        451 => "Unavailable For Legal Reasons",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        506 => "Variant Also Negotiates",
        507 => "Insufficient Storage",
        508 => "Loop Detected",
        510 => "Not Extended",
        511 => "Network Authentication Required",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn status_lines_agree_with_reasons() {
        for status in 100..1000 {
            let line = super::status_line(status);
            match super::reason(status) {
                Some(r) => {
                    assert_eq!(line, Some(format!("HTTP/1.1 {status} {r}\r\n").as_bytes()));
                }
                None => assert_eq!(line, None),
            }
        }
    }
}
