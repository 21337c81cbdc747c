//! TPC-H's 22 queries (`tests/tpch/queries`, on the Redshift schema `tests/tpch/schema.sql`)
//! over a small synthetic data set (`tests/tpch/data.sql`):
//!
//! - the same answers on clusters of 1x1, 2x2 and 3x2 nodes x slices, in one process and as
//!   separate `basalt leader` / `basalt compute` processes;
//! - the distributed plans, as EXPLAIN prints them with Redshift's DS_* labels, equal the
//!   approved ones in `tests/tpch/plans/` (2 nodes x 2 slices). `BASALT_GOLDEN_UPDATE=1`
//!   rewrites them; review the diff like code.

use std::path::{Path, PathBuf};

use tokio_postgres::{Client, SimpleQueryMessage};

fn tpch_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tpch")
}

fn queries() -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = std::fs::read_dir(tpch_dir().join("queries"))
        .expect("tests/tpch/queries")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .map(|p| {
            let name = p.file_stem().unwrap().to_string_lossy().to_string();
            (name, std::fs::read_to_string(&p).expect("query"))
        })
        .collect();
    out.sort();
    assert_eq!(out.len(), 22);
    out
}

async fn load(client: &Client) {
    for file in ["schema.sql", "data.sql"] {
        let sql = std::fs::read_to_string(tpch_dir().join(file)).expect(file);
        client
            .batch_execute(&sql)
            .await
            .unwrap_or_else(|e| panic!("{file}: {e:?}"));
    }
}

/// The rows of a query as text lines.
async fn rows(client: &Client, sql: &str) -> Vec<String> {
    let mut out = vec![];
    for m in client
        .simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e:?}"))
    {
        if let SimpleQueryMessage::Row(r) = m {
            out.push(
                (0..r.len())
                    .map(|i| r.get(i).unwrap_or("NULL"))
                    .collect::<Vec<_>>()
                    .join("|"),
            );
        }
    }
    out
}

/// Every query's answer, as a sorted multiset of rows. A query with LIMIT may keep any of
/// the rows tied at its limit, so its answer is that of the query without the limit, plus
/// the number of rows the limited query returned.
async fn answers(client: &Client) -> Vec<(String, Vec<String>)> {
    let mut out = vec![];
    for (name, sql) in queries() {
        let text = sql.trim().trim_end_matches(';').to_string();
        let lower = text.to_lowercase();
        let mut answer = match lower.rfind("\nlimit ") {
            Some(at) => {
                let limited = rows(client, &text).await.len();
                let mut all = rows(client, &text[..at]).await;
                all.sort();
                all.push(format!("limited to {limited} rows"));
                all
            }
            None => {
                let mut all = rows(client, &text).await;
                all.sort();
                all
            }
        };
        if answer.is_empty() {
            answer.push("(no rows)".into());
        }
        out.push((name, answer));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tpch_same_answers_on_every_shape() {
    let mut results = vec![];
    for (nodes, slices) in [(1, 1), (2, 1), (2, 2), (3, 2)] {
        let cluster = basaltdb::Cluster::builder()
            .nodes(nodes)
            .slices_per_node(slices)
            .start()
            .await
            .expect("cluster starts");
        let client = crate::durability::connect(cluster.pg_addr().port()).await;
        load(&client).await;
        results.push((format!("{nodes}x{slices}"), answers(&client).await));
        drop(client);
        cluster.shutdown().await.expect("shutdown");
    }
    for (nodes, slices) in [(1, 1), (2, 1), (2, 2), (3, 2)] {
        let cluster = crate::processes::ProcessCluster::start(nodes, slices).await;
        let client = cluster.client().await;
        load(&client).await;
        results.push((
            format!("processes {nodes}x{slices}"),
            answers(&client).await,
        ));
    }
    let (first_shape, first) = &results[0];
    for (name, answer) in first {
        assert!(
            !answer.contains(&"(no rows)".to_string()),
            "{name} has no rows on {first_shape}: the data set should give every query some"
        );
    }
    for (shape, answer) in &results[1..] {
        for ((name, want), (_, got)) in first.iter().zip(answer) {
            assert_eq!(
                want, got,
                "{name}: {shape} answers differently from {first_shape}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tpch_distributed_plans_match_approved() {
    let cluster = basaltdb::Cluster::builder()
        .nodes(2)
        .slices_per_node(2)
        .start()
        .await
        .expect("cluster starts");
    let client = crate::durability::connect(cluster.pg_addr().port()).await;
    load(&client).await;
    let update = std::env::var("BASALT_GOLDEN_UPDATE").is_ok();
    let dir = tpch_dir().join("plans");
    if update {
        std::fs::create_dir_all(&dir).expect("plans dir");
    }
    let mut differ = vec![];
    let mut plans = vec![];
    for (name, sql) in queries() {
        let plan = rows(&client, &format!("explain {}", sql.trim()))
            .await
            .join("\n")
            + "\n";
        let path = dir.join(format!("{name}.plan"));
        if update {
            std::fs::write(&path, &plan).expect("write plan");
        } else {
            let approved = std::fs::read_to_string(&path).unwrap_or_default();
            if approved != plan {
                differ.push(format!("{name}:\n--- approved\n{approved}+++ now\n{plan}"));
            }
        }
        plans.push((name, plan));
    }
    assert!(
        differ.is_empty(),
        "plans changed (BASALT_GOLDEN_UPDATE=1 rewrites tests/tpch/plans):\n{}",
        differ.join("\n")
    );
    // What the layout is for: lineitem joins orders where both lie (Q3, Q12, Q18...),
    // partsupp joins part likewise (Q2), small tables are broadcast.
    let plan = |n: &str| &plans.iter().find(|(name, _)| name == n).unwrap().1;
    for q in ["q03", "q12"] {
        assert!(
            plan(q).contains("Hash Join DS_DIST_NONE"),
            "{q}:\n{}",
            plan(q)
        );
    }
    assert!(plan("q05").contains("DS_BCAST_INNER"), "{}", plan("q05"));
    cluster.shutdown().await.expect("shutdown");
}
