//! `basalt`: the BasaltDB server.

use std::path::PathBuf;
use std::process::ExitCode;

use basaltdb::config::{Secret, ServerConfig, parse_auth};
use clap::{Parser, Subcommand};
use tracing::{error, info};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "basalt",
    version,
    about = "BasaltDB: a columnar MPP SQL warehouse that speaks Redshift"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the warehouse: a leader and its compute nodes in this process, listening for
    /// Postgres-protocol clients (psql, JDBC, ODBC, psycopg, redshift_connector).
    ///
    /// Settings come from defaults < --config TOML file < BASALT_* environment < flags.
    Serve(ServeArgs),
    /// Start a leader whose compute nodes are separate `basalt compute` processes: clients
    /// connect here; the catalog and every commit live here. The cluster's shape (--nodes,
    /// --slices) is fixed when its data directory is created.
    Leader(LeaderArgs),
    /// Start a compute node: it registers with the leader, holds its slices under
    /// --data-dir and runs the query fragments the leader sends it.
    Compute(ComputeArgs),
}

#[derive(clap::Args)]
struct LeaderArgs {
    #[command(flatten)]
    serve: ServeArgs,
    /// Where compute nodes register and the leader's internal requests are served
    /// [default: 127.0.0.1:5440].
    #[arg(long)]
    internal_listen: Option<String>,
    /// Secret every internal request carries; the same for the leader and its compute nodes
    /// (prefer BASALT_CLUSTER_SECRET).
    #[arg(long)]
    cluster_secret: Option<String>,
    #[command(flatten)]
    tls: TlsArgs,
}

/// TLS for the connections between the leader and the compute nodes: all three or none.
#[derive(clap::Args)]
struct TlsArgs {
    /// This process's certificate (PEM), for its internal server.
    #[arg(long, env = "BASALT_TLS_CERT")]
    tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM).
    #[arg(long, env = "BASALT_TLS_KEY")]
    tls_key: Option<PathBuf>,
    /// The CA that signed every node's certificate (PEM).
    #[arg(long, env = "BASALT_TLS_CA")]
    tls_ca: Option<PathBuf>,
}

impl TlsArgs {
    fn load(&self) -> Result<Option<basalt_mpp::TlsConfig>, basaltdb::Error> {
        match (&self.tls_cert, &self.tls_key, &self.tls_ca) {
            (None, None, None) => Ok(None),
            (Some(cert), Some(key), Some(ca)) => basalt_mpp::TlsConfig::from_files(cert, key, ca)
                .map(Some)
                .map_err(|source| basaltdb::Error::Io {
                    context: "reading the internal TLS files".into(),
                    source,
                }),
            _ => Err(basaltdb::Error::Config(
                "internal TLS needs --tls-cert, --tls-key and --tls-ca together".into(),
            )),
        }
    }
}

#[derive(clap::Args)]
struct ComputeArgs {
    /// The leader's internal address, HOST:PORT.
    #[arg(long, env = "BASALT_LEADER")]
    leader: String,
    /// Directory for this node's slices [default: ./basalt-compute-data].
    #[arg(long, env = "BASALT_DATA_DIR", default_value = "basalt-compute-data")]
    data_dir: PathBuf,
    /// Address of this node's internal server (fragments, exchanges, the leader's
    /// requests); loopback unless told otherwise.
    #[arg(long, env = "BASALT_LISTEN", default_value = "127.0.0.1:0")]
    listen: String,
    /// The address the leader and the other nodes reach this node at, when not --listen's.
    #[arg(long, env = "BASALT_ADVERTISE")]
    advertise: Option<String>,
    /// The cluster secret (prefer BASALT_CLUSTER_SECRET).
    #[arg(long, env = "BASALT_CLUSTER_SECRET")]
    cluster_secret: Option<String>,
    /// Log filter [default: info].
    #[arg(long, env = "BASALT_LOG", default_value = "info")]
    log: String,
    #[command(flatten)]
    tls: TlsArgs,
}

#[derive(clap::Args)]
struct ServeArgs {
    /// TOML configuration file (keys: data_dir, host, port, nodes, slices, user, password,
    /// auth, log).
    #[arg(long, env = "BASALT_CONFIG")]
    config: Option<PathBuf>,
    /// Directory for the catalog and segment files [default: ./basalt-data].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1].
    #[arg(long)]
    host: Option<String>,
    /// Postgres wire port [default: 5439].
    #[arg(long)]
    port: Option<u16>,
    /// Slices per node [default: number of cores]. Fixed when the data directory is created.
    #[arg(long, visible_alias = "slices-per-node")]
    slices: Option<u32>,
    /// Compute nodes in this process [default: 1]. Fixed when the data directory is created.
    #[arg(long)]
    nodes: Option<u32>,
    /// Superuser name [default: basalt].
    #[arg(long)]
    user: Option<String>,
    /// Superuser password; when set, clients must authenticate (prefer BASALT_PASSWORD).
    #[arg(long)]
    password: Option<String>,
    /// Authentication: trust, md5 or scram-sha-256 [default: trust, or md5 with a password].
    #[arg(long)]
    auth: Option<String>,
    /// Log filter, e.g. info or basalt_node=debug [default: info].
    #[arg(long)]
    log: Option<String>,
}

fn load_config(args: &ServeArgs) -> Result<ServerConfig, basaltdb::Error> {
    let mut c = match &args.config {
        Some(p) => ServerConfig::from_file(p)?,
        None => ServerConfig::default(),
    };
    c.apply_env(|k| std::env::var(k).ok())?;
    if let Some(v) = &args.data_dir {
        c.data_dir = v.clone();
    }
    if let Some(v) = &args.host {
        c.host = v.clone();
    }
    if let Some(v) = args.port {
        c.port = v;
    }
    if let Some(v) = args.slices {
        c.slices = v;
    }
    if let Some(v) = args.nodes {
        c.nodes = v;
    }
    if let Some(v) = &args.user {
        c.user = v.clone();
    }
    if let Some(v) = &args.password {
        c.password = Some(Secret(v.clone()));
    }
    if let Some(v) = &args.auth {
        c.auth = Some(parse_auth(v)?);
    }
    if let Some(v) = &args.log {
        c.log = v.clone();
    }
    c.validate()?;
    Ok(c)
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing a SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// The log goes to stderr, as a server's diagnostics do (stdout stays for what a command
/// prints).
fn init_logging(filter: &str) {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter)),
        )
        .init();
}

/// `basalt leader`: `basalt serve`'s settings, with the compute nodes elsewhere.
async fn lead(args: LeaderArgs) -> Result<(), basaltdb::Error> {
    let mut config = load_config(&args.serve)?;
    if let Some(v) = args.internal_listen {
        config.internal_listen = v;
    }
    if let Some(v) = args.cluster_secret {
        config.cluster_secret = Some(Secret(v));
    }
    let mut leader = config.leader_config();
    leader.internal_listen = Some(config.internal_listen.clone());
    leader.internal_tls = args.tls.load()?;
    serve_with(config, leader).await
}

/// `basalt compute`.
async fn compute(args: ComputeArgs) -> Result<(), basaltdb::Error> {
    init_logging(&args.log);
    let secret = args.cluster_secret.ok_or_else(|| {
        basaltdb::Error::Config(
            "a compute node needs the cluster secret (--cluster-secret or BASALT_CLUSTER_SECRET)"
                .into(),
        )
    })?;
    basalt_node::run_compute(
        basalt_node::ComputeConfig {
            data_dir: args.data_dir,
            leader: args.leader,
            listen: args.listen,
            advertise: args.advertise,
            cluster_secret: secret,
            tls: args.tls.load()?,
        },
        shutdown_signal(),
    )
    .await?;
    info!("compute node shut down");
    Ok(())
}

async fn serve(args: ServeArgs) -> Result<(), basaltdb::Error> {
    let config = load_config(&args)?;
    let leader = config.leader_config();
    serve_with(config, leader).await
}

async fn serve_with(
    config: ServerConfig,
    leader_config: basaltdb::LeaderConfig,
) -> Result<(), basaltdb::Error> {
    init_logging(&config.log);
    let leader = basaltdb::Leader::open(leader_config)?;
    let addr = format!("{}:{}", config.host, config.port);
    let server = basalt_pgwire::PgServer::bind(leader.clone(), &addr)
        .await
        .map_err(|source| basaltdb::Error::Io {
            context: format!("listening on {addr}"),
            source,
        })?;
    info!(
        addr = %server.local_addr(),
        data_dir = %config.data_dir.display(),
        topology = %leader.topology(),
        "BasaltDB ready: psql -h {} -p {} -U {} dev",
        config.host,
        server.local_addr().port(),
        config.user
    );
    server
        .serve(shutdown_signal())
        .await
        .map_err(|source| basaltdb::Error::Io {
            context: "serving".into(),
            source,
        })?;
    info!("shut down cleanly");
    Ok(())
}

/// Stack of each runtime worker thread.
const WORKER_STACK_BYTES: usize = 16 * 1024 * 1024;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // SQL planning (DataFusion's statement planner, our nested async session calls) needs
    // more than tokio's default 2 MiB per worker in debug builds; a stack overflow would abort
    // the whole server, so leave ample room.
    // Query fragments keep runtime threads busy; more threads than cores leave room for the
    // control plane (a node's answers to the leader's health checks, cancel requests).
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads((2 * cores).max(4))
        .enable_all()
        .thread_stack_size(WORKER_STACK_BYTES)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("basalt: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Command::Serve(args) => rt.block_on(serve(args)),
        Command::Leader(args) => rt.block_on(lead(args)),
        Command::Compute(args) => rt.block_on(compute(args)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e}");
            eprintln!("basalt: {e}");
            ExitCode::FAILURE
        }
    }
}
