//! The floor vendorgate is measured against: the same HTTP stack (axum + reqwest, same
//! runtime; `PER_CORE=1` for one single-threaded runtime per core, as `vendorgate serve`)
//! forwarding every call with a header swap and nothing else. `bench/run.sh` runs it
//! so the table separates the cost of the stack from the cost of the gateway's work.
//! Usage: bare_proxy LISTEN UPSTREAM_BASE_URL

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;

struct Bare {
    client: reqwest::Client,
    base: String,
}

async fn forward(
    State(s): State<std::sync::Arc<Bare>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let url = format!(
        "{}{}",
        s.base,
        uri.path_and_query().map(|p| p.as_str()).unwrap_or("/")
    );
    let mut req = s.client.request(method, url).body(body);
    if let Some(ct) = headers.get("content-type") {
        req = req.header("content-type", ct);
    }
    req = req.header("authorization", "Bearer sk_test_bench");
    match req.send().await {
        Ok(r) => {
            let status = r.status();
            let ct = r.headers().get("content-type").cloned();
            let body = r.bytes().await.unwrap_or_default();
            let mut out = Response::builder().status(status);
            if let Some(ct) = ct {
                out = out.header("content-type", ct);
            }
            out.body(Body::from(body)).unwrap_or_default()
        }
        Err(_) => Response::builder()
            .status(502)
            .body(Body::empty())
            .unwrap_or_default(),
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:18084".into());
    let base = args
        .next()
        .unwrap_or_else(|| "http://127.0.0.1:18081".into());
    let per_core = std::env::var("PER_CORE").is_ok();
    if !per_core {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(serve_on(listen, base, false));
        return;
    }
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let (l, b) = (listen.clone(), base.clone());
            std::thread::spawn(move || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime")
                    .block_on(serve_on(l, b, true))
            })
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
}

async fn serve_on(listen: String, base: String, reuse: bool) {
    let client = reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .build()
        .expect("client");
    let state = std::sync::Arc::new(Bare { client, base });
    let app = axum::Router::new().fallback(forward).with_state(state);
    let addr: std::net::SocketAddr = listen.parse().expect("addr");
    let sock =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    sock.set_reuse_address(true).expect("reuse");
    if reuse {
        sock.set_reuse_port(true).expect("reuseport");
    }
    sock.set_nonblocking(true).expect("nb");
    sock.bind(&addr.into()).expect("bind");
    sock.listen(1024).expect("listen");
    let listener = tokio::net::TcpListener::from_std(sock.into()).expect("listener");
    axum::serve(listener, app).await.expect("serve");
}
