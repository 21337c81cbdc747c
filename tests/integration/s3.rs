//! COPY against a real S3-compatible server: `s3s-fs` serving a temporary directory on
//! 127.0.0.1, in the test process, reached through the S3 protocol (signed requests,
//! listing, ranged reads) exactly as a bucket on AWS would be.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use basalt_io::{Location, S3Settings, Storage};

pub(crate) const ACCESS_KEY: &str = "AKIABASALTTEST";
pub(crate) const SECRET_KEY: &str = "basalt-test-secret";

/// An S3 server on a loopback port, its objects under a temporary directory. [`Faults`] make
/// it slow or kill it in the middle of a load; [`S3Server::restart`] brings it back on the
/// same port and the same objects.
pub(crate) struct S3Server {
    pub endpoint: String,
    addr: std::net::SocketAddr,
    root: tempfile::TempDir,
    faults: Arc<Faults>,
    task: tokio::task::JoinHandle<()>,
}

/// What goes wrong on purpose, counted in object reads (GETs of a key).
#[derive(Default)]
pub(crate) struct Faults {
    reads: AtomicUsize,
    /// The server dies when this read arrives (0: never): the request gets no answer, every
    /// connection is dropped and the port stops listening.
    die_at_read: AtomicUsize,
    /// Each object read waits this long before it is served.
    read_delay_ms: AtomicU64,
    dead: tokio::sync::watch::Sender<bool>,
}

impl Faults {
    pub(crate) fn die_at_read(&self, n: usize) {
        self.die_at_read.store(n, Ordering::SeqCst);
    }

    pub(crate) fn slow_reads(&self, delay: Duration) {
        self.read_delay_ms
            .store(delay.as_millis() as u64, Ordering::SeqCst);
    }

    /// Whether this request may be served (after the read delay).
    async fn admit(&self, req: &hyper::Request<hyper::body::Incoming>) -> bool {
        // `/bucket/key`: an object; `/bucket` and `/bucket?list-type=2`: a listing.
        let object = req
            .uri()
            .path()
            .trim_start_matches('/')
            .split_once('/')
            .is_some_and(|(_, key)| !key.is_empty());
        if req.method() != hyper::Method::GET || !object {
            return !*self.dead.borrow();
        }
        let n = self.reads.fetch_add(1, Ordering::SeqCst) + 1;
        let die_at = self.die_at_read.load(Ordering::SeqCst);
        if die_at != 0 && n >= die_at {
            self.dead.send_replace(true);
            return false;
        }
        let delay = self.read_delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        !*self.dead.borrow()
    }
}

impl S3Server {
    pub(crate) async fn start() -> S3Server {
        let root = tempfile::tempdir().expect("tempdir");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let faults = Arc::new(Faults::default());
        let task = Self::serve(listener, root.path(), faults.clone());
        S3Server {
            endpoint: format!("http://{addr}"),
            addr,
            root,
            faults,
            task,
        }
    }

    pub(crate) fn faults(&self) -> &Faults {
        &self.faults
    }

    /// Start again after a death, on the same port with the same objects and no faults.
    pub(crate) async fn restart(&mut self) {
        self.faults.dead.send_replace(true);
        (&mut self.task).await.ok();
        self.faults = Arc::new(Faults::default());
        let listener = tokio::net::TcpListener::bind(self.addr)
            .await
            .expect("bind the same port again");
        self.task = Self::serve(listener, self.root.path(), self.faults.clone());
    }

    fn serve(
        listener: tokio::net::TcpListener,
        root: &std::path::Path,
        faults: Arc<Faults>,
    ) -> tokio::task::JoinHandle<()> {
        let fs = s3s_fs::FileSystem::new(root).expect("s3s-fs root");
        let mut builder = s3s::service::S3ServiceBuilder::new(fs);
        builder.set_auth(s3s::auth::SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
        let s3 = builder.build();
        let service_faults = faults.clone();
        let service = hyper::service::service_fn(move |req| {
            let (s3, faults) = (s3.clone(), service_faults.clone());
            async move {
                if !faults.admit(&req).await {
                    // Never answered: the connection is dropped with the server.
                    std::future::pending::<()>().await;
                }
                hyper::service::Service::call(&s3, req).await
            }
        });
        let mut dead = faults.dead.subscribe();
        tokio::spawn(async move {
            let http =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
            let mut connections = tokio::task::JoinSet::new();
            loop {
                let socket = tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok((socket, _)) => socket,
                        Err(_) => break,
                    },
                    _ = dead.wait_for(|d| *d) => break,
                };
                let conn = http
                    .serve_connection(hyper_util::rt::TokioIo::new(socket), service.clone())
                    .into_owned();
                connections.spawn(async move {
                    let _ = conn.await;
                });
            }
            // Dropping the set aborts every connection; dropping the listener closes the port.
            connections.abort_all();
        })
    }

    /// The endpoint, without credentials (statements bring theirs).
    pub(crate) fn endpoint_only(&self) -> S3Settings {
        S3Settings {
            endpoint: Some(self.endpoint.clone()),
            region: Some("us-east-1".into()),
            ..Default::default()
        }
    }

    pub(crate) fn create_bucket(&self, bucket: &str) {
        std::fs::create_dir(self.root.path().join(bucket)).expect("bucket directory");
    }

    /// Upload an object through the S3 protocol.
    pub(crate) async fn put(&self, url: &str, bytes: Vec<u8>) {
        let settings = S3Settings {
            access_key_id: Some(ACCESS_KEY.into()),
            secret_access_key: Some(SECRET_KEY.into()),
            ..self.endpoint_only()
        };
        let location = Location::parse(url).expect("location");
        let Location::S3 { key, .. } = &location else {
            panic!("{url} is not s3://")
        };
        let storage = Storage::open(&location, &settings).expect("store");
        storage
            .put(&key.as_str().into(), bytes.into())
            .await
            .expect("put");
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(vec![], flate2::Compression::fast());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

fn sqlstate(e: &tokio_postgres::Error) -> String {
    e.code().map(|c| c.code().to_string()).unwrap_or_default()
}

/// The first row of `sql`'s result, its values joined by `|`.
pub(crate) async fn one(client: &tokio_postgres::Client, sql: &str) -> String {
    let rows = client.simple_query(sql).await.expect(sql);
    rows.iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => Some(
                (0..r.len())
                    .map(|i| r.get(i).unwrap_or("NULL"))
                    .collect::<Vec<_>>()
                    .join("|"),
            ),
            _ => None,
        })
        .unwrap_or_default()
}

/// COPY from an S3 prefix loads every object under it (and no other), with the statement's
/// credentials in either spelling, gzip and CSV; wrong credentials, a missing bucket, an
/// empty prefix and an unreachable endpoint are clear errors that leave nothing loaded and
/// the session usable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_from_s3_loads_every_object_under_the_prefix() {
    let s3 = S3Server::start().await;
    s3.create_bucket("warehouse");
    s3.put(
        "s3://warehouse/sales/part_0.txt",
        b"id|region|amount\n1|east|10.50\n2|\\N|20.25\n".to_vec(),
    )
    .await;
    s3.put(
        "s3://warehouse/sales/part_1.txt",
        b"id|region|amount\n3|west|30.00\n".to_vec(),
    )
    .await;
    s3.put("s3://warehouse/sales_old/x.txt", b"9|old|99\n".to_vec())
        .await;
    s3.put(
        "s3://warehouse/csv/sales.csv.gz",
        gzip(b"4,\"north, upper\",40.00\n5,,50.00\n"),
    )
    .await;

    let cluster = basaltdb::Cluster::builder()
        .nodes(2)
        .slices_per_node(2)
        .s3(s3.endpoint_only())
        .start()
        .await
        .expect("cluster starts");
    let client = crate::durability::connect(cluster.pg_addr().port()).await;
    client
        .batch_execute(
            "create table sales (id int, region varchar(20), amount decimal(10,2)) distkey(id)",
        )
        .await
        .unwrap();
    let keys = format!("access_key_id '{ACCESS_KEY}' secret_access_key '{SECRET_KEY}'");
    let n = client
        .execute(
            &format!("copy sales from 's3://warehouse/sales/part_' {keys} ignoreheader 1 region 'us-east-1'"),
            &[],
        )
        .await
        .expect("copy from s3");
    assert_eq!(n, 3);
    assert_eq!(
        one(
            &client,
            "select count(*), sum(amount), count(region) from sales"
        )
        .await,
        "3|60.75|2"
    );
    let n = client
        .execute(
            &format!(
                "copy sales from 's3://warehouse/csv/' credentials \
                 'aws_access_key_id={ACCESS_KEY};aws_secret_access_key={SECRET_KEY}' \
                 iam_role default csv gzip"
            ),
            &[],
        )
        .await
        .expect("copy gzip csv");
    assert_eq!(n, 2);
    assert_eq!(
        one(&client, "select region from sales where id = 4").await,
        "north, upper"
    );

    let fails = [
        (
            format!(
                "copy sales from 's3://warehouse/sales/part_' access_key_id '{ACCESS_KEY}' secret_access_key 'wrong'"
            ),
            "42501",
        ),
        (
            format!("copy sales from 's3://no-such-bucket/x' {keys}"),
            "58P01",
        ),
        (
            format!("copy sales from 's3://warehouse/nothing/' {keys}"),
            "58P01",
        ),
    ];
    for (sql, code) in &fails {
        let e = client.execute(sql.as_str(), &[]).await.unwrap_err();
        assert_eq!(sqlstate(&e), *code, "{sql}: {e:?}");
    }
    // An endpoint nobody listens on fails within seconds, not after minutes of retries.
    let dead = basaltdb::Cluster::builder()
        .s3(S3Settings {
            endpoint: Some(format!(
                "http://127.0.0.1:{}",
                crate::durability::free_port()
            )),
            ..Default::default()
        })
        .start()
        .await
        .expect("cluster starts");
    let other = crate::durability::connect(dead.pg_addr().port()).await;
    other.batch_execute("create table t (a int)").await.unwrap();
    let started = Instant::now();
    let e = other
        .execute(&format!("copy t from 's3://warehouse/sales/' {keys}"), &[])
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "58030", "{e:?}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    // Nothing of the failed COPYs is visible, and the session goes on.
    assert_eq!(one(&client, "select count(*) from sales").await, "5");

    // A manifest names files in any bucket; a missing optional file is skipped, a missing
    // mandatory one fails the COPY.
    s3.create_bucket("other");
    s3.put("s3://other/more/m1.txt", b"6|south|60.00\n".to_vec())
        .await;
    s3.put(
        "s3://warehouse/manifests/ok",
        br#"{"entries": [
            {"url": "s3://warehouse/sales/part_1.txt", "mandatory": true},
            {"url": "s3://other/more/m1.txt"},
            {"url": "s3://other/more/gone.txt", "mandatory": false}]}"#
            .to_vec(),
    )
    .await;
    s3.put(
        "s3://warehouse/manifests/missing",
        br#"{"entries": [{"url": "s3://warehouse/sales/part_1.txt", "mandatory": true},
            {"url": "s3://other/more/gone.txt", "mandatory": true}]}"#
            .to_vec(),
    )
    .await;
    let n = client
        .execute(
            &format!(
                "copy sales from 's3://warehouse/manifests/ok' {keys} manifest maxerror 1 force"
            ),
            &[],
        )
        .await
        .expect("copy with a manifest");
    // part_1.txt's header line is rejected (no IGNOREHEADER): 2 rows, 1 error.
    assert_eq!(n, 2);
    assert_eq!(
        one(
            &client,
            "select count(*), min(err_code) from stl_load_errors where query = pg_last_copy_id()"
        )
        .await,
        "1|1207"
    );
    assert_eq!(
        one(
            &client,
            "select count(*) from stl_load_commits where query = pg_last_copy_id()"
        )
        .await,
        "2"
    );
    let e = client
        .execute(
            &format!("copy sales from 's3://warehouse/manifests/missing' {keys} manifest"),
            &[],
        )
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "58P01", "{e:?}");
    assert!(e.to_string().contains("gone.txt") || format!("{e:?}").contains("gone.txt"));
    assert_eq!(one(&client, "select count(*) from sales").await, "7");
    // The load ledger knows part_1.txt and m1.txt by their ETags: loading the manifest again
    // loads nothing.
    let n = client
        .execute(
            &format!("copy sales from 's3://warehouse/manifests/ok' {keys} manifest maxerror 1"),
            &[],
        )
        .await
        .expect("copy the manifest again");
    assert_eq!(n, 0);
    // A changed object (new ETag and size) loads again.
    s3.put(
        "s3://other/more/m1.txt",
        b"8|south|80.00\n9|south|90.00\n".to_vec(),
    )
    .await;
    let n = client
        .execute(
            &format!("copy sales from 's3://warehouse/manifests/ok' {keys} manifest maxerror 1"),
            &[],
        )
        .await
        .expect("copy the changed object");
    assert_eq!(n, 2);
    assert_eq!(one(&client, "select count(*) from sales").await, "9");
    // The credentials are in no system table: STL_QUERY has the COPYs with them blanked.
    let texts = one(
        &client,
        "select listagg(querytxt, ' ; ') from stl_query where querytxt ilike 'copy%'",
    )
    .await;
    assert!(texts.contains("secret_access_key ''"), "{texts}");
    assert!(!texts.contains(SECRET_KEY), "{texts}");
    dead.shutdown().await.expect("shutdown");
    cluster.shutdown().await.expect("shutdown");
}

/// DuckDB (Python) answering `sql` over files, if it is installed: one row, `|`-separated.
/// `scripts/test` installs it and sets BASALT_REQUIRE_DUCKDB, so CI cannot skip the check.
fn duckdb(sql: &str) -> Option<String> {
    let python = |script: &str| {
        std::process::Command::new("python3")
            .args(["-c", script])
            .output()
    };
    let installed = python("import duckdb").is_ok_and(|o| o.status.success());
    if !installed {
        assert!(
            std::env::var("BASALT_REQUIRE_DUCKDB").is_err(),
            "DuckDB is required (BASALT_REQUIRE_DUCKDB) but python3 cannot import duckdb"
        );
        eprintln!("skipping the DuckDB read-back: python3 cannot import duckdb");
        return None;
    }
    let script = format!(
        "import duckdb\nrow = duckdb.connect().execute({sql:?}).fetchall()[0]\nprint('|'.join('NULL' if v is None else str(v) for v in row))"
    );
    let out = python(&script).expect("python3 runs");
    assert!(
        out.status.success(),
        "DuckDB failed on {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// UNLOAD to an S3 server writes files that DuckDB reads with the same content, and that
/// COPY loads back: COPY -> UNLOAD -> COPY through S3 gives the same rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unload_to_s3_is_read_back_by_duckdb_and_copy() {
    let s3 = S3Server::start().await;
    s3.create_bucket("lake");
    let mut rows = String::new();
    for i in 0..2000 {
        let name = if i % 7 == 0 {
            "\\N".to_string()
        } else {
            format!("name {}", i % 13)
        };
        rows.push_str(&format!(
            "{i}|{name}|2024-{:02}-{:02}|{}.{:02}|{}\n",
            1 + i % 12,
            1 + i % 28,
            i * 3,
            i % 100,
            if i % 2 == 0 { "t" } else { "f" }
        ));
    }
    s3.put("s3://lake/in/rows.txt", rows.into_bytes()).await;
    let cluster = basaltdb::Cluster::builder()
        .nodes(2)
        .slices_per_node(2)
        .s3(s3.endpoint_only())
        .start()
        .await
        .expect("cluster starts");
    let client = crate::durability::connect(cluster.pg_addr().port()).await;
    client
        .batch_execute(
            "create table t (id int, name varchar(20), day date, amt decimal(10,2), ok boolean) distkey(id);
             create table back (like t)",
        )
        .await
        .unwrap();
    let keys = format!("access_key_id '{ACCESS_KEY}' secret_access_key '{SECRET_KEY}'");
    // Each statement moves all 2000 rows: in, out as Parquet and as gzip CSV, back in.
    for sql in [
        format!("copy t from 's3://lake/in/' {keys}"),
        format!("unload ('select * from t') to 's3://lake/out/t_' {keys} format parquet"),
        format!(
            "unload ('select * from t') to 's3://lake/csv/t_' {keys} csv header gzip manifest verbose"
        ),
        format!("copy back from 's3://lake/out/t_' {keys} parquet"),
    ] {
        let n = client.execute(sql.as_str(), &[]).await.expect(&sql);
        assert_eq!(n, 2000, "{sql}");
    }
    let summary = "count(*), sum(id), sum(amt), count(name), count(distinct name), min(day), max(day), sum(case when ok then 1 else 0 end)";
    let ours = one(&client, &format!("select {summary} from t")).await;
    assert_eq!(
        one(&client, &format!("select {summary} from back")).await,
        ours
    );
    assert_eq!(
        one(
            &client,
            "select count(*) from (select * from t except select * from back) d"
        )
        .await,
        "0"
    );
    // Another engine reads the same rows from the files the server stored.
    let dir = s3.root.path().join("lake");
    // The sizes the manifest and STL_UNLOAD_LOG give are the stored (compressed) files'.
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("csv/t_manifest")).expect("manifest"))
            .expect("manifest is JSON");
    let entries = manifest["entries"].as_array().expect("entries");
    assert!(!entries.is_empty());
    let mut stored = 0;
    for e in entries {
        let url = e["url"].as_str().expect("url");
        let name = url.rsplit('/').next().expect("file name");
        let size = std::fs::metadata(dir.join("csv").join(name))
            .expect("unloaded file")
            .len();
        assert_eq!(e["meta"]["content_length"].as_u64(), Some(size), "{url}");
        stored += size;
    }
    assert_eq!(
        one(
            &client,
            "select sum(transfer_size) from stl_unload_log \
             where query = (select max(query) from stl_unload_log where path like '%/csv/%')"
        )
        .await,
        stored.to_string()
    );
    let parquet = format!("read_parquet('{}/out/t_*.parquet')", dir.display());
    let csv = format!("read_csv('{}/csv/t_*.gz', header = true)", dir.display());
    for source in [parquet, csv] {
        // CSV carries no types: DuckDB is told the decimal and boolean columns.
        let sql = format!("select {summary} from {source}")
            .replace("ok then", "ok::boolean then")
            .replace("sum(amt)", "sum(amt::decimal(10, 2))");
        if let Some(theirs) = duckdb(&sql) {
            assert_eq!(theirs, ours.replace("|t|", "|true|"), "{sql}");
        }
    }
    cluster.shutdown().await.expect("shutdown");
}

/// `basalt serve` on `dir`, reaching `s3` through the `AWS_*` environment.
fn start_with_s3(dir: &std::path::Path, port: u16, s3: &S3Server) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_basalt"))
        .args(["serve", "--data-dir"])
        .arg(dir)
        .args(["--port", &port.to_string(), "--slices", "2", "--nodes", "2"])
        .env("AWS_ENDPOINT_URL", &s3.endpoint)
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env("AWS_REGION", "us-east-1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("basalt starts")
}

/// The S3 server dies in the middle of one COPY, and the warehouse is killed (-9) in the
/// middle of another: neither leaves a row behind, after the restarts too, and the same COPY
/// then loads every row once (no file of the cut-off COPYs was recorded as loaded).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_cut_off_by_a_dying_server_leaves_nothing() {
    use std::fmt::Write as _;
    const FILES: usize = 24;
    const ROWS: usize = 400;
    let mut s3 = S3Server::start().await;
    s3.create_bucket("lake");
    for f in 0..FILES {
        let mut body = String::new();
        for r in 0..ROWS {
            let id = f * ROWS + r;
            writeln!(body, "{id}|event {id}").unwrap();
        }
        s3.put(
            &format!("s3://lake/events/part_{f:03}.txt"),
            body.into_bytes(),
        )
        .await;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let port = crate::durability::free_port();
    let mut server = start_with_s3(dir.path(), port, &s3);
    let client = crate::durability::connect(port).await;
    client
        .batch_execute("create table events (id int, label varchar(30)) distkey(id)")
        .await
        .expect("create");
    let copy = "copy events from 's3://lake/events/part_'";

    // The S3 server dies at the tenth object read.
    s3.faults().die_at_read(10);
    let e = client.execute(copy, &[]).await.unwrap_err();
    assert_eq!(sqlstate(&e), "58030", "{e:?}");
    assert!(
        format!("{e:?}").contains("s3://lake/events/part_0"),
        "{e:?}"
    );
    s3.restart().await;
    assert_eq!(one(&client, "select count(*) from events").await, "0");

    // The warehouse is killed while a COPY is half way through its files.
    s3.faults().slow_reads(Duration::from_millis(100));
    let busy = crate::durability::connect(port).await;
    let inflight = tokio::spawn(async move { busy.execute(copy, &[]).await });
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let done = one(
            &client,
            "select coalesce(max(num_files_complete), 0) from stv_load_state",
        )
        .await;
        if done.parse::<usize>().unwrap() >= 3 {
            break;
        }
        assert!(Instant::now() < deadline, "the COPY made no progress");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.kill().expect("kill -9");
    server.wait().expect("reaped");
    assert!(
        inflight.await.unwrap().is_err(),
        "the COPY cannot have finished"
    );
    s3.restart().await;

    let mut server = start_with_s3(dir.path(), port, &s3);
    let client = crate::durability::connect(port).await;
    assert_eq!(one(&client, "select count(*) from events").await, "0");
    let n = client.execute(copy, &[]).await.expect("the same COPY");
    assert_eq!(n as usize, FILES * ROWS);
    let rows = FILES * ROWS;
    assert_eq!(
        one(
            &client,
            "select count(*), count(distinct id), sum(id::bigint) from events"
        )
        .await,
        format!("{rows}|{rows}|{}", rows * (rows - 1) / 2)
    );
    server.kill().expect("kill");
    server.wait().expect("reaped");
}

/// A statement timeout cancels a COPY whose files are being parsed on two compute nodes:
/// 57014, no row visible, no segment file on any slice once the shares have stopped (a
/// share's writer removes what it wrote, see `a_dropped_writer_removes_its_segments`), the
/// ledger holds none of its files, and the same COPY then loads every row once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canceled_copy_on_the_nodes_leaves_no_files() {
    use std::fmt::Write as _;
    const FILES: usize = 16;
    const ROWS: usize = 3000;
    let s3 = S3Server::start().await;
    s3.create_bucket("lake");
    for f in 0..FILES {
        let mut body = String::new();
        for r in 0..ROWS {
            writeln!(body, "{}|row {r} of {f}", f * ROWS + r).unwrap();
        }
        s3.put(&format!("s3://lake/c/part_{f:02}.txt"), body.into_bytes())
            .await;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let cluster = basaltdb::Cluster::builder()
        .data_dir(dir.path())
        .nodes(2)
        .slices_per_node(2)
        .copy_chunk_bytes(4096)
        .s3(s3.endpoint_only())
        .start()
        .await
        .expect("cluster starts");
    let client = crate::durability::connect(cluster.pg_addr().port()).await;
    client
        .batch_execute("create table c (id int, label varchar(20)) distkey(id)")
        .await
        .unwrap();
    let copy = format!(
        "copy c from 's3://lake/c/part_' access_key_id '{ACCESS_KEY}' secret_access_key '{SECRET_KEY}'"
    );
    // Each object read waits: the COPY cannot finish within its 600 ms.
    s3.faults().slow_reads(Duration::from_millis(150));
    client
        .batch_execute("set statement_timeout to 600")
        .await
        .unwrap();
    let e = client.execute(&copy, &[]).await.unwrap_err();
    assert_eq!(sqlstate(&e), "57014", "{e:?}");
    client
        .batch_execute("set statement_timeout to 0")
        .await
        .unwrap();
    assert_eq!(one(&client, "select count(*) from c").await, "0");
    // The shares stop when their stream is dropped; what they wrote goes with them.
    let segments = || {
        walk(dir.path())
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
            .count()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while segments() > 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(segments(), 0, "segment files of the canceled COPY remain");
    s3.faults().slow_reads(Duration::ZERO);
    let n = client.execute(&copy, &[]).await.expect("copy");
    assert_eq!(n, (FILES * ROWS) as u64);
    assert_eq!(
        one(
            &client,
            "select count(distinct id), min(id), max(id) from c"
        )
        .await,
        format!("{}|0|{}", FILES * ROWS, FILES * ROWS - 1)
    );
    cluster.shutdown().await.expect("shutdown");
}

/// Every file under `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![];
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
