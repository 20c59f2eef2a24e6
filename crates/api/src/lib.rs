//! shoal's HTTP server: the Docker Engine API's swarm routes (what the `docker` CLI talks to)
//! and the internal node-to-node routes.
//!
//! Handlers are thin: they parse a request, call the manager's control API or read the
//! replica, and shape Docker's JSON. No business rule lives here.

mod docker;
mod error;
mod internal;
mod query;
mod server;
mod stacks;

pub use server::{
    binder, binder_with, docker_router, serve_tcp, serve_unix, API_VERSION, MIN_API_VERSION,
};
