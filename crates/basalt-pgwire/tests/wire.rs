//! The wire front end against a real leader, driven by tokio-postgres: simple and extended
//! protocol, text and binary values of every column type, errors, transactions, COPY, portals
//! with max_rows, cancel, and password authentication.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use basalt_node::{AuthMethod, Leader, LeaderConfig};
use basalt_pgwire::PgServer;
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use rust_decimal::Decimal;
use tokio::sync::oneshot;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

const LIMIT: Duration = Duration::from_secs(60);

/// A leader and a server on an ephemeral port; dropped with the test.
struct Server {
    port: u16,
    _stop: oneshot::Sender<()>,
    _dir: tempfile::TempDir,
}

async fn start(configure: impl FnOnce(&mut LeaderConfig)) -> Server {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = LeaderConfig::new(dir.path().to_path_buf());
    config.nodes = 2;
    config.slices_per_node = 2;
    configure(&mut config);
    let leader: Arc<Leader> = Leader::open(config).expect("leader opens");
    let server = PgServer::bind(leader, "127.0.0.1:0").await.expect("bind");
    let port = server.local_addr().port();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(server.serve(async {
        let _ = stopped.await;
    }));
    Server {
        port,
        _stop: stop,
        _dir: dir,
    }
}

async fn connect_as(
    port: u16,
    user: &str,
    password: Option<&str>,
) -> Result<Client, tokio_postgres::Error> {
    let mut config = tokio_postgres::Config::new();
    config.host("127.0.0.1").port(port).user(user).dbname("dev");
    if let Some(p) = password {
        config.password(p);
    }
    let (client, connection) = config.connect(NoTls).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

async fn connect(port: u16) -> Client {
    connect_as(port, "basalt", None).await.expect("connects")
}

/// Run a test body with a time limit.
async fn bounded<F: Future<Output = ()>>(f: F) {
    tokio::time::timeout(LIMIT, f)
        .await
        .expect("test timed out");
}

/// Rows of a simple query as text (None = NULL).
async fn simple_rows(client: &Client, sql: &str) -> Vec<Vec<Option<String>>> {
    client
        .simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => {
                Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect())
            }
            _ => None,
        })
        .collect()
}

fn code(e: &tokio_postgres::Error) -> String {
    e.code()
        .map(|c| c.code().to_string())
        .unwrap_or_else(|| format!("no sqlstate: {e}"))
}

const ALL_TYPES: &str = "create table all_types (
    id int, s smallint, i int, b bigint, d decimal(12,2), r real, f double precision,
    t boolean, c char(5), v varchar(20), dt date, ts timestamp, tz timestamptz, tm time)";

const ALL_VALUES: &str = "insert into all_types values
    (1, -32768, 2147483647, -9223372036854775808, 1234567890.12, 1.5, 0.1, true, 'ab', 'hello',
     '2024-02-29', '2024-02-29 13:14:15.25', '2024-02-29 13:14:15.5+00', '23:59:58.5'),
    (2, null, null, null, null, null, null, null, null, null, null, null, null, null)";

#[tokio::test]
async fn simple_query_text_values_of_every_type() {
    let server = start(|_| {}).await;
    bounded(async {
        let client = connect(server.port).await;
        client.batch_execute(ALL_TYPES).await.expect("create");
        client.batch_execute(ALL_VALUES).await.expect("insert");
        let rows = simple_rows(&client, "select * from all_types order by id").await;
        let s = |v: &str| Some(v.to_string());
        assert_eq!(
            rows[0],
            vec![
                s("1"),
                s("-32768"),
                s("2147483647"),
                s("-9223372036854775808"),
                s("1234567890.12"),
                s("1.5"),
                s("0.1"),
                s("t"),
                s("ab   "),
                s("hello"),
                s("2024-02-29"),
                s("2024-02-29 13:14:15.25"),
                s("2024-02-29 13:14:15.5+00"),
                s("23:59:58.5"),
            ]
        );
        let mut nulls = vec![None; 14];
        nulls[0] = s("2");
        assert_eq!(rows[1], nulls);
    })
    .await;
}

#[tokio::test]
async fn computed_values_in_postgres_text_format() {
    let server = start(|_| {}).await;
    bounded(async {
        let client = connect(server.port).await;
        let rows = simple_rows(
            &client,
            "select 1e20::float8, 0.1::real, 1.5e-7::float8, interval '1 day 2 hours', \
             make_array(1, 2, 3), make_array('a b', 'c'), null, 1.50::decimal(5,2)",
        )
        .await;
        let s = |v: &str| Some(v.to_string());
        assert_eq!(
            rows[0],
            vec![
                s("1e+20"),
                s("0.1"),
                s("1.5e-07"),
                s("1 day 02:00:00"),
                s("{1,2,3}"),
                s("{\"a b\",c}"),
                None,
                s("1.50"),
            ]
        );
    })
    .await;
}

#[tokio::test]
async fn row_description_types_and_typmods() {
    let server = start(|_| {}).await;
    bounded(async {
        let client = connect(server.port).await;
        client.batch_execute(ALL_TYPES).await.expect("create");
        let stmt = client
            .prepare("select * from all_types")
            .await
            .expect("prepare");
        let types: Vec<&str> = stmt.columns().iter().map(|c| c.type_().name()).collect();
        assert_eq!(
            types,
            [
                "int4",
                "int2",
                "int4",
                "int8",
                "numeric",
                "float4",
                "float8",
                "bool",
                "bpchar",
                "varchar",
                "date",
                "timestamp",
                "timestamptz",
                "time"
            ]
        );
        let typmods: Vec<i32> = stmt.columns().iter().map(|c| c.type_modifier()).collect();
        // numeric(12,2) = (12 << 16 | 2) + 4, char(5) = 5 + 4, varchar(20) = 20 + 4.
        assert_eq!(
            typmods,
            [
                -1,
                -1,
                -1,
                -1,
                (12 << 16 | 2) + 4,
                -1,
                -1,
                -1,
                9,
                24,
                -1,
                -1,
                -1,
                -1
            ]
        );
        let rows = simple_rows(
            &client,
            "select 1::bigint, 'x'::text, 2.5::double precision",
        )
        .await;
        assert_eq!(
            rows[0],
            vec![Some("1".into()), Some("x".into()), Some("2.5".into())]
        );
    })
    .await;
}

#[tokio::test]
async fn binary_values_of_every_type() {
    let server = start(|_| {}).await;
    bounded(async {
        let client = connect(server.port).await;
        client.batch_execute(ALL_TYPES).await.expect("create");
        client.batch_execute(ALL_VALUES).await.expect("insert");
        // tokio-postgres asks for binary results for every column.
        let rows = client
            .query("select * from all_types order by id", &[])
            .await
            .expect("query");
        assert_eq!(rows.len(), 2);
        let r = &rows[0];
        assert_eq!(r.get::<_, i32>(0), 1);
        assert_eq!(r.get::<_, i16>(1), -32768);
        assert_eq!(r.get::<_, i32>(2), 2147483647);
        assert_eq!(r.get::<_, i64>(3), i64::MIN);
        assert_eq!(
            r.get::<_, Decimal>(4),
            "1234567890.12".parse::<Decimal>().expect("dec")
        );
        assert_eq!(r.get::<_, Decimal>(4).to_string(), "1234567890.12");
        assert_eq!(r.get::<_, f32>(5), 1.5);
        assert_eq!(r.get::<_, f64>(6), 0.1);
        assert!(r.get::<_, bool>(7));
        assert_eq!(r.get::<_, String>(8), "ab   ");
        assert_eq!(r.get::<_, String>(9), "hello");
        assert_eq!(
            r.get::<_, NaiveDate>(10),
            NaiveDate::from_ymd_opt(2024, 2, 29).expect("date")
        );
        assert_eq!(
            r.get::<_, NaiveDateTime>(11),
            NaiveDateTime::parse_from_str("2024-02-29 13:14:15.25", "%Y-%m-%d %H:%M:%S%.f")
                .expect("ts")
        );
        assert_eq!(
            r.get::<_, DateTime<Utc>>(12),
            "2024-02-29T13:14:15.5Z"
                .parse::<DateTime<Utc>>()
                .expect("tz")
        );
        assert_eq!(
            r.get::<_, NaiveTime>(13),
            NaiveTime::from_hms_milli_opt(23, 59, 58, 500).expect("time")
        );
        let n = &rows[1];
        assert_eq!(n.get::<_, i32>(0), 2);
        assert_eq!(n.get::<_, Option<i16>>(1), None);
        assert_eq!(n.get::<_, Option<i32>>(2), None);
        assert_eq!(n.get::<_, Option<i64>>(3), None);
        assert_eq!(n.get::<_, Option<Decimal>>(4), None);
        assert_eq!(n.get::<_, Option<f32>>(5), None);
        assert_eq!(n.get::<_, Option<f64>>(6), None);
        assert_eq!(n.get::<_, Option<bool>>(7), None);
        assert_eq!(n.get::<_, Option<String>>(8), None);
        assert_eq!(n.get::<_, Option<String>>(9), None);
        assert_eq!(n.get::<_, Option<NaiveDate>>(10), None);
        assert_eq!(n.get::<_, Option<NaiveDateTime>>(11), None);
        assert_eq!(n.get::<_, Option<DateTime<Utc>>>(12), None);
        assert_eq!(n.get::<_, Option<NaiveTime>>(13), None);
    })
    .await;
}

#[tokio::test]
async fn extended_query_with_parameters() {
    let server = start(|_| {}).await;
    bounded(async {
        let client = connect(server.port).await;
        client.batch_execute(ALL_TYPES).await.expect("create");
        // Binary parameters of every type through an INSERT.
        let insert = client
            .prepare(
                "insert into all_types (id, s, i, b, d, r, f, t, c, v, dt, ts, tz, tm)
                 values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
            )
            .await
            .expect("prepare insert");
        let dec: Decimal = "-42.05".parse().expect("dec");
        let date = NaiveDate::from_ymd_opt(1999, 12, 31).expect("date");
        let ts = date.and_hms_micro_opt(23, 59, 59, 999_999).expect("ts");
        let tz: DateTime<Utc> = "2001-02-03T04:05:06.000007Z".parse().expect("tz");
        let tm = NaiveTime::from_hms_opt(1, 2, 3).expect("time");
        let n = client
            .execute(
                &insert,
                &[
                    &10i32,
                    &7i16,
                    &-5i32,
                    &1_000_000_000_000i64,
                    &dec,
                    &-2.25f32,
                    &1e20f64,
                    &false,
                    &"xyz",
                    &"wörld",
                    &date,
                    &ts,
                    &tz,
                    &tm,
                ],
            )
            .await
            .expect("insert with parameters");
        assert_eq!(n, 1);
        let nulls: [Option<i32>; 1] = [None];
        client
            .execute(
                "insert into all_types (id, i) values (11, $1)",
                &[&nulls[0]],
            )
            .await
            .expect("insert null parameter");
        // Text rendering of what was inserted.
        let rows = simple_rows(&client, "select * from all_types where id = 10").await;
        let s = |v: &str| Some(v.to_string());
        assert_eq!(
            rows[0],
            vec![
                s("10"),
                s("7"),
                s("-5"),
                s("1000000000000"),
                s("-42.05"),
                s("-2.25"),
                s("1e+20"),
                s("f"),
                s("xyz  "),
                s("wörld"),
                s("1999-12-31"),
                s("1999-12-31 23:59:59.999999"),
                s("2001-02-03 04:05:06.000007+00"),
                s("01:02:03"),
            ]
        );
        // Parameters in a query, binary results.
        let rows = client
            .query(
                "select id, v from all_types where i = $1 and dt = $2",
                &[&-5i32, &date],
            )
            .await
            .expect("select with parameters");
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].get::<_, String>(1), "wörld");
        let rows = client
            .query(
                "select id from all_types where i is null and id = $1",
                &[&11i32],
            )
            .await
            .expect("null parameter inserted");
        assert_eq!(rows.len(), 1);
        // A named prepared statement reused with different parameters.
        let by_id = client
            .prepare("select v from all_types where id = $1")
            .await
            .expect("prepare");
        assert_eq!(by_id.params(), &[tokio_postgres::types::Type::INT4]);
        for (id, want) in [(10, Some("wörld")), (11, None)] {
            let row = client.query_one(&by_id, &[&id]).await.expect("query_one");
            assert_eq!(row.get::<_, Option<String>>(0).as_deref(), want);
        }
    })
    .await;
}

#[tokio::test]
async fn errors_carry_sqlstate_and_the_connection_survives() {
    let server = start(|_| {}).await;
    bounded(async {
        let client = connect(server.port).await;
        let e = client.simple_query("selec 1").await.unwrap_err();
        assert_eq!(code(&e), "42601");
        let db = e.as_db_error().expect("db error");
        assert!(db.position().is_some(), "syntax errors carry a position");
        let e = client
            .simple_query("select * from no_such_table")
            .await
            .unwrap_err();
        assert_eq!(code(&e), "42P01");
        let e = client.simple_query("select 1/0").await.unwrap_err();
        assert_eq!(code(&e), "22012");
        // Division by zero found while rows stream.
        client
            .batch_execute("create table z (a int, b int)")
            .await
            .expect("create");
        client
            .batch_execute("insert into z values (1, 1), (2, 0)")
            .await
            .expect("insert");
        let e = client
            .simple_query("select a / b from z")
            .await
            .unwrap_err();
        assert_eq!(code(&e), "22012");
        let e = client.query("select a / b from z", &[]).await.unwrap_err();
        assert_eq!(code(&e), "22012");
        let e = client
            .prepare("select * from no_such_table")
            .await
            .unwrap_err();
        assert_eq!(code(&e), "42P01");
        // Still usable, both protocols.
        assert_eq!(
            simple_rows(&client, "select 1").await,
            vec![vec![Some("1".into())]]
        );
        let row = client.query_one("select 2::int", &[]).await.expect("query");
        assert_eq!(row.get::<_, i32>(0), 2);
        // Empty queries.
        let msgs = client.simple_query(";").await.expect("empty query");
        assert!(
            msgs.iter()
                .all(|m| !matches!(m, SimpleQueryMessage::Row(_)))
        );
    })
    .await;
}

#[tokio::test]
async fn multi_statement_simple_query() {
    let server = start(|_| {}).await;
    bounded(async {
        let client = connect(server.port).await;
        let msgs = client
            .simple_query("create table m (a int); insert into m values (1), (2), (3); select count(*) from m")
            .await
            .expect("multi statement");
        let completions: Vec<u64> = msgs
            .iter()
            .filter_map(|m| match m {
                SimpleQueryMessage::CommandComplete(n) => Some(*n),
                _ => None,
            })
            .collect();
        // CREATE TABLE, INSERT 0 3, SELECT 1
        assert_eq!(completions, vec![0, 3, 1]);
        assert_eq!(client.execute("insert into m values (4)", &[]).await.expect("insert"), 1);
    })
    .await;
}

#[tokio::test]
async fn transaction_rollback_leaves_nothing() {
    let server = start(|_| {}).await;
    bounded(async {
        let mut client = connect(server.port).await;
        client
            .batch_execute("create table tx (a int)")
            .await
            .expect("create");
        client
            .batch_execute("begin; insert into tx values (1), (2); rollback")
            .await
            .expect("rolled back");
        assert_eq!(
            simple_rows(&client, "select count(*) from tx").await[0][0].as_deref(),
            Some("0")
        );
        // tokio-postgres transactions (extended protocol inside BEGIN/ROLLBACK).
        let t = client.transaction().await.expect("begin");
        t.execute("insert into tx values ($1)", &[&5i32])
            .await
            .expect("insert");
        let n: i64 = t
            .query_one("select count(*) from tx", &[])
            .await
            .expect("count")
            .get(0);
        assert_eq!(n, 1);
        t.rollback().await.expect("rollback");
        let n: i64 = client
            .query_one("select count(*) from tx", &[])
            .await
            .expect("count")
            .get(0);
        assert_eq!(n, 0);
        // An error inside a transaction block fails it until ROLLBACK.
        client.batch_execute("begin").await.expect("begin");
        let e = client
            .simple_query("select * from no_such_table")
            .await
            .unwrap_err();
        assert_eq!(code(&e), "42P01");
        let e = client.simple_query("select 1").await.unwrap_err();
        assert_eq!(code(&e), "25P02");
        client.batch_execute("rollback").await.expect("rollback");
        // A failure while rows stream fails the block too.
        client
            .batch_execute("create table z (a int, b int)")
            .await
            .expect("create");
        client
            .batch_execute("insert into z values (1, 0)")
            .await
            .expect("insert");
        client.batch_execute("begin").await.expect("begin");
        let e = client
            .simple_query("select a / b from z")
            .await
            .unwrap_err();
        assert_eq!(code(&e), "22012");
        let e = client.simple_query("select 1").await.unwrap_err();
        assert_eq!(code(&e), "25P02");
        client.batch_execute("rollback").await.expect("rollback");
        assert_eq!(simple_rows(&client, "select 1").await.len(), 1);
        // Committed work stays.
        client
            .batch_execute("begin; insert into tx values (7); commit")
            .await
            .expect("commit");
        assert_eq!(
            simple_rows(&client, "select a from tx").await,
            vec![vec![Some("7".into())]]
        );
    })
    .await;
}

#[tokio::test]
async fn portal_with_max_rows_suspends_and_resumes() {
    let server = start(|_| {}).await;
    bounded(async {
        let mut client = connect(server.port).await;
        client
            .batch_execute("create table p (a int)")
            .await
            .expect("create");
        client
            .batch_execute("insert into p values (1), (2), (3), (4), (5), (6), (7)")
            .await
            .expect("insert");
        let t = client.transaction().await.expect("begin");
        let stmt = t
            .prepare("select a from p order by a")
            .await
            .expect("prepare");
        let portal = t.bind(&stmt, &[]).await.expect("bind");
        let mut seen = vec![];
        loop {
            let rows = t.query_portal(&portal, 3).await.expect("execute portal");
            let n = rows.len();
            seen.extend(rows.iter().map(|r| r.get::<_, i32>(0)));
            if n < 3 {
                break;
            }
        }
        assert_eq!(seen, vec![1, 2, 3, 4, 5, 6, 7]);
        t.commit().await.expect("commit");
    })
    .await;
}

#[tokio::test]
async fn copy_from_stdin() {
    use futures::SinkExt;
    let server = start(|_| {}).await;
    bounded(async {
        let client = connect(server.port).await;
        client
            .batch_execute("create table cp (a int, b varchar(10))")
            .await
            .expect("create");
        let sink = client
            .copy_in("copy cp from stdin")
            .await
            .expect("copy starts");
        futures::pin_mut!(sink);
        sink.send(bytes::Bytes::from_static(b"1\tone\n2\t\\N\n"))
            .await
            .expect("data");
        let n = sink.finish().await.expect("copy done");
        assert_eq!(n, 2);
        assert_eq!(
            simple_rows(&client, "select a, b from cp order by a").await,
            vec![
                vec![Some("1".into()), Some("one".into())],
                vec![Some("2".into()), None]
            ]
        );
    })
    .await;
}

#[tokio::test]
async fn cancel_a_long_query() {
    let server = start(|_| {}).await;
    bounded(async {
        let client = connect(server.port).await;
        let token = client.cancel_token();
        let canceller = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(500)).await;
            token.cancel_query(NoTls).await
        });
        let started = std::time::Instant::now();
        let e = client
            .simple_query(
                "select count(*) from generate_series(1, 100000) a \
                 cross join generate_series(1, 100000) b",
            )
            .await
            .unwrap_err();
        assert_eq!(e.code(), Some(&SqlState::QUERY_CANCELED), "{e}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
        canceller.await.expect("join").expect("cancel sent");
        assert_eq!(simple_rows(&client, "select 1").await.len(), 1);
    })
    .await;
}

#[tokio::test]
async fn unknown_database_is_fatal() {
    let server = start(|_| {}).await;
    bounded(async {
        let mut config = tokio_postgres::Config::new();
        config
            .host("127.0.0.1")
            .port(server.port)
            .user("basalt")
            .dbname("nope");
        let e = config
            .connect(NoTls)
            .await
            .map(|_| ())
            .expect_err("refused");
        assert_eq!(code(&e), "3D000");
        let e = connect_as(server.port, "nobody", None)
            .await
            .map(|_| ())
            .expect_err("refused");
        assert_eq!(code(&e), "28000");
    })
    .await;
}

async fn password_logins(method: AuthMethod) {
    let server = start(|c| {
        c.password = Some("s3cret".into());
        c.auth = method;
    })
    .await;
    bounded(async {
        let client = connect_as(server.port, "basalt", Some("s3cret"))
            .await
            .expect("right password");
        assert_eq!(simple_rows(&client, "select 1").await.len(), 1);
        let e = connect_as(server.port, "basalt", Some("wrong"))
            .await
            .map(|_| ())
            .expect_err("refused");
        assert_eq!(code(&e), "28P01");
        let db = e.as_db_error().expect("db error");
        assert_eq!(
            db.message(),
            "password authentication failed for user \"basalt\""
        );
        let e = connect_as(server.port, "nobody", Some("s3cret"))
            .await
            .map(|_| ())
            .expect_err("refused");
        assert_eq!(code(&e), "28P01");
    })
    .await;
}

#[tokio::test]
async fn md5_password_login() {
    password_logins(AuthMethod::Md5).await;
}

#[tokio::test]
async fn scram_password_login() {
    password_logins(AuthMethod::ScramSha256).await;
}
