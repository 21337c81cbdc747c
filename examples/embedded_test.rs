//! Embedding BasaltDB in a test: start an in-process cluster, load a table through SQL,
//! and query it both through the Rust API (Arrow batches) and through the Postgres wire
//! protocol with `tokio-postgres`, as an application under test would.
//!
//! Run the test with `cargo test --example embedded_test`, or the demo with
//! `cargo run --example embedded_test`.

use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::datatypes::Int64Type;

async fn demo() -> Result<(i64, i64), Box<dyn std::error::Error>> {
    // Two compute nodes with two slices each, data in a temporary directory.
    let cluster = basaltdb::Cluster::builder()
        .nodes(2)
        .slices_per_node(2)
        .start()
        .await?;

    let mut session = cluster.session()?;
    session
        .sql("create table orders (id bigint identity(1,1), customer int, total decimal(10,2)) distkey(customer)")
        .await?;
    session
        .sql("insert into orders (customer, total) values (1, 10.00), (2, 5.50), (1, 2.25)")
        .await?;
    let batches: Vec<RecordBatch> = session
        .sql("select count(*) from orders where customer = 1")
        .await?;
    let via_api = batches[0].column(0).as_primitive::<Int64Type>().value(0);

    // Any Postgres client works against the same cluster.
    let (client, conn) =
        tokio_postgres::connect(&cluster.connection_string(), tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    let row = client
        .query_one("select count(*) from orders where customer = $1", &[&2i32])
        .await?;
    let via_wire: i64 = row.get(0);

    cluster.shutdown().await?;
    Ok((via_api, via_wire))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (a, b) = demo().await?;
    println!("customer 1 has {a} orders, customer 2 has {b}");
    Ok(())
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn embedded_cluster_answers_through_api_and_wire() {
        let (a, b) = super::demo().await.expect("demo runs");
        assert_eq!((a, b), (2, 1));
    }
}
