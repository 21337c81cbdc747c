//! BasaltDB integration tests: everything through the paths users take (the Postgres wire
//! protocol against in-process clusters of several shapes, a real psql, the `basalt` binary).

mod crash;
mod durability;
mod psql;
mod slt;
