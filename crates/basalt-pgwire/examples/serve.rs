//! Serve a throwaway warehouse for manual testing with psql:
//! `cargo run -p basalt-pgwire --example serve -- [ADDR] [DATA_DIR]`, then
//! `psql -h 127.0.0.1 -p 5439 -U basalt dev`.

use basalt_node::{Leader, LeaderConfig};
use basalt_pgwire::PgServer;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:5439".into());
    let dir = match args.next() {
        Some(d) => std::path::PathBuf::from(d),
        None => std::env::temp_dir().join("basalt-pgwire-example"),
    };
    let mut config = LeaderConfig::new(dir);
    config.nodes = 2;
    let leader = Leader::open(config)?;
    let server = PgServer::bind(leader, &addr).await?;
    eprintln!("listening on {}", server.local_addr());
    server
        .serve(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
