//! A real `psql` session (backslash commands, \copy, errors mid-script) against an embedded
//! cluster; its output must match `tests/psql/session.out`. Regenerate with
//! `BASALT_PSQL_BLESS=1 cargo test --test integration psql_script`.

use std::path::Path;
use std::process::Command;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_script() {
    if Command::new("psql").arg("--version").output().is_err() {
        panic!("psql is required for this test (apt-get install postgresql-client)");
    }
    let cluster = basaltdb::Cluster::builder()
        .nodes(2)
        .slices_per_node(2)
        .start()
        .await
        .expect("cluster starts");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let addr = cluster.pg_addr();
    let output = tokio::task::spawn_blocking({
        let root = root.to_path_buf();
        move || {
            Command::new("psql")
                .current_dir(&root)
                .args([
                    "-X",
                    "-q",
                    "-h",
                    &addr.ip().to_string(),
                    "-p",
                    &addr.port().to_string(),
                ])
                .args(["-U", "basalt", "-d", "dev", "-f", "tests/psql/session.sql"])
                .env("PGCONNECT_TIMEOUT", "10")
                .output()
                .expect("psql runs")
        }
    })
    .await
    .expect("psql task");
    let mut got = String::from_utf8_lossy(&output.stdout).to_string();
    got.push_str("-- stderr --\n");
    // Error lines carry the script path and line number; keep them, they are stable.
    got.push_str(&String::from_utf8_lossy(&output.stderr));
    let expected_path = root.join("tests/psql/session.out");
    if std::env::var("BASALT_PSQL_BLESS").is_ok() {
        std::fs::write(&expected_path, &got).expect("write expected output");
    }
    let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
    cluster.shutdown().await.expect("clean shutdown");
    assert_eq!(
        got, expected,
        "psql output differs from tests/psql/session.out"
    );
}
