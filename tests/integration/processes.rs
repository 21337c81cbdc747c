//! Clusters of real `basalt leader` and `basalt compute` processes on loopback: registration,
//! queries across processes, a compute node killed in the middle of a query (a clean error
//! within seconds, the node marked down, queries working again once it is back), and the
//! cluster secret.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::durability::free_port;

const SECRET: &str = "integration-test-secret";

/// A leader process and its compute node processes, killed when dropped.
pub(crate) struct ProcessCluster {
    pub pg_port: u16,
    pub internal_port: u16,
    leader: Child,
    computes: Vec<Child>,
    dir: tempfile::TempDir,
    /// `--tls-cert/--tls-key/--tls-ca` for every process, when the cluster uses TLS.
    tls: Vec<String>,
    /// Compute nodes log with this filter into `compute-<i>.log` (else warnings to the test's
    /// output).
    compute_log: Option<&'static str>,
}

impl ProcessCluster {
    /// Start a leader of `nodes` x `slices` and its compute nodes; returns once a query
    /// reading every node's slices succeeds.
    pub(crate) async fn start(nodes: u32, slices: u32) -> ProcessCluster {
        Self::start_with(nodes, slices, false).await
    }

    /// With `tls`, every internal connection uses TLS, with certificates made for the test.
    pub(crate) async fn start_with(nodes: u32, slices: u32, tls: bool) -> ProcessCluster {
        Self::start_opts(nodes, slices, tls, None, &[]).await
    }

    /// Compute nodes log with `filter` into files [`ProcessCluster::compute_log`] reads.
    pub(crate) async fn start_logging(nodes: u32, slices: u32, filter: &'static str) -> Self {
        Self::start_opts(nodes, slices, false, Some(filter), &[]).await
    }

    /// As [`ProcessCluster::start_logging`], with `env` set for the leader (only).
    pub(crate) async fn start_logging_with(
        nodes: u32,
        slices: u32,
        filter: &'static str,
        env: &[(&str, &str)],
    ) -> Self {
        Self::start_opts(nodes, slices, false, Some(filter), env).await
    }

    async fn start_opts(
        nodes: u32,
        slices: u32,
        tls: bool,
        compute_log: Option<&'static str>,
        env: &[(&str, &str)],
    ) -> ProcessCluster {
        let dir = tempfile::tempdir().expect("tempdir");
        let tls = if tls {
            make_certificates(dir.path())
        } else {
            vec![]
        };
        let (pg_port, internal_port) = (free_port(), free_port());
        let leader = Command::new(env!("CARGO_BIN_EXE_basalt"))
            .arg("leader")
            .arg("--data-dir")
            .arg(dir.path().join("leader"))
            .args(["--port", &pg_port.to_string()])
            .args([
                "--nodes",
                &nodes.to_string(),
                "--slices",
                &slices.to_string(),
            ])
            .args(["--internal-listen", &format!("127.0.0.1:{internal_port}")])
            .args(&tls)
            .env("BASALT_CLUSTER_SECRET", SECRET)
            .env("BASALT_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("basalt leader starts");
        let mut cluster = ProcessCluster {
            pg_port,
            internal_port,
            leader,
            computes: vec![],
            dir,
            tls,
            compute_log,
        };
        for i in 0..nodes {
            let child = cluster.start_compute(&cluster.compute_dir(i as usize), SECRET);
            cluster.computes.push(child);
        }
        cluster.wait_until_up().await;
        cluster
    }

    pub(crate) fn compute_dir(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("compute-{i}"))
    }

    fn start_compute(&self, dir: &Path, secret: &str) -> Child {
        let mut cmd = self.compute_command(dir, secret);
        match self.compute_log {
            Some(filter) => {
                // The log (stderr), and anything printed: both into the file.
                let log = std::fs::File::create(dir.with_extension("log")).expect("log file");
                let err = log.try_clone().expect("log file");
                cmd.env("BASALT_LOG", filter)
                    .stdout(Stdio::from(log))
                    .stderr(Stdio::from(err))
            }
            None => cmd.stderr(Stdio::inherit()),
        }
        .spawn()
        .expect("basalt compute starts")
    }

    /// What compute node `i` logged (with [`ProcessCluster::start_logging`]).
    pub(crate) fn compute_log(&self, i: usize) -> String {
        std::fs::read_to_string(self.compute_dir(i).with_extension("log")).unwrap_or_default()
    }

    fn compute_command(&self, dir: &Path, secret: &str) -> Command {
        self.compute_command_with(dir, secret, &self.tls)
    }

    fn compute_command_with(&self, dir: &Path, secret: &str, tls: &[String]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_basalt"));
        cmd.arg("compute")
            .args(["--leader", &format!("127.0.0.1:{}", self.internal_port)])
            .arg("--data-dir")
            .arg(dir)
            .args(tls)
            .env("BASALT_CLUSTER_SECRET", secret)
            .env("BASALT_LOG", "warn")
            .stdout(Stdio::null());
        cmd
    }

    pub(crate) async fn client(&self) -> tokio_postgres::Client {
        crate::durability::connect(self.pg_port).await
    }

    /// Wait (at most 60 s) until a query that reads every slice runs.
    pub(crate) async fn wait_until_up(&self) {
        let client = self.client().await;
        client
            .batch_execute("create table if not exists basalt_probe (a int) diststyle even")
            .await
            .expect("probe table");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match client
                .simple_query(
                    "select count(*) from basalt_probe a join basalt_probe b on a.a = b.a",
                )
                .await
            {
                Ok(_) => return,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => panic!("compute nodes did not come up: {e}"),
            }
        }
    }

    /// Kill compute node `i` (SIGKILL).
    pub(crate) fn kill(&mut self, i: usize) {
        let _ = self.computes[i].kill();
        let _ = self.computes[i].wait();
    }

    /// Start compute node `i` again on its data directory.
    pub(crate) fn restart(&mut self, i: usize) {
        let child = self.start_compute(&self.compute_dir(i), SECRET);
        self.computes[i] = child;
    }
}

impl Drop for ProcessCluster {
    fn drop(&mut self) {
        for c in self.computes.iter_mut().chain([&mut self.leader]) {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A CA and a certificate for 127.0.0.1 signed by it, written under `dir`; the flags that
/// give them to a `basalt` process.
fn make_certificates(dir: &Path) -> Vec<String> {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca.self_signed(&ca_key).expect("CA certificate");
    let key = KeyPair::generate().expect("node key");
    let cert = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .expect("node params")
        .signed_by(&key, &ca, &ca_key)
        .expect("node certificate");
    let write = |name: &str, pem: String| {
        let path = dir.join(name);
        std::fs::write(&path, pem).expect("write PEM");
        path.to_string_lossy().to_string()
    };
    vec![
        "--tls-cert".into(),
        write("node.pem", cert.pem()),
        "--tls-key".into(),
        write("node.key", key.serialize_pem()),
        "--tls-ca".into(),
        write("ca.pem", ca.pem()),
    ]
}

fn sqlstate(e: &tokio_postgres::Error) -> String {
    e.as_db_error()
        .map(|d| d.code().code().to_string())
        .unwrap_or_default()
}

/// Kill a compute node while a query runs: the query fails within 10 s with the node's loss
/// as its error, queries fail at once while the node is down, and work again (with the same
/// answers) once it is back on its data directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_compute_node_fails_the_query_and_recovers() {
    let mut cluster = ProcessCluster::start(2, 2).await;
    let client = cluster.client().await;
    client
        .batch_execute(
            "create table f (k int, v int) distkey(k);
             insert into f select value % 997, value from generate_series(1, 200000);",
        )
        .await
        .expect("load");
    let sum = "select sum(v) from f";
    let expected: i64 = client.query_one(sum, &[]).await.expect("sum").get(0);
    assert_eq!(expected, 200_000 * 200_001 / 2);

    // A join that runs for minutes: it is surely running when the node dies.
    let long = "select count(*) from f a join f b on a.k = b.k join f c on c.k = b.k";
    let running = {
        let c = cluster.client().await;
        tokio::spawn(async move {
            let t = Instant::now();
            (c.simple_query(long).await, t.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    cluster.kill(1);
    let (result, took) = tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("the query ends within 10 s of the kill")
        .expect("task");
    let e = result.expect_err("the query was still running when its node died");
    assert_eq!(sqlstate(&e), "58000", "{e:?}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    // The node is marked down: queries that need it fail at once with a clear error.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match client.query_one(sum, &[]).await {
            Err(e)
                if e.as_db_error()
                    .is_some_and(|d| d.message().contains(" is down")) =>
            {
                assert_eq!(sqlstate(&e), "58000", "{e}");
                break;
            }
            other if Instant::now() < deadline => {
                let _ = other;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            other => panic!("node 1 was not marked down: {other:?}"),
        }
    }
    // Work on the leader alone (the catalog, system tables) goes on while a node is down.
    let tables = client
        .simple_query("select count(*) from pg_class where relname = 'f'")
        .await
        .expect("catalog query with a node down");
    assert!(
        matches!(&tables[1], tokio_postgres::SimpleQueryMessage::Row(r) if r.get(0) == Some("1"))
    );
    client
        .simple_query("select * from stv_slices")
        .await
        .expect("system table with a node down");
    client
        .batch_execute("create table made_while_down (a int)")
        .await
        .expect("DDL with a node down");
    // Back on its data directory, it holds its slices again.
    cluster.restart(1);
    cluster.wait_until_up().await;
    let again: i64 = client.query_one(sum, &[]).await.expect("sum").get(0);
    assert_eq!(again, expected);
}

/// A compute node without the cluster secret cannot join: the leader refuses it and the
/// process exits with an error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compute_node_without_the_secret_is_refused() {
    let cluster = ProcessCluster::start(1, 1).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let stranger = cluster
        .compute_command(dir.path(), "not-the-secret")
        .stderr(Stdio::piped())
        .spawn()
        .expect("basalt compute starts");
    let out = tokio::time::timeout(
        Duration::from_secs(20),
        tokio::task::spawn_blocking(move || stranger.wait_with_output()),
    )
    .await
    .expect("a node without the secret stops within 20 s")
    .expect("task")
    .expect("output");
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("cluster secret"), "{said}");
    // The real cluster is unaffected.
    let client = cluster.client().await;
    client
        .simple_query("select count(*) from basalt_probe")
        .await
        .expect("query");
}

/// A second process on a copy of a live node's data directory cannot take the node's slices:
/// the leader refuses its claim while the node answers heartbeats, and the process exits
/// with an error once it has waited for the node to be marked down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_process_claiming_a_live_node_is_refused() {
    let cluster = ProcessCluster::start(1, 1).await;
    let copy = tempfile::tempdir().expect("tempdir");
    std::fs::copy(
        cluster.compute_dir(0).join("node.json"),
        copy.path().join("node.json"),
    )
    .expect("copy node.json");
    let mut twin = cluster
        .compute_command(copy.path(), SECRET)
        .stderr(Stdio::piped())
        .spawn()
        .expect("basalt compute starts");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = twin.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = twin.kill();
            panic!("the second process still runs after 30 s: it took the node");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(!status.success());
    let mut said = String::new();
    std::io::Read::read_to_string(&mut twin.stderr.take().expect("stderr"), &mut said)
        .expect("stderr");
    assert!(said.contains("another process already runs"), "{said}");
    // The live node kept its slices.
    let client = cluster.client().await;
    client
        .simple_query("insert into basalt_probe values (1), (2), (3)")
        .await
        .expect("insert");
    let rows = client
        .simple_query("select count(*) from basalt_probe a join basalt_probe b on a.a = b.a")
        .await
        .expect("query");
    let n = rows.iter().find_map(|m| match m {
        tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
        _ => None,
    });
    assert_eq!(n.as_deref(), Some("3"));
}

/// CPU time (user + system, in clock ticks) a process has used so far.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at its closing paren.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    fields
        .get(11)
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0)
        + fields
            .get(12)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
}

/// A statement timeout stops the query's fragments on every compute node, not only the
/// leader's part: once the query has failed, the nodes go idle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statement_timeout_stops_fragments_on_every_node() {
    let cluster = ProcessCluster::start(2, 2).await;
    let client = cluster.client().await;
    client
        .batch_execute(
            "create table f (k int, v int) distkey(k);
             insert into f select value % 997, value from generate_series(1, 200000);",
        )
        .await
        .expect("load");
    client
        .batch_execute("set statement_timeout to 1000")
        .await
        .expect("set");
    let err = client
        .simple_query("select count(*) from f a join f b on a.k = b.k join f c on c.k = b.k")
        .await
        .expect_err("minutes of work cannot finish in a second");
    assert_eq!(sqlstate(&err), "57014", "{err:?}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pids: Vec<u32> = cluster.computes.iter().map(|c| c.id()).collect();
    let before: u64 = pids.iter().map(|p| cpu_ticks(*p)).sum();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let after: u64 = pids.iter().map(|p| cpu_ticks(*p)).sum();
    // Idle nodes only answer the leader's pings: well under a tenth of a CPU second.
    assert!(
        after - before < 30,
        "compute nodes kept working after the query was cancelled: {} ticks in 1.5 s",
        after - before
    );
}

/// With TLS configured, the leader and the compute nodes talk TLS only: queries run across
/// the nodes, and a node speaking plain text cannot join.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_traffic_over_tls() {
    let cluster = ProcessCluster::start_with(2, 2, true).await;
    let client = cluster.client().await;
    client
        .batch_execute(
            "create table f (k int, v int) distkey(k);
             create table e (x int, k2 int) diststyle even;
             insert into f select value % 97, value from generate_series(1, 3000);
             insert into e select value, value % 50 from generate_series(1, 500);",
        )
        .await
        .expect("load over TLS");
    assert_eq!(
        crate::s3::one(&client, "select count(*) from f join e on f.k = e.k2").await,
        "15490"
    );
    // A node without TLS cannot reach the leader's internal server.
    let dir = tempfile::tempdir().expect("tempdir");
    let mut stranger = cluster
        .compute_command_with(dir.path(), SECRET, &[])
        .stderr(Stdio::null())
        .spawn()
        .expect("basalt compute starts");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        !dir.path().join("node.json").exists(),
        "a plain-text node joined a TLS cluster"
    );
    let _ = stranger.kill();
    let _ = stranger.wait();
}

/// UNLOAD (PARALLEL ON) is written by the compute nodes that hold the rows: each node's log
/// names the files it wrote, every node wrote some, and the files hold every row once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unload_files_are_written_by_the_compute_nodes() {
    let cluster = ProcessCluster::start_logging(2, 2, "warn,basalt_node::unload=info").await;
    let client = cluster.client().await;
    client
        .batch_execute(
            "create table u (k int, v varchar(10)) distkey(k);
             insert into u select value, 'v' || value from generate_series(1, 5000);",
        )
        .await
        .expect("load");
    let out = tempfile::tempdir().expect("tempdir");
    let prefix = format!("{}/u_", out.path().display());
    let n = client
        .execute(&format!("unload ('select * from u') to '{prefix}'"), &[])
        .await
        .expect("unload");
    assert_eq!(n, 5000);
    let mut names: Vec<String> = std::fs::read_dir(out.path())
        .expect("files")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "u_0000_part_00",
            "u_0001_part_00",
            "u_0002_part_00",
            "u_0003_part_00"
        ]
    );
    let mut ids = vec![];
    for name in &names {
        let text = std::fs::read_to_string(out.path().join(name)).expect("read");
        ids.extend(
            text.lines()
                .map(|l| l.split('|').next().unwrap().parse::<i32>().unwrap()),
        );
    }
    ids.sort();
    assert_eq!(ids, (1..=5000).collect::<Vec<_>>());
    for i in 0..2 {
        let log = cluster.compute_log(i);
        assert!(
            log.contains("UNLOAD file written") && log.contains(&prefix),
            "compute node {i} wrote no file: {log}"
        );
    }
    // The leader lists the files the nodes reported.
    assert_eq!(
        crate::s3::one(
            &client,
            "select count(*) from stl_unload_log where query = (select max(query) from stl_unload_log)"
        )
        .await,
        "4"
    );
}

/// A COPY from object storage is parsed where the slices are: each compute node's log names
/// files it loaded (the leader, not the nodes, knows the S3 endpoint: the COPY carries it),
/// every row lands once, rejected rows of both nodes count against one MAXERROR, and
/// STL_LOAD_COMMITS lists every file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_files_are_parsed_by_the_compute_nodes() {
    use std::fmt::Write as _;
    const FILES: usize = 6;
    const ROWS: usize = 1000;
    let s3 = crate::s3::S3Server::start().await;
    s3.create_bucket("lake");
    for f in 0..FILES {
        let mut body = String::new();
        for r in 0..ROWS {
            let id = f * ROWS + r;
            // One bad row in files 1 and 4.
            if r == 500 && (f == 1 || f == 4) {
                writeln!(body, "x{id}|bad").unwrap();
            } else {
                writeln!(body, "{id}|row {id}").unwrap();
            }
        }
        s3.put(&format!("s3://lake/t/part_{f}.txt"), body.into_bytes())
            .await;
    }
    let cluster = ProcessCluster::start_logging_with(
        2,
        2,
        "warn,basalt_node::load=info",
        &[
            ("AWS_ENDPOINT_URL", s3.endpoint.as_str()),
            ("AWS_REGION", "us-east-1"),
        ],
    )
    .await;
    let client = cluster.client().await;
    client
        // An IDENTITY column too: the nodes number their rows without a shared counter.
        .batch_execute(
            "create table t (n bigint identity(1, 1), id int, label varchar(20)) distkey(id)",
        )
        .await
        .expect("create");
    let copy = format!(
        "copy t from 's3://lake/t/part_' access_key_id '{}' secret_access_key '{}'",
        crate::s3::ACCESS_KEY,
        crate::s3::SECRET_KEY
    );
    // Two rows rejected in all, one on each of two files: MAXERROR 1 fails the COPY.
    let e = client
        .execute(&format!("{copy} maxerror 1"), &[])
        .await
        .unwrap_err();
    assert!(format!("{e:?}").contains("stl_load_errors"), "{e:?}");
    assert_eq!(crate::s3::one(&client, "select count(*) from t").await, "0");
    let n = client
        .execute(&format!("{copy} maxerror 2"), &[])
        .await
        .expect("copy within MAXERROR");
    assert_eq!(n, (FILES * ROWS - 2) as u64);
    // The nodes sent the statistics of the rows they wrote: the table is analyzed.
    assert_eq!(
        crate::s3::one(
            &client,
            "select stats_off from svv_table_info where \"table\" = 't'"
        )
        .await,
        "0"
    );
    let all: usize = (0..FILES * ROWS).sum();
    assert_eq!(
        crate::s3::one(
            &client,
            "select count(*), count(distinct id), sum(id) from t"
        )
        .await,
        format!(
            "{}|{}|{}",
            FILES * ROWS - 2,
            FILES * ROWS - 2,
            all - 1500 - 4500
        )
    );
    // IDENTITY values are unique, and the next one is past them all.
    client
        .batch_execute("insert into t (id, label) values (-1, 'after')")
        .await
        .expect("insert");
    assert_eq!(
        crate::s3::one(
            &client,
            "select count(distinct t.n), min(t.n), sum(case when t.n >= a.n then 1 else 0 end) \
             from t, (select n from t where id = -1) a"
        )
        .await,
        format!("{}|1|1", FILES * ROWS - 1)
    );
    let last = "(select max(query) from stl_load_commits)";
    assert_eq!(
        crate::s3::one(
            &client,
            &format!(
                "select count(*), sum(lines_scanned) from stl_load_commits where query = {last}"
            )
        )
        .await,
        format!("{FILES}|{}", FILES * ROWS)
    );
    assert_eq!(
        crate::s3::one(
            &client,
            &format!("select count(*), min(line_number) from stl_load_errors where query = {last}")
        )
        .await,
        "2|501"
    );
    for i in 0..2 {
        let log = cluster.compute_log(i);
        assert!(
            log.contains("COPY file loaded") && log.contains("s3://lake/t/part_"),
            "compute node {i} loaded no file: {log}"
        );
        assert!(
            !log.contains(crate::s3::SECRET_KEY),
            "compute node {i} logged the secret"
        );
    }
}
