//! Chatwoot signing: the reference test vectors, verification errors, and the
//! `webhook sign` / `webhook verify` command logic (including the printed curl
//! snippet, run for real against a local receiver).

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::support::api::exit::ExitStatus;
use crate::support::api::webhook::{sign, sign_body_only, verify, SignatureError, DEFAULT_MAX_AGE};
use crate::support::api::webhook::{sign_command_with, verify_command_with};
use crate::support::api::webhook::{Listener, ListenerConfig, SignArgs, VerifyArgs, WebhookError};

const SECRET: &str = "test-secret";
const TS: &str = "1767225600";
const VECTOR1_SIG: &str = "sha256=cf62c6eaca6aa8e853e03afd79c9a1cd206b7b191da2f16342a1bf0ebcea61b3";
const VECTOR1_BODY_ONLY: &str =
    "sha256=0cd10b6d64f8086c894f89d3d8f8ad95181c8de95174307cd6a32c84fbefaf1a";
const VECTOR2_SIG: &str = "sha256=4bedd97eff6ecdf44eb35bd12e8d4250c0bceda1969d4574a91e57c7a6e89589";
const VECTOR3_SIG: &str = "sha256=3816affe575c3519cffe3a55c9c5d480006e3a94beeade207608e4a92fc485d3";

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/chatwoot")
        .join(name)
}

fn vector1() -> Vec<u8> {
    std::fs::read(fixture("vector1_body.json")).unwrap()
}

fn vector3() -> Vec<u8> {
    std::fs::read(fixture("vector3_body.json")).unwrap()
}

fn now() -> i64 {
    TS.parse::<i64>().unwrap() + 10
}

#[test]
fn webhook_vector_fixtures_are_byte_exact() {
    use sha2::Digest;
    let v1 = vector1();
    assert_eq!(v1.len(), 2048);
    assert_eq!(
        hex::encode(sha2::Sha256::digest(&v1)),
        "4c175ffe912ec464a4f3e7d2cd9f874fa3f4ebbc3dc84a6630f9021e27826b75"
    );
    let v3 = vector3();
    assert_eq!(v3.len(), 369);
    assert_eq!(
        hex::encode(sha2::Sha256::digest(&v3)),
        "ee4c17b2887623993e30f80aaec214d837e0eeec34b9c8f5657fd7a9ffcc797a"
    );
}

#[test]
fn webhook_vectors_give_the_documented_signatures() {
    assert_eq!(sign(SECRET.as_bytes(), TS, &vector1()), VECTOR1_SIG);
    assert_eq!(sign(SECRET.as_bytes(), TS, b""), VECTOR2_SIG);
    assert_eq!(sign(SECRET.as_bytes(), TS, &vector3()), VECTOR3_SIG);
    for (body, sig) in [
        (vector1(), VECTOR1_SIG),
        (Vec::new(), VECTOR2_SIG),
        (vector3(), VECTOR3_SIG),
    ] {
        assert_eq!(
            verify(
                SECRET.as_bytes(),
                Some(sig),
                Some(TS),
                &body,
                now(),
                DEFAULT_MAX_AGE
            ),
            Ok(())
        );
    }
}

#[test]
fn webhook_body_only_negative_control_is_rejected_with_hint() {
    assert_eq!(
        sign_body_only(SECRET.as_bytes(), &vector1()),
        VECTOR1_BODY_ONLY
    );
    let err = verify(
        SECRET.as_bytes(),
        Some(VECTOR1_BODY_ONLY),
        Some(TS),
        &vector1(),
        now(),
        DEFAULT_MAX_AGE,
    )
    .unwrap_err();
    assert_eq!(
        err,
        SignatureError::Mismatch {
            body_only_matches: true
        }
    );
    assert!(err.to_string().contains("the signature matches HMAC(secret, body) without the timestamp prefix; Chatwoot signs \"<timestamp>.<body>\""), "{err}");
}

#[test]
fn webhook_verify_error_cases() {
    let secret = SECRET.as_bytes();
    let body = vector1();
    let check = |sig: Option<&str>, ts: Option<&str>, body: &[u8], now: i64| {
        verify(secret, sig, ts, body, now, DEFAULT_MAX_AGE)
    };

    assert_eq!(
        check(None, Some(TS), &body, now()),
        Err(SignatureError::MissingSignature)
    );
    assert_eq!(
        check(Some(VECTOR1_SIG), None, &body, now()),
        Err(SignatureError::MissingTimestamp)
    );
    assert!(matches!(
        check(Some("sha256=xyz"), Some(TS), &body, now()),
        Err(SignatureError::MalformedSignature { .. })
    ));
    assert!(matches!(
        check(Some(&VECTOR1_SIG[7..]), Some(TS), &body, now()),
        Err(SignatureError::MalformedSignature { .. })
    ));
    assert!(matches!(
        check(Some(VECTOR1_SIG), Some("2026-01-01"), &body, now()),
        Err(SignatureError::MalformedTimestamp { .. })
    ));

    // Tampered body: one byte changed.
    let mut tampered = body.clone();
    tampered[100] ^= 1;
    let err = check(Some(VECTOR1_SIG), Some(TS), &tampered, now()).unwrap_err();
    assert_eq!(
        err,
        SignatureError::Mismatch {
            body_only_matches: false
        }
    );
    assert!(!err.to_string().contains("without the timestamp prefix"));

    // Wrong secret.
    let other = sign(b"other-secret", TS, &body);
    assert_eq!(
        check(Some(&other), Some(TS), &body, now()),
        Err(SignatureError::Mismatch {
            body_only_matches: false
        })
    );

    // Signed for another timestamp.
    assert!(matches!(
        check(Some(VECTOR1_SIG), Some("1767225601"), &body, now()),
        Err(SignatureError::Mismatch { .. })
    ));

    // Stale: 301 s after signing, with a 300 s window; says how old.
    let stale = check(Some(VECTOR1_SIG), Some(TS), &body, 1767225600 + 301).unwrap_err();
    assert_eq!(
        stale,
        SignatureError::Stale {
            age_secs: 301,
            max_age: Duration::from_secs(300)
        }
    );
    assert!(
        stale.to_string().contains("signed 5 minutes 1 second ago"),
        "{stale}"
    );
    assert_eq!(
        check(Some(VECTOR1_SIG), Some(TS), &body, 1767225600 + 300),
        Ok(())
    );

    // From the future: says how far.
    let future = check(Some(VECTOR1_SIG), Some(TS), &body, 1767225600 - 120).unwrap_err();
    assert_eq!(future, SignatureError::FromFuture { ahead_secs: 120 });
    assert!(future.to_string().contains("2 minutes ahead"), "{future}");

    // A week-old replay reads in days, not in thousands of hours.
    let week_old = 1767225600 + 8 * 86_400 + 7_322;
    let old = check(Some(VECTOR1_SIG), Some(TS), &body, week_old).unwrap_err();
    assert!(
        old.to_string()
            .starts_with("stale timestamp: signed 8 days ago, beyond the 5m replay window"),
        "{old}"
    );

    // Uppercase hex is still the same MAC.
    let upper = format!("sha256={}", VECTOR1_SIG[7..].to_uppercase());
    assert_eq!(check(Some(&upper), Some(TS), &body, now()), Ok(()));
}

fn env_with(name: &'static str, value: &'static str) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<&str, &str> = HashMap::from([(name, value)]);
    move |key| map.get(key).map(|v| v.to_string())
}

#[test]
fn webhook_sign_command_prints_the_three_headers() {
    let args = SignArgs {
        secret_env: "CW_SECRET".into(),
        timestamp: Some(TS.into()),
        delivery: Some("3b1f6f0e-8c2a-4d5e-9f10-6a7b8c9d0e1f".into()),
        curl: None,
        body_file: fixture("vector1_body.json"),
    };
    let out = sign_command_with(&args, &env_with("CW_SECRET", SECRET), 0).unwrap();
    assert_eq!(
        out,
        format!("X-Chatwoot-Signature: {VECTOR1_SIG}\nX-Chatwoot-Timestamp: {TS}\nX-Chatwoot-Delivery: 3b1f6f0e-8c2a-4d5e-9f10-6a7b8c9d0e1f\n")
    );
    assert!(!out.contains(SECRET));

    // Defaults: the clock's time and a fresh UUID.
    let defaults = SignArgs {
        timestamp: None,
        delivery: None,
        ..args.clone()
    };
    let out = sign_command_with(&defaults, &env_with("CW_SECRET", SECRET), 1767225600).unwrap();
    assert!(out.starts_with(&format!("X-Chatwoot-Signature: {VECTOR1_SIG}\nX-Chatwoot-Timestamp: {TS}\nX-Chatwoot-Delivery: ")), "{out}");
    let delivery = out
        .lines()
        .nth(2)
        .unwrap()
        .trim_start_matches("X-Chatwoot-Delivery: ");
    assert!(uuid::Uuid::parse_str(delivery).is_ok(), "{delivery}");
}

#[test]
fn webhook_sign_and_verify_refuse_a_missing_or_empty_secret() {
    let args = SignArgs {
        secret_env: "CW_SECRET".into(),
        timestamp: None,
        delivery: None,
        curl: None,
        body_file: fixture("vector1_body.json"),
    };
    let unset = sign_command_with(&args, &|_| None, 0).unwrap_err();
    assert!(matches!(unset, WebhookError::SecretUnset { .. }));
    assert!(
        unset
            .to_string()
            .contains("environment variable CW_SECRET is not set"),
        "{unset}"
    );
    let empty = sign_command_with(&args, &env_with("CW_SECRET", ""), 0).unwrap_err();
    assert!(empty.to_string().contains("CW_SECRET is empty"), "{empty}");
    let bad_name = SignArgs {
        secret_env: "X;rm".into(),
        ..args.clone()
    };
    assert!(matches!(
        sign_command_with(&bad_name, &|_| None, 0),
        Err(WebhookError::BadEnvName { .. })
    ));
    let missing_file = SignArgs {
        body_file: fixture("nope.json"),
        ..args
    };
    let err = sign_command_with(&missing_file, &env_with("CW_SECRET", SECRET), 0).unwrap_err();
    assert!(err.to_string().contains("cannot read body file"), "{err}");
    assert_eq!(ExitStatus::from(&err).code(), 2);

    let verify_args = VerifyArgs::new("CW_SECRET", fixture("vector1_body.json"));
    assert!(matches!(
        verify_command_with(&verify_args, &|_| None, 0),
        Err(WebhookError::SecretUnset { .. })
    ));
}

#[test]
fn webhook_verify_command_reports_valid_and_invalid() {
    let lookup = env_with("CW_SECRET", SECRET);
    let mut args = VerifyArgs::new("CW_SECRET", fixture("vector1_body.json"));
    args.signature = Some(VECTOR1_SIG.into());
    args.timestamp = Some(TS.into());
    args.now = Some(1767225600 + 12);
    let ok = verify_command_with(&args, &lookup, 0).unwrap();
    assert!(ok.starts_with("valid"), "{ok}");
    assert!(ok.contains("timestamp 12 seconds old (window 5m)"), "{ok}");

    // Without --now the real clock makes the 2026-01-01 vector stale or future,
    // depending on today's date — either way it must not verify.
    let mut clock = args.clone();
    clock.now = None;
    let err = verify_command_with(&clock, &lookup, 1767225600 + 3600).unwrap_err();
    assert!(
        matches!(
            err,
            WebhookError::Invalid(SignatureError::Stale { age_secs: 3600, .. })
        ),
        "{err}"
    );
    assert_eq!(ExitStatus::from(&err).code(), 1);

    let mut body_only = args.clone();
    body_only.signature = Some(VECTOR1_BODY_ONLY.into());
    let err = verify_command_with(&body_only, &lookup, 0).unwrap_err();
    assert!(
        err.to_string().contains("without the timestamp prefix"),
        "{err}"
    );
    assert!(!err.to_string().contains(SECRET));

    let mut wider = args.clone();
    wider.now = Some(1767225600 + 3600);
    wider.max_age = Duration::from_secs(7200);
    assert!(verify_command_with(&wider, &lookup, 0).is_ok());

    let mut missing = args;
    missing.signature = None;
    assert!(matches!(
        verify_command_with(&missing, &lookup, 0),
        Err(WebhookError::Invalid(SignatureError::MissingSignature))
    ));
}

#[test]
fn webhook_curl_snippet_never_contains_the_secret() {
    let args = SignArgs {
        secret_env: "CW_SECRET".into(),
        timestamp: None,
        delivery: None,
        curl: Some("http://127.0.0.1:9/hook?x='y'".into()),
        body_file: fixture("vector3_body.json"),
    };
    let canary = "canary-9f2c-do-not-print";
    let lookup = env_with("CW_SECRET", "canary-9f2c-do-not-print");
    let out = sign_command_with(&args, &lookup, 0).unwrap();
    assert!(!out.contains(canary), "{out}");
    assert!(!out.contains("-hmac"), "{out}");
    assert!(out.contains("od -An -v -tu1"), "{out}");
    assert!(out.contains("$(date +%s)"), "{out}");
    assert!(out.contains("X-Chatwoot-Signature: sha256=$sig"), "{out}");

    let bad = SignArgs {
        curl: Some("ftp://example.invalid/".into()),
        ..args
    };
    assert!(matches!(
        sign_command_with(&bad, &lookup, 0),
        Err(WebhookError::BadUrl { .. })
    ));
}

/// Runs the printed snippet with bash, openssl and curl against a verifying
/// receiver on loopback: the delivery must be accepted.
#[tokio::test]
async fn webhook_curl_snippet_delivers_a_valid_signature() {
    for tool in ["bash", "curl", "openssl"] {
        let found = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {tool}"))
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(
            found,
            "{tool} is not installed: this test runs the printed snippet with it \
             (scripts/test.sh installs it)"
        );
    }
    let canary = "canary-curl-Secret-42";
    let mut listener = Listener::bind("127.0.0.1:0".parse().unwrap(), ListenerConfig::new(canary))
        .await
        .unwrap();
    let args = SignArgs {
        secret_env: "CW_SECRET".into(),
        timestamp: None,
        delivery: None,
        curl: Some(format!("http://{}/hooks/chatwoot", listener.local_addr())),
        body_file: fixture("vector3_body.json"),
    };
    let script = sign_command_with(&args, &|_| None, 0).unwrap();
    let output = tokio::process::Command::new("bash")
        .arg("-c")
        .arg(&script)
        .env("CW_SECRET", canary)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "script failed: {stdout} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let delivery = tokio::time::timeout(Duration::from_secs(5), listener.next_delivery())
        .await
        .unwrap()
        .unwrap();
    assert!(delivery.accepted, "{delivery:?}");
    assert_eq!(delivery.status, 200);
    assert_eq!(delivery.path, "/hooks/chatwoot");
    assert_eq!(delivery.body, vector3());
    assert_eq!(delivery.event.as_deref(), Some("message_created"));
    assert!(!stdout.contains(canary));

    // Without the variable the snippet refuses to run rather than sign with "".
    let output = tokio::process::Command::new("bash")
        .arg("-c")
        .arg(&script)
        .env_remove("CW_SECRET")
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("set CW_SECRET to the webhook secret"));
}
