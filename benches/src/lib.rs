//! Inputs shared by the benches under `benches/`: request heads as a client sends them.
#![forbid(unsafe_code)]

/// A 6-header plaintext GET (TechEmpower's plaintext request, as wrk sends it).
pub const GET_6_HEADERS: &[u8] = b"GET /plaintext HTTP/1.1\r\n\
Host: localhost:8080\r\n\
Accept: text/plain,text/html;q=0.9,application/xhtml+xml;q=0.9,application/xml;q=0.8,*/*;q=0.7\r\n\
Connection: keep-alive\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/120.0\r\n\
Accept-Encoding: gzip, deflate, br\r\n\
Accept-Language: en-US,en;q=0.5\r\n\
\r\n";
