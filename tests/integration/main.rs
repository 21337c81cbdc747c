//! BasaltDB integration tests: everything through the paths users take (the Postgres wire
//! protocol against in-process clusters of several shapes and clusters of `basalt leader` /
//! `basalt compute` processes, a real psql, the `basalt` binary).

mod crash;
mod durability;
mod processes;
mod psql;
mod s3;
mod slt;
mod tpch;
