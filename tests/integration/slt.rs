//! sqllogictest files under `tests/slt/`, run through the Postgres wire protocol against
//! embedded clusters of several shapes (nodes x slices). A result must not depend on the shape.
//!
//! - `BASALT_SLT_FILTER=name` runs only files whose name contains `name`.
//! - `BASALT_SLT_PG_URL=postgresql://...` runs the files against another server instead
//!   (e.g. PostgreSQL 15, which generated the expected results).
//! - `BASALT_SLT_COMPLETE=1` (with `BASALT_SLT_PG_URL`) rewrites the expected results from
//!   that server, like DataFusion's `--complete`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sqllogictest::{AsyncDB, DBOutput, DefaultColumnType, Runner};
use tokio_postgres::{NoTls, SimpleQueryMessage};

/// A connection speaking the Postgres simple-query protocol, so values arrive as the server's
/// text output (what psql shows).
pub struct PgDb {
    client: tokio_postgres::Client,
    /// `basalt` or `postgres`: the label `onlyif`/`skipif` records test.
    engine: &'static str,
    _conn: tokio::task::JoinHandle<()>,
}

#[derive(Debug, thiserror::Error)]
#[error("{message} (SQLSTATE {code})")]
pub struct PgError {
    message: String,
    code: String,
}

impl PgDb {
    pub async fn connect(url: &str, engine: &'static str) -> Result<Self, PgError> {
        let (client, conn) = tokio_postgres::connect(url, NoTls).await.map_err(to_err)?;
        let handle = tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(PgDb {
            client,
            engine,
            _conn: handle,
        })
    }
}

fn to_err(e: tokio_postgres::Error) -> PgError {
    match e.as_db_error() {
        Some(db) => PgError {
            message: db.message().to_string(),
            code: db.code().code().to_string(),
        },
        None => PgError {
            message: e.to_string(),
            code: "".into(),
        },
    }
}

#[async_trait::async_trait]
impl AsyncDB for PgDb {
    type Error = PgError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<Self::ColumnType>, Self::Error> {
        let msgs = tokio::time::timeout(Duration::from_secs(120), self.client.simple_query(sql))
            .await
            .map_err(|_| PgError {
                message: format!("timed out: {sql}"),
                code: "57014".into(),
            })?
            .map_err(to_err)?;
        let mut rows = vec![];
        let mut width = None;
        let mut count = 0;
        for m in msgs {
            match m {
                SimpleQueryMessage::RowDescription(cols) => width = Some(cols.len()),
                SimpleQueryMessage::Row(r) => {
                    width = Some(r.len());
                    rows.push(
                        (0..r.len())
                            .map(|i| match r.get(i) {
                                None => "NULL".to_string(),
                                Some("") => "(empty)".to_string(),
                                Some(v) => v.to_string(),
                            })
                            .collect(),
                    );
                }
                SimpleQueryMessage::CommandComplete(n) => count = n,
                _ => {}
            }
        }
        Ok(match width {
            Some(w) => DBOutput::Rows {
                types: vec![DefaultColumnType::Any; w],
                rows,
            },
            None => DBOutput::StatementComplete(count),
        })
    }

    async fn shutdown(&mut self) {}

    fn engine_name(&self) -> &str {
        self.engine
    }

    async fn sleep(dur: Duration) {
        tokio::time::sleep(dur).await
    }

    fn error_sql_state(err: &Self::Error) -> Option<String> {
        Some(err.code.clone())
    }
}

/// Cluster shapes every file runs on: (nodes, slices per node).
const SHAPES: &[(u32, u32)] = &[(1, 1), (2, 1), (2, 2), (3, 2)];

/// The bytes of a text file one COPY parser takes, per embedded shape: tiny chunks on two
/// shapes put chunk boundaries between (and inside) every few records, so a load's rows,
/// rejects and line numbers must not depend on how its files are cut.
fn copy_chunk_bytes(nodes: u32, slices: u32) -> usize {
    match (nodes, slices) {
        (2, 1) => 64,
        (3, 2) => 7,
        _ => basaltdb::DEFAULT_COPY_CHUNK_BYTES,
    }
}

fn slt_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/slt");
    let filter = std::env::var("BASALT_SLT_FILTER").ok();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/slt exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "slt"))
        .filter(|p| {
            filter
                .as_deref()
                .is_none_or(|f| p.file_name().unwrap().to_string_lossy().contains(f))
        })
        .collect();
    files.sort();
    files
}

#[allow(clippy::ptr_arg)] // the signature sqllogictest expects
fn normalize(s: &String) -> String {
    s.trim().to_string()
}

/// The column types (`query IRT`) of the record being validated. sqllogictest calls the column
/// validator right before the result validator, and files run one record at a time.
static EXPECTED_TYPES: std::sync::Mutex<Vec<DefaultColumnType>> = std::sync::Mutex::new(vec![]);

#[allow(clippy::ptr_arg)] // the signature sqllogictest expects
fn remember_types(_actual: &Vec<DefaultColumnType>, expected: &Vec<DefaultColumnType>) -> bool {
    *EXPECTED_TYPES.lock().unwrap() = expected.clone();
    true
}

/// Compares results as text, except in `R` (numeric/float) columns, which compare by value:
/// PostgreSQL's `numeric` picks its display scale per value (`avg` shows `99.5000000000000000`),
/// while BasaltDB, like Redshift, gives a column one fixed scale, and float digits may differ in
/// the last place. Values agree when equal after dropping trailing fractional zeros, or within
/// a relative 1e-12.
fn validate(
    normalizer: sqllogictest::Normalizer,
    actual: &[Vec<String>],
    expected: &[String],
) -> bool {
    if sqllogictest::default_validator(normalizer, actual, expected) {
        return true;
    }
    let types = EXPECTED_TYPES.lock().unwrap().clone();
    if !types.contains(&DefaultColumnType::FloatingPoint) || actual.len() != expected.len() {
        return false;
    }
    actual.iter().zip(expected).all(|(row, line)| {
        let want: Vec<&str> = line.split_whitespace().collect();
        let got: Vec<String> = row.iter().map(normalizer).collect();
        want.len() == types.len()
            && got.len() == types.len()
            && types
                .iter()
                .zip(want.iter().zip(&got))
                .all(|(ty, (w, g))| match ty {
                    DefaultColumnType::FloatingPoint => same_number(w, g),
                    _ => w == g,
                })
    })
}

fn same_number(want: &str, got: &str) -> bool {
    fn strip(s: &str) -> &str {
        if s.contains('.') && !s.contains(['e', 'E']) {
            s.trim_end_matches('0').trim_end_matches('.')
        } else {
            s
        }
    }
    if strip(want) == strip(got) {
        return true;
    }
    match (want.parse::<f64>(), got.parse::<f64>()) {
        (Ok(w), Ok(g)) if w.is_finite() && g.is_finite() => {
            (w - g).abs() <= 1e-12 * w.abs().max(g.abs())
        }
        _ => false,
    }
}

async fn run_file(
    url: String,
    engine: &'static str,
    file: &Path,
    complete: bool,
) -> Result<(), String> {
    let mut runner = Runner::new(move || {
        let url = url.clone();
        async move { PgDb::connect(&url, engine).await }
    });
    if engine == "basalt" {
        runner.add_label("basalt");
    }
    // COPY's test files.
    runner.set_var(
        "COPY_DATA".into(),
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/copy")
            .display()
            .to_string(),
    );
    runner.with_normalizer(normalize);
    runner.with_column_validator(remember_types);
    runner.with_validator(validate);
    if complete {
        runner
            .update_test_file(
                file,
                " ",
                sqllogictest::default_validator,
                normalize,
                sqllogictest::default_column_validator,
            )
            .await
            .map_err(|e| format!("{}: {e}", file.display()))
    } else {
        // Run every record (not stopping at the first failure), so the known-failure list can
        // be checked record by record.
        let records = sqllogictest::parse_file::<DefaultColumnType>(file)
            .map_err(|e| format!("{}: {e}", file.display()))?;
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        let mut failed = vec![];
        for record in records {
            if let Err(e) = runner.run_async(record).await {
                failed.push((
                    format!("{name}:{}", e.location().line()),
                    e.display(true).to_string(),
                ));
            }
        }
        if failed.is_empty() {
            Ok(())
        } else {
            Err(failed
                .into_iter()
                .map(|(k, msg)| format!("{k}\t{msg}"))
                .collect::<Vec<_>>()
                .join("\n\u{1}"))
        }
    }
}

/// `tests/slt/known_failures.txt`: `file:line` of records that fail today because of a
/// tracked gap (each with a reason). A listed record that starts passing fails the test too,
/// so the list only shrinks.
fn known_failures() -> std::collections::BTreeSet<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/slt/known_failures.txt");
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqllogictest_on_every_shape() {
    let files = slt_files();
    assert!(!files.is_empty(), "no .slt files found");
    if let Ok(url) = std::env::var("BASALT_SLT_PG_URL") {
        let complete = std::env::var("BASALT_SLT_COMPLETE").is_ok();
        let mut failures = vec![];
        for f in &files {
            if let Err(e) = run_file(url.clone(), "postgres", f, complete).await {
                failures.push(e);
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n\n"));
        return;
    }
    let mut results = vec![];
    for &(nodes, slices) in SHAPES {
        let cluster = basaltdb::Cluster::builder()
            .nodes(nodes)
            .slices_per_node(slices)
            .copy_chunk_bytes(copy_chunk_bytes(nodes, slices))
            .start()
            .await
            .expect("cluster starts");
        let url = format!(
            "postgresql://basalt@{}:{}/dev",
            cluster.pg_addr().ip(),
            cluster.pg_addr().port()
        );
        results.push((format!("{nodes}x{slices}"), run_files(&url, &files).await));
        cluster.shutdown().await.expect("clean shutdown");
    }
    check(results);
}

/// The same files on clusters whose leader and compute nodes are separate `basalt`
/// processes on loopback.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqllogictest_on_separate_processes() {
    if std::env::var("BASALT_SLT_PG_URL").is_ok() {
        return;
    }
    let files = slt_files();
    let mut results = vec![];
    for &(nodes, slices) in SHAPES {
        let cluster = crate::processes::ProcessCluster::start(nodes, slices).await;
        let url = format!("postgresql://basalt@127.0.0.1:{}/dev", cluster.pg_port);
        results.push((
            format!("processes {nodes}x{slices}"),
            run_files(&url, &files).await,
        ));
    }
    check(results);
}

/// Failing records of every file: `file:line` → message.
async fn run_files(url: &str, files: &[PathBuf]) -> Vec<(String, String)> {
    let mut failed = vec![];
    for f in files {
        if let Err(e) = run_file(url.to_string(), "basalt", f, false).await {
            for entry in e.split("\n\u{1}") {
                let (key, msg) = entry.split_once('\t').unwrap_or((entry, ""));
                failed.push((key.to_string(), msg.to_string()));
            }
        }
    }
    failed
}

/// Every shape's failures must be known ones, and every known failure must still fail.
fn check(results: Vec<(String, Vec<(String, String)>)>) {
    let known = known_failures();
    let filtered = std::env::var("BASALT_SLT_FILTER").is_ok();
    let mut failures = vec![];
    let mut still_known = std::collections::BTreeSet::new();
    for (shape, failed) in results {
        for (key, msg) in failed {
            if known.contains(&key) {
                still_known.insert(key);
            } else {
                failures.push(format!("[shape {shape}] {key}\n{msg}"));
            }
        }
    }
    if !filtered {
        for k in known.difference(&still_known) {
            failures.push(format!(
                "{k} is listed in tests/slt/known_failures.txt but passes now: remove it"
            ));
        }
    }
    if std::env::var("BASALT_SLT_PRINT_FAILING").is_ok() {
        for f in &failures {
            if let Some(key) = f.strip_prefix("[shape ").and_then(|r| r.split_once("] ")) {
                eprintln!("FAILING {}", key.1.lines().next().unwrap_or(""));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
