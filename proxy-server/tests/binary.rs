//! The `vendorgate` binary as a user runs it: startup with and without credentials, bad
//! config, the admin API on its own socket, graceful shutdown.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_vendorgate");

fn clean_cmd() -> Command {
    let mut c = Command::new(BIN);
    for (k, _) in std::env::vars() {
        if k.starts_with("STRIPE_")
            || k.starts_with("TWILIO_")
            || k.starts_with("RESEND_")
            || k.starts_with("VENDORGATE_")
        {
            c.env_remove(k);
        }
    }
    c
}

/// Start `serve`, return the child and the URLs it printed.
fn serve(args: &[&str], env: &[(&str, &str)], lines: usize) -> (Child, Vec<String>) {
    let mut cmd = clean_cmd();
    cmd.arg("serve")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut urls = vec![];
    for _ in 0..lines {
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        urls.push(line.trim().rsplit(' ').next().unwrap().to_string());
    }
    (child, urls)
}

fn get(url: &str, token: Option<&str>) -> (u16, String) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut r = reqwest::Client::new().get(url);
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        let resp = r.send().await.unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    })
}

#[test]
fn starts_without_credentials_and_answers_503_for_unconfigured_vendors() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("g.db");
    let (mut child, urls) = serve(
        &["--listen", "127.0.0.1:0", "--db", db.to_str().unwrap()],
        &[("VENDORGATE_ADMIN_TOKEN", "t0k")],
        1,
    );
    let base = &urls[0];
    let (status, body) = send_one_email(base);
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("vendorgate_vendor_not_configured") && body.contains("resend"),
        "{body}"
    );
    child.kill().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(err.contains("NOT configured"), "{err}");
}

#[test]
fn bad_config_names_the_field_and_the_file_and_exits_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.toml");
    std::fs::write(
        &cfg,
        "listen = \"127.0.0.1:0\"\n[pricing]\nresend_email_usd = \"cheap\"\n",
    )
    .unwrap();
    let out = clean_cmd()
        .args(["serve", "--config", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("resend_email_usd") && err.contains("bad.toml"),
        "{err}"
    );
    std::fs::write(&cfg, "lisen = \"x\"\n").unwrap();
    let out = clean_cmd()
        .args(["serve", "--config", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("lisen"));
}

#[test]
fn example_config_is_valid() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = clean_cmd()
        .args([
            "serve",
            "--config",
            concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/vendorgate.toml"),
            "--listen",
            "127.0.0.1:0",
            "--db",
        ])
        .arg(dir.path().join("x.db"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(
        line.starts_with("vendorgate listening on http://127.0.0.1:"),
        "{line}"
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn admin_listen_keeps_the_admin_api_off_the_public_socket() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("g.db");
    let (mut child, urls) = serve(
        &[
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
            "--db",
            db.to_str().unwrap(),
        ],
        &[("VENDORGATE_ADMIN_TOKEN", "t0k")],
        2,
    );
    let (public, admin) = (&urls[0], &urls[1]);
    assert_eq!(get(&format!("{admin}/v1/keys"), Some("t0k")).0, 200);
    assert_ne!(
        get(&format!("{public}/v1/keys"), Some("t0k")).0,
        200,
        "admin API must not answer on the public socket"
    );
    assert_eq!(get(&format!("{admin}/v1/keys"), None).0, 401);
    // The dashboard and its data routes follow the admin API.
    assert_eq!(get(&format!("{admin}/ui"), None).0, 200);
    assert_ne!(get(&format!("{public}/ui"), None).0, 200);
    assert_ne!(
        get(&format!("{public}/v1/audit/stream"), Some("t0k")).0,
        200
    );
    child.kill().unwrap();
}

#[test]
fn a_bad_key_cursor_is_a_400_that_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("g.db");
    let (mut child, urls) = serve(
        &["--listen", "127.0.0.1:0", "--db", db.to_str().unwrap()],
        &[("VENDORGATE_ADMIN_TOKEN", "t0k")],
        1,
    );
    let base = &urls[0];
    for bad in [
        "nonsense",
        "1.2.key_a",
        "x.key_a",
        "1.key%20a",
        "1.",
        "%FF.key",
    ] {
        let (status, body) = get(&format!("{base}/v1/keys?q=&cursor={bad}"), Some("t0k"));
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(body.contains("cursor"), "{bad}: {body}");
    }
    let (status, body) = get(&format!("{base}/v1/keys?q=&cursor=0.key_a"), Some("t0k"));
    assert_eq!((status, body.as_str()), (200, "[]"));
    child.kill().unwrap();
}

#[test]
fn sigterm_shuts_down_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("g.db");
    let (mut child, urls) = serve(
        &["--listen", "127.0.0.1:0", "--db", db.to_str().unwrap()],
        &[],
        1,
    );
    assert_eq!(get(&format!("{}/healthz", urls[0]), None).0, 200);
    let sent = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let mut waited = 0;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        std::thread::sleep(Duration::from_millis(50));
        waited += 1;
        assert!(waited < 200, "did not exit after SIGTERM");
    };
    assert!(status.success(), "{status:?}");
}

#[test]
fn cli_bad_input_gets_a_clear_message_and_no_panic() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cli.db");
    // Create the database once through the CLI's own local mode.
    let (mut child, _) = serve(
        &["--listen", "127.0.0.1:0", "--db", db.to_str().unwrap()],
        &[],
        1,
    );
    child.kill().unwrap();
    let db = db.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (
            &["keys", "issue", "--vendor", "paypal", "--db", db],
            "paypal",
        ),
        (
            &[
                "keys",
                "issue",
                "--vendor",
                "stripe",
                "--max-usd",
                "-5",
                "--db",
                db,
            ],
            "--max-usd",
        ),
        (
            &[
                "keys",
                "issue",
                "--vendor",
                "stripe",
                "--max-usd",
                "1.0000001",
                "--db",
                db,
            ],
            "--max-usd",
        ),
        (
            &[
                "keys", "issue", "--vendor", "stripe", "--allow", "/v1/../x", "--db", db,
            ],
            "allowed_endpoints",
        ),
        (
            &[
                "keys",
                "issue",
                "--vendor",
                "stripe",
                "--expires-in",
                "soon",
                "--db",
                db,
            ],
            "--expires-in",
        ),
        (
            &[
                "keys",
                "issue",
                "--vendor",
                "stripe",
                "--metadata",
                "{nope",
                "--db",
                db,
            ],
            "--metadata",
        ),
        (&["keys", "issue", "--vendor", "stripe"], "--server"),
        (&["keys", "show", "key_missing", "--db", db], "no key"),
        (&["keys", "revoke", "key_missing", "--db", db], "no key"),
        (
            &["keys", "list", "--db", "/nonexistent/dir/x.db"],
            "does not exist",
        ),
        (&["audit", "--server", "not a url"], "url"),
    ];
    for (args, needle) in cases {
        let out = clean_cmd().args(*args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
    // And the happy path works locally, showing the vault key once.
    let out = clean_cmd()
        .args([
            "keys",
            "issue",
            "--vendor",
            "stripe",
            "--max-usd",
            "5",
            "--allow",
            "POST /v1/payment_intents",
            "--json",
            "--db",
            db,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["vault_key"].as_str().unwrap().starts_with("vk_"));
    let list = clean_cmd()
        .args(["keys", "list", "--db", db])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(
        text.contains(v["key_id"].as_str().unwrap())
            && !text.contains(v["vault_key"].as_str().unwrap())
    );
}

/// `vendorgate sim` prints its URL and, as JSON on the same line, the environment that points
/// a gateway at it; a gateway started with only that environment reaches it.
#[test]
fn sim_announces_the_environment_that_points_a_gateway_at_it() {
    let mut sim = clean_cmd()
        .args(["sim", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(sim.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let rest = line
        .trim()
        .strip_prefix("vendorgate-sim listening on ")
        .unwrap_or_else(|| panic!("{line:?}"));
    let (url, info) = rest.split_once(' ').unwrap_or_else(|| panic!("{line:?}"));
    assert!(url.starts_with("http://127.0.0.1:"), "{line}");
    let info: serde_json::Value = serde_json::from_str(info).unwrap();
    assert_eq!(info["url"], url);
    let env: Vec<(String, String)> = info["env"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect();
    let vars: Vec<&str> = env.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        vars,
        [
            "RESEND_API_KEY",
            "STRIPE_SECRET_KEY",
            "TWILIO_ACCOUNT_SID",
            "TWILIO_AUTH_TOKEN",
            "VENDORGATE_RESEND_URL",
            "VENDORGATE_STRIPE_URL",
            "VENDORGATE_TWILIO_URL"
        ]
    );
    assert_eq!(
        env.iter()
            .find(|(k, _)| k == "VENDORGATE_STRIPE_URL")
            .unwrap()
            .1,
        format!("{url}/stripe")
    );

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("g.db");
    let mut gw_env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    gw_env.push(("VENDORGATE_ADMIN_TOKEN", "t0k"));
    let (mut gw, urls) = serve(
        &["--listen", "127.0.0.1:0", "--db", db.to_str().unwrap()],
        &gw_env,
        1,
    );
    let base = &urls[0];
    let (status, body) = send_one_email(base);
    gw.kill().unwrap();
    sim.kill().unwrap();
    sim.wait().unwrap();
    assert_eq!(status, 200, "{body}");
    // Every vendor, not only the one called, got its credentials from that environment.
    let mut err = String::new();
    std::io::Read::read_to_string(&mut gw.stderr.take().unwrap(), &mut err).unwrap();
    assert!(!err.contains("NOT configured"), "{err}");
    assert_eq!(err.matches("vendor configured").count(), 3, "{err}");
}

/// Issue a Resend key through the admin API (token `t0k`) and send one email with it:
/// the answer's status and body.
fn send_one_email(base: &str) -> (u16, String) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let c = reqwest::Client::new();
        let key: serde_json::Value = c
            .post(format!("{base}/v1/keys"))
            .bearer_auth("t0k")
            .body(r#"{"vendor":"resend","max_usd":"1","allowed_endpoints":["POST /emails"]}"#)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .map(|b| serde_json::from_slice(&b).unwrap())
            .unwrap();
        let resp = c
            .post(format!("{base}/resend/emails"))
            .bearer_auth(key["vault_key"].as_str().unwrap())
            .body(r#"{"from":"a@x.dev","to":"b@x.dev","subject":"s"}"#)
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    })
}

/// `vendorgate webhooks …` and `vendorgate events`, against a server and on the database
/// file: the secret is printed once (never by `list`), a revocation becomes an event queued for
/// the webhook, bad input is refused with the field named, and a deleted webhook is gone.
#[test]
fn webhooks_and_events_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("w.db");
    let (mut child, urls) = serve(
        &["--listen", "127.0.0.1:0", "--db", db.to_str().unwrap()],
        &[("VENDORGATE_ADMIN_TOKEN", "t0k")],
        1,
    );
    let server = urls[0].clone();
    let cli = |args: &[&str]| {
        let out = clean_cmd()
            .args(args)
            .args(["--server", &server])
            .env("VENDORGATE_ADMIN_TOKEN", "t0k")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            err,
        )
    };
    let json = |text: &str| -> serde_json::Value { serde_json::from_str(text).unwrap() };

    // Port 9 (discard) is closed here: the delivery waits in the outbox.
    let (ok, out, err) = cli(&[
        "webhooks",
        "create",
        "http://127.0.0.1:9/hook",
        "--events",
        "key.revoked,spend.threshold_crossed",
        "--json",
    ]);
    assert!(ok, "{err}");
    let hook = json(&out);
    let (id, secret) = (
        hook["id"].as_str().unwrap(),
        hook["secret"].as_str().unwrap(),
    );
    assert!(secret.starts_with("whsec_"), "{hook}");
    assert_eq!(
        hook["events"],
        serde_json::json!(["key.revoked", "spend.threshold_crossed"])
    );
    let (ok, out, _) = cli(&["webhooks", "list"]);
    assert!(ok && out.contains(id) && out.contains("active"), "{out}");
    assert!(
        !out.contains(secret),
        "list must not show the secret: {out}"
    );

    let (ok, out, err) = cli(&[
        "keys",
        "issue",
        "--vendor",
        "stripe",
        "--max-usd",
        "5",
        "--json",
    ]);
    assert!(ok, "{err}");
    let key_id = json(&out)["key_id"].as_str().unwrap().to_string();
    assert!(cli(&["keys", "revoke", &key_id]).0);
    let (ok, out, err) = cli(&["events", "--json"]);
    assert!(ok, "{err}");
    let events = json(&out);
    let revoked: Vec<_> = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "key.revoked" && e["key_id"] == key_id.as_str())
        .collect();
    assert_eq!(revoked.len(), 1, "{events}");
    assert_eq!(revoked[0]["deliveries"][0]["webhook_id"], id);
    let (ok, out, _) = cli(&["events"]);
    assert!(
        ok && out.contains("key.revoked") && out.contains(&key_id) && out.contains(id),
        "{out}"
    );

    for (args, needle) in [
        (&["webhooks", "create", "ftp://127.0.0.1/x"][..], "url"),
        (
            &[
                "webhooks",
                "create",
                "http://127.0.0.1:9/x",
                "--events",
                "spend.nope",
            ][..],
            "spend.nope",
        ),
        (
            &[
                "webhooks",
                "create",
                "http://127.0.0.1:9/x",
                "--format",
                "teams",
            ][..],
            "teams",
        ),
        (&["webhooks", "delete", "wh_missing"][..], "no webhook"),
        (&["events", "--limit", "0"][..], "--limit"),
    ] {
        let (ok, _, err) = cli(args);
        assert!(!ok && err.contains(needle), "{args:?}: {err}");
    }

    let (ok, out, err) = cli(&["webhooks", "delete", id]);
    assert!(ok && out.contains(id), "{err}");
    let (_, out, _) = cli(&["webhooks", "list", "--json"]);
    assert_eq!(json(&out), serde_json::json!([]));
    child.kill().unwrap();
    child.wait().unwrap();

    // On the database file, with no server: the same commands.
    let db = db.to_str().unwrap();
    let out = clean_cmd()
        .args([
            "webhooks",
            "create",
            "http://127.0.0.1:9/slack",
            "--format",
            "slack",
            "--db",
            db,
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("whsec_") && text.contains("slack"),
        "{text}"
    );
    let out = clean_cmd().args(["events", "--db", db]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains(&key_id));
}
